"""SCAIL's pose guidance: 13 shaded 3D capsules between SMPL joints (research/animators.md §1).

SCAIL (and SCAIL-2's "SMPL pose-rendered" input) was trained on images from SCAIL-Pose's ray-marched capsule
renderer. This module computes the same images analytically (no ray marching, no taichi):

- Joints: SMPL-24 in millimetres, OpenCV camera axes (``NLFPRED``), mapped to OpenPose slots (nose ← head 15,
  neck ← 12, right shoulder/elbow/wrist ← 17/19/21, left ← 16/18/20, right hip/knee/ankle ← 2/5/8, left ←
  1/4/7 — SCAIL's table, which swaps SMPL's left and right). 13 capsules of radius 21.5 mm; a limb is skipped
  when an end's coordinates sum to exactly 0 (SCAIL's test for a missing joint, kept as is).
- Colour per limb (:data:`LIMB_COLORS`), remapped ``c/300 + 0.15``, alpha 0.8.
- Each pixel ``(x, y)`` casts the ray through ``((x − cx)/fx, (y − cy)/fy, 1)`` (integer pixel coordinates, as
  SCAIL does); the nearest capsule surface wins (true occlusion). Shading: ``colour·(0.3 + 0.7·max(−n_z, 0))``
  plus a white Blinn-Phong highlight ``0.5·max(n·h, 0)³²`` with ``h`` the half vector of the view direction and
  the headlight, both × a depth factor ``1 − (z − z_near)/(z_far − 0.1)`` clamped to 0..1, where ``z_near =
  max(min z, 0.1)`` and ``z_far = min(max z + 6000, 20000)`` over every capsule end of the **whole clip**.
  Surfaces beyond ``max(min(max z, 25000), 10000)`` along the ray are not drawn. RGBA bytes are
  ``⌊clip(v, 0, 1)·255⌋``; the background is transparent black. SCAIL's mask is alpha > 0.5.

SCAIL-Pose finds the surface by sphere tracing and takes normals from finite differences of the distance field
in float32; here the intersection and the normal are exact (float64). Tests compare with its renderer's output.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..options import SCAIL_MASK_BACKGROUNDS as MASK_BACKGROUNDS
from ..pinhole import project

RADIUS_MM = 21.5
# OpenPose slot ← SMPL joint, as SCAIL-Pose's process_data_to_COCO_format maps NLF's SMPL-24 joints.
OPENPOSE_FROM_SMPL24 = {0: 15, 1: 12, 2: 17, 5: 16, 3: 19, 6: 18, 4: 21, 7: 20, 8: 2, 11: 1, 9: 5, 12: 4, 10: 8, 13: 7}
# The 13 limbs in SCAIL's drawing order (OpenPose slots) and their base colours.
LIMBS = ((1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13), (1, 0))
LIMB_COLORS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (0, 255, 255), (0, 170, 255), (0, 85, 255), (180, 255, 0),
               (0, 255, 0), (0, 255, 85), (0, 0, 255), (85, 0, 255), (170, 0, 255), (150, 150, 150))
ALPHA = 0.8
Z_MIN_NEAR = 0.1
FADE_MARGIN_MM, FADE_LIMIT_MM = 6000.0, 20000.0
MARCH_MIN_MM, MARCH_MAX_MM = 10000.0, 25000.0
SHININESS = 32
SCAIL_SIZE = (512, 896)  # (W, H) portrait; SCAIL also renders 896×512
# SCAIL-2 identity palette: one pure colour per person (its channels are thresholded at 225/255).
IDENTITY_PALETTE = ((0, 0, 255), (255, 0, 0), (0, 255, 0), (255, 0, 255), (0, 255, 255), (255, 255, 0))


def limb_color(index: int) -> tuple[float, float, float]:
    return tuple(c / 300 + 0.15 for c in LIMB_COLORS[index])


def capsule_segments(joints_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments of one frame: starts `(N, 3)`, ends `(N, 3)`, limb ids `(N,)` from joints `(persons, 24, 3)` mm."""
    starts, ends, ids = [], [], []
    for person in np.asarray(joints_mm, dtype=np.float64).reshape(-1, 24, 3):
        slots = np.zeros((14, 3))
        for slot, joint in OPENPOSE_FROM_SMPL24.items():
            slots[slot] = person[joint]
        for i, (a, b) in enumerate(LIMBS):
            if np.sum(slots[a]) == 0 or np.sum(slots[b]) == 0:  # SCAIL's missing-joint test (sum, not norm)
                continue
            starts.append(slots[a])
            ends.append(slots[b])
            ids.append(i)
    return (np.array(starts).reshape(-1, 3), np.array(ends).reshape(-1, 3), np.array(ids, dtype=np.int64))


