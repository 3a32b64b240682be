"""Whole-body pose arrays ↔ the ``POSE_KEYPOINT`` socket payload (docs/architecture.md, *Types between nodes*).

``POSE_KEYPOINT`` is a list with one dict per frame, compatible with comfyui_controlnet_aux::

    {"people": [{"pose_keypoints_2d": [x, y, c] * 18,           # OpenPose-18 order, pixels
                 "face_keypoints_2d": [x, y, c] * 68 or None,     # 70 (OpenPose pupils) accepted on input
                 "hand_left_keypoints_2d": [x, y, c] * 21 or None,
                 "hand_right_keypoints_2d": [x, y, c] * 21 or None,
                 "foot_keypoints_2d": [x, y, c] * 6,               # optional: DWPose's toes and heels
                 "person_box_xyxy": [x1, y1, x2, y2, score]}],   # optional, our detector's box
     "canvas_width": W, "canvas_height": H}

Coordinates are pixels of a ``canvas_width`` × ``canvas_height`` frame and ``c`` is the real detector score
(comfyui_controlnet_aux writes 1.0 / 0.0 instead; such input is accepted, as are 0..1 normalised coordinates).

Inside the pipeline a frame is a :class:`PoseFrame`: the 134-point whole-body layout of :mod:`.skeleton`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import skeleton as sk

_PART_KEYS = (
    ("pose_keypoints_2d", sk.BODY, sk.NUM_BODY),
    ("face_keypoints_2d", sk.FACE, sk.NUM_FACE),
    ("hand_left_keypoints_2d", sk.LEFT_HAND, sk.NUM_HAND),
    ("hand_right_keypoints_2d", sk.RIGHT_HAND, sk.NUM_HAND),
)
BOX_KEY = "person_box_xyxy"
# DWPose's six foot points (left big toe, left small toe, left heel, right big toe, right small toe, right heel), as
# other DWPose packs name them; written only when some foot point was found.
FOOT_KEY = "foot_keypoints_2d"
NUM_FOOT = 6


@dataclass
class PoseFrame:
    """The people of one frame in the 134-point layout.

    Args:
        keypoints (`np.ndarray` float64 `[P, 134, 2]`): x, y in pixels of the canvas.
        scores (`np.ndarray` float64 `[P, 134]`): real detector scores (0 where a part is absent).
        width, height (`int`): canvas size in pixels.
        face_present (`np.ndarray` bool `[P]`), hands_present (`np.ndarray` bool `[P, 2]` left, right): parts
            that exist (a POSE_KEYPOINT person may carry ``None`` for face or hands).
        boxes (`np.ndarray` float64 `[P, 5]`, *optional*): detector boxes xyxy + score; NaN rows where unknown.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    width: int
    height: int
    face_present: np.ndarray = None
    hands_present: np.ndarray = None
    boxes: np.ndarray = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64).reshape(-1, sk.NUM_KEYPOINTS, 2)
        n = self.keypoints.shape[0]
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(n, sk.NUM_KEYPOINTS)
        self.width, self.height = int(self.width), int(self.height)
        if self.face_present is None:
            self.face_present = np.ones(n, dtype=bool)
        if self.hands_present is None:
            self.hands_present = np.ones((n, 2), dtype=bool)
        if self.boxes is None:
            self.boxes = np.full((n, 5), np.nan)
        self.face_present = np.asarray(self.face_present, dtype=bool).reshape(n)
        self.hands_present = np.asarray(self.hands_present, dtype=bool).reshape(n, 2)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(n, 5)

    @property
    def num_people(self) -> int:
        return self.keypoints.shape[0]

    @classmethod
    def empty(cls, width: int, height: int) -> "PoseFrame":
        return cls(np.zeros((0, sk.NUM_KEYPOINTS, 2)), np.zeros((0, sk.NUM_KEYPOINTS)), width, height)

    def select(self, indices) -> "PoseFrame":
        """A frame with only the people at ``indices`` (in that order)."""
        idx = np.asarray(list(indices), dtype=np.int64)
        return PoseFrame(self.keypoints[idx], self.scores[idx], self.width, self.height,
                         self.face_present[idx], self.hands_present[idx], self.boxes[idx], dict(self.extra))

    def copy(self) -> "PoseFrame":
        return self.select(range(self.num_people))


