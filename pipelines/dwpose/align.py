"""Fitting driving poses onto the reference body (docs/architecture.md, *Reference algorithms*), plus optional
smoothing and bone retargeting.

The reference fit works in coordinates normalised by each image's size: a least-squares line maps driving y to
reference y over the body ids of :data:`skeleton.ALIGN_IDS` that are confident (> 0.3) on the reference; the x
slope follows from the y slope so pixels keep their aspect ratio, and the x offset is the mean difference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..options import POSE_SMOOTHING as SMOOTHING
from ..options import check_choice
from ..temporal_filters import one_euro, savgol
from . import skeleton as sk
from .keypoints import PoseFrame

logger = logging.getLogger(__name__)


@dataclass
class AlignmentFit:
    """``normalised_reference = normalised_driving * scale + offset`` (x and y)."""

    scale: np.ndarray  # (ax, ay)
    offset: np.ndarray  # (bx, by)
    frames_used: int
    points_used: int


def reference_ids(reference: PoseFrame) -> list[int]:
    """Alignment ids confident on the reference's first person; a clear error when there is nobody."""
    if reference.num_people == 0:
        raise ValueError("reference_pose has no person, so the driving poses cannot be fitted to the reference body. "
                         "Use a reference image where one person is clearly visible (whole body if possible).")
    ids = [i for i in sk.ALIGN_IDS if reference.scores[0, i] > sk.CONFIDENCE_THRESHOLD]
    if len(ids) < 2:
        raise ValueError(f"reference_pose: only {len(ids)} of the body keypoints used for alignment (nose, neck, "
                         "shoulders, hips, knees, ankles, eyes, ears) are confident (score > 0.3); at least 2 are "
                         "needed. Use a reference image where the person is clearly visible.")
    return ids


def _normalised(frame: PoseFrame, person: int = 0) -> np.ndarray:
    return frame.keypoints[person] / np.array([float(frame.width), float(frame.height)])


def fit_alignment(driving: list[PoseFrame], reference: PoseFrame, weighted: bool = False,
                  confident_only: bool = False) -> AlignmentFit:
    """Fit the driving → reference mapping.

    Args:
        driving (`list[PoseFrame]`): driving frames (any size; each is normalised by its own canvas).
        reference (`PoseFrame`): the reference image's pose; its first person is the target body.
        weighted (`bool`, *optional*, defaults to False): weight each point by driving score × reference score.
        confident_only (`bool`, *optional*, defaults to False): fit on the first person of every frame, only on
            its points scoring > 0.3, skipping frames without any. The reference instead uses every frame with
            exactly one person and all its points, whatever their confidence.
    """
    ids = reference_ids(reference)
    ref = _normalised(reference)[ids]
    ref_conf = reference.scores[0, ids]
    xs, ys, rx, ry, w = [], [], [], [], []
    frames_used = 0
    for frame in driving:
        if confident_only:
            if frame.num_people == 0:
                continue
            mask = frame.scores[0, ids] > sk.CONFIDENCE_THRESHOLD
        else:
            if frame.num_people != 1:
                continue
            mask = np.ones(len(ids), dtype=bool)
        if not mask.any():
            continue
        pts = _normalised(frame)[ids][mask]
        xs.append(pts[:, 0])
        ys.append(pts[:, 1])
        rx.append(ref[mask, 0])
        ry.append(ref[mask, 1])
        w.append(frame.scores[0, ids][mask] * ref_conf[mask])
        frames_used += 1
    if frames_used == 0:
        raise ValueError("No driving frame has a usable person to fit the alignment on.")
    xs, ys, rx, ry, w = (np.concatenate(v) for v in (xs, ys, rx, ry, w))
    weights = np.clip(w, 1e-6, None) if weighted else None
    try:
        ay, by = np.polyfit(ys, ry, 1, w=None if weights is None else np.sqrt(weights))
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ValueError(f"The alignment fit failed on {len(ys)} points ({exc}).") from exc
    first = next(f for f in driving)
    fh, fw = first.height, first.width
    ax = ay / (fh / fw / reference.height * reference.width)
    bx = np.average(rx - xs * ax, weights=weights)
    return AlignmentFit(np.array([ax, ay]), np.array([bx, by]), frames_used, len(ys))


def fallback_fit(driving: list[PoseFrame], reference: PoseFrame) -> AlignmentFit:
    """Driving frame fitted by height into the reference canvas, centred (used when nothing can be fitted)."""
    first = driving[0]
    ay = 1.0
    ax = ay * (first.width * reference.height) / (first.height * reference.width)
    return AlignmentFit(np.array([ax, ay]), np.array([(1.0 - ax) / 2.0, 0.0]), 0, 0)


def apply_alignment(frames: list[PoseFrame], fit: AlignmentFit, width: int, height: int) -> list[PoseFrame]:
    """Map every point of every person (and boxes) into a ``width`` × ``height`` canvas."""
    out = []
    size = np.array([float(width), float(height)])
    for frame in frames:
        own = np.array([float(frame.width), float(frame.height)])
        kp = (frame.keypoints / own * fit.scale + fit.offset) * size
        boxes = frame.boxes.copy()
        for cols in ((0, 1), (2, 3)):
            boxes[:, cols] = (boxes[:, cols] / own * fit.scale + fit.offset) * size
        new = PoseFrame(kp, frame.scores.copy(), width, height, frame.face_present.copy(),
                        frame.hands_present.copy(), boxes, dict(frame.extra))
        out.append(new)
    return out


