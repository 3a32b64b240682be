"""The pinhole camera of SMPL sequences: HMR2's intrinsics rule and the projection, defined once.

Camera coordinates are OpenCV's (x right, y down, z forward, metres); pixels have their origin at the image's
top-left corner. Both functions take numpy arrays or torch tensors and return the same kind.
"""
from __future__ import annotations

import numpy as np

HMR2_FOCAL_LENGTH = 5000.0  # HMR2 / 4D-Humans / Champ: focal length in pixels of the 256-pixel crop
HMR2_CROP_SIZE = 256


def hmr2_focal(image_size: tuple[int, int], focal_length: float = HMR2_FOCAL_LENGTH,
               crop_size: int = HMR2_CROP_SIZE) -> float:
    """HMR2's full-image focal length in pixels: ``focal_length / crop_size · max(W, H)`` (5000/256·max(W,H))."""
    width, height = image_size
    return float(focal_length) / float(crop_size) * float(max(width, height))


def intrinsics(image_size: tuple[int, int], focal: float | None = None, frames: int | None = None,
               dtype=np.float64) -> np.ndarray:
    """3×3 pinhole matrix with square pixels and the principal point at (W/2, H/2), as HMR2 renders.

    Args:
        image_size (`(W, H)`): frame size in pixels.
        focal (`float`, *optional*): focal length in pixels; defaults to HMR2's rule (:func:`hmr2_focal`).
        frames (`int`, *optional*): return `(frames, 3, 3)` copies instead of one `(3, 3)` matrix.
    """
    width, height = image_size
    f = hmr2_focal(image_size) if focal is None else float(focal)
    k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=dtype)
    return k if frames is None else np.repeat(k[None], frames, 0)


def project(points, K, znear: float = 1e-6):
    """Pinhole projection of camera points to pixels.

    Args:
        points (`(..., N, 3)`): camera-space points, numpy or torch.
        K (`(..., 3, 3)`): intrinsics broadcast over the points' leading dimensions (one per frame).
        znear (`float`): points closer than this (or behind the camera) are divided by 1 instead of z, so the
            result stays finite; callers that care mask them with ``points[..., 2] > znear``.

    Returns:
        `(..., N, 2)` pixels, the same kind (numpy/torch) as ``points``.
    """
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    k = K[..., None, :, :]
    if isinstance(z, np.ndarray):
        z_safe = np.where(z > znear, z, 1.0)
        stack = np.stack
    else:
        import torch

        z_safe = torch.where(z > znear, z, torch.ones_like(z))
        stack = torch.stack
    u = (k[..., 0, 0] * x + k[..., 0, 1] * y) / z_safe + k[..., 0, 2]
    v = k[..., 1, 1] * y / z_safe + k[..., 1, 2]
    return stack([u, v], -1)
