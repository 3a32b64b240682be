"""MimicMotion's PoseNet: pose maps → features added to the UNet's ``conv_in`` output (docs/architecture.md,
*Reference algorithms*).

State-dict keys match the released checkpoint: ``conv_layers.{0,2,…,14}.{weight,bias}``, ``final_proj.{weight,bias}``,
``scale``. About 205k parameters at the real size.
"""
from __future__ import annotations

import torch
from torch import nn

# (in, out, kernel, stride) of the 8 convolutions; each is followed by SiLU. Padding 1 everywhere.
POSE_NET_CONVS = (
    (3, 3, 3, 1),
    (3, 16, 4, 2),
    (16, 16, 3, 1),
    (16, 32, 4, 2),
    (32, 32, 3, 1),
    (32, 64, 4, 2),
    (64, 64, 3, 1),
    (64, 128, 3, 1),
)
POSE_NET_DOWNSAMPLING = 8


class PoseNet(nn.Module):
    """Pose image ``[F,3,H,W]`` in [-1, 1] → features ``[F,C,H/8,W/8]`` (C = the UNet's first block width).

    Args:
        out_channels (`int`, *optional*, defaults to 320): channels of the UNet's ``conv_in`` output.
    """

    def __init__(self, out_channels: int = 320):
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout, kernel, stride in POSE_NET_CONVS:
            layers += [nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=1), nn.SiLU()]
        self.conv_layers = nn.Sequential(*layers)
        self.final_proj = nn.Conv2d(128, out_channels, kernel_size=1)
        self.scale = nn.Parameter(torch.ones(1) * 2.0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal convs with zero bias; ``final_proj`` zero so a fresh branch leaves the UNet unchanged."""
        for module in self.conv_layers:
            if isinstance(module, nn.Conv2d) and module.weight.device.type != "meta":
                nn.init.kaiming_normal_(module.weight)
                nn.init.zeros_(module.bias)
        if self.final_proj.weight.device.type != "meta":
            nn.init.zeros_(self.final_proj.weight)
            nn.init.zeros_(self.final_proj.bias)

    @property
    def feature_channels(self) -> int:
        """Channels before ``final_proj`` (128): what the sampler caches per frame."""
        return self.final_proj.in_channels

    def features(self, pose: torch.Tensor) -> torch.Tensor:
        """The 8 convolutions only: ``[F,128,H/8,W/8]``."""
        return self.conv_layers(pose)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``final_proj`` (1×1, per pixel) times ``scale``: ``[F,C,H/8,W/8]`` added to ``conv_in``'s output."""
        return self.final_proj(features) * self.scale

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(pose))