# --------------------------------------------------------------------------------------------------------------
# PoseFrame → POSE_KEYPOINT


def _flat(points: np.ndarray, scores: np.ndarray) -> list[float]:
    return np.concatenate([points, scores[:, None]], axis=1).reshape(-1).astype(float).tolist()


def frame_to_openpose(frame: PoseFrame, body: bool = True, hands: bool = True, face: bool = True) -> dict:
    """One ``POSE_KEYPOINT`` frame dict; parts switched off (or absent) are written as ``None``.

    With ``body=False`` the body points are written with score 0 (OpenPose JSON always has a body array).
    """
    people = []
    for p in range(frame.num_people):
        kp, sc = frame.keypoints[p], frame.scores[p]
        person = {}
        for key, part, count in _PART_KEYS:
            present = {"pose_keypoints_2d": True, "face_keypoints_2d": face and frame.face_present[p],
                       "hand_left_keypoints_2d": hands and frame.hands_present[p, 0],
                       "hand_right_keypoints_2d": hands and frame.hands_present[p, 1]}[key]
            if not present:
                person[key] = None
            elif key == "pose_keypoints_2d" and not body:
                person[key] = [0.0] * (3 * count)
            else:
                person[key] = _flat(kp[part], sc[part])
        if body and np.any(sc[sk.FEET] > 0):
            person[FOOT_KEY] = _flat(kp[sk.FEET], sc[sk.FEET])
        if np.all(np.isfinite(frame.boxes[p])):
            person[BOX_KEY] = frame.boxes[p].astype(float).tolist()
        people.append(person)
    return {"people": people, "canvas_width": frame.width, "canvas_height": frame.height}


def frames_to_pose_keypoint(frames: list[PoseFrame], body: bool = True, hands: bool = True,
                            face: bool = True) -> list[dict]:
    return [frame_to_openpose(f, body=body, hands=hands, face=face) for f in frames]


# --------------------------------------------------------------------------------------------------------------
# POSE_KEYPOINT → PoseFrame


MAX_CANVAS = 2 ** 20  # pixels a side; sizes that are drawn or rendered are bounded further (size_limits)
COORDINATE_SPAN = 10  # points may lie up to this many canvas sizes away (OpenPose writes 0 or -1 when missing)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _describe(value) -> str:
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return f"a nested {type(value).__name__}"  # never repr(): a deeply nested list would recurse
    if isinstance(value, int) and value.bit_length() > 128:  # repr() of a 5,000-digit int raises
        return f"a whole number of about {int(value.bit_length() * 0.30103)} digits"
    return repr(value)[:40]


