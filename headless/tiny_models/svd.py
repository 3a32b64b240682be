"""Tiny SVD-XT and MimicMotion files in the real layouts (docs/architecture.md, *Model files*), for tests, benches and
the CLI demo.

Plain builders (no pytest, a second or two each):

- ``build_tiny_svd(directory, seed=0) -> Path``: writes a diffusers-layout SVD folder at ``directory``
  (``vae/``, ``image_encoder/``, ``scheduler/``, ``feature_extractor/``, ``unet/config.json``, ``model_index.json``)
  with fp16 weights under the real repo's file names (``diffusion_pytorch_model.fp16.safetensors``,
  ``model.fp16.safetensors``). UNet / CLIP sizes follow diffusers' SVD tests (block_out (32, 64),
  cross_attention_dim 32, CLIP hidden 32); the VAE has 4 blocks so its scale factor is 8 like SVD's (PoseNet
  works at /8). Total downsampling: 8 (VAE) × 2 (UNet) = 16, so e.g. 64×112 px inputs work.
- ``build_tiny_mimicmotion(path, unet, seed=0) -> Path``: writes a flat fp16 ``.pth`` with ``unet.*`` + ``pose_net.*``
  keys like ``MimicMotion_1-1.pth``; ``unet`` is the SVD folder (or its ``unet/`` folder, or a UNet config dict).
  PoseNet's ``final_proj`` is non-zero so pose maps change the result.
- ``build_tiny_geometry_adapter(path) -> Path``: a geometry adapter for the tiny UNet (small random weights), as the
  trainer saves them; the templates' name is ``GEOMETRY_ADAPTER_NAME``.
- ``TINY_SIZE = (64, 112)``: a (width, height) that fits the tiny model.

Session fixtures: ``tiny_svd_dir`` (``models_dir/diffusers/stable-video-diffusion-img2vid-xt-1-1``) and
``tiny_mimicmotion_path`` (``models_dir/mimicmotion/MimicMotion_1-1.pth``), ``tiny_geometry_adapter_path``
(``models_dir/motionguide_adapters/motionguide_geometry_adapter.safetensors``).
"""
from __future__ import annotations

import json
from pathlib import Path

SVD_FOLDER_NAME = "stable-video-diffusion-img2vid-xt-1-1"
MIMICMOTION_NAME = "MimicMotion_1-1.pth"
TINY_SIZE = (64, 112)

TINY_UNET_CONFIG = {
    "_class_name": "UNetSpatioTemporalConditionModel",
    "block_out_channels": [32, 64],
    "layers_per_block": 2,
    "sample_size": 32,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
    "cross_attention_dim": 32,
    "num_attention_heads": 8,
    "projection_class_embeddings_input_dim": 96,
    "addition_time_embed_dim": 32,
}
TINY_VAE_CONFIG = {
    "_class_name": "AutoencoderKLTemporalDecoder",
    "block_out_channels": [32, 32, 32, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 1,
    "sample_size": 64,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}
TINY_CLIP_CONFIG = {
    "architectures": ["CLIPVisionModelWithProjection"],
    "model_type": "clip_vision_model",
    "hidden_size": 32,
    "projection_dim": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "intermediate_size": 37,
    "patch_size": 4,
    "num_channels": 3,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
}
SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "set_alpha_to_one": False, "sigma_max": 700.0, "sigma_min": 0.002, "skip_prk_steps": True, "steps_offset": 1,
    "timestep_spacing": "leading", "timestep_type": "continuous", "trained_betas": None, "use_karras_sigmas": True,
}
TINY_EXTRACTOR_CONFIG = {
    "crop_size": {"height": 32, "width": 32}, "do_center_crop": True, "do_normalize": True, "do_rescale": True,
    "do_resize": True, "image_processor_type": "CLIPImageProcessor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 32},
}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _fp16(module) -> dict:
    import torch

    return {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}


