"""Temporal clean-up of SMPL sequences: gap filling, one body shape per sequence, smooth rotations and paths.

Per-frame estimators (HMR2) jitter and drift in shape; these filters work in continuous representations so
they never average across a quaternion sign flip or an axis-angle wrap: rotations as sign-continuous
quaternions or 6D, translations with Savitzky–Golay or the One-Euro filter.
"""
from __future__ import annotations

import logging

import numpy as np

from ...options import BETAS_MODES, ROTATION_SPACES, TRANSLATION_FILTERS, check_choice
from ...temporal_filters import one_euro, savgol
from ..body.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    continuous_quaternions,
    matrix_to_6d,
    matrix_to_axis_angle,
    quaternion_to_axis_angle,
    sixd_to_matrix,
    slerp,
)
from .sequence import num_frames, validate_sequence

logger = logging.getLogger(__name__)


def _rotations(seq: dict) -> np.ndarray:
    """(T,24,3) axis-angle: root then the 23 body joints."""
    return np.concatenate([seq["global_orient"], seq["body_pose"]], 1).reshape(-1, 24, 3).astype(np.float64)


def _set_rotations(seq: dict, rot: np.ndarray) -> None:
    flat = rot.reshape(rot.shape[0], 72)
    seq["global_orient"] = flat[:, :3].astype(np.float32)
    seq["body_pose"] = flat[:, 3:].astype(np.float32)


def fill_invalid_frames(seq: dict) -> dict:
    """Fill frames with ``valid=False`` from their valid neighbours (slerp for rotations, linear otherwise;
    held constant before the first / after the last valid frame). ``valid`` itself is kept as it was."""
    seq = validate_sequence(seq)
    valid = seq["valid"]
    if valid.all():
        return seq
    if not valid.any():
        raise ValueError("The SMPL sequence has no valid frame (no person found anywhere); nothing to fill from.")
    frames = num_frames(seq)
    good = np.flatnonzero(valid)
    idx = np.arange(frames)
    # neighbours: last valid at or before, first valid at or after
    before = good[np.clip(np.searchsorted(good, idx, side="right") - 1, 0, len(good) - 1)]
    after = good[np.clip(np.searchsorted(good, idx, side="left"), 0, len(good) - 1)]
    before = np.where(before > idx, after, before)
    after = np.where(after < idx, before, after)
    span = np.maximum(after - before, 1)
    frac = np.where(after == before, 0.0, (idx - before) / span)[:, None]
    out = dict(seq)
    for key in ("betas", "transl", "bbox"):
        out[key] = ((1 - frac) * seq[key][before] + frac * seq[key][after]).astype(np.float32)
    out["K"] = ((1 - frac[:, :, None]) * seq["K"][before] + frac[:, :, None] * seq["K"][after]).astype(np.float32)
    quat = axis_angle_to_quaternion(_rotations(seq))
    filled = quaternion_to_axis_angle(slerp(quat[before], quat[after], frac[:, :, None]))
    _set_rotations(out, filled)
    logger.info("Filled %d of %d frames without a person.", int((~valid).sum()), frames)
    return out


def smooth_rotations(rot: np.ndarray, window: int, space: str = "quaternion", order: int = 2) -> np.ndarray:
    """Smooth (T,J,3) axis-angle rotations over time in a continuous representation."""
    check_choice("rotation space", space, ROTATION_SPACES)
    if space == "quaternion":
        quat = continuous_quaternions(axis_angle_to_quaternion(rot))
        smooth = savgol(quat, window, order)
        return quaternion_to_axis_angle(smooth / np.linalg.norm(smooth, axis=-1, keepdims=True))
    smooth = savgol(matrix_to_6d(axis_angle_to_matrix(rot)), window, order)  # "6d"
    return matrix_to_axis_angle(sixd_to_matrix(smooth))


def smooth_sequence(seq: dict, *, model=None, betas: str = "median", rotation_window: int = 9, rotation_space: str = "quaternion",
                    translation_filter: str = "savgol", translation_window: int = 9, one_euro_min_cutoff: float = 1.0,
                    one_euro_beta: float = 0.05, fill_gaps: bool = True) -> dict:
    """Fill gaps, then fix the body shape and smooth rotations and translations.

    Args:
        model (`BodyModel`, *optional*): the sequence's body model. With it, ``betas="median"`` keeps every
            frame's root joint where it was estimated (T' = T + J0(β_t) − J0(β_median)): without that root
            compensation the pelvis jumps by the frame-to-frame change of J0 (centimetres of jitter).
        betas (`str`, defaults to ``"median"``): ``"median"`` over valid frames (one body for the whole clip) or
            ``"keep"``.
        rotation_window (`int`, defaults to 9): Savitzky–Golay window in frames (order 2); ≤ 2 turns it off.
        rotation_space (`str`, defaults to ``"quaternion"``): ``"quaternion"`` (sign-continuous) or ``"6d"``.
        translation_filter (`str`, defaults to ``"savgol"``): ``"savgol"``, ``"one_euro"`` or ``"none"``.
        translation_window (`int`, defaults to 9): Savitzky–Golay window for translations.
        one_euro_min_cutoff / one_euro_beta: One-Euro parameters (Hz, and speed coefficient).
        fill_gaps (`bool`, defaults to True): interpolate frames with ``valid=False`` first (otherwise they are
            smoothed as they are).
    """
    check_choice("betas", betas, BETAS_MODES)
    check_choice("rotation_space", rotation_space, ROTATION_SPACES)
    check_choice("translation_filter", translation_filter, TRANSLATION_FILTERS)
    seq = fill_invalid_frames(seq) if fill_gaps else validate_sequence(seq)
    out = dict(seq)
    transl = seq["transl"].astype(np.float64)
    if betas == "median":
        pool = seq["betas"][seq["valid"]] if seq["valid"].any() else seq["betas"]
        out["betas"] = np.repeat(np.median(pool, 0, keepdims=True), num_frames(seq), 0).astype(np.float32)
        if model is not None:  # root compensation before the path is filtered
            transl = transl + model.rest_joints(seq["betas"])[:, 0] - model.rest_joints(out["betas"])[:, 0]
        elif np.ptp(seq["betas"], axis=0).max() > 0:
            logger.warning("Smooth SMPL Motion: betas=median without a body model moves the pelvis by the change "
                           "of its shape-dependent root joint; connect smpl_model to keep the root in place.")
    if rotation_window > 2:
        _set_rotations(out, smooth_rotations(_rotations(seq), rotation_window, rotation_space))
    if translation_filter == "savgol":
        transl = savgol(transl, translation_window)
    elif translation_filter == "one_euro":
        transl = one_euro(transl, seq["fps"], one_euro_min_cutoff, one_euro_beta)
    out["transl"] = transl.astype(np.float32)
    return out


def jitter(values: np.ndarray) -> float:
    """Root-mean-square second difference over time (a jitter measure in units per frame²)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.sqrt(np.mean(np.diff(values, n=2, axis=0) ** 2)))