def _numbers(values, key: str, where: str) -> np.ndarray:
    """A flat float64 array from a flat list of numbers, a list of ``[x, y, c]`` lists or a numeric array; anything
    else (strings, deeper nesting, NaN, infinities) is a ``ValueError`` naming ``where`` and ``key``."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iuf":
            raise ValueError(f"{where}: '{key}' is an array of {values.dtype}, not of numbers.")
        flat = values.astype(np.float64).reshape(-1)
    elif isinstance(values, (list, tuple)):
        triples = bool(values) and isinstance(values[0], (list, tuple, np.ndarray))
        out = []
        for i, item in enumerate(values):
            if not triples:
                if not _is_number(item):
                    raise ValueError(f"{where}: '{key}' value {i} is {_describe(item)}, not a number.")
                out.append(item)
            elif (isinstance(item, (list, tuple, np.ndarray)) and len(item) == 3
                  and all(_is_number(v) for v in item)):
                out.extend(item)
            else:
                raise ValueError(f"{where}: '{key}' point {i} is {_describe(item)}; each point must be [x, y, c] "
                                 "numbers (or give one flat list of numbers).")
        flat = np.asarray(out, dtype=np.float64)
    else:
        raise ValueError(f"{where}: '{key}' must be a list of numbers [x, y, c, ...], got {type(values).__name__}.")
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        raise ValueError(f"{where}: '{key}' value {bad[0]} ({flat[bad[0]]}) is not a finite number (NaN or "
                         "infinite); fix or drop that frame.")
    return flat


def _canvas_side(value, key: str, where: str) -> int:
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if isinstance(number, int) and not isinstance(number, bool) and not 1 <= number <= MAX_CANVAS:
        number = None  # compared as an int: a 400-digit width would overflow math.isfinite
    if not _is_number(number) or not math.isfinite(number) or number != int(number) or not 1 <= number <= MAX_CANVAS:
        raise ValueError(f"{where}: '{key}' must be a whole number of pixels, at least 1 and at most {MAX_CANVAS}; got "
                         f"{_describe(value)}.")
    return int(number)


def _part_array(values, count: int, key: str, where: str, limit: float) -> np.ndarray | None:
    if values is None:
        return None
    arr = _numbers(values, key, where)
    if key == "face_keypoints_2d" and arr.size == 3 * 70:
        arr = arr[: 3 * 68]  # OpenPose's two extra pupil points have no DWPose counterpart
    if arr.size == 0:
        return None
    if arr.size != 3 * count:
        raise ValueError(f"{where}: '{key}' has {arr.size} numbers; expected {3 * count} ([x, y, c] × {count})"
                         + (" or 210 (70 face points)" if key == "face_keypoints_2d" else "") + ".")
    arr = arr.reshape(count, 3)
    far = np.flatnonzero(np.abs(arr[:, :2]).reshape(-1) > limit)
    if far.size:
        i = far[0] // 2 * 3 + far[0] % 2
        raise ValueError(f"{where}: '{key}' value {i} ({arr.reshape(-1)[i]:g}) is far outside the canvas (more than "
                         f"{limit:g} pixels); fix or drop that frame.")
    return arr


def _box(box, where: str) -> np.ndarray | None:
    if box is None:
        return None
    arr = _numbers(box, BOX_KEY, where)
    if arr.size not in (4, 5):
        raise ValueError(f"{where}: '{BOX_KEY}' must be [x1, y1, x2, y2] or [x1, y1, x2, y2, score], got "
                         f"{arr.size} numbers.")
    return arr


def openpose_to_frame(data: dict, where: str = "POSE_KEYPOINT frame") -> PoseFrame:
    """Parse and check one frame dict (ours, comfyui_controlnet_aux's, or an OpenPose JSON file's).

    Every value is checked once here, where a pose enters a node: numbers that are finite and not far off the
    canvas, a whole-pixel canvas size, lists where lists belong; anything else is a ``ValueError`` naming ``where``
    (input and frame) and the person. Normalised 0..1 coordinates are detected (every located point inside [0, 1]
    on a canvas larger than 2 px) and scaled to pixels.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a dict with 'people', got {type(data).__name__}.")
    width, height = data.get("canvas_width"), data.get("canvas_height")
    if width is None or height is None:
        raise ValueError(f"{where}: 'canvas_width'/'canvas_height' are missing; POSE_KEYPOINT frames must give "
                         "the pixel size of the frame they were detected on.")
    width, height = _canvas_side(width, "canvas_width", where), _canvas_side(height, "canvas_height", where)
    limit = COORDINATE_SPAN * max(width, height)
    people = data.get("people")
    if people is None:
        people = []
    if not isinstance(people, (list, tuple)):
        raise ValueError(f"{where}: 'people' must be a list of person dicts, got {_describe(people)}.")
    n = len(people)
    keypoints = np.zeros((n, sk.NUM_KEYPOINTS, 2))
    scores = np.zeros((n, sk.NUM_KEYPOINTS))
    face_present = np.zeros(n, dtype=bool)
    hands_present = np.zeros((n, 2), dtype=bool)
    boxes = np.full((n, 5), np.nan)
    for p, person in enumerate(people):
        if not isinstance(person, dict):
            raise ValueError(f"{where}: person {p} is a {type(person).__name__}, expected a dict.")
        for key, part, count in _PART_KEYS:
            arr = _part_array(person.get(key), count, key, f"{where}, person {p}", limit)
            if arr is None:
                continue
            keypoints[p, part] = arr[:, :2]
            scores[p, part] = arr[:, 2]
            if key == "face_keypoints_2d":
                face_present[p] = True
            elif key == "hand_left_keypoints_2d":
                hands_present[p, 0] = True
            elif key == "hand_right_keypoints_2d":
                hands_present[p, 1] = True
        feet = _part_array(person.get(FOOT_KEY), NUM_FOOT, FOOT_KEY, f"{where}, person {p}", limit)
        if feet is not None:
            keypoints[p, sk.FEET] = feet[:, :2]
            scores[p, sk.FEET] = feet[:, 2]
        box = _box(person.get(BOX_KEY), f"{where}, person {p}")
        if box is not None:
            boxes[p, : len(box)] = box
            if len(box) == 4:
                boxes[p, 4] = 1.0
    if n and _looks_normalised(keypoints, scores, face_present, hands_present, width, height):
        keypoints *= np.array([width, height], dtype=np.float64)
        boxes[:, :4] *= np.array([width, height, width, height], dtype=np.float64)
    return PoseFrame(keypoints, scores, width, height, face_present, hands_present, boxes)