def _ray_capsules(rd: torch.Tensor, a: torch.Tensor, b: torch.Tensor, radius: float) -> torch.Tensor:
    """Distance along unit rays `rd (P, 3)` from the origin to the first hit of each capsule `(N, 3)`; inf = miss.

    A capsule is the union of a finite cylinder and two end spheres; from outside, the first hit of a union of
    convex parts is the nearest first hit of any part (the flat cylinder ends lie inside the spheres).
    """
    inf = torch.tensor(math.inf, dtype=rd.dtype, device=rd.device)
    best = torch.full((rd.shape[0], a.shape[0]), math.inf, dtype=rd.dtype, device=rd.device)
    axis = b - a
    axis_len2 = (axis * axis).sum(-1)  # (N,)
    origin_a = -a  # ray origin (0) relative to a
    ad = rd @ axis.T  # (P, N) axis·dir
    ao = (axis * origin_a).sum(-1)  # (N,) axis·(o − a)
    od = rd @ origin_a.T  # (P, N) dir·(o − a)
    oo = (origin_a * origin_a).sum(-1)  # (N,)
    qa = axis_len2 - ad * ad
    qb = axis_len2 * od - ao * ad
    qc = axis_len2 * oo - ao * ao - radius * radius * axis_len2
    disc = qb * qb - qa * qc
    ok = (disc >= 0) & (qa > 1e-12)
    t = (-qb - torch.sqrt(disc.clamp_min(0))) / torch.where(qa > 1e-12, qa, torch.ones_like(qa))
    along = ao + t * ad
    body = ok & (t > 0) & (along > 0) & (along < axis_len2)
    best = torch.where(body, t, best)
    for centre in (a, b):
        oc = -centre  # origin relative to the sphere centre
        sb = rd @ oc.T  # (P, N)
        sc = (oc * oc).sum(-1) - radius * radius
        sd = sb * sb - sc
        ts = -sb - torch.sqrt(sd.clamp_min(0))
        hit = (sd >= 0) & (ts > 0)
        best = torch.minimum(best, torch.where(hit, ts, inf))
    return best


NORMAL_STEP_MM = 1e-3


