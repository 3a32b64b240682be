"""A tiny ``DisPose.pth`` in the real layout (flat state dict, no prefix), for tests and benches.

- ``build_tiny_dispose(path, unet, seed=0) -> Path``: the hybrid ControlNet of the MimicMotion UNet described by
  ``unet`` (the SVD folder, its ``unet/`` folder or a config dict), with small motion-tower widths
  (:data:`TINY_EMBEDDING_WIDTHS`), a 16-wide point feature and an 8-wide point MLP. Every tensor is random and
  non-zero (the released file's zero-initialised convolutions are trained), float32.
"""
from __future__ import annotations

from pathlib import Path

DISPOSE_NAME = "DisPose.pth"
TINY_EMBEDDING_WIDTHS = (4, 8, 8, 8)
TINY_POINT_CHANNELS = 32  # the tiny SD-1.5 UNet's up block 1 width (DIFT)
TINY_POINT_MID = 8


def build_tiny_dispose(path, unet, seed: int = 0, widths=TINY_EMBEDDING_WIDTHS, point_channels: int = TINY_POINT_CHANNELS,
                       point_mid: int = TINY_POINT_MID) -> Path:
    import torch
    from diffusers import UNetSpatioTemporalConditionModel
    from motionguide.headless.tiny_models.svd import _unet_config
    from motionguide.pipelines.dispose.controlnet import DisPoseControlNet

    config = {k: v for k, v in _unet_config(unet).items() if not k.startswith("_")}
    torch.manual_seed(seed)
    model = DisPoseControlNet(UNetSpatioTemporalConditionModel(**config), tuple(widths), point_channels, point_mid)
    generator = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in model.state_dict().items():
        fan_in = value[0].numel() if value.ndim > 1 else 1
        std = 0.02 if value.ndim == 1 else 1.0 / fan_in ** 0.5
        state[key] = (torch.randn(value.shape, generator=generator) * std).contiguous()
        if key.endswith("norm.weight") or ".norm" in key and key.endswith("weight") and value.ndim == 1:
            state[key] = state[key] + 1.0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, str(path))
    return path


CMP_NAME = "ckpt_iter_42000.pth.tar"
# CMP's own widths are fixed by its code; the tiny file keeps the layout with narrow stages and one block each
TINY_CMP = dict(stem=8, planes=(4, 8, 8, 8), outs=(16, 16, 16, 16), blocks=(1, 1, 1, 1), enc_dim=8, sparse=(4, 4),
                decoder=(8, 16, 8, 8, 8, 8, 8), bins=99)
# DisPose's CMP (resnet50, shallownet8x, MotionDecoderSkipLayer) with one block per stage: its code runs it unchanged
CMP_ONE_BLOCK = dict(stem=64, planes=(64, 128, 256, 512), outs=(256, 512, 1024, 2048), blocks=(1, 1, 1, 1),
                     enc_dim=256, sparse=(16, 16), decoder=(128, 256, 128, 128, 32, 64, 64), bins=99)


def cmp_random_state(seed: int = 0, stem=8, planes=(4, 8, 8, 8), outs=(16, 16, 16, 16), blocks=(1, 1, 1, 1), enc_dim=8,
                     sparse=(4, 4), decoder=(8, 16, 8, 8, 8, 8, 8), bins=99) -> dict:
    """A random CMP state dict (no prefix) of the given widths; BatchNorm statistics random but sane."""
    import torch
    from motionguide.pipelines.dispose.cmp import CMP, DilatedResNet, SkipDecoder, SparseEncoder

    width, fuse8, skip4, fuse4, skip2, fuse2 = decoder[0], decoder[1], decoder[2], decoder[3], decoder[4], decoder[5]
    model = CMP(DilatedResNet(stem, planes, outs, blocks, enc_dim), SparseEncoder(sparse[0], sparse[1]),
                SkipDecoder(enc_dim + sparse[1], width, fuse8, (outs[0], skip4), fuse4, (stem, skip2), fuse2, 2 * bins))
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif key.endswith("running_mean"):
            state[key] = torch.randn(value.shape, generator=g) * 0.1
        elif value.ndim == 1 and ("bn" in key or "downsample.1" in key or _is_bn(model, key)):
            state[key] = (1.0 if key.endswith("weight") else 0.0) + torch.randn(value.shape, generator=g) * 0.1
        elif value.ndim == 1:
            state[key] = torch.randn(value.shape, generator=g) * 0.02
        else:
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
    return state


def _is_bn(model, key: str) -> bool:
    import torch

    module = model.get_submodule(key.rsplit(".", 1)[0])
    return isinstance(module, torch.nn.BatchNorm2d)


def build_tiny_cmp(path, seed: int = 0, **widths) -> Path:
    """Write a CMP checkpoint in MOFA-Video-Hybrid's layout (``step`` + ``module.``-prefixed ``state_dict``)."""
    import torch

    state = cmp_random_state(seed, **(widths or TINY_CMP))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 42000, "state_dict": {"module." + k: v for k, v in state.items()}}, str(path))
    return path


SD_FOLDER_NAME = "stable-diffusion-v1-5"
TINY_SD_UNET = {"block_out_channels": [32, 64], "layers_per_block": 2, "sample_size": 32, "in_channels": 4,
                "out_channels": 4, "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "cross_attention_dim": 32,
                "attention_head_dim": 8}
# four blocks: /8 like SD-1.5's VAE, so the tiny UNet runs on small latents
TINY_SD_VAE = {"block_out_channels": [32, 32, 32, 32], "in_channels": 3, "out_channels": 3, "latent_channels": 4,
               "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
               "layers_per_block": 1, "scaling_factor": 0.18215}
TINY_SD_TEXT = {"architectures": ["CLIPTextModel"], "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                "num_attention_heads": 4, "vocab_size": 1000, "max_position_embeddings": 77, "projection_dim": 32,
                "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
DDIM_CONFIG = {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
               "num_train_timesteps": 1000, "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
               "prediction_type": "epsilon"}


def _byte_chars() -> list[str]:
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def build_tiny_sd(directory, seed: int = 0) -> Path:
    """A tiny SD-1.5 diffusers folder (UNet, VAE, CLIP text encoder, a byte-level tokenizer with no merges, DDIM
    scheduler), fp32 safetensors under the real file names."""
    import json

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(directory)

    def write(component, name, data):
        (root / component).mkdir(parents=True, exist_ok=True)
        (root / component / name).write_text(json.dumps(data, indent=1), encoding="utf-8")

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_SD_UNET)
    vae = AutoencoderKL(**TINY_SD_VAE)
    text = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in TINY_SD_TEXT.items() if k != "architectures"}))
    for component, model, name in (("unet", unet, "diffusion_pytorch_model.safetensors"),
                                   ("vae", vae, "diffusion_pytorch_model.safetensors"),
                                   ("text_encoder", text, "model.safetensors")):
        write(component, "config.json", TINY_SD_TEXT if component == "text_encoder" else dict(model.config))
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
        save_file(state, str(root / component / name))
    chars = _byte_chars()
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 2, "!": 1}
    for c in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(c, len(vocab) + 1)
    write("tokenizer", "vocab.json", vocab)
    (root / "tokenizer" / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    write("tokenizer", "tokenizer_config.json", {"model_max_length": 77, "bos_token": "<|startoftext|>",
                                                 "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                                                 "unk_token": "<|endoftext|>"})
    write("scheduler", "scheduler_config.json", DDIM_CONFIG)
    write("", "model_index.json", {"_class_name": "StableDiffusionPipeline"})
    return root
