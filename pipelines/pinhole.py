"""The pinhole camera of SMPL sequences: HMR2's intrinsics rule and the projection, defined once.

Camera coordinates are OpenCV's (x right, y down, z forward, metres); pixels have their origin at the image's
top-left corner. The projection takes numpy arrays or torch tensors and returns the same kind.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .size_limits import check_image_size

if TYPE_CHECKING:
    import torch

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


def scale_intrinsics(K: np.ndarray | torch.Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> torch.Tensor:
    """Intrinsics `(…, 3, 3)` of the same camera for an image resized from ``from_size`` to ``to_size`` (W, H).

    Focal lengths scale with the size; the principal point maps like pixel centres, ``c' = (c + 0.5)·s − 0.5``.
    """
    import torch

    K = torch.as_tensor(np.asarray(K), dtype=torch.float32).clone()
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    if (sx, sy) == (1.0, 1.0):
        return K
    K[..., 0, 0] *= sx
    K[..., 0, 1] *= sx
    K[..., 1, 1] *= sy
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return K


def output_size(seq: dict, width: int = 0, height: int = 0) -> tuple[int, int]:
    """The render size for a sequence: ``(width, height)``, 0 taking the sequence's ``image_size`` (one of them 0
    keeps its aspect ratio), bounded by the pack's image-size limit."""
    seq_w, seq_h = seq["image_size"]
    if width < 0 or height < 0:
        raise ValueError(f"width/height must be ≥ 0 (0 = the sequence's {seq_w}×{seq_h}), got {width}×{height}.")
    if width and not height:
        height = round(seq_h * width / seq_w)
    elif height and not width:
        width = round(seq_w * height / seq_h)
    return check_image_size(width or seq_w, height or seq_h, "Render size",
                            "set width/height on the node (0 takes the sequence's image_size).")


INTRINSICS_FORM = "[[fx,0,cx],[0,fy,cy],[0,0,1]]"


def check_intrinsics_matrix(K, what: str) -> np.ndarray:
    """``K`` as a float64 (3,3) pinhole matrix, or a ``ValueError`` naming ``what``: finite numbers, fx, fy > 0
    (a camera of zeros, NaN or a negative focal length used to enter a sequence and fail in a later node)."""
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {INTRINSICS_FORM} numbers in pixels.") from None
    if K.shape != (3, 3):
        raise ValueError(f"{what} must be {INTRINSICS_FORM} (3×3), got shape {K.shape}.")
    if not np.isfinite(K).all():
        raise ValueError(f"{what} must hold finite numbers (fx, fy, cx, cy in pixels), got {K.tolist()}.")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{what} has fx={K[0, 0]:g}, fy={K[1, 1]:g}; focal lengths in pixels must be > 0 "
                         f"({INTRINSICS_FORM}).")
    return K


def parse_intrinsics(text: str, what: str = "intrinsics"):
    """``None`` for empty text, else a checked 3×3 matrix (nested lists of floats) from JSON text."""
    from .json_input import parse_json

    text = (text or "").strip()
    if not text:
        return None
    remedy = f"Give {INTRINSICS_FORM} in pixels (as SMPL to NLF Poses writes it), or leave it empty."
    K = parse_json(text, what, remedy)
    if not isinstance(K, list) or len(K) != 3 or any(not isinstance(row, list) or len(row) != 3 for row in K) \
            or any(isinstance(v, (bool, str, list, dict)) or v is None for row in K for v in row):
        raise ValueError(f"{what} must be JSON {INTRINSICS_FORM} (as SMPL to NLF Poses writes it) or empty for "
                         f"NLF's 55° camera; got {text[:80]!r}.")
    return check_intrinsics_matrix(K, what).tolist()
