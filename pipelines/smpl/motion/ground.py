"""The ground step of shape transfer: the driving feet put on the reference person's ground.

Mode ``"contacts"`` (default) plants each foot where it touches down, and keeps the shift while it stays down and
through the frames in the air, blending smoothly from one contact to the next:

1. Feet: per frame and per foot (SMPL parts ankle + toes), the lowest point's height along the reference body's
   up axis, and how fast it moves up or down (m/s: the slower of the step from the frame before and the step to
   the frame after, so the last frame on the ground before a take-off still counts as still).
2. Contacts: a foot touches the ground in a frame when it is low (within :data:`CONTACT_HEIGHT_M` of the lowest
   foot point of the clip, and within :data:`PAIR_HEIGHT_M` of the other foot or below it: a swinging foot a
   couple of centimetres up is not standing) and slow (vertical speed under :data:`CONTACT_SPEED_M_S`). A jump's
   take-off and landing move fast and the flight is high, so frames in the air are never contacts.
3. Offsets: each contact (a run of contact frames of one foot) gets the shift along the up axis that puts that
   foot on the reference ground where it touched down (its median height over the first :data:`TOUCHDOWN_S`
   of the run; a shorter run is no contact), for the whole run: a foot that sinks or rises while it stays down (a squat on a body whose legs
   bend differently) is not pulled back frame by frame, the motion keeps its own bend. Frames touching with both
   feet take the larger of the two contacts' shifts (no foot below the ground; a swinging foot that is briefly
   low and still at the top of its arc never pushes the standing one down); frames in the air are interpolated linearly between the
   contacts before and after (held before the first and after the last), so a jump keeps its height. The result
   is smoothed over :data:`SMOOTHING_S` so nothing pops when a contact starts or ends. A clip without any contact
   is left where it is (there is no ground to go by): a jump whose take-off smoothing blurred, but also a very
   noisy estimate whose feet are never low and still for 0.1 s (bench "noise 8° (walk)": 7.8% 3D error against
   7.0% with the constant rule).

Mode ``"constant"`` is the earlier rule: one shift for the whole clip, from a low percentile
(:data:`GROUND_PERCENTILE`) of the per-frame lowest foot point. It lifts a whole squat when the body sinks at the
bottom, and pushes a clip that is mostly in the air into the floor; kept for comparison (bench/retarget.py).
"""
from __future__ import annotations

import logging

import numpy as np

from ...options import GROUND_MODES, check_choice

logger = logging.getLogger(__name__)

LEFT_FOOT_PARTS = (7, 10)  # SMPL parts: left ankle, left foot (toes)
RIGHT_FOOT_PARTS = (8, 11)
FOOT_PARTS = LEFT_FOOT_PARTS + RIGHT_FOOT_PARTS
GROUND_PERCENTILE = 10.0  # "constant" mode
CONTACT_HEIGHT_M = 0.06
CONTACT_SPEED_M_S = 0.5
PAIR_HEIGHT_M = 0.01
TOUCHDOWN_S = 0.1  # how much of a contact decides its height; shorter contacts are not counted
SMOOTHING_S = 0.05  # Gaussian sigma of the offsets, seconds


def foot_heights(vertices: np.ndarray, part_labels: np.ndarray, up: np.ndarray) -> np.ndarray:
    """`(T,2)` height along ``up`` of the lowest point of the left and right foot in ``vertices`` `(T,V,3)`."""
    out = []
    for parts in (LEFT_FOOT_PARTS, RIGHT_FOOT_PARTS):
        mask = np.isin(part_labels, parts)
        out.append((vertices[:, mask] @ up).min(1))
    return np.stack(out, 1)


def vertical_speed(heights: np.ndarray, fps: float) -> np.ndarray:
    """`(T,2)` vertical speed in m/s: the smaller of |step from the previous frame| and |step to the next|."""
    if len(heights) < 2:
        return np.zeros_like(heights)
    step = np.abs(np.diff(heights, axis=0)) * float(fps)
    before = np.concatenate([step[:1], step])
    after = np.concatenate([step, step[-1:]])
    return np.minimum(before, after)


def detect_contacts(heights: np.ndarray, fps: float, *, height_m: float = CONTACT_HEIGHT_M,
                    pair_m: float = PAIR_HEIGHT_M, speed_m_s: float = CONTACT_SPEED_M_S) -> np.ndarray:
    """`(T,2)` bool: the foot is low (within ``height_m`` of the clip's lowest foot point and ``pair_m`` of the
    lower foot of its frame) and slow."""
    low = (heights <= heights.min() + height_m) & (heights <= heights.min(1, keepdims=True) + pair_m)
    return low & (vertical_speed(heights, fps) <= speed_m_s)


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(values) < 3:
        return values
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    padded = np.pad(values, radius, mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


def contact_runs(contacts: np.ndarray) -> list[tuple[int, int, int]]:
    """``(foot, first frame, end frame)`` of every run of consecutive contact frames in ``contacts`` `(T,2)`."""
    runs = []
    for foot in range(contacts.shape[1]):
        padded = np.concatenate([[False], contacts[:, foot], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(padded))
        runs += [(foot, int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
    return runs


def contact_offsets(heights: np.ndarray, contacts: np.ndarray, ground: float, fps: float,
                    touchdown_s: float = TOUCHDOWN_S, smoothing_s: float = SMOOTHING_S) -> np.ndarray | None:
    """`(T,)` shift along the up axis per frame (step 3 of the module docstring); ``None`` without contacts."""
    runs = contact_runs(contacts)
    if not runs:
        return None
    frames = len(heights)
    best = np.full(frames, -np.inf)
    touchdown = max(int(round(touchdown_s * float(fps))), 1)
    for foot, start, end in runs:
        if end - start < touchdown and (start, end) != (0, frames):
            continue  # a foot still for an instant (the top of a swing, smoothing at the clip's ends) is no contact
        shift = ground - float(np.median(heights[start:min(start + touchdown, end), foot]))
        best[start:end] = np.maximum(best[start:end], shift)
    touching = np.flatnonzero(np.isfinite(best))
    if not len(touching):
        return None
    offsets = np.interp(np.arange(frames), touching, best[touching])
    return _gaussian_smooth(offsets, smoothing_s * float(fps))


def ground_shift(vertices: np.ndarray, part_labels: np.ndarray, up: np.ndarray, ground: float, fps: float,
                 valid: np.ndarray | None = None, mode: str = "contacts") -> np.ndarray:
    """`(T,)` shift along ``up`` (metres) that puts the feet of ``vertices`` `(T,V,3)` (camera space, translation
    included) on ``ground`` (a height along ``up``)."""
    check_choice("ground mode", mode, GROUND_MODES)
    heights = foot_heights(vertices, part_labels, up)
    if mode == "constant":
        lowest = heights.min(1)
        pool = lowest[valid] if valid is not None and valid.any() else lowest
        return np.full(len(heights), ground - np.percentile(pool, GROUND_PERCENTILE))
    offsets = contact_offsets(heights, detect_contacts(heights, fps), ground, fps)
    if offsets is None:
        logger.info("Transfer Shape: the feet touch the ground in no frame (in the air all along); the motion "
                    "keeps its height.")
        return np.zeros(len(heights))
    return offsets
