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
TINY_POINT_CHANNELS = 16
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
