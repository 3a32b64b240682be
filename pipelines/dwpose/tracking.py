"""Which person to follow in a video, and keeping the same identity across frames (IoU tracking)."""
from __future__ import annotations

import logging

import numpy as np

from ..options import MISSING_PERSON_MODES as MISSING_MODES
from ..options import PERSON_SELECTIONS as SELECTIONS
from ..options import check_choice
from . import skeleton as sk
from .keypoints import PoseFrame, person_box

logger = logging.getLogger(__name__)

MIN_CONFIDENT_BODY_POINTS = 3  # fewer confident body points than this is "nobody" (e.g. the whole-image fallback)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes (continuous coordinates, no +1)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def real_people(frame: PoseFrame, min_points: int = MIN_CONFIDENT_BODY_POINTS) -> list[int]:
    """Indices of people with at least ``min_points`` body keypoints scoring > 0.3.

    A frame where the detector found nobody (its whole-image fallback box) has no real people.
    """
    if frame.extra.get("fallback_box"):
        return []
    confident = (frame.scores[:, sk.BODY] > sk.CONFIDENCE_THRESHOLD).sum(axis=1)
    return [int(p) for p in np.flatnonzero(confident >= min_points)]


def pick_person(frame: PoseFrame, candidates: list[int], selection: str, index: int = 0) -> int | None:
    """One of ``candidates`` by rule: biggest box area, box centre nearest the image centre, or detection order."""
    if not candidates:
        return None
    if selection == "index":
        return candidates[index] if index < len(candidates) else None
    boxes = {p: person_box(frame, p) for p in candidates}
    boxes = {p: b for p, b in boxes.items() if b is not None}
    if not boxes:
        return candidates[0]
    if selection == "largest":
        return max(boxes, key=lambda p: (boxes[p][2] - boxes[p][0]) * (boxes[p][3] - boxes[p][1]))
    if selection == "most central":
        cx, cy = frame.width / 2.0, frame.height / 2.0
        return min(boxes, key=lambda p: ((boxes[p][0] + boxes[p][2]) / 2 - cx) ** 2
                   + ((boxes[p][1] + boxes[p][3]) / 2 - cy) ** 2)
    check_choice("person selection", selection, [s for s in SELECTIONS if s != "all"])


def track_person(frames: list[PoseFrame], selection: str = "largest", index: int = 0,
                 iou_threshold: float = 0.3) -> list[int | None]:
    """Per frame, the index of the followed person (None where it is absent).

    Every person gets an identity, carried from frame to frame by greedy best-IoU matching (≥ ``iou_threshold``)
    against each identity's last box. The followed identity is picked by ``selection`` in the first frame with
    people. While it is missing, nobody else is taken for it; a person who appears as a new identity then is
    adopted (picked by the same rule among the newcomers), so someone who left and came back is found again.
    """
    check_choice("person selection for tracking", selection, [s for s in SELECTIONS if s != "all"])
    last_boxes: dict[int, np.ndarray] = {}
    next_id = 0
    target = None
    picked: list[int | None] = []
    for frame in frames:
        candidates = [p for p in real_people(frame) if person_box(frame, p) is not None]
        boxes = {p: person_box(frame, p) for p in candidates}
        pairs = sorted(((iou(last_boxes[t], boxes[p]), t, p) for t in last_boxes for p in candidates), reverse=True)
        identity: dict[int, int] = {}
        used_tracks = set()
        for overlap, t, p in pairs:
            if overlap < iou_threshold:
                break
            if t in used_tracks or p in identity:
                continue
            identity[p] = t
            used_tracks.add(t)
        newcomers = []
        for p in candidates:
            if p not in identity:
                identity[p], next_id = next_id, next_id + 1
                newcomers.append(p)
        for p in candidates:
            last_boxes[identity[p]] = boxes[p]
        present = {t: p for p, t in identity.items()}
        if target is None or (target not in present and newcomers):
            choice = pick_person(frame, candidates if target is None else newcomers, selection, index)
            target = identity[choice] if choice is not None else target
        picked.append(present.get(target) if target is not None else None)
    return picked


