"""A 3D-aware OpenPose-18 skeleton from SMPL joints, as POSE_KEYPOINT frames for the confidence-aware drawer.

1. SMPL's 45 joints (smplx order) → OpenPose-18 with :data:`OPENPOSE18_FROM_SMPL45`; the SMPL hips sit
   medial and high compared with 2D detectors' hips, so they are moved like HMR2 does: 25 % of the hip
   distance outward and half-way towards the pelvis's offset from the hips' midpoint. The neck is the shoulder
   midpoint (as DWPose computes it).
2. Each joint's confidence comes from 3D visibility: the body mesh is rendered and the joint's pixel
   neighbourhood is looked up. An interior joint (shoulder, elbow, ...) is visible where the surface in front
   of it belongs to its own limb (its SMPL part, its parent's or its children's); a surface joint (nose, eyes,
   ears are mesh vertices) is visible where it is not behind the rendered depth; the neck, a virtual point,
   takes the better shoulder's value. Confidence =
   ``floor + (1 − floor)·visible_fraction``, and ``floor ≥ 0.3`` keeps every limb drawable (the reference
   drawer skips limbs with an end below 0.3), only dimmer.
3. Hands and face can be grafted from the driving DWPose keypoints: moved with the new wrist/nose, scaled by the
   new forearm/head length and (hands) rotated with the forearm.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch

from ..pinhole import project as pinhole_project
from ..smpl.body.joints import HIP_OUTWARD, HIP_TO_PELVIS, OPENPOSE18_FROM_SMPL45, SMPL_PARENTS, openpose18_from_smpl
from .maps import choose_backend, surface_renderer
from .surface import face_labels

SURFACE_JOINTS = (0, 14, 15, 16, 17)  # OpenPose ids that are SMPL mesh vertices (face landmarks)
DEFAULT_FLOOR = 0.5
MIN_FLOOR = 0.3  # the reference drawer skips a limb when an end is below 0.3


def own_parts(openpose_id: int) -> tuple[int, ...]:
    """SMPL parts whose surface may cover an interior joint while it still counts as visible."""
    if openpose_id == 1:  # the neck takes its shoulders' confidence (see skeleton_keypoints)
        return ()
    joint = OPENPOSE18_FROM_SMPL45[openpose_id]
    if joint >= 24:
        return ()
    children = [j for j, parent in enumerate(SMPL_PARENTS) if parent == joint]
    return tuple(sorted({joint, SMPL_PARENTS[joint], *children} - {-1}))


def project(points: torch.Tensor, K: torch.Tensor, znear: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection. points `(T, N, 3)`, K `(T, 3, 3)` → pixels `(T, N, 2)`, in_front `(T, N)` bool."""
    return pinhole_project(points, K, znear), points[..., 2] > znear


