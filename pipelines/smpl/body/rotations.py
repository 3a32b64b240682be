"""Rotation conversions (numpy, float64, any leading shape): axis-angle ↔ matrix ↔ quaternion ↔ 6D; plus the
one torch axis-angle → matrix used by the differentiable code (Anny retarget, IK fit).

Quaternions are (w, x, y, z). The 6D representation (Zhou et al. 2019) is the first two matrix columns one
after the other, (c0x, c0y, c0z, c1x, c1y, c1z): the layout HMR2's head emits, the one layout of the pack.
"""
from __future__ import annotations

import numpy as np
import torch

_EPS = 1e-12


def axis_angle_to_matrix(aa) -> np.ndarray:
    """(...,3) axis-angle → (...,3,3) by Rodrigues' formula (exact at zero)."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, _EPS)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def matrix_to_quaternion(m) -> np.ndarray:
    """(...,3,3) rotation → (...,4) quaternion with w ≥ 0, from the best-conditioned of four formulas."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4·q_i² for i = w, x, y, z; the largest gives a stable division.
    sq = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(sq, axis=-1)
    root = np.sqrt(np.maximum(np.take_along_axis(sq, best[..., None], -1)[..., 0], _EPS))  # = 4|q_best|·... /2
    d = {"zy": m[..., 2, 1] - m[..., 1, 2], "xz": m[..., 0, 2] - m[..., 2, 0], "yx": m[..., 1, 0] - m[..., 0, 1],
         "xy": m[..., 0, 1] + m[..., 1, 0], "xz+": m[..., 0, 2] + m[..., 2, 0], "yz": m[..., 1, 2] + m[..., 2, 1]}
    cands = np.stack([
        np.stack([root * root, d["zy"], d["xz"], d["yx"]], -1),
        np.stack([d["zy"], root * root, d["xy"], d["xz+"]], -1),
        np.stack([d["xz"], d["xy"], root * root, d["yz"]], -1),
        np.stack([d["yx"], d["xz+"], d["yz"], root * root], -1)], -2) / (2 * root[..., None, None])
    q = np.take_along_axis(cands, best[..., None, None], -2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q) -> np.ndarray:
    """(...,4) → (...,3) with angle in [0, π]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)
    q = np.where(q[..., :1] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(sin_half, q[..., :1])
    # angle/sin(angle/2) → 2 as the angle → 0
    scale = np.where(sin_half > 1e-8, angle / np.maximum(sin_half, _EPS), 2.0)
    return q[..., 1:] * scale


def axis_angle_to_quaternion(aa) -> np.ndarray:
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    # sin(angle/2)/angle → 1/2 as the angle → 0
    scale = np.where(angle > 1e-8, np.sin(angle / 2) / np.maximum(angle, _EPS), 0.5)
    return np.concatenate([np.cos(angle / 2), aa * scale], -1)


def matrix_to_axis_angle(m) -> np.ndarray:
    return quaternion_to_axis_angle(matrix_to_quaternion(m))


def matrix_to_6d(m) -> np.ndarray:
    """(...,3,3) → (...,6): the first column, then the second."""
    m = np.asarray(m, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], -1)


def sixd_to_matrix(d6):
    """(...,6) → (...,3,3) with columns (b1, b2, b1 × b2), by Gram–Schmidt on the two stored columns.

    Takes numpy (float64 result) or torch (same dtype/device; this is HMR2's ``rot6d_to_rotmat``).
    """
    if not isinstance(d6, np.ndarray) and hasattr(d6, "detach"):
        import torch
        import torch.nn.functional as F

        b1 = F.normalize(d6[..., 0:3], dim=-1)
        a2 = d6[..., 3:6]
        b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
        return torch.stack((b1, b2, torch.linalg.cross(b1, b2, dim=-1)), dim=-1)
    d6 = np.asarray(d6, dtype=np.float64)
    a, b = d6[..., 0:3], d6[..., 3:6]
    c0 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    b = b - np.sum(c0 * b, -1, keepdims=True) * c0
    c1 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    return np.stack([c0, c1, np.cross(c0, c1)], -1)


def continuous_quaternions(q, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions have a non-negative dot product."""
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], -1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return np.moveaxis(q, 0, axis)


def slerp(q0, q1, t) -> np.ndarray:
    """Spherical interpolation between (...,4) quaternions (shortest arc); ``t`` broadcasts as (...,1)."""
    q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    t = np.asarray(t, np.float64)
    dot = np.sum(q0 * q1, -1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-6
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / np.where(near, 1, sin))
    w1 = np.where(near, t, np.sin(t * theta) / np.where(near, 1, sin))
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def rotation_about_axis(axis: str, degrees: float) -> np.ndarray:
    """3×3 rotation by ``degrees`` about the x, y or z axis (right-handed)."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def axis_angle_to_matrix_torch(aa: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`axis_angle_to_matrix`: `(..., 3)` → `(..., 3, 3)`, exact and differentiable at 0
    (the IK fit starts there), on any device and dtype."""
    angle2 = (aa * aa).sum(-1, keepdim=True)
    angle = torch.sqrt(angle2 + 1e-12)
    small = angle2 < 1e-8
    sin_over = torch.where(small, 1 - angle2 / 6, torch.sin(angle) / angle)
    cos_term = torch.where(small, 0.5 - angle2 / 24, (1 - torch.cos(angle)) / (angle2 + 1e-12))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(skew)
    return eye + sin_over[..., None] * skew + cos_term[..., None] * (skew @ skew)
