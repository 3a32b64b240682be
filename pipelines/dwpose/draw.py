"""Confidence-aware pose maps, pixel for pixel as the MimicMotion reference draws them (DESIGN §6).

The reference draws on a canvas whose short side is 2160 px, into what it treats as a BGR image: body limbs
(skipped when an end scores < 0.3, colour × c1·c2), then the whole canvas × 0.6, then joints (colour × c),
hand edges and points, face points; finally an INTER_LINEAR downscale and a BGR→RGB swap. MimicMotion's PoseNet
was trained on exactly these images, so the reference style is the default.

One deliberate difference: for a limb end scoring exactly 0.3 (not < 0.3, yet not > 0.3) the reference reads
the coordinates of an unrelated point (its "missing" index −1 wraps to the last row); here the limb uses the
point itself. Real float32 scores essentially never hit 0.3 exactly.

Extremely thin outputs (more than 4:1) are drawn on a canvas whose long side is capped at 4 × 2160 px instead (an
8192×8 map would otherwise need a 13 GiB canvas); every ordinary aspect ratio gets the reference canvas.

The ``"thick"`` style keeps the colours and confidence rules but scales every line width and radius by the
downscale factor, so limbs, hands and faces stay visible at the output size.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..options import POSE_STYLES as STYLES
from ..size_limits import check_image_size
from . import skeleton as sk
from .keypoints import PoseFrame, openpose_to_frame

REFERENCE_CANVAS = 2160
_EPS = 0.01  # hands/face are drawn only where the integer pixel x and y exceed this (i.e. ≥ 1)


def _hsv_to_rgb_full(h: float) -> tuple[float, float, float]:
    """HSV(h, 1, 1) → RGB in 0..1, the same arithmetic as matplotlib's ``hsv_to_rgb`` for s = v = 1."""
    i = int(h * 6.0)
    f = h * 6.0 - i
    q, t = 1.0 - f, f
    return [(1.0, t, 0.0), (q, 1.0, 0.0), (0.0, 1.0, t), (0.0, q, 1.0), (t, 0.0, 1.0), (1.0, 0.0, q)][i % 6]


HAND_EDGE_RGB = tuple(_hsv_to_rgb_full(e / float(len(sk.HAND_EDGES))) for e in range(len(sk.HAND_EDGES)))


# (canvas * 0.6).astype(uint8) as a lookup table: the same truncated values without a float64 copy of the canvas.
_DIM_LUT = (np.arange(256) * 0.6).astype(np.uint8)


def _dim(canvas: np.ndarray) -> np.ndarray:
    return cv2.LUT(canvas, _DIM_LUT)


def _blend(color, alpha: float) -> list[int]:
    return [int(c * alpha) for c in color]


def canvas_size(width: int, height: int, reference_canvas: int = REFERENCE_CANVAS) -> tuple[int, int, float]:
    """(canvas width, canvas height, scale) of the drawing canvas for an output of ``width`` × ``height``: short
    side ``reference_canvas``, unless that makes the long side exceed 4 × ``reference_canvas`` (then that long
    side, never smaller than the output)."""
    short, long = min(width, height), max(width, height)
    scale = (reference_canvas / short) if short != reference_canvas else 1
    if long * scale > 4 * reference_canvas:
        scale = max(4 * reference_canvas / long, 1)
    return int(width * scale), int(height * scale), scale


def _draw_body(canvas, kp, sc, widths):
    """kp: [P, 18, 2] normalised coordinates; sc: [P, 18] scores."""
    h, w = canvas.shape[:2]
    for i in range(sk.DRAWN_LIMBS):
        a, b = sk.LIMBS[i]
        for n in range(kp.shape[0]):
            c1, c2 = sc[n, a], sc[n, b]
            if c1 < sk.CONFIDENCE_THRESHOLD or c2 < sk.CONFIDENCE_THRESHOLD:
                continue
            xs = np.array([kp[n, a, 0], kp[n, b, 0]]) * float(w)
            ys = np.array([kp[n, a, 1], kp[n, b, 1]]) * float(h)
            mx, my = np.mean(xs), np.mean(ys)
            length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
            polygon = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), widths["stick"]), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, _blend(sk.COLORS[i], c1 * c2))
    canvas = _dim(canvas)
    for i in range(sk.NUM_BODY):
        for n in range(kp.shape[0]):
            c = sc[n, i]
            if not c > sk.CONFIDENCE_THRESHOLD:
                continue
            x, y = int(kp[n, i, 0] * w), int(kp[n, i, 1] * h)
            cv2.circle(canvas, (x, y), widths["joint"], _blend(sk.COLORS[i], c), thickness=-1)
    return canvas


