"""SVD-XT 1.1 base from the single ``svd_xt_1_1.safetensors`` (Stability's generative-models layout).

Only the VAE (``first_stage_model.*``: LDM encoder + video decoder) and the OpenCLIP ViT-H image encoder
(``conditioner.embedders.0.open_clip.model.visual.*``) are read, tensor by tensor, and renamed to the diffusers /
transformers layouts; ``loading.load_svd_single_file`` builds the modules with the configs of
``models_config/svd_xt_1_1`` (or ``config_dir``). The UNet in the file is never read: MimicMotion brings its own.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

VAE_PREFIX = "first_stage_model."
CLIP_MARKER = "visual.conv1.weight"

_TIME_STACK = {"in_layers.0": "norm1", "in_layers.2": "conv1", "out_layers.0": "norm2", "out_layers.3": "conv2"}
_ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _resnet(new_prefix: str, rest: str, video: bool) -> str:
    """Inside one LDM resnet block: spatial parts, ``time_stack`` (temporal) and the ``mix_factor`` blend."""
    if rest in ("mix_factor", "time_mixer.mix_factor"):
        return f"{new_prefix}.time_mixer.mix_factor"
    if rest.startswith("time_stack."):
        layer, _, param = rest[len("time_stack."):].rpartition(".")
        if layer not in _TIME_STACK:
            raise KeyError(rest)
        return f"{new_prefix}.temporal_res_block.{_TIME_STACK[layer]}.{param}"
    rest = rest.replace("nin_shortcut", "conv_shortcut")
    return f"{new_prefix}.spatial_res_block.{rest}" if video else f"{new_prefix}.{rest}"


def vae_key(key: str, num_up_blocks: int) -> str:
    """Diffusers ``AutoencoderKLTemporalDecoder`` name of an LDM VAE key (without ``first_stage_model.``)."""
    part, _, rest = key.partition(".")
    video = part == "decoder"
    if part not in ("encoder", "decoder"):
        return key  # quant_conv
    if m := re.fullmatch(r"down\.(\d+)\.block\.(\d+)\.(.+)", rest):
        return _resnet(f"encoder.down_blocks.{m[1]}.resnets.{m[2]}", m[3], video=False)
    if m := re.fullmatch(r"down\.(\d+)\.downsample\.conv\.(\w+)", rest):
        return f"encoder.down_blocks.{m[1]}.downsamplers.0.conv.{m[2]}"
    if m := re.fullmatch(r"mid\.block_(\d)\.(.+)", rest):
        return _resnet(f"{part}.mid_block.resnets.{int(m[1]) - 1}", m[2], video)
    if m := re.fullmatch(r"mid\.attn_1\.(\w+)\.(\w+)", rest):
        return f"{part}.mid_block.attentions.0.{_ATTENTION[m[1]]}.{m[2]}"
    if m := re.fullmatch(r"up\.(\d+)\.block\.(\d+)\.(.+)", rest):
        return _resnet(f"decoder.up_blocks.{num_up_blocks - 1 - int(m[1])}.resnets.{m[2]}", m[3], video=True)
    if m := re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(\w+)", rest):
        return f"decoder.up_blocks.{num_up_blocks - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}"
    if m := re.fullmatch(r"norm_out\.(\w+)", rest):
        return f"{part}.conv_norm_out.{m[1]}"
    if m := re.fullmatch(r"conv_out\.time_mix_conv\.(\w+)", rest):
        return f"decoder.time_conv_out.{m[1]}"
    return key  # conv_in, conv_out


def convert_vae(tensors: dict[str, torch.Tensor], num_up_blocks: int) -> dict[str, torch.Tensor]:
    """LDM/generative-models SVD VAE tensors → diffusers names (attention 1×1 convs become linear weights)."""
    out = {}
    for key, value in tensors.items():
        new = vae_key(key, num_up_blocks)
        if ".attentions.0.to_" in new and new.endswith(".weight") and value.ndim == 4:
            value = value[:, :, 0, 0]
        out[new] = value
    if "quant_conv.weight" not in out:
        # generative-models' AutoencodingEngine has no quant_conv; diffusers' is then the identity
        channels = out["encoder.conv_out.weight"].shape[0]
        out["quant_conv.weight"] = torch.eye(channels, dtype=out["encoder.conv_out.weight"].dtype).view(channels, channels, 1, 1)
        out["quant_conv.bias"] = torch.zeros(channels, dtype=out["encoder.conv_out.weight"].dtype)
    return out


def convert_open_clip_visual(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP ``visual.*`` tensors (prefix removed) → transformers ``CLIPVisionModelWithProjection`` names."""
    simple = {"class_embedding": "vision_model.embeddings.class_embedding",
              "positional_embedding": "vision_model.embeddings.position_embedding.weight",
              "conv1.weight": "vision_model.embeddings.patch_embedding.weight"}
    norms = {"ln_pre": "vision_model.pre_layrnorm", "ln_post": "vision_model.post_layernorm"}
    block = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    out = {}
    for key, value in tensors.items():
        if key in simple:
            out[simple[key]] = value
        elif key == "proj":
            out["visual_projection.weight"] = value.t().contiguous()
        elif (m := re.fullmatch(r"(ln_pre|ln_post)\.(\w+)", key)):
            out[f"{norms[m[1]]}.{m[2]}"] = value
        elif (m := re.fullmatch(r"transformer\.resblocks\.(\d+)\.(.+)\.(\w+)", key)):
            layer = f"vision_model.encoder.layers.{m[1]}"
            if m[2] == "attn" and m[3] in ("in_proj_weight", "in_proj_bias"):
                kind = "weight" if m[3].endswith("weight") else "bias"
                for name, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                    out[f"{layer}.self_attn.{name}.{kind}"] = chunk.contiguous()
            elif m[2] in block:
                out[f"{layer}.{block[m[2]]}.{m[3]}"] = value
            else:
                out[key] = value  # unknown: reported by the strict check
        else:
            out[key] = value
    return out


def read_svd_single_file(path: str | Path, num_vae_up_blocks: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(vae, image_encoder)`` state dicts, renamed to the diffusers / transformers layouts, from a single SVD
    checkpoint; ``num_vae_up_blocks`` is ``len(block_out_channels)`` of the VAE config."""
    from ..weights import open_safetensors

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: a single-file SVD checkpoint must be a .safetensors file.")
    with open_safetensors(path, "SVD checkpoint", "svd_xt_1_1_single") as f:
        keys = list(f.keys())
        clip_keys = [k for k in keys if k.endswith(CLIP_MARKER)]
        vae_keys = [k for k in keys if k.startswith(VAE_PREFIX)]
        if not vae_keys or not clip_keys:
            raise ValueError(f"{path} is not an SVD checkpoint: it lacks "
                             f"{'first_stage_model.* (VAE)' if not vae_keys else 'the OpenCLIP image encoder'} keys. "
                             "Use svd_xt_1_1.safetensors from stabilityai/stable-video-diffusion-img2vid-xt-1-1.")
        clip_prefix = clip_keys[0][: -len("conv1.weight")]
        vae_raw = {k[len(VAE_PREFIX):]: f.get_tensor(k) for k in vae_keys}
        clip_raw = {k[len(clip_prefix):]: f.get_tensor(k) for k in keys if k.startswith(clip_prefix)}
    return convert_vae(vae_raw, num_vae_up_blocks), convert_open_clip_visual(clip_raw)