def _looks_normalised(keypoints, scores, face_present, hands_present, width, height) -> bool:
    if max(width, height) <= 2:
        return False
    mask = np.zeros(scores.shape, dtype=bool)
    mask[:, sk.BODY] = True
    mask[:, sk.FACE] = face_present[:, None]
    mask[:, sk.LEFT_HAND] = hands_present[:, :1]
    mask[:, sk.RIGHT_HAND] = hands_present[:, 1:]
    located = mask & (scores > 0) & np.any(keypoints != 0, axis=-1)
    if not located.any():
        return False
    pts = keypoints[located]
    return bool(pts.min() >= 0.0 and pts.max() <= 1.0)


def pose_keypoint_to_frames(pose_keypoint, name: str = "pose_keypoint") -> list[PoseFrame]:
    """Parse a whole ``POSE_KEYPOINT`` value (a list of frame dicts; a single dict counts as one frame)."""
    if isinstance(pose_keypoint, dict):
        pose_keypoint = [pose_keypoint]
    if not isinstance(pose_keypoint, (list, tuple)):
        raise ValueError(f"{name}: expected a POSE_KEYPOINT list of frame dicts, got {type(pose_keypoint).__name__}.")
    return [openpose_to_frame(d, where=f"{name} frame {i}") for i, d in enumerate(pose_keypoint)]


# --------------------------------------------------------------------------------------------------------------
# Person boxes (used by the SMPL estimator)


def keypoint_box(keypoints: np.ndarray, scores: np.ndarray, threshold: float = sk.CONFIDENCE_THRESHOLD):
    """Tight xyxy box of the points scoring above ``threshold``, or None when there are none."""
    ok = scores > threshold
    if not ok.any():
        return None
    pts = keypoints[ok]
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], dtype=np.float64)


def person_box(frame: PoseFrame, p: int, threshold: float = sk.CONFIDENCE_THRESHOLD,
               prefer_detector_box: bool = True) -> np.ndarray | None:
    """Box of person ``p``: its detector box when known (and preferred), else the tight box of its keypoints
    scoring above ``threshold``; None when there is neither."""
    box = frame.boxes[p]
    if prefer_detector_box and np.all(np.isfinite(box[:4])):
        return box[:4].copy()
    return keypoint_box(frame.keypoints[p], frame.scores[p], threshold)


def person_boxes(pose_keypoint_frames, person_index: int = 0, threshold: float = sk.CONFIDENCE_THRESHOLD,
                 prefer_detector_box: bool = True) -> np.ndarray:
    """Per-frame person boxes ``[F, 4]`` (x1, y1, x2, y2 in pixels of each frame's canvas).

    Args:
        pose_keypoint_frames (`list[dict]` or `list[PoseFrame]`): a ``POSE_KEYPOINT`` value.
        person_index (`int`, *optional*, defaults to 0): which person of each frame (people keep their order;
            DetectPose puts the tracked person first).
        threshold (`float`, *optional*, defaults to 0.3): keypoints scoring above it define the box when the
            frame has no detector box.
        prefer_detector_box (`bool`, *optional*, defaults to True): use ``person_box_xyxy`` (written by our
            DetectPose) when present; otherwise the tight box of the confident body/face/hand keypoints.

    Returns:
        `np.ndarray` float64 `[F, 4]`; a row is NaN where the frame has no such person or no confident point.
    """
    frames = [f if isinstance(f, PoseFrame) else openpose_to_frame(f, where=f"pose_keypoint frame {i}")
              for i, f in enumerate(pose_keypoint_frames)]
    out = np.full((len(frames), 4), np.nan)
    for i, frame in enumerate(frames):
        if person_index >= frame.num_people or person_index < -frame.num_people:
            continue
        box = person_box(frame, person_index, threshold, prefer_detector_box)
        if box is not None:
            out[i] = box
    return out
