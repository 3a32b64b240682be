"""Everything DisPose needs per video, computed once: the motion hints (trajectory flow, CMP's dense flow) and the
reference's DIFT feature at each keypoint. CMP and SD-1.5 are loaded here, run in chunks and freed at the end, so
only the ControlNet stays for sampling.
"""
from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import motion
from .dift import ENSEMBLE, SD_SOURCE, dift_features, load_dift_model, missing_sd_files
from .loading import CMP_SOURCE, DISPOSE_SOURCE, load_cmp
from .points import reference_point_features

logger = logging.getLogger(__name__)


@dataclass
class DisPoseHints:
    """Per-video inputs of :class:`.guidance.DisPoseGuidance` (CPU tensors).

    keypoints ``[F,18,3]``, dense_flow / traj_flow ``[F-1,2,H,W]`` float32, point_features ``[18,C]``.
    """

    keypoints: torch.Tensor
    dense_flow: torch.Tensor
    traj_flow: torch.Tensor
    point_features: torch.Tensor
    width: int
    height: int


def missing_files(files: dict[str, tuple[str | Path | None, str, str]]) -> str | None:
    """One message for every missing file: ``files`` maps a label to (path, folder, source). ``None`` if none."""
    lines = []
    for label, (path, folder, source) in files.items():
        if path is None or not Path(path).exists() or (Path(path).is_dir() and missing_sd_files(path)):
            extra = ""
            if path is not None and Path(path).is_dir():
                extra = f" (lacks {', '.join(missing_sd_files(path))})"
            lines.append(f"- {label}: {path or '(not chosen)'}{extra}; put it in models/{folder}/ — from {source}")
    if not lines:
        return None
    return "DisPose needs files that are missing:\n" + "\n".join(lines)


def dispose_file_table(dispose_path, cmp_path, sd_path, mimicmotion_path) -> dict:
    return {"DisPose ControlNet (DisPose.pth)": (dispose_path, "dispose", DISPOSE_SOURCE),
            "CMP (ckpt_iter_42000.pth.tar)": (cmp_path, "cmp", CMP_SOURCE),
            "Stable Diffusion 1.5 (diffusers folder)": (sd_path, "diffusers", SD_SOURCE),
            "MimicMotion (MimicMotion_1-1.pth)": (mimicmotion_path, "mimicmotion",
                                                  "https://huggingface.co/tencent/MimicMotion")}


def body_keypoints(frames) -> np.ndarray:
    """``[F,18,3]`` OpenPose-18 body points (pixels, score) of the first person of each :class:`PoseFrame`; a frame
    without a person gets zeros (no motion hints)."""
    out = np.zeros((len(frames), 18, 3))
    for i, frame in enumerate(frames):
        if frame.keypoints.shape[0]:
            out[i, :, :2] = frame.keypoints[0, :18]
            out[i, :, 2] = frame.scores[0, :18]
    return out


@torch.no_grad()
def compute_hints(reference: torch.Tensor, keypoints: np.ndarray, cmp_path, sd_path, device: torch.device,
                  dtype: torch.dtype, seed: int = 0, chunk: int = 8, ensemble: int = ENSEMBLE,
                  callback: Callable[[int, int], None] | None = None) -> DisPoseHints:
    """Motion hints and point features for a video.

    Args:
        reference (`torch.Tensor` ``[1,3,H,W]`` uint8): the reference image at the video's size.
        keypoints (`np.ndarray` ``[F,18,3]``): body keypoints in pixels of that size; frame 0 is the reference's.
        cmp_path / sd_path: the CMP checkpoint and the SD-1.5 diffusers folder.
        seed (`int`): DIFT's ensemble noise (DisPose leaves it to the global RNG).
        chunk (`int`): frames per CMP call.
    """
    height, width = reference.shape[-2:]
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if not (keypoints[0, :, 2] > motion.SCORE_THRESHOLD).any():
        raise ValueError("DisPose: no person was detected in the reference image (frame 0 of the keypoints has no "
                         "body point above score 0.3); DisPose needs the reference person's keypoints. Check the "
                         "reference pose (Detect Pose on the reference image).")
    frames = keypoints.shape[0]
    empty = [i for i in range(1, frames) if not (keypoints[i, :, 2] > motion.SCORE_THRESHOLD).any()]
    if empty:
        logger.info("[MotionGuide] DisPose: %d frame(s) without a person get no motion hints: %s", len(empty),
                    empty[:10])
    total = (frames - 1 + chunk - 1) // chunk + 1
    traj = torch.from_numpy(motion.trajectory_flow(keypoints, width, height))
    # CMP at 384×384 on the reference, once per video
    cmp = load_cmp(cmp_path, dtype).to(device)
    sparse, mask = motion.cmp_hints(keypoints, width, height)
    image = motion.cmp_image(reference.float() / 255.0).to(device)
    dense = []
    for k, begin in enumerate(range(0, frames - 1, chunk)):
        end = min(begin + chunk, frames - 1)
        flow = cmp.flow(image.expand(end - begin, -1, -1, -1), sparse[begin:end].to(device), mask[begin:end].to(device))
        dense.append(motion.rescale_dense_flow(flow.float(), width, height).cpu())
        if callback is not None:
            callback(k + 1, total)
    del cmp
    dense = torch.cat(dense) if dense else torch.zeros(0, 2, height, width)
    # DIFT once, then free SD-1.5
    sd = load_dift_model(sd_path, dtype).to(device)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    feature_map = dift_features(sd, reference, generator, ensemble=ensemble)
    del sd
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if callback is not None:
        callback(total, total)
    points = reference_point_features(feature_map, torch.from_numpy(keypoints[0]), width, height)
    return DisPoseHints(torch.from_numpy(keypoints), dense, traj, points, width, height)
