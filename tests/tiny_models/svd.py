"""Tiny SVD-XT and MimicMotion files in the real layouts (DESIGN §8), for tests, benches and the CLI demo.

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
- ``TINY_SIZE = (64, 112)``: a (width, height) that fits the tiny model.

Session fixtures: ``tiny_svd_dir`` (``models_dir/diffusers/stable-video-diffusion-img2vid-xt-1-1``) and
``tiny_mimicmotion_path`` (``models_dir/mimicmotion/MimicMotion_1-1.pth``).
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


try:
    import pytest
except ImportError:  # the builders above do not need pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def tiny_svd_dir(models_dir) -> Path:
        return build_tiny_svd(models_dir / "diffusers" / SVD_FOLDER_NAME)

    @pytest.fixture(scope="session")
    def tiny_mimicmotion_path(models_dir, tiny_svd_dir) -> Path:
        return build_tiny_mimicmotion(models_dir / "mimicmotion" / MIMICMOTION_NAME, tiny_svd_dir)
