"""Re-viewing a motion: orbit the camera around the body, dolly, zoom, and animate these over time.

Moving the camera around a fixed body equals moving the body the opposite way in front of a fixed camera, which
is what these functions do to an SMPL_SEQUENCE (camera coordinates: x right, y down, z forward): the body is
rotated about a pivot (the first valid frame's root joint) so rotations and the trajectory stay consistent.
Yaw turns about the body's vertical axis (its up direction in the first valid frame, so a body filmed from
above or lying down turns about its own axis, not the camera's): +90° turns an upright body that faces the
camera's right (+x) to face the camera; positive pitch raises the camera so it looks down on the body.
"""
from __future__ import annotations

import numpy as np

from ...options import CAMERA_EASINGS as EASINGS
from ...options import CAMERA_PIVOTS, check_choice
from ..body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_about_axis
from .sequence import num_frames, validate_sequence


def ease(t, kind: str = "linear") -> np.ndarray:
    """Map 0..1 to 0..1: linear, or smooth cubic ease-in/out."""
    check_choice("easing", kind, EASINGS)
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if kind == "linear":
        return t
    if kind == "ease_in_out":
        return t * t * (3 - 2 * t)
    if kind == "ease_in":
        return t ** 3
    return 1 - (1 - t) ** 3  # ease_out


def axis_rotation(axis, degrees: float) -> np.ndarray:
    """3×3 rotation by ``degrees`` about a unit ``axis`` (right-handed)."""
    return axis_angle_to_matrix(np.asarray(axis, np.float64) / np.linalg.norm(axis) * np.deg2rad(degrees))


def orbit_rotation(yaw_deg: float, pitch_deg: float, down=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Rotation applied to the body for a camera orbit of ``yaw`` about the body's vertical, then ``pitch``.

    ``down`` is the body's downward direction in camera axes ((0, 1, 0) for an upright body: OpenCV's y points
    down). The camera moving by +yaw around the body is the body turning by the same angle about ``down``,
    which for an upright body is a turn from +x towards −z: toward the camera. Pitch (about camera x) tips the
    body's top (−y) toward the camera, as a raised camera sees it.
    """
    return rotation_about_axis("x", pitch_deg) @ axis_rotation(down, yaw_deg)


def body_down_axis(global_orient) -> np.ndarray:
    """The body's downward axis in camera coordinates: SMPL's −y (bodies are y-up) turned by the root rotation."""
    return axis_angle_to_matrix(global_orient) @ np.array([0.0, -1.0, 0.0])


def set_camera(seq: dict, model, *, yaw: float = 0.0, pitch: float = 0.0, dolly: float = 1.0, zoom: float = 1.0,
               yaw_end: float | None = None, pitch_end: float | None = None, dolly_end: float | None = None,
               zoom_end: float | None = None, easing: str = "linear", pivot: str = "first_frame") -> dict:
    """Orbit / dolly / zoom the camera, constant or along a path from start to end values over the clip.

    Args:
        yaw, pitch (`float`, degrees): camera orbit around the pivot (yaw about the body's vertical axis in the
            first valid frame, pitch raises the camera so it looks down for positive values).
        dolly (`float`, defaults to 1.0): distance factor: the pivot's depth is multiplied by it (2 = twice as far).
        zoom (`float`, defaults to 1.0): focal-length factor (2 = twice as large in the image).
        *_end (`float`, *optional*): value at the last frame; ``None`` keeps the start value (no path).
        easing (`str`, defaults to ``"linear"``): how values move from start to end.
        pivot (`str`, defaults to ``"first_frame"``): ``"first_frame"`` (the first valid root: the whole
            trajectory turns with the camera) or ``"per_frame"`` (each frame turns about its own root).
    """
    seq = validate_sequence(seq)
    if pivot not in CAMERA_PIVOTS:
        raise ValueError(f"pivot must be 'first_frame' or 'per_frame', got {pivot!r}.")
    for name, value in (("dolly", dolly), ("zoom", zoom), ("dolly_end", dolly_end), ("zoom_end", zoom_end)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}.")
    frames = num_frames(seq)
    t = ease(np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1), easing)

    def path(start, end):
        return np.full(frames, float(start)) if end is None else start + (end - start) * t

    yaws, pitches = path(yaw, yaw_end), path(pitch, pitch_end)
    dollies, zooms = path(dolly, dolly_end), path(zoom, zoom_end)

    j0 = model.rest_joints(seq["betas"], phenotype=seq.get("phenotype"))[:, 0]
    root = seq["transl"].astype(np.float64) + j0
    valid = np.flatnonzero(seq["valid"])
    first = int(valid[0]) if len(valid) else 0
    centres = root if pivot == "per_frame" else np.repeat(root[first:first + 1], frames, 0)
    down = body_down_axis(seq["global_orient"][first])
    rot = np.stack([orbit_rotation(y, p, down) for y, p in zip(yaws, pitches)])
    new_root = centres + np.einsum("tij,tj->ti", rot, root - centres)
    # dolly: move the pivot (and everything with it) along the optical axis
    new_root[:, 2] += (dollies - 1.0) * centres[:, 2]
    orient = matrix_to_axis_angle(rot @ axis_angle_to_matrix(seq["global_orient"]))
    k = seq["K"].astype(np.float64).copy()
    k[:, 0, 0] *= zooms
    k[:, 1, 1] *= zooms
    out = dict(seq)
    out.pop("keypoints", None)  # 2D keypoints of the old view
    out.update(global_orient=orient.astype(np.float32), transl=(new_root - j0).astype(np.float32),
               K=k.astype(np.float32), bbox=np.zeros((frames, 4), np.float32))
    return validate_sequence(out)