def neighbourhood(pixels: torch.Tensor, radius: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3×3 sample pixels (stride ``radius``) around each joint: columns, rows `(T, 18, 9)` int64."""
    offsets = torch.tensor([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=torch.float32) * radius
    sample = torch.round(pixels[:, :, None, :] + offsets.to(pixels.device)).long()  # (T, 18, 9, 2)
    return sample[..., 0], sample[..., 1]


def seen_fraction(points: torch.Tensor, seen_label: torch.Tensor, seen_depth: torch.Tensor, *,
                  surface_tolerance: float = 0.03) -> torch.Tensor:
    """Share `(T, 18)` of each joint's samples where it is seen, from the surface found at them.

    seen_label (`(T, 18, S)` part, -1 nothing), seen_depth (`(T, 18, S)` metres): the nearest surface at each
    sample. See :func:`visible_fraction`.
    """
    visible = seen_label < 0
    for joint in range(points.shape[1]):
        if joint in SURFACE_JOINTS:
            ahead = points[:, joint, None, 2] <= seen_depth[:, joint] + surface_tolerance
            visible[:, joint] |= ahead
        else:
            parts = torch.tensor(own_parts(joint), device=seen_label.device)
            visible[:, joint] |= torch.isin(seen_label[:, joint], parts)
    return visible.float().mean(-1)


def visible_fraction(points: torch.Tensor, pixels: torch.Tensor, depth: torch.Tensor, label: torch.Tensor, *,
                     radius: int = 1, surface_tolerance: float = 0.03) -> torch.Tensor:
    """Share of a 3×3 pixel neighbourhood (stride ``radius``) where each OpenPose joint is seen.

    Args:
        points (`(T, 18, 3)`): camera-space OpenPose joints; pixels (`(T, 18, 2)`): their projections in the
            buffers' pixel grid.
        depth (`(T, H, W)` metres, 0 background), label (`(T, H, W)` part, -1 background): rendered body.
        surface_tolerance (`float`): metres a surface joint may lie behind the rendered depth (sub-pixel slope).

    Returns:
        `(T, 18)` in 0..1. Samples outside the image or on background count as visible (nothing occludes them).
    """
    frames, height, width = depth.shape
    col, row = neighbourhood(pixels, radius)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    frame = torch.arange(frames, device=depth.device)[:, None, None].expand_as(col)
    col_c, row_c = col.clamp(0, width - 1), row.clamp(0, height - 1)
    seen_label = torch.where(inside, label[frame, row_c, col_c], torch.full_like(col, -1))
    seen_depth = torch.where(inside, depth[frame, row_c, col_c], torch.zeros_like(col, dtype=depth.dtype))
    return seen_fraction(points, seen_label, seen_depth, surface_tolerance=surface_tolerance)


def sampled_visible_fraction(points: torch.Tensor, pixels: torch.Tensor, vertices: torch.Tensor,
                             faces: torch.Tensor, labels_of_faces: torch.Tensor, K: torch.Tensor,
                             size: tuple[int, int], *, radius: int = 1, device="cpu") -> torch.Tensor:
    """:func:`visible_fraction` of the torch rasteriser's buffers, computed at the 9 samples of each joint only
    (:func:`~.torch_raster.sample_nearest`): the same surface per sample without rendering whole images."""
    from .torch_raster import sample_nearest

    col, row = neighbourhood(pixels, radius)
    device = torch.device(device)
    face, depth = sample_nearest(vertices.to(device), faces.to(device), K.to(device), size, col.to(device),
                                 row.to(device))
    face, depth = face.cpu(), depth.cpu()
    seen_label = torch.where(face >= 0, labels_of_faces.cpu()[face.clamp(min=0)], torch.full_like(face, -1))
    return seen_fraction(points, seen_label, depth)


def skeleton_keypoints(joints: torch.Tensor, K: torch.Tensor, size: tuple[int, int], *,
                       vertices: torch.Tensor | None = None, faces=None, vertex_labels=None,
                       floor: float = DEFAULT_FLOOR, backend: str = "torch", device="cpu", chunk_size: int = 16,
                       visibility_long_side: int = 512, dense_visibility: bool = False,
                       hip_outward: float = HIP_OUTWARD,
                       hip_to_pelvis: float = HIP_TO_PELVIS,
                       callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """OpenPose-18 keypoints `(T, 18, 3)` = (x, y, confidence) in pixels of a ``size`` = (W, H) canvas.

    Args:
        joints (`(T, 45, 3)`): smplx SMPL joints in OpenCV camera space (metres), or `(T, 18, 3)` OpenPose-18
            points already (a body model's ``openpose18``).
        K (`(3, 3)` or `(T, 3, 3)`): intrinsics for ``size``.
        vertices (`(T, V, 3)`), faces (`(F, 3)`), vertex_labels (`(V,)`): the body mesh for the visibility test;
            without it every joint in front of the camera gets confidence 1.
        floor (`float`): confidence of a fully hidden joint, at least 0.3.
        visibility_long_side (`int`): the visibility buffers are rendered with this longer side (a cheaper,
            scaled-down camera); 0 renders at ``size``.
        dense_visibility (`bool`): with the torch backend, render whole buffers and look the joints up in them
            (the reference path, ~20× slower) instead of rasterising only the joints' sample pixels; both find
            the same surface per sample. The pyrender backend always renders whole buffers.
    """
    if not MIN_FLOOR <= floor <= 1.0:
        raise ValueError(f"occluded confidence floor must be in [{MIN_FLOOR}, 1] so limbs stay drawn, got {floor}.")
    frames = joints.shape[0]
    width, height = int(size[0]), int(size[1])
    K = torch.as_tensor(K, dtype=torch.float32).cpu()
    if K.ndim == 2:
        K = K.expand(frames, 3, 3)
    if joints.shape[1] == 18:  # already OpenPose-18 (a body model's own regressor)
        points = joints.float().cpu().clone()
    else:
        points = openpose18_from_smpl(joints.float().cpu(), hip_outward=hip_outward, hip_to_pelvis=hip_to_pelvis)
    pixels, in_front = project(points, K)
    # DWPose's neck is the 2D midpoint of the projected shoulders; keep that exactly.
    pixels[:, 1] = 0.5 * (pixels[:, 2] + pixels[:, 5])
    fraction = torch.ones(frames, 18)
    if vertices is not None:
        scale = 1.0
        if visibility_long_side and max(width, height) > visibility_long_side:
            scale = visibility_long_side / max(width, height)
        vis_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        scale_x, scale_y = vis_size[0] / width, vis_size[1] / height
        # Pixel centres map as (u + 0.5)·s − 0.5 when a grid is resampled.
        K_vis = K.clone()
        K_vis[:, 0] *= scale_x
        K_vis[:, 1] *= scale_y
        K_vis[:, 0, 2] += 0.5 * scale_x - 0.5
        K_vis[:, 1, 2] += 0.5 * scale_y - 0.5
        pixels_vis = torch.stack([(pixels[..., 0] + 0.5) * scale_x - 0.5, (pixels[..., 1] + 0.5) * scale_y - 0.5], -1)
        faces_t = torch.as_tensor(faces, dtype=torch.int64)
        labels_of_faces = face_labels(faces_t, None if vertex_labels is None else torch.as_tensor(vertex_labels))
        radius = max(1, round(min(vis_size) / 512))
        sampled = choose_backend(backend, torch.device(device)) == "torch" and not dense_visibility
        with nullcontext() if sampled else surface_renderer(backend, vis_size, faces_t, labels_of_faces,
                                                            device=device) as renderer:
            for start in range(0, frames, chunk_size):
                stop = min(start + chunk_size, frames)
                if sampled:
                    fraction[start:stop] = sampled_visible_fraction(
                        points[start:stop], pixels_vis[start:stop], vertices[start:stop], faces_t,
                        labels_of_faces, K_vis[start:stop], vis_size, radius=radius, device=device)
                else:
                    surface = renderer.render(vertices[start:stop], K_vis[start:stop], normals=False, labels=True)
                    fraction[start:stop] = visible_fraction(points[start:stop], pixels_vis[start:stop],
                                                            surface.depth_map.cpu(), surface.label_map.cpu(),
                                                            radius=radius)
                if callback is not None:
                    callback(stop, frames)
    elif callback is not None:
        callback(frames, frames)
    confidence = floor + (1.0 - floor) * fraction
    # The neck is a virtual point inside the upper chest (hidden by a shoulder in a side view although a 2D
    # detector sees it there): it is as visible as the better-seen shoulder.
    confidence[:, 1] = torch.maximum(confidence[:, 2], confidence[:, 5])
    confidence = confidence * in_front
    pixels = pixels * in_front[..., None]
    return torch.cat([pixels, confidence[..., None]], -1)


# smplx's foot landmarks (left big toe, small toe, heel, right big toe, small toe, heel): DWPose's six foot points.
FEET_FROM_SMPL45 = [29, 30, 31, 32, 33, 34]


def foot_keypoints(feet: torch.Tensor, K: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
    """DWPose's six foot points `(T, 6, 3)` (pixels + confidence) from the 3D foot landmarks `(T, 6, 3)`
    (``joints[:, FEET_FROM_SMPL45]`` of smplx's 45-joint layout); each foot takes its ankle's confidence in
    ``body`` `(T, 18, 3)` (left ankle 13, right ankle 10)."""
    K = torch.as_tensor(K, dtype=torch.float32).cpu()
    if K.ndim == 2:
        K = K.expand(feet.shape[0], 3, 3)
    pixels, in_front = project(feet.float().cpu(), K)
    confidence = torch.cat([body[:, 13:14, 2].expand(-1, 3), body[:, 10:11, 2].expand(-1, 3)], 1) * in_front
    return torch.cat([pixels * in_front[..., None], confidence[..., None]], -1)


# ------------------------------------------------------------------------------------------------------------
# Hands and face from the driving keypoints

def _points(flat: Sequence[float] | None, count: int) -> torch.Tensor | None:
    if flat is None or len(flat) < count * 3:
        return None
    return torch.tensor(list(flat[: count * 3]), dtype=torch.float32).view(count, 3)


def _bone(points: torch.Tensor, a: int, b: int, threshold: float = 0.3):
    if points[a, 2] < threshold or points[b, 2] < threshold:
        return None
    vec = points[b, :2] - points[a, :2]
    return vec if float(vec.norm()) > 1e-6 else None


def graft_part(part: torch.Tensor, driving_anchor: torch.Tensor, new_anchor: torch.Tensor, scale: float,
               angle: float = 0.0, confidence_scale: float = 1.0) -> torch.Tensor:
    """Move keypoints ``part`` (N, 3) rigidly: ``new + scale·R(angle)·(p − driving)``; undetected points (c = 0)
    stay at (0, 0, 0), as OpenPose writes them."""
    cos, sin = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[cos, -sin], [sin, cos]])
    moved = new_anchor + scale * (part[:, :2] - driving_anchor) @ rot.T
    detected = part[:, 2:] > 0
    return torch.cat([moved * detected, part[:, 2:] * confidence_scale], 1)


_HANDS = (("hand_right_keypoints_2d", 3, 4), ("hand_left_keypoints_2d", 6, 7))  # key, elbow, wrist


def graft_hands_and_face(body: torch.Tensor, driving_person: dict | None, *, rotate_hands: bool = True) -> dict:
    """Face and hand keypoint lists (or None) for one frame's new body `(18, 3)` from a driving person dict."""
    result = {"face_keypoints_2d": None, "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}
    if not driving_person:
        return result
    driving_body = _points(driving_person.get("pose_keypoints_2d"), 18)
    if driving_body is None:
        return result
    for key, elbow, wrist in _HANDS:
        hand = _points(driving_person.get(key), 21)
        if hand is None or float(hand[:, 2].max()) <= 0 or body[wrist, 2] <= 0:
            continue
        if driving_body[wrist, 2] >= 0.3:
            anchor = driving_body[wrist, :2]
        elif hand[0, 2] > 0:
            anchor = hand[0, :2]
        else:
            continue
        scale, angle = 1.0, 0.0
        old_bone, new_bone = _bone(driving_body, elbow, wrist), _bone(body, elbow, wrist)
        if old_bone is not None and new_bone is not None:
            scale = float(new_bone.norm() / old_bone.norm())
            if rotate_hands:
                angle = math.atan2(float(new_bone[1]), float(new_bone[0])) - math.atan2(float(old_bone[1]),
                                                                                          float(old_bone[0]))
        grafted = graft_part(hand, anchor, body[wrist, :2], scale, angle, float(body[wrist, 2]))
        result[key] = grafted.flatten().tolist()
    flat_face = driving_person.get("face_keypoints_2d")
    count = len(flat_face) // 3 if flat_face else 0
    face = _points(flat_face, count) if count in (68, 70) else None
    if face is not None and float(face[:, 2].max()) > 0 and driving_body[0, 2] >= 0.3 and body[0, 2] > 0:
        scale = 1.0
        old_head, new_head = _bone(driving_body, 1, 0), _bone(body, 1, 0)
        if old_head is not None and new_head is not None:
            scale = float(new_head.norm() / old_head.norm())
        grafted = graft_part(face, driving_body[0, :2], body[0, :2], scale, 0.0, float(body[0, 2]))
        result["face_keypoints_2d"] = grafted.flatten().tolist()
    return result


def to_pose_keypoint(keypoints: torch.Tensor, size: tuple[int, int], driving: list | None = None, *,
                     rotate_hands: bool = True, feet: torch.Tensor | None = None) -> list[dict]:
    """POSE_KEYPOINT frames (docs/architecture.md, *Types between nodes*) from `(T, 18, 3)` keypoints; hands/face from
    ``driving`` frames; optional
    ``feet`` `(T, 6, 3)` become ``foot_keypoints_2d`` (the toes of the Wan-Animate / UniAnimate styles)."""
    width, height = int(size[0]), int(size[1])
    frames = []
    for t in range(keypoints.shape[0]):
        body = keypoints[t]
        person = {"pose_keypoints_2d": [round(float(x), 3) for x in body.flatten()]}
        if feet is not None:
            person["foot_keypoints_2d"] = [round(float(x), 3) for x in feet[t].flatten()]
        driving_person = None
        if driving is not None:
            people = (driving[t] or {}).get("people") or []
            driving_person = people[0] if people else None
        person.update(graft_hands_and_face(body, driving_person, rotate_hands=rotate_hands))
        frames.append({"people": [person], "canvas_width": width, "canvas_height": height})
    return frames
