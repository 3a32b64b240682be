"""DisPose's motion field hints, computed from body keypoints alone (no dense input from the user).

Keypoints are OpenPose-18 body points per frame, ``[F,18,3]`` in pixels of the generated video (x, y, score), frame
0 being the reference image's keypoints. A point counts when its score is above :data:`SCORE_THRESHOLD` (DWPose's
own cut, the one DisPose's ``subset`` uses).

Two hints come out, both as DisPose's released weights were trained and run with:

* the **trajectory flow**: each frame's sparse displacement from the previous frame (frame-to-frame, not from the
  reference), written at the previous frame's keypoint pixels and blurred with a 199-px, σ 20 Gaussian whose
  borders reflect without repeating the edge pixel (OpenCV's default ``BORDER_REFLECT_101``);
* the **CMP hints**: each frame's sparse displacement from the reference, written at the reference keypoints of a
  384×384 copy, with a mask; CMP turns them into a dense flow (:mod:`.cmp`), resized back with
  :func:`rescale_dense_flow`.

Like DisPose, a missing keypoint sits at (0, 0) in those displacements (so a point lost in one frame gives a large
vector; ``skip_missing=True`` drops such pairs instead). A frame with no person at all gets empty hints (DisPose's
own code cannot run such a video).
"""
from __future__ import annotations

import numpy as np
import torch

SCORE_THRESHOLD = 0.3
CMP_SIZE = 384
BLUR_SIZE = 199
BLUR_SIGMA = 20.0


def tracks_from_keypoints(keypoints: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel tracks and validity as DisPose builds them.

    Args:
        keypoints (`np.ndarray` ``[F,18,3]``): x, y in pixels of a ``width``×``height`` frame, and scores.

    Returns:
        points ``[F,18,2]`` float64 (clamped to the frame; (0, 0) where missing) and valid ``[F,18]`` bool.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (18, 3):
        raise ValueError(f"DisPose needs OpenPose-18 body keypoints [F,18,3], got {keypoints.shape}.")
    valid = keypoints[..., 2] > SCORE_THRESHOLD
    # DisPose normalises by the frame size and multiplies back, then clamps to the last pixel
    x = np.clip(keypoints[..., 0] / width * width, 0, width - 1)
    y = np.clip(keypoints[..., 1] / height * height, 0, height - 1)
    points = np.where(valid[..., None], np.stack([x, y], -1), 0.0)
    return points, valid


def _reflect_101(index: int, size: int) -> int:
    if size == 1:
        return 0
    while not 0 <= index < size:
        index = -index if index < 0 else 2 * size - index - 2
    return index


def blur_matrix(size: int, kernel_size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """``A`` ``[size,size]`` such that a 1-D correlation with the normalised Gaussian under reflect-101 borders is
    ``A @ x``. The 2-D kernel DisPose uses is isotropic and normalised, so it is ``g ⊗ g`` and the blurred map is
    ``A_h @ S @ A_w.T``."""
    radius = kernel_size // 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * offsets ** 2 / sigma ** 2)
    g /= g.sum()
    matrix = np.zeros((size, size))
    for row in range(size):
        for d, weight in zip(range(-radius, radius + 1), g):
            matrix[row, _reflect_101(row + d, size)] += weight
    return matrix


def trajectory_flow(keypoints: np.ndarray, width: int, height: int, skip_missing: bool = False) -> np.ndarray:
    """The blurred frame-to-frame flow ``[F-1,2,H,W]`` float32 (entry ``f-1`` is the motion from frame ``f-1`` to
    ``f``).

    Where several keypoints fall on one pixel the last one (highest index) wins, as in DisPose.
    """
    points, valid = tracks_from_keypoints(keypoints, width, height)
    frames = points.shape[0]
    person = valid.any(axis=1)
    blur_h, blur_w = blur_matrix(height), blur_matrix(width)
    out = np.zeros((max(frames - 1, 0), 2, height, width), dtype=np.float32)
    for f in range(frames - 1):
        if not (person[f] and person[f + 1]):
            continue
        sparse = {}
        for k in range(18):
            if not valid[f, k] or (skip_missing and not valid[f + 1, k]):
                continue
            start, end = points[f, k], points[f + 1, k]
            sparse[(int(start[1]), int(start[0]))] = end - start
        if not sparse:
            continue
        rows = np.array([p[0] for p in sparse])
        cols = np.array([p[1] for p in sparse])
        values = np.array(list(sparse.values()))  # [n,2]
        for c in range(2):
            out[f, c] = (blur_h[:, rows] * values[:, c]) @ blur_w[:, cols].T
    return out


def cmp_hints(keypoints: np.ndarray, width: int, height: int, size: int = CMP_SIZE,
              skip_missing: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """CMP's sparse input for frames 1..F-1: the displacement from the reference keypoints, at the reference
    keypoints' pixels of a ``size``×``size`` copy.

    Returns:
        sparse ``[F-1,2,size,size]`` and mask ``[F-1,2,size,size]`` float32.
    """
    points, valid = tracks_from_keypoints(keypoints, width, height)
    frames = points.shape[0]
    scaled = np.stack([points[..., 0] / width * size, points[..., 1] / height * size], -1)
    scaled = torch.from_numpy(scaled)
    person = valid.any(axis=1)
    sparse = torch.zeros(max(frames - 1, 0), 2, size, size, dtype=torch.float64)
    mask = torch.zeros(max(frames - 1, 0), 2, size, size)
    if frames < 2 or not person[0]:
        return sparse.float(), mask
    ref = scaled[0]
    rows = ref[:, 1].long().clamp(0, size - 1)
    cols = ref[:, 0].long().clamp(0, size - 1)
    for f in range(1, frames):
        if not person[f]:
            continue
        flow = scaled[f] - ref  # [18,2]
        for k in range(18):  # in order: the last keypoint on a pixel wins
            if skip_missing and not (valid[0, k] and valid[f, k]):
                continue
            sparse[f - 1, :, rows[k], cols[k]] = flow[k]
            mask[f - 1, :, rows[k], cols[k]] = 1.0
    return sparse.float(), mask


def cmp_image(reference: torch.Tensor, size: int = CMP_SIZE) -> torch.Tensor:
    """The reference ``[1,3,H,W]`` in 0..1 at CMP's working size (nearest, as DisPose), still in 0..1."""
    return torch.nn.functional.interpolate(reference, (size, size))


def rescale_dense_flow(flow: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """CMP's flow ``[N,2,s,s]`` back to ``[N,2,H,W]`` (nearest) with vectors scaled to the new size."""
    size_h, size_w = flow.shape[-2:]
    if (size_h, size_w) == (height, width):
        return flow
    out = torch.nn.functional.interpolate(flow, (height, width), mode="nearest")
    return torch.stack([out[:, 0] * (width / size_w), out[:, 1] * (height / size_h)], 1)
