"""Pure maths of the HMR2.0 (4D-Humans) estimator: crops, rotations, and the crop → full-image camera.

Every function here reproduces the reference inference path of 4D-Humans (``ViTDetDataset`` crops,
``rot6d_to_rotmat``, ``cam_crop_to_full``) so the public checkpoint sees the inputs it was trained on.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ...pinhole import hmr2_focal, intrinsics  # noqa: F401  (re-exported for the estimator)
from ..body.rotations import sixd_to_matrix

# HMR2's ViT sees a 256×192 (H×W) window of the square 256 crop; boxes are grown to that aspect first.
DEFAULT_BBOX_SHAPE = (192, 256)  # (width, height), as MODEL.BBOX_SHAPE in the reference config
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------------------------------------------
# Rotations


rot6d_to_rotmat = sixd_to_matrix  # HMR2's head emits the pack's 6D layout (rotations.py)


# --------------------------------------------------------------------------------------------------------------
# Boxes and crops


def box_center_and_size(
    box_xyxy, rescale: float = 1.2, bbox_shape: tuple[float, float] = DEFAULT_BBOX_SHAPE
) -> tuple[np.ndarray, float]:
    """Person box → centre and side of HMR2's square crop.

    The box is scaled by ``rescale`` about its centre (the reference uses 1.2 for boxes made from keypoints,
    which miss the top of the head and the feet; detector boxes use 1.0), then grown — never shrunk — to the
    ``bbox_shape`` aspect (width 192 : height 256); the crop side is the larger side of that.

    Args:
        box_xyxy (`array-like` of 4): x0, y0, x1, y1 in pixels.
        rescale (`float`, *optional*, defaults to 1.2): padding factor.
        bbox_shape (`tuple`, *optional*, defaults to (192, 256)): target (width, height) aspect.

    Returns:
        `(center [2] float64, size float)`.
    """
    # float32 like the reference (boxes.astype(float32), scale = wh/200, size = scale·200), so a detector box
    # gives its crop bit for bit.
    box = np.asarray(box_xyxy, dtype=np.float32).reshape(4)
    center = (box[2:4] + box[0:2]) / 2.0
    w, h = (box[2:4] - box[0:2]) / 200.0 * 200.0
    if rescale != 1.0:
        w, h = w * np.float32(rescale), h * np.float32(rescale)
    w_t, h_t = bbox_shape
    if h / max(w, np.float32(1e-12)) < h_t / w_t:
        h = max(w * h_t / w_t, h)
    else:
        w = max(h * w_t / h_t, w)
    return center.astype(np.float64), float(max(w, h))


def crop_affine(center, size: float, out_size: int = 256) -> np.ndarray:
    """2×3 affine matrix mapping image pixels to the ``out_size`` square crop of side ``size`` at ``center``.

    Built like the reference: three float32 point pairs (centre, centre + half-height down, centre +
    half-width right) solved by ``cv2.getAffineTransform``, so the matrix matches it bit for bit.
    """
    cx, cy = float(center[0]), float(center[1])
    half_src, half_dst = size * 0.5, out_size * 0.5
    src = np.array([[cx, cy], [cx, cy + half_src], [cx + half_src, cy]], dtype=np.float32)
    dst = np.array([[half_dst, half_dst], [half_dst, out_size], [out_size, half_dst]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def antialias_sigma(size: float, out_size: int = 256) -> float:
    """Gaussian σ the reference blurs the image with before a strong downscale (0 means no blur)."""
    factor = size / out_size / 2.0
    return (factor - 1.0) / 2.0 if factor > 1.1 else 0.0


def crop_person(image: np.ndarray, center, size: float, out_size: int = 256) -> np.ndarray:
    """Cut HMR2's square crop from one RGB image.

    Args:
        image (`np.ndarray` uint8 `[H, W, 3]`): the frame.
        center, size: from :func:`box_center_and_size`.
        out_size (`int`, *optional*, defaults to 256): crop side in pixels.

    Returns:
        `np.ndarray` float32 `[out_size, out_size, 3]` in 0..255; outside the image is black, as in the
        reference. When the crop shrinks the person more than 2.2×, the image is first blurred with
        σ = (side/out/2 − 1)/2 (scipy ``gaussian_filter``, mode 'nearest', truncate 4 — skimage's ``gaussian``);
        only the window the crop reads (plus the kernel radius) is blurred, which gives the same pixels.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"crop_person expects a uint8 [H,W,C] image, got {image.dtype} {image.shape}.")
    affine = crop_affine(center, size, out_size)
    sigma = antialias_sigma(size, out_size)
    if sigma <= 0.0:
        patch = cv2.warpAffine(image, affine, (out_size, out_size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return patch.astype(np.float32)

    from scipy.ndimage import gaussian_filter

    height, width = image.shape[:2]
    margin = int(4.0 * sigma + 0.5) + 2  # kernel radius + the bilinear neighbour
    half = size / 2.0
    x0 = max(int(math.floor(center[0] - half)) - margin, 0)
    y0 = max(int(math.floor(center[1] - half)) - margin, 0)
    x1 = min(int(math.ceil(center[0] + half)) + margin + 1, width)
    y1 = min(int(math.ceil(center[1] + half)) + margin + 1, height)
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the image
        return np.zeros((out_size, out_size, image.shape[2]), np.float32)
    window = gaussian_filter(image[y0:y1, x0:x1].astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest",
                             truncate=4.0)
    shifted = affine.copy()
    shifted[:, 2] += affine[:, :2] @ np.array([x0, y0], dtype=np.float64)
    patch = cv2.warpAffine(window, shifted, (out_size, out_size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return patch.astype(np.float32)


def normalize_crops(crops: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Crops float `[B, S, S, 3]` in 0..255 → network input `[B, 3, S, S]` with ImageNet mean/std."""
    mean255 = np.asarray(mean, np.float32) * 255.0
    std255 = np.asarray(std, np.float32) * 255.0
    normed = (np.asarray(crops, np.float32) - mean255) / std255
    return torch.from_numpy(np.ascontiguousarray(normed.transpose(0, 3, 1, 2)))


def to_uint8_frames(images) -> np.ndarray:
    """IMAGE batch (float 0..1 or uint8, `[F, H, W, 3]`, numpy or torch) → uint8 numpy (round to nearest)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# Camera


full_image_focal = hmr2_focal  # the intrinsics rule and matrix live in pinhole.py


def cam_crop_to_full(cam, center, size, image_size: tuple[int, int], focal: float) -> np.ndarray:
    """Weak-perspective crop cameras (s, tx, ty) → full-image translations (x, y, z) in metres.

    A body at depth z = 2f/(s·b) has the crop's apparent size b·s/2 px per metre in the full image, and its
    root lands at the box centre shifted by (tx, ty) crop units; so tx' = 2(cx − W/2)/(s·b) + tx and likewise
    for y. (b = crop side in image pixels, f = full-image focal.)

    Args:
        cam (`array-like` `[N, 3]`), center (`[N, 2]`), size (`[N]`): per crop.
        image_size (`(W, H)`), focal (`float`): the full image and its focal length.

    Returns:
        `np.ndarray` float64 `[N, 3]`.
    """
    cam = np.asarray(cam, np.float64).reshape(-1, 3)
    center = np.asarray(center, np.float64).reshape(-1, 2)
    size = np.asarray(size, np.float64).reshape(-1)
    width, height = image_size
    scaled = size * cam[:, 0] + 1e-9  # the reference's guard against s = 0
    tz = 2.0 * focal / scaled
    tx = 2.0 * (center[:, 0] - width / 2.0) / scaled + cam[:, 1]
    ty = 2.0 * (center[:, 1] - height / 2.0) / scaled + cam[:, 2]
    return np.stack([tx, ty, tz], axis=-1)
