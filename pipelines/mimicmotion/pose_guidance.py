"""MimicMotion's pose guidance as a guidance module: PoseNet features of every pose map, computed once per run and
added after the UNet's ``conv_in`` in conditional passes (MimicMotion's method, unchanged)."""
from __future__ import annotations

import torch

from ..guidance.hook import GuidanceModule, UNetCall, UNetResiduals, pinned_cache


class PoseGuidance(GuidanceModule):
    """PoseNet on pose maps ``[F,3,H,W]`` uint8.

    Args:
        model (`MotionModel`): holds the PoseNet (its ``pose_net`` part) and the device/dtype policy.
        poses (`torch.Tensor`): uint8 pose maps, frame 0 = the reference image's pose.
        strength / start / end: see :class:`~..guidance.hook.GuidanceModule`.
    """

    name = "PoseNet"

    def __init__(self, model, poses: torch.Tensor, strength: float = 1.0, start: float = 0.0, end: float = 1.0):
        super().__init__(strength, start, end)
        self.model = model
        self.poses = poses
        self.features: torch.Tensor | None = None

    @property
    def _caches_projection(self) -> bool:
        # cache the narrower of the 128 features before final_proj and the projected output
        pose_net = self.model.pose_net
        return pose_net.final_proj.out_channels <= pose_net.feature_channels

    def parts(self) -> tuple[str, ...]:
        return () if self._caches_projection else ("pose_net",)

    @torch.no_grad()
    def prepare(self, device: torch.device, dtype: torch.dtype, cache_device: torch.device, chunk: int = 16) -> None:
        """PoseNet on every frame, ``[F,C,h,w]`` in the model dtype (PoseNet is frame-wise, so a tile's features are
        rows of this). A CPU cache is pinned for fast copies to the GPU."""
        m = self.model
        project_now = self._caches_projection
        features = []
        with m.use("pose_net"):
            for begin in range(0, self.poses.shape[0], chunk):
                # reference: uint8 / 127.5 - 1 in the working precision
                x = self.poses[begin:begin + chunk].to(device).to(dtype) / 127.5 - 1.0
                features.append((m.pose_net(x) if project_now else m.pose_net.features(x)).to(cache_device))
        self.features = pinned_cache(torch.cat(features), device, "PoseNet")

    def release(self) -> None:
        self.features = None

    def pass_residuals(self, call: UNetCall, index: int) -> UNetResiduals:
        """One tile's PoseNet output ``[T,C,h,w]`` on the device, from the cache (projected here when it holds the
        features before ``final_proj``)."""
        m = self.model
        idx = call.frames[index]
        cached = self.features[idx.to(self.features.device)].to(m.device, non_blocking=True)
        projected = cached if self._caches_projection else m.pose_net.project(cached)
        return UNetResiduals(conv_in=projected if self.strength == 1.0 else projected * self.strength)
