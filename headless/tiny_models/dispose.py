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
