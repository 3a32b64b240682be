"""SMPL_SEQUENCE + body model → camera-space meshes → guidance maps and skeleton keypoints.

The only SMPL-aware part of the renderer: it poses the body (``vertices = SMPL(β, θ) + transl`` in the OpenCV
camera of the sequence), rescales the intrinsics to the requested output size and hands geometry to
:func:`.maps.render_maps` / :func:`.skeleton.skeleton_keypoints`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..pinhole import output_size, scale_intrinsics
from ..smpl.motion.posing import pose_sequence
from ..smpl.motion.sequence import validate_sequence
from .maps import ALL_MAPS, DEFAULT_DEPTH_FLOOR, render_maps
from .skeleton import DEFAULT_FLOOR, FEET_FROM_SMPL45, foot_keypoints, skeleton_keypoints, to_pose_keypoint

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


def render_sequence_maps(model, seq: dict, *, width: int = 0, height: int = 0, maps=ALL_MAPS,
                         backend: str = "auto", device="cpu", chunk_size: int = 16,
                         depth_floor: float = DEFAULT_DEPTH_FLOOR, reference: dict | None = None,
                         callback: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """Depth, normal, semantic, mask and preview maps of an SMPL_SEQUENCE (see :func:`.maps.render_maps`).

    ``width``/``height`` 0 keep the sequence's ``image_size`` (one of them 0 keeps its aspect ratio).
    ``reference`` (an SMPL_SEQUENCE, e.g. the reference image's): its first frame, in its own camera, is rendered
    as frame 0 before the sequence's frames, at the same size and with the depth range of all ``1 + T`` frames
    (the per-clip normalisation), as MimicMotion's pose maps put the reference pose first.
    """
    seq = validate_sequence(seq)
    size = output_size(seq, width, height)
    K = scale_intrinsics(seq["K"], seq["image_size"], size)
    vertices, joints = pose_sequence(model, seq)
    check_in_front_of_camera(joints, seq)
    if reference is not None:
        ref = validate_sequence(reference, "reference SMPL sequence")
        ref_vertices, ref_joints = pose_sequence(model, ref)  # the reference is one frame (the image's) in practice
        check_in_front_of_camera(ref_joints[:1], {"valid": np.asarray(ref["valid"])[:1]})
        K_ref = scale_intrinsics(ref["K"], ref["image_size"], size)
        if K.ndim == 2:
            K = K.expand(len(vertices), 3, 3)
        vertices = torch.cat([ref_vertices[:1], vertices])
        K = torch.cat([K_ref.reshape(-1, 3, 3)[:1], K])
    return render_maps(vertices, model.faces, K, size, vertex_labels=model.part_labels,
                       part_weights=getattr(model, "part_weights", None), maps=maps, backend=backend, device=device,
                       chunk_size=chunk_size, depth_floor=depth_floor, callback=callback)


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
    size = output_size(seq, width, height)
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