def _screen_window(starts, ends, K, width: int, height: int, radius: float):
    """Pixel box ``(x0, y0, x1, y1)`` that holds every capsule of a frame (all of the image when one comes
    within a few radii of the camera plane); rays outside it cannot hit, so they are not cast."""
    points = np.concatenate([starts, ends])
    z = points[:, 2]
    if z.min() <= 4 * radius:
        return 0, 0, width, height
    u, v = project(points, K).T
    # A sphere of radius r at depth z projects within f·r/(z − r) of its centre's image on the axis, stretched by
    # up to 1 + tan²θ off it: twice that covers fields of view up to 90° (plus 2 px of slack).
    margin_x = 2 * K[0, 0] * radius / (z.min() - radius) + 2
    margin_y = 2 * K[1, 1] * radius / (z.min() - radius) + 2
    x0 = int(np.clip(np.floor(u.min() - margin_x), 0, width))
    x1 = int(np.clip(np.ceil(u.max() + margin_x) + 1, 0, width))
    y0 = int(np.clip(np.floor(v.min() - margin_y), 0, height))
    y1 = int(np.clip(np.ceil(v.max() + margin_y) + 1, 0, height))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _reference_normal(normal: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The normal SCAIL-Pose's renderer ends up with: central differences of the distance field with a 1e-3 mm
    step taken in float32, where ``p ± 1e-3`` rounds to the float32 grid (at z ≈ 3 m the z step is 2.3 % short,
    so every normal leans away from the camera and the headlight term is a little darker). The field is linear
    across the step, so each gradient component is the exact normal's component × the realised step."""
    p32 = p.float()
    step = ((p32 + NORMAL_STEP_MM) - (p32 - NORMAL_STEP_MM)).double() / (2 * NORMAL_STEP_MM)
    leaned = normal * step
    return leaned / leaned.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def render_capsules(joints_mm, K, size: tuple[int, int], *, radius: float = RADIUS_MM, device="cpu",
                    chunk_pixels: int = 1 << 16, callback=None) -> torch.Tensor:
    """RGBA uint8 `(T, H, W, 4)` of SCAIL's capsule rendering.

    Args:
        joints_mm: per frame an array `(persons, 24, 3)` (or `(24, 3)`) of SMPL-24 joints, millimetres, OpenCV axes.
        K (`(3, 3)` or `(T, 3, 3)`): intrinsics in pixels of ``size`` = (W, H).
    """
    width, height = int(size[0]), int(size[1])
    frames = [capsule_segments(j) for j in joints_mm]
    K = np.asarray(K, dtype=np.float64)
    K = np.repeat(K[None], len(frames), 0) if K.ndim == 2 else K
    ends_z = np.concatenate([np.concatenate([s[:, 2], e[:, 2]]) for s, e, _ in frames] or [np.zeros(0)])
    z_min = float(ends_z.min()) if ends_z.size else 0.0
    z_max = float(ends_z.max()) if ends_z.size else 0.0
    near = max(z_min, Z_MIN_NEAR)
    far = min(z_max + FADE_MARGIN_MM, FADE_LIMIT_MM)
    march_limit = max(min(z_max, MARCH_MAX_MM), MARCH_MIN_MM)
    palette = torch.tensor([limb_color(i) for i in range(len(LIMBS))], dtype=torch.float64, device=device)
    out = torch.zeros(len(frames), height, width, 4, dtype=torch.uint8)
    for f, (starts, ends, ids) in enumerate(frames):
        window = _screen_window(starts, ends, K[f], width, height, radius) if len(ids) else None
        if window is not None:
            x0, y0, x1, y1 = window
            fx, fy, cx, cy = K[f, 0, 0], K[f, 1, 1], K[f, 0, 2], K[f, 1, 2]
            a = torch.as_tensor(starts, dtype=torch.float64, device=device)
            b = torch.as_tensor(ends, dtype=torch.float64, device=device)
            colors = palette[torch.as_tensor(ids, device=device)]
            window_w = x1 - x0
            pixels = (y1 - y0) * window_w
            tile = out[f, y0:y1, x0:x1]
            # pixel coordinates and colours per chunk only: the whole-window float64 buffers (36 bytes per pixel)
            # made an 8192×8192 frame peak at 8 GB
            for start in range(0, pixels, chunk_pixels):
                index = torch.arange(start, min(start + chunk_pixels, pixels), dtype=torch.int64, device=device)
                xs_c = (index % window_w + x0).double()
                ys_c = (index // window_w + y0).double()
                rd = torch.stack([(xs_c - cx) / fx, (ys_c - cy) / fy, torch.ones_like(xs_c)], -1)
                rd = rd / rd.norm(dim=-1, keepdim=True)
                t_all = _ray_capsules(rd, a, b, radius)
                t, which = t_all.min(-1)
                hit = torch.isfinite(t) & (t <= march_limit)
                p = rd * t.clamp_max(1e12)[:, None]
                seg_a, seg_ab = a[which], (b - a)[which]
                proj = (((p - seg_a) * seg_ab).sum(-1) / (seg_ab * seg_ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
                normal = p - (seg_a + proj[:, None] * seg_ab)
                normal = _reference_normal(normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12), p)
                diffuse = (-normal[:, 2]).clamp_min(0)
                half = -rd + torch.tensor([0.0, 0.0, -1.0], dtype=rd.dtype, device=device)
                half = half / half.norm(dim=-1, keepdim=True)
                spec = (normal * half).sum(-1).clamp_min(0) ** SHININESS
                fade = (1.0 - (p[:, 2] - near) / (far - Z_MIN_NEAR)).clamp(0, 1)
                rgb = colors[which] * ((0.3 + 0.7 * diffuse) * fade)[:, None] + (0.5 * spec * fade)[:, None]
                rgba = torch.cat([rgb, torch.full_like(rgb[:, :1], ALPHA)], -1)
                rgba = torch.where(hit[:, None], rgba, torch.zeros_like(rgba))
                rows = (index // window_w).cpu()
                cols = (index % window_w).cpu()
                tile[rows, cols] = (rgba.clamp(0, 1) * 255).to(torch.uint8).cpu()
        if callback is not None:
            callback(f + 1, len(frames))
    return out


def overlay_2d(rgba: torch.Tensor, overlay: np.ndarray) -> torch.Tensor:
    """SCAIL's composition: every non-zero channel of the 2D layer `(T, H, W, 3)` uint8 replaces that channel of
    the capsule rendering `(T, H, W, 4)` (channel by channel, as SCAIL-Pose does); alpha is left as rendered."""
    out = rgba.clone()
    layer = torch.as_tensor(np.asarray(overlay))
    rgb = out[..., :3]
    out[..., :3] = torch.where(layer != 0, layer, rgb)
    return out


def half_size(images: torch.Tensor) -> torch.Tensor:
    """`(T, H, W, C)` float images at half size, bilinear (what SCAIL's sampler does before its VAE)."""
    nchw = images.permute(0, 3, 1, 2)
    small = torch.nn.functional.interpolate(nchw, size=(images.shape[1] // 2, images.shape[2] // 2),
                                            mode="bilinear", align_corners=False)
    return small.permute(0, 2, 3, 1).contiguous()


def identity_mask(masks: torch.Tensor, identity: int = 0, background: str = "black") -> torch.Tensor:
    """SCAIL-2's ``pose_video_mask``: `(T, H, W)` silhouettes in the pure palette colour of ``identity`` on black
    (animation) or white (replacement), float `(T, H, W, 3)`."""
    if background not in MASK_BACKGROUNDS:
        raise ValueError(f"background must be 'black' (animation) or 'white' (replacement), got {background!r}.")
    color = torch.tensor(IDENTITY_PALETTE[identity % len(IDENTITY_PALETTE)], dtype=torch.float32) / 255.0
    base = torch.zeros(3) if background == "black" else torch.ones(3)
    inside = (masks > 0.5)[..., None]
    return torch.where(inside, color, base).float()


def check_overlay_projection(joints_mm: np.ndarray, K, size: tuple[int, int], valid=None) -> None:
    """Before rendering SCAIL's 2D layer: a ``ValueError`` worded for the SMPL input when the body's joints
    project far outside the image (or lie at or behind the camera) in some frame with a person. The layer's
    keypoints are checked like POSE_KEYPOINT input later on, which used to report, after minutes of rendering,
    a "POSE_KEYPOINT ... far outside the canvas" the user never connected.

    Args:
        joints_mm (`(T, 24, 3)`): camera-space joints in millimetres.
        K (`(T, 3, 3)` or `(3, 3)`): intrinsics at ``size``.
    """
    from ..dwpose.keypoints import COORDINATE_SPAN

    joints = np.asarray(joints_mm, np.float64) / 1000.0
    K = np.broadcast_to(np.asarray(K, np.float64), (len(joints), 3, 3))
    valid = np.ones(len(joints), bool) if valid is None else np.asarray(valid, bool)
    width, height = size
    limit = COORDINATE_SPAN * max(width, height)
    z = joints[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[:, None, 0, 0] * joints[..., 0] / z + K[:, None, 0, 2]
        v = K[:, None, 1, 1] * joints[..., 1] / z + K[:, None, 1, 2]
    bad = (z <= 1e-3) | ~np.isfinite(u) | ~np.isfinite(v) | (np.abs(u) > limit) | (np.abs(v) > limit)
    frames = np.flatnonzero(valid & bad.any(1))
    if not frames.size:
        return
    t = int(frames[0])
    j = int(np.argmax(bad[t]))
    where = (f"at depth {z[t, j]:.2f} m (at or behind the camera)" if z[t, j] <= 1e-3 else
             f"to ({u[t, j]:.3g}, {v[t, j]:.3g}) px")
    raise ValueError(f"Render SCAIL: the SMPL body's joint {j} in frame {t} projects {where}, far outside the "
                     f"{width}×{height} image ({frames.size} frame(s) affected), so its 2D layer cannot be drawn. "
                     "The camera does not frame the body: use camera 'nlf_fov55', move the camera with Set SMPL "
                     "Camera, or switch overlay_2d off.")