def build_tiny_svd(directory, seed: int = 0) -> Path:
    """Write a tiny diffusers-layout SVD folder at ``directory`` and return its path."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    vae = AutoencoderKLTemporalDecoder.from_config(TINY_VAE_CONFIG)
    (root / "vae").mkdir(exist_ok=True)
    _write_json(root / "vae" / "config.json", dict(vae.config))
    save_file(_fp16(vae), str(root / "vae" / "diffusion_pytorch_model.fp16.safetensors"))

    torch.manual_seed(seed + 1)
    clip_fields = {k: v for k, v in TINY_CLIP_CONFIG.items() if k != "architectures"}
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_fields))
    _write_json(root / "image_encoder" / "config.json", TINY_CLIP_CONFIG)
    state = {k: v for k, v in _fp16(clip).items() if not k.endswith("position_ids")}
    save_file(state, str(root / "image_encoder" / "model.fp16.safetensors"))

    _write_json(root / "unet" / "config.json", TINY_UNET_CONFIG)
    _write_json(root / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG)
    _write_json(root / "feature_extractor" / "preprocessor_config.json", TINY_EXTRACTOR_CONFIG)
    _write_json(root / "model_index.json", {
        "_class_name": "StableVideoDiffusionPipeline",
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
        "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
    })
    return root


def _unet_config(unet) -> dict:
    if isinstance(unet, dict):
        return unet
    path = Path(unet)
    for candidate in (path / "unet" / "config.json", path / "config.json", path):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"No UNet config.json under {path}.")


def build_tiny_mimicmotion(path, unet, seed: int = 0, prefixes: tuple[str, str] = ("unet.", "pose_net.")) -> Path:
    """Write a flat fp16 MimicMotion-format ``.pth`` (``unet.*`` + ``pose_net.*``) at ``path``; returns ``path``.

    ``prefixes`` exists so tests can write a file with wrong prefixes.
    """
    import torch
    from diffusers import UNetSpatioTemporalConditionModel
    from motionguide.pipelines.mimicmotion.pose_net import PoseNet

    config = {k: v for k, v in _unet_config(unet).items() if not k.startswith("_")}
    torch.manual_seed(seed)
    model = UNetSpatioTemporalConditionModel(**config)
    pose_net = PoseNet(out_channels=config["block_out_channels"][0])
    with torch.no_grad():  # the released PoseNet is trained: a zero final_proj would hide pose bugs
        torch.nn.init.normal_(pose_net.final_proj.weight, std=0.05)
        torch.nn.init.normal_(pose_net.final_proj.bias, std=0.05)
    state = {prefixes[0] + k: v for k, v in _fp16(model).items()}
    state.update({prefixes[1] + k: v for k, v in _fp16(pose_net).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, str(path))
    return path



def _ldm_vae_name(key: str, num_up: int) -> str:
    """diffusers temporal-VAE key → generative-models key (the inverse of the pack's converter, written apart)."""
    import re

    temporal = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3"}
    attention = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}

    def resnet(rest):
        if rest == "time_mixer.mix_factor":
            return "mix_factor"
        if rest.startswith("temporal_res_block."):
            layer, param = rest[len("temporal_res_block."):].split(".")
            return f"time_stack.{temporal[layer]}.{param}"
        return rest.replace("spatial_res_block.", "").replace("conv_shortcut", "nin_shortcut")

    rules = [
        (r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", lambda m: f"encoder.down.{m[1]}.block.{m[2]}.{resnet(m[3])}"),
        (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", lambda m: f"encoder.down.{m[1]}.downsample.conv.{m[2]}"),
        (r"(\w+)\.mid_block\.resnets\.(\d+)\.(.+)", lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}.{resnet(m[3])}"),
        (r"(\w+)\.mid_block\.attentions\.0\.(.+)\.(\w+)", lambda m: f"{m[1]}.mid.attn_1.{attention[m[2]]}.{m[3]}"),
        (r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", lambda m: f"decoder.up.{num_up - 1 - int(m[1])}.block.{m[2]}.{resnet(m[3])}"),
        (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", lambda m: f"decoder.up.{num_up - 1 - int(m[1])}.upsample.conv.{m[2]}"),
        (r"(\w+)\.conv_norm_out\.(\w+)", lambda m: f"{m[1]}.norm_out.{m[2]}"),
        (r"decoder\.time_conv_out\.(\w+)", lambda m: f"decoder.conv_out.time_mix_conv.{m[1]}"),
    ]
    for pattern, make in rules:
        m = re.fullmatch(pattern, key)
        if m:
            return make(m)
    return key


def build_tiny_svd_single_file(path, svd_dir, with_quant_conv: bool = True) -> Path:
    """Write the tiny SVD folder's VAE + CLIP as one generative-models-style ``svd_xt_1_1.safetensors``.

    Configs are not in the file: load it with ``config_dir=svd_dir``. ``with_quant_conv=False`` writes the file the
    way Stability's checkpoint is (no ``quant_conv``; the loader then uses the identity).
    """
    import torch
    from safetensors.torch import load_file, save_file

    svd_dir = Path(svd_dir)
    vae = load_file(str(svd_dir / "vae" / "diffusion_pytorch_model.fp16.safetensors"))
    clip = load_file(str(svd_dir / "image_encoder" / "model.fp16.safetensors"))
    num_up = len(json.loads((svd_dir / "vae" / "config.json").read_text())["block_out_channels"])
    out = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 8, 3, 3, dtype=torch.float16)}
    for key, value in vae.items():
        if key.startswith("quant_conv") and not with_quant_conv:
            continue
        if ".attentions.0.to_" in key and key.endswith("weight"):
            value = value[:, :, None, None]
        out["first_stage_model." + _ldm_vae_name(key, num_up)] = value
    visual = "conditioner.embedders.0.open_clip.model.visual."
    layers: dict[str, dict] = {}
    for key, value in clip.items():
        if key == "visual_projection.weight":
            out[visual + "proj"] = value.t().contiguous()
        elif key == "vision_model.embeddings.class_embedding":
            out[visual + "class_embedding"] = value
        elif key == "vision_model.embeddings.position_embedding.weight":
            out[visual + "positional_embedding"] = value
        elif key == "vision_model.embeddings.patch_embedding.weight":
            out[visual + "conv1.weight"] = value
        elif key.startswith("vision_model.pre_layrnorm."):
            out[visual + "ln_pre." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("vision_model.post_layernorm."):
            out[visual + "ln_post." + key.rsplit(".", 1)[1]] = value
        else:
            _, _, _, index, rest = key.split(".", 4)  # vision_model.encoder.layers.<i>.<rest>
            base = f"{visual}transformer.resblocks.{index}."
            names = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                     "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
            module, param = rest.rsplit(".", 1)
            if module in names:
                out[base + names[module] + "." + param] = value
            else:  # q/k/v projections are one packed in_proj in OpenCLIP
                layers.setdefault(base + "attn.in_proj_" + param, {})[module] = value
    for key, parts in layers.items():
        out[key] = torch.cat([parts["self_attn.q_proj"], parts["self_attn.k_proj"], parts["self_attn.v_proj"]])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path))
    return path


GEOMETRY_ADAPTER_NAME = "motionguide_geometry_adapter.safetensors"  # the templates' adapter file name


def build_tiny_geometry_adapter(path, unet_width: int = TINY_UNET_CONFIG["block_out_channels"][0], seed: int = 0,
                                maps=("depth", "normal", "semantic", "mask"), std: float = 0.02) -> Path:
    """A geometry adapter for the tiny UNet (``conv_in`` width 32) with small random weights (not zero, so the maps
    visibly reach the UNet), written by ``save_adapter`` like the trainer's files: ``path`` + ``.json`` beside it."""
    import torch

    from ...pipelines.guidance.geometry_adapter import AdapterConfig, GeometryAdapter, save_adapter

    generator = torch.Generator().manual_seed(seed)
    adapter = GeometryAdapter(AdapterConfig(maps=tuple(maps), out_channels=unet_width,
                                            extra={"note": "tiny test adapter with random weights"}))
    with torch.no_grad():
        for p in adapter.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    return save_adapter(adapter, path)
