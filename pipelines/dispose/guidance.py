"""DisPose as a sampler guidance module: the hybrid ControlNet's residuals for every UNet call.

Everything that does not depend on the step (the motion-field embedding of each frame, the point adapter's residuals
of each frame) is computed once in :meth:`DisPoseGuidance.prepare`; a step then costs one ControlNet pass (the
UNet's down and mid blocks) per UNet call, batched over the call's passes.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from ..guidance.hook import GuidanceModule, UNetCall, UNetResiduals
from .controlnet import DisPoseControlNet

logger = logging.getLogger(__name__)

CONTROLNET_PART = "dispose_controlnet"


class DisPoseGuidance(GuidanceModule):
    """DisPose's ControlNet residuals.

    Args:
        model (`MotionModel`): the MimicMotion model (device, dtype, memory mode).
        controlnet (`DisPoseControlNet`): loaded with :func:`.loading.load_dispose`.
        keypoints (`torch.Tensor` ``[F,18,3]``): body keypoints of every frame (frame 0: the reference), pixels.
        dense_flow / traj_flow (`torch.Tensor` ``[F-1,2,H,W]``): CMP's dense flow from the reference and the
            blurred frame-to-frame flow (:mod:`.motion`), for frames 1..F-1.
        point_features (`torch.Tensor` ``[18,C]``): the reference's DIFT feature at each keypoint.
        strength (`float`): scales the residuals (DisPose's ``controlnet_cond_scale``).
        repeat_skips (`bool`, defaults to True): add each skip residual as often as DisPose's own UNet does (see
            :func:`.controlnet.reference_skip_repeats`); False adds each once, as a plain ControlNet.
    """

    name = "DisPose"
    unconditional = True  # DisPose's pipeline guides both CFG halves with the same motion hints

    def __init__(self, model, controlnet: DisPoseControlNet, keypoints: torch.Tensor, dense_flow: torch.Tensor,
                 traj_flow: torch.Tensor, point_features: torch.Tensor, strength: float = 1.0, start: float = 0.0,
                 end: float = 1.0, repeat_skips: bool = True, chunk: int = 8):
        super().__init__(strength, start, end)
        self.model, self.controlnet = model, controlnet
        self.keypoints, self.dense_flow, self.traj_flow = keypoints, dense_flow, traj_flow
        self.point_features = point_features
        self.repeat_skips, self.chunk = repeat_skips, chunk
        self.motion: torch.Tensor | None = None
        self.points: list[torch.Tensor] | None = None
        self._scales: list[float] = []

    def check(self, num_frames: int, height: int, width: int) -> None:
        if self.keypoints.shape[0] != num_frames:
            raise ValueError(f"DisPose: its keypoints have {self.keypoints.shape[0]} frames but the sampler has "
                             f"{num_frames} pose frames; feed both from the same POSE_KEYPOINT.")
        if tuple(self.traj_flow.shape[-2:]) != (height, width):
            raise ValueError(f"DisPose: its motion hints are {self.traj_flow.shape[-1]}×{self.traj_flow.shape[-2]} "
                             f"but the video is {width}×{height}; prepare DisPose at the sampler's size.")

    def parts(self) -> tuple[str, ...]:
        return (CONTROLNET_PART,) if CONTROLNET_PART in getattr(self.model, "extra_parts", {}) else ()

    def _use(self):
        if CONTROLNET_PART in getattr(self.model, "extra_parts", {}):
            return self.model.use(CONTROLNET_PART)
        self.controlnet.to(self.model.device)
        return contextlib.nullcontext()

    @torch.no_grad()
    def prepare(self, device: torch.device, dtype: torch.dtype, cache_device: torch.device) -> None:
        """Motion embeddings ``[F,C0,h,w]`` (frame 0: the embedding of zero flows, as DisPose's reference slot) and
        point residuals per down block ``[F,C_l,h_l,w_l]``, kept on ``cache_device``."""
        cn = self.controlnet
        height, width = self.traj_flow.shape[-2:]
        frames = self.keypoints.shape[0]
        with self._use():
            zero = torch.zeros(1, 2, height, width, device=device, dtype=dtype)
            motion = [cn.controlnet_cond_embedding(zero, zero).to(cache_device)]
            for begin in range(0, frames - 1, self.chunk):
                end = min(begin + self.chunk, frames - 1)
                flow = self.dense_flow[begin:end].to(device, dtype)
                traj = self.traj_flow[begin:end].to(device, dtype)
                motion.append(cn.controlnet_cond_embedding(flow, traj).to(cache_device))
            self.motion = torch.cat(motion)
            state, mask = cn.point_adapter.scatter(self.keypoints, self.point_features.to(dtype), width, height)
            levels = [[] for _ in cn.point_adapter.model_list]
            for begin in range(0, frames, self.chunk):
                out = cn.point_adapter(state[begin:begin + self.chunk].to(device), mask[begin:begin + self.chunk]
                                       .to(device), width, height)
                for k, level in enumerate(out):
                    levels[k].append(level.to(cache_device))
            self.points = [torch.cat(level) for level in levels]
        repeats = cn.skip_repeats if self.repeat_skips else [1] * len(cn.skip_repeats)
        self._scales = [r * self.strength for r in repeats]

    def release(self) -> None:
        self.motion = self.points = None
        if CONTROLNET_PART not in getattr(self.model, "extra_parts", {}) and self.model.memory_mode != "keep_loaded":
            self.controlnet.to(self.model.offload_device)

    def residuals(self, call: UNetCall) -> UNetResiduals | None:
        """One ControlNet pass over every pass of the call (conditional and unconditional alike)."""
        if not self.active(call.step, call.steps):
            return None
        device = call.sample.device
        frames = torch.cat([f.to(self.motion.device) for f in call.frames])  # [B·T]
        motion = self.motion[frames].to(device, non_blocking=True)
        points = [p[frames].to(device, non_blocking=True) for p in self.points]
        down, mid = self.controlnet(call.sample, call.timestep, call.encoder_hidden_states, call.added_time_ids,
                                    motion, points)
        down = tuple(d if s == 1.0 else d * s for d, s in zip(down, self._scales))
        return UNetResiduals(down=down, mid=mid if self.strength == 1.0 else mid * self.strength)
