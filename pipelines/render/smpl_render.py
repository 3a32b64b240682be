"""SMPL_SEQUENCE + body model → camera-space meshes → guidance maps and skeleton keypoints.

The only SMPL-aware part of the renderer: it poses the body (``vertices = SMPL(β, θ) + transl`` in the OpenCV
camera of the sequence), rescales the intrinsics to the requested output size and hands geometry to
:func:`.maps.render_maps` / :func:`.skeleton.skeleton_keypoints`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..size_limits import check_image_size
from ..smpl.motion.sequence import validate_sequence
from .maps import ALL_MAPS, DEFAULT_DEPTH_FLOOR, render_maps
from .skeleton import DEFAULT_FLOOR, FEET_FROM_SMPL45, foot_keypoints, skeleton_keypoints, to_pose_keypoint


def scale_intrinsics(K: np.ndarray | torch.Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> torch.Tensor:
    """Intrinsics `(…, 3, 3)` of the same camera for an image resized from ``from_size`` to ``to_size`` (W, H).

    Focal lengths scale with the size; the principal point maps like pixel centres, ``c' = (c + 0.5)·s − 0.5``.
    """
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


def pose_sequence(model, seq: dict, *, batch_size: int = 64):
    """Camera-space vertices `(T, V, 3)` and the model's joints (smplx `(T, 45, 3)`, Anny `(T, 63, 3)`), on CPU.

    The whole sequence's vertices stay on the CPU (25 MB for 300 SMPL frames); renderers move one chunk at a
    time to their device.
    """
    from ..smpl.motion.sequence import body_kwargs
    from ..smpl.motion.transfer import check_motion_type

    check_motion_type(model, seq)
    vertices, joints = model.forward(seq["betas"], seq["global_orient"], seq["body_pose"], seq["transl"],
                                     device="cpu", batch_size=batch_size, **body_kwargs(seq))
    return vertices.float(), joints.float()


MIN_BODY_DEPTH = 0.1  # metres: a root joint nearer than this (or behind the camera) projects nowhere sensible


def check_in_front_of_camera(joints: torch.Tensor, seq: dict) -> None:
    """``ValueError`` listing the frames (with a person) whose root joint is at or behind the camera: they would
    render empty or put confident joints thousands of pixels away."""
    depth = joints[:, 0, 2].detach().cpu().numpy()
    valid = np.asarray(seq["valid"], bool)
    frames = np.flatnonzero(valid & (depth < MIN_BODY_DEPTH))
    if frames.size:
        shown = ", ".join(str(f) for f in frames[:10]) + (", …" if frames.size > 10 else "")
        raise ValueError(f"The SMPL body is at or behind the camera (root depth {float(depth[frames[0]]):.2f} m, "
                         f"under {MIN_BODY_DEPTH} m) in {frames.size} frames ({shown}). Move the camera back (Set "
                         "SMPL Camera: dolly) or check the motion's translation (z points away from the camera).")


def _output_size(seq: dict, width: int = 0, height: int = 0) -> tuple[int, int]:
    seq_w, seq_h = seq["image_size"]
    if width < 0 or height < 0:
        raise ValueError(f"width/height must be ≥ 0 (0 = the sequence's {seq_w}×{seq_h}), got {width}×{height}.")
    if width and not height:
        height = round(seq_h * width / seq_w)
    elif height and not width:
        width = round(seq_w * height / seq_h)
    return check_image_size(width or seq_w, height or seq_h, "Render size",
                            "set width/height on the node (0 takes the sequence's image_size).")


def render_sequence_maps(model, seq: dict, *, width: int = 0, height: int = 0, maps=ALL_MAPS,
                         backend: str = "auto", device="cpu", chunk_size: int = 16,
                         depth_floor: float = DEFAULT_DEPTH_FLOOR,
                         callback: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """Depth, normal, semantic, mask and preview maps of an SMPL_SEQUENCE (see :func:`.maps.render_maps`).

    ``width``/``height`` 0 keep the sequence's ``image_size`` (one of them 0 keeps its aspect ratio).
    """
    seq = validate_sequence(seq)
    size = _output_size(seq, width, height)
    K = scale_intrinsics(seq["K"], seq["image_size"], size)
    vertices, joints = pose_sequence(model, seq)
    check_in_front_of_camera(joints, seq)
    return render_maps(vertices, model.faces, K, size, vertex_labels=model.part_labels, maps=maps,
                       backend=backend, device=device, chunk_size=chunk_size, depth_floor=depth_floor,
                       callback=callback)


def sequence_to_pose_keypoints(model, seq: dict, *, width: int = 0, height: int = 0, driving: list | None = None,
                               occluded_confidence: float = DEFAULT_FLOOR, rotate_hands: bool = True,
                               backend: str = "auto", device="cpu", chunk_size: int = 16,
                               dense_visibility: bool = False,
                               callback: Callable[[int, int], None] | None = None) -> list[dict]:
    """POSE_KEYPOINT frames of the sequence's projected, visibility-weighted OpenPose-18 skeleton.

    ``driving`` (POSE_KEYPOINT with as many frames) supplies hands and face, grafted at the new wrists/nose.
    ``dense_visibility``: see :func:`~.skeleton.skeleton_keypoints` (the slower reference path).
    """
    seq = validate_sequence(seq)
    frames = len(seq["global_orient"])
    if driving is not None:
        from ..dwpose.keypoints import frame_to_openpose, pose_keypoint_to_frames

        # Parsed the way every pose node reads POSE_KEYPOINT: checked, 0..1 coordinates scaled to pixels.
        driving = [frame_to_openpose(frame) for frame in pose_keypoint_to_frames(driving, "driving_pose")]
    if driving is not None and len(driving) != frames:
        raise ValueError(f"driving_pose has {len(driving)} frames but the SMPL sequence has {frames}; use the "
                         "POSE_KEYPOINT of the same driving video (or leave it unconnected).")
    size = _output_size(seq, width, height)
    K = scale_intrinsics(seq["K"], seq["image_size"], size)
    vertices, joints = pose_sequence(model, seq)
    feet_3d = joints[:, FEET_FROM_SMPL45]  # smplx's 45-joint layout (the built-in body keeps it for 0..44)
    check_in_front_of_camera(joints, seq)
    openpose18 = getattr(model, "openpose18", None)
    if openpose18 is not None:  # the model's own OpenPose-18 (SMPL: hip push; Anny: COCO regressor)
        joints = openpose18(joints)
    keypoints = skeleton_keypoints(joints, K, size, vertices=vertices, faces=model.faces,
                                   vertex_labels=model.part_labels, floor=occluded_confidence, backend=backend,
                                   device=device, chunk_size=chunk_size, dense_visibility=dense_visibility,
                                   callback=callback)
    feet = foot_keypoints(feet_3d, K, keypoints)
    return to_pose_keypoint(keypoints, size, driving, rotate_hands=rotate_hands, feet=feet)
