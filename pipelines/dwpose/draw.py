"""Confidence-aware pose maps, pixel for pixel as the MimicMotion reference draws them (docs/architecture.md,
*Reference algorithms*).

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
from functools import partial

import cv2
import numpy as np

from ..options import POSE_STYLES as STYLES
from ..options import check_choice
from ..size_limits import check_image_size, check_memory
from . import draw_styles
from . import skeleton as sk
from .keypoints import PoseFrame, openpose_to_frame

REFERENCE_CANVAS = 2160
_EPS = 0.01  # hands/face are drawn only where the integer pixel x and y exceed this (i.e. ≥ 1)


# Shared with the plain styles of draw_styles (one definition of the hand palette and of the × 0.6 dimming).
HAND_EDGE_RGB = draw_styles.HAND_EDGE_RGB
_dim = draw_styles.dim_canvas


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


def _widths(scale: float, thick: bool) -> dict:
    """Line widths and radii on the drawing canvas: the reference's, or scaled by the downscale factor (thick)."""
    base = {"stick": 4, "joint": 4, "hand_line": 2, "hand_point": 4, "face_point": 3}
    if not thick:
        return base
    k = max(float(scale), 1.0)
    return {name: max(1, int(round(v * k))) for name, v in base.items()}


def _draw_mimicmotion(frame: PoseFrame, width: int, height: int, *, body: bool, hands: bool, face: bool,
                      reference_canvas: int, thick: bool, bgr_to_rgb: bool, **_unused) -> np.ndarray:
    """MimicMotion's drawing (module docstring); ``thick`` scales the widths, ``bgr_to_rgb`` is its final swap."""
    cw, ch, scale = canvas_size(width, height, reference_canvas)
    widths = _widths(scale, thick)
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
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB) if bgr_to_rgb else small


def _draw_wan(frame, width, height, *, body, hands, feet, **_unused):
    return draw_styles.draw_wan_animate(frame, width, height, body=body, hands=hands, feet=feet)


def _plain(style: str):
    def draw(frame, width, height, *, body, hands, face, feet, **_unused):
        return draw_styles.draw_plain(frame, width, height, style, body=body, hands=hands, face=face, feet=feet)
    return draw


# style name -> drawer(frame, width, height, *, body, hands, face, feet, reference_canvas) -> uint8 [H,W,3] RGB.
# Every name of options.POSE_STYLES has one (tests/test_pose_styles.py); add a style here and there.
DRAWERS = {
    "reference": partial(_draw_mimicmotion, thick=False, bgr_to_rgb=True),
    "thick": partial(_draw_mimicmotion, thick=True, bgr_to_rgb=True),
    # StableAnimator saved MimicMotion's drawing without the final red/blue swap
    "stableanimator": partial(_draw_mimicmotion, thick=False, bgr_to_rgb=False),
    "wan_animate": _draw_wan,
    **{style: _plain(style) for style in draw_styles.PLAIN_STYLES},
}


def draw_pose_map(frame, width: int, height: int, body: bool = True, hands: bool = True, face: bool = True,
                  style: str = "reference", reference_canvas: int = REFERENCE_CANVAS, feet: bool = True) -> np.ndarray:
    """Draw one frame's people as a pose map.

    Args:
        frame (`PoseFrame` or `dict`): the people, in pixels of the frame's own canvas; a ``POSE_KEYPOINT`` frame
            dict is accepted. Coordinates are normalised by that canvas, so any output size works.
        width, height (`int`): output size in pixels.
        body, hands, face (`bool`, *optional*, default True): which parts to draw.
        style (`str`, *optional*, defaults to ``"reference"``): ``"reference"`` (MimicMotion's pixels),
            ``"thick"`` (line widths scaled so they survive the downscale), ``"stableanimator"`` (MimicMotion's
            drawing without the final red/blue swap, as StableAnimator saved it), or one of the plain styles of
            :mod:`.draw_styles` (``"wan_animate"``, ``"unianimate"``, ``"animate_x"``, ``"steadydancer"``); see
            :data:`DRAWERS`.
        reference_canvas (`int`, *optional*, defaults to 2160): short side of the drawing canvas.
        feet (`bool`, *optional*, defaults to True): draw the toes in the styles that have them
            (``wan_animate``, ``unianimate``, ``animate_x``; needs ``foot_keypoints_2d``).

    Returns:
        `np.ndarray` uint8 `[height, width, 3]` RGB as the chosen model saw it (``reference``: after
        MimicMotion's BGR→RGB swap).
    """
    if not isinstance(frame, PoseFrame):
        frame = openpose_to_frame(frame)
    width, height = check_image_size(width, height, "Pose map size", "set width and height on the node.")
    check_choice("style", style, STYLES)
    return DRAWERS[style](frame, width, height, body=body, hands=hands, face=face, feet=feet,
                          reference_canvas=reference_canvas)


def draw_pose_maps(frames, width: int, height: int, callback=None, **options) -> np.ndarray:
    """Draw a sequence: uint8 ``[F, height, width, 3]``; ``callback(done, total)`` after each frame."""
    width, height = check_image_size(width, height, "Pose map size", "set width and height on the node.")
    check_memory("Draw Pose", len(frames), width, height, "draw fewer frames at a time, or a smaller size.")
    out = np.zeros((len(frames), int(height), int(width), 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = draw_pose_map(frame, width, height, **options)
        if callback is not None:
            callback(i + 1, len(frames))
    return out