def select_people(frames: list[PoseFrame], selection: str = "largest", index: int = 0, keep_others: bool = False,
                  iou_threshold: float = 0.3) -> tuple[list[PoseFrame], list[bool]]:
    """Reorder each frame so the followed person comes first; drop the others unless ``keep_others``.

    ``selection="all"`` keeps every detection as the reference does. Returns the frames and, per frame, whether
    the followed person was found (always True for ``"all"`` when the frame has a real person).
    """
    if selection == "all":
        return [f.copy() for f in frames], [bool(real_people(f)) for f in frames]
    picked = track_person(frames, selection, index, iou_threshold)
    out, found = [], []
    for frame, p in zip(frames, picked):
        if p is None:
            others = [q for q in real_people(frame)] if keep_others else []
            out.append(frame.select(others))
            found.append(False)
            continue
        others = [q for q in range(frame.num_people) if q != p] if keep_others else []
        out.append(frame.select([p] + others))
        found.append(True)
    return out, found


def fill_missing(frames: list[PoseFrame], found: list[bool], mode: str = "interpolate") -> list[PoseFrame]:
    """Frames whose person was not found: interpolate person 0 linearly between the nearest frames that have
    one (copy the nearest at the ends), leave them empty, or keep what the detector gave (the reference draws
    its whole-image fallback). A sequence without any found frame becomes all empty for both fill modes."""
    check_choice("missing-person mode", mode, MISSING_MODES)
    if mode == "keep (reference)":
        return [f.copy() for f in frames]
    good = [i for i, ok in enumerate(found) if ok and frames[i].num_people > 0]
    out = []
    for i, frame in enumerate(frames):
        if i in good or (found[i] and frame.num_people > 0):
            out.append(frame.copy())
            continue
        if mode == "empty" or not good:
            out.append(PoseFrame.empty(frame.width, frame.height))
            continue
        prev = max((g for g in good if g < i), default=None)
        nxt = min((g for g in good if g > i), default=None)
        out.append(_interpolated(frames, i, prev, nxt))
    return out


def _normalised_person(frame: PoseFrame):
    scale = np.array([frame.width, frame.height], dtype=np.float64)
    return frame.keypoints[0] / scale, frame.scores[0]


def _interpolated(frames: list[PoseFrame], i: int, prev: int | None, nxt: int | None) -> PoseFrame:
    target = frames[i]
    scale = np.array([target.width, target.height], dtype=np.float64)
    if prev is None or nxt is None:
        src = frames[prev if prev is not None else nxt]
        kp, sc = _normalised_person(src)
        face, hands = src.face_present[:1], src.hands_present[:1]
    else:
        t = (i - prev) / (nxt - prev)
        (k0, s0), (k1, s1) = _normalised_person(frames[prev]), _normalised_person(frames[nxt])
        kp = (1 - t) * k0 + t * k1
        sc = np.minimum(s0, s1)  # a point is only as trustworthy as its weaker end
        face = frames[prev].face_present[:1] & frames[nxt].face_present[:1]
        hands = frames[prev].hands_present[:1] & frames[nxt].hands_present[:1]
    out = PoseFrame(kp[None] * scale, sc[None], target.width, target.height, face, hands)
    out.extra["interpolated"] = True
    return out


def follow_person(detected: list[PoseFrame], selection: str = "all", index: int = 0, keep_others: bool = False,
                  missing: str = "interpolate", label: str | None = None) -> list[PoseFrame]:
    """Detect Pose's choice of people: pick the person to follow (:func:`select_people`), then fill the frames
    where they are missing (:func:`fill_missing`; ``"keep (reference)"`` keeps whatever the detector gave there,
    including its whole-image guess).

    Raises:
        `ValueError` when nobody, or not the chosen person, is in any frame (blank pose maps would only fail or
        mislead much later), except under ``"keep (reference)"``, which keeps the reference's whole-image guess
        even then; ``label`` names the choice in that message (defaults to ``selection``).
    """
    count = len(detected)
    selected, found = select_people(detected, selection, index, keep_others)
    absent = found.count(False)
    if absent == count and missing != "keep (reference)":
        if not any(real_people(frame) for frame in detected):
            raise ValueError(f"Detect Pose found no person in any of the {count} frames: use frames where the "
                             "person is visible (whole body, not tiny), and the detector yolox_l.onnx.")
        raise ValueError(f"The person to follow ({label or selection}, person_index {index}) is in none of the "
                         f"{count} frames: pick 'largest' or 'most central', or another person_index.")
    if missing == "keep (reference)":
        selected = [s if ok else d for s, d, ok in zip(selected, detected, found)]
    result = fill_missing(selected, found, missing)
    if absent:
        logger.warning("Detect pose: no person found in %d of %d frames (%s).", absent, count, missing)
    return result