# --------------------------------------------------------------------------------------------------------------
# Temporal smoothing of the first person


def _runs(frames: list[PoseFrame]) -> list[list[int]]:
    runs, current = [], []
    for i, frame in enumerate(frames):
        if frame.num_people > 0:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def smooth_first_person(frames: list[PoseFrame], method: str = "none", window: int = 7,
                        min_cutoff: float = 1.0, beta: float = 0.05, rate: float = 30.0) -> list[PoseFrame]:
    """Smooth the first person's keypoints over time, within runs of consecutive frames that have one."""
    check_choice("smoothing", method, SMOOTHING)
    out = [f.copy() for f in frames]
    if method == "none":
        return out
    for run in _runs(frames):
        track = np.stack([frames[i].keypoints[0] for i in run])  # [T, 134, 2]
        if method == "one-euro":
            smooth = one_euro(track, rate, min_cutoff=min_cutoff, beta=beta)
        else:
            smooth = savgol(track, window)
        for t, i in enumerate(run):
            out[i].keypoints[0] = smooth[t]
    return out


# --------------------------------------------------------------------------------------------------------------
# Bone retargeting of the first person


_HAND_WRIST = ((sk.LEFT_HAND, 7), (sk.RIGHT_HAND, 4))  # hand block follows its wrist (OpenPose left wrist = 7)
_FEET_ANKLE = ((slice(18, 21), 13), (slice(21, 24), 10))  # COCO-WholeBody feet: left 17–19, right 20–22


def bone_lengths(frame: PoseFrame, person: int = 0) -> dict[tuple[int, int], float]:
    """Pixel length of each bone of :data:`skeleton.BONE_TREE` whose two ends score > 0.3."""
    kp, sc = frame.keypoints[person], frame.scores[person]
    out = {}
    for a, b in sk.BONE_TREE:
        if sc[a] > sk.CONFIDENCE_THRESHOLD and sc[b] > sk.CONFIDENCE_THRESHOLD:
            out[(a, b)] = float(np.linalg.norm(kp[b] - kp[a]))
    return out


RETARGET_RATIO_RANGE = (0.67, 1.5)  # a bone is scaled by at most this much: a first frame seen at another angle


def retarget_bones(frames: list[PoseFrame], reference: PoseFrame) -> list[PoseFrame]:
    """Give the first person of each (aligned) frame the reference's bone proportions, keeping bone directions
    and foreshortening.

    Each bone is scaled by one factor for the whole clip: its length on the reference over its length in the
    first driving frame where both its ends score > 0.3 (the per-bone ratio of Wan2.2-Animate's retarget, which
    assumes that frame and the reference show the person from the same side), clamped to
    :data:`RETARGET_RATIO_RANGE`. Walks the bone tree from the neck; a bone unknown on the reference or in the
    clip, or degenerate, keeps its driving length. Hands follow their wrists, the face its nose, the feet their
    ankles (rigid shifts).
    """
    target = bone_lengths(reference)
    factor: dict[tuple[int, int], float] = {}
    for frame in frames:
        if frame.num_people == 0:
            continue
        for bone, length in bone_lengths(frame).items():
            if bone not in factor and bone in target and length > 1e-9:
                factor[bone] = float(np.clip(target[bone] / length, *RETARGET_RATIO_RANGE))
    out = []
    for frame in frames:
        new = frame.copy()
        if frame.num_people == 0:
            out.append(new)
            continue
        old = frame.keypoints[0]
        kp = new.keypoints[0]
        for a, b in sk.BONE_TREE:
            kp[b] = kp[a] + (old[b] - old[a]) * factor.get((a, b), 1.0)
        for part, joint in _HAND_WRIST + _FEET_ANKLE + ((sk.FACE, 0),):
            kp[part] = old[part] + (kp[joint] - old[joint])
        out.append(new)
    return out


def align_poses(driving: list[PoseFrame], reference: PoseFrame, weighted: bool = False,
                confident_only: bool = False, smoothing: str = "none", retarget: bool = False,
                **smoothing_options) -> tuple[list[PoseFrame], AlignmentFit]:
    """Reference fit → map into the reference canvas → optional smoothing → optional bone retargeting."""
    reference_ids(reference)  # a clear error first when the reference has nobody
    if not driving:
        return [], AlignmentFit(np.ones(2), np.zeros(2), 0, 0)
    try:
        fit = fit_alignment(driving, reference, weighted=weighted, confident_only=confident_only)
    except ValueError as exc:
        if "No driving frame" not in str(exc):
            raise
        logger.warning("Align pose: no driving frame has a usable person; driving poses are only scaled into the "
                       "reference frame, not fitted.")
        fit = fallback_fit(driving, reference)
    frames = apply_alignment(driving, fit, reference.width, reference.height)
    frames = smooth_first_person(frames, smoothing, **smoothing_options)
    if retarget:
        frames = retarget_bones(frames, reference)
    logger.info("Align pose: fitted on %d frames / %d points (scale %.4f, %.4f; offset %.4f, %.4f)",
                fit.frames_used, fit.points_used, *fit.scale, *fit.offset)
    return frames, fit