def _draw_hands(canvas, hands, scores, widths):
    """hands: [Q, 21, 2] normalised; scores [Q, 21]. No confidence threshold, as in the reference."""
    h, w = canvas.shape[:2]
    for peaks, conf in zip(hands, scores):
        for e, (a, b) in enumerate(sk.HAND_EDGES):
            x1, y1 = int(peaks[a, 0] * w), int(peaks[a, 1] * h)
            x2, y2 = int(peaks[b, 0] * w), int(peaks[b, 1] * h)
            level = int(conf[a] * conf[b] * 255)
            if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
                color = tuple(float(ch * level) for ch in HAND_EDGE_RGB[e])
                cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=widths["hand_line"])
        for i in range(peaks.shape[0]):
            x, y = int(peaks[i, 0] * w), int(peaks[i, 1] * h)
            level = int(conf[i] * 255)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), widths["hand_point"], (0, 0, level), thickness=-1)
    return canvas


def _draw_face(canvas, faces, scores, widths):
    h, w = canvas.shape[:2]
    for lmks, conf in zip(faces, scores):
        for i in range(lmks.shape[0]):
            x, y = int(lmks[i, 0] * w), int(lmks[i, 1] * h)
            level = int(conf[i] * 255)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), widths["face_point"], (level, level, level), thickness=-1)
    return canvas


def _widths(style: str, scale: float) -> dict:
    base = {"stick": 4, "joint": 4, "hand_line": 2, "hand_point": 4, "face_point": 3}
    if style == "reference":
        return base
    if style == "thick":
        k = max(float(scale), 1.0)
        return {name: max(1, int(round(v * k))) for name, v in base.items()}
    raise ValueError(f"style must be one of {STYLES}, got {style!r}.")


def draw_pose_map(frame, width: int, height: int, body: bool = True, hands: bool = True, face: bool = True,
                  style: str = "reference", reference_canvas: int = REFERENCE_CANVAS) -> np.ndarray:
    """Draw one frame's people as a pose map.

    Args:
        frame (`PoseFrame` or `dict`): the people, in pixels of the frame's own canvas; a ``POSE_KEYPOINT`` frame
            dict is accepted. Coordinates are normalised by that canvas, so any output size works.
        width, height (`int`): output size in pixels.
        body, hands, face (`bool`, *optional*, default True): which parts to draw.
        style (`str`, *optional*, defaults to ``"reference"``): ``"reference"`` (MimicMotion's pixels) or
            ``"thick"`` (line widths scaled so they survive the downscale).
        reference_canvas (`int`, *optional*, defaults to 2160): short side of the drawing canvas.

    Returns:
        `np.ndarray` uint8 `[height, width, 3]`, RGB after the reference's BGR→RGB swap.
    """
    if not isinstance(frame, PoseFrame):
        frame = openpose_to_frame(frame)
    width, height = check_image_size(width, height, "Pose map size", "set width and height on the node.")
    cw, ch, scale = canvas_size(width, height, reference_canvas)
    widths = _widths(style, scale)
    canvas = np.zeros((ch, cw, 3), dtype=np.uint8)

    norm = frame.keypoints / np.array([float(frame.width), float(frame.height)])
    scores = frame.scores
    if body:
        canvas = _draw_body(canvas, norm[:, sk.BODY], scores[:, sk.BODY], widths)
    if hands:
        # Reference order: every person's left hand, then every person's right hand.
        left = frame.hands_present[:, 0]
        right = frame.hands_present[:, 1]
        hand_kp = np.concatenate([norm[left][:, sk.LEFT_HAND], norm[right][:, sk.RIGHT_HAND]], axis=0)
        hand_sc = np.concatenate([scores[left][:, sk.LEFT_HAND], scores[right][:, sk.RIGHT_HAND]], axis=0)
        canvas = _draw_hands(canvas, hand_kp, hand_sc, widths)
    if face:
        present = frame.face_present
        canvas = _draw_face(canvas, norm[present][:, sk.FACE], scores[present][:, sk.FACE], widths)
    small = cv2.resize(canvas, (width, height)) if (cw, ch) != (width, height) else canvas
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def draw_pose_maps(frames, width: int, height: int, callback=None, **options) -> np.ndarray:
    """Draw a sequence: uint8 ``[F, height, width, 3]``; ``callback(done, total)`` after each frame."""
    width, height = check_image_size(width, height, "Pose map size", "set width and height on the node.")
    out = np.zeros((len(frames), int(height), int(width), 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = draw_pose_map(frame, width, height, **options)
        if callback is not None:
            callback(i + 1, len(frames))
    return out
