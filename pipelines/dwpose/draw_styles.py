"""Skeleton drawings in the exact styles other animators were trained on (research/animators.md §2, §5).

The MimicMotion drawer (:mod:`.draw`, styles ``reference``/``thick``/``stableanimator``) dims by confidence; the
models here were trained on plain DWPose drawings instead. Each style reproduces its model's preprocessing pixel
for pixel (tests compare with arrays produced by the models' own code):

- ``wan_animate`` (Wan2.2-Animate, ``draw_aapose_new``): 20 body points (OpenPose-18 + left/right toe = mean of
  the big and small toe, score included; the neck is the mean of the shoulders, score included, as Wan computes it
  from ViTPose's COCO points), limb ellipses in the OpenPose colour × 0.6, full-colour joint dots;
  stick width ``max(⌊min(W, H)/200⌋ − 1, 1)`` and hand width half of it (at least 1); a point counts when its
  score ≥ 0.5 (hands too); no face; RGB as drawn.
- ``unianimate`` / ``animate_x`` (UniAnimate-DiT ``draw_body_and_foot``, Animate-X uses the same drawer): 20 body
  points with foot limbs in (170, 255, 255) and (255, 255, 0), stick width 4, dots radius 4, the whole canvas ×
  0.6 after the limbs; body points count when their score > 0.3, hand and face points when ≥ 0.3 (hands: lines
  2 px, dots radius 4 in (0, 0, 255); face: white dots radius 3, off by default in their data); a toe counts
  when both its toe points score > 0.3. Saved through ``cv2.imwrite`` and read back with PIL, so the model saw
  red and blue swapped: the output is swapped the same way.
- ``steadydancer`` (SteadyDancer ``draw_bodypose``): OpenPose-18 with the same widths, no toes, thresholds 0.35,
  red and blue swapped (a BGR→RGB conversion of an RGB drawing before the video is written). Its hands are the
  first two of the stack "every person's left hand, then every right hand": with two or more people, person 0's
  and person 1's left hands.

These models animate one character: only the first person's body is drawn, as their preprocessing does.
Coordinates are normalised by the keypoints' canvas and scaled to the output size, in the same float order as
the reference code (so the integer pixel each point lands on is identical).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import skeleton as sk

_EPS = 0.01
# Foot points of the 134-point layout: left big toe, left small toe, left heel, right big toe, right small toe, heel.
_LEFT_TOES, _RIGHT_TOES = (18, 19), (21, 22)
# Limbs of the 20-point body (OpenPose-18 + left toe 18, right toe 19), 0-based; the first 17 are OpenPose's.
TOE_LIMBS = sk.LIMBS[:sk.DRAWN_LIMBS] + ((13, 18), (10, 19))
WAN_COLORS = sk.COLORS + ((200, 200, 0), (100, 100, 0))  # limb i and joint i take colour i
UNIANIMATE_COLORS = sk.COLORS + ((170, 255, 255), (255, 255, 0))


def _hsv_to_rgb_full(h: float) -> tuple[float, float, float]:
    """HSV(h, 1, 1) → RGB in 0..1, the same arithmetic as matplotlib's ``hsv_to_rgb`` for s = v = 1."""
    i = int(h * 6.0)
    f = h * 6.0 - i
    q, t = 1.0 - f, f
    return [(1.0, t, 0.0), (q, 1.0, 0.0), (0.0, 1.0, t), (0.0, q, 1.0), (t, 0.0, 1.0), (1.0, 0.0, q)][i % 6]


HAND_EDGE_RGB = tuple(_hsv_to_rgb_full(e / float(len(sk.HAND_EDGES))) for e in range(len(sk.HAND_EDGES)))


# (canvas * 0.6).astype(uint8) as a lookup table: the same truncated values without a float64 copy of the canvas.
_DIM_LUT = (np.arange(256) * 0.6).astype(np.uint8)


def dim_canvas(canvas: np.ndarray) -> np.ndarray:
    return cv2.LUT(canvas, _DIM_LUT)


@dataclass(frozen=True)
class PlainStyle:
    """A plain (confidence-free) DWPose drawing: UniAnimate / Animate-X / SteadyDancer."""

    body_threshold: float  # a body point is drawn when its score > this
    part_threshold: float  # hand and face points are hidden when their score < this
    toes: bool
    swap_red_blue: bool = True
    stacked_hands: bool = False  # the first two hands of [every left hand, then every right hand] (SteadyDancer)


PLAIN_STYLES = {
    "unianimate": PlainStyle(0.3, 0.3, toes=True),
    "animate_x": PlainStyle(0.3, 0.3, toes=True),
    "steadydancer": PlainStyle(0.35, 0.35, toes=False, stacked_hands=True),
}
WAN_THRESHOLD = 0.5


def _ellipse(canvas, xs, ys, half_width: int, color):
    """One limb: the OpenPose ellipse through two points (pixel arrays ``xs``, ``ys``)."""
    mx, my = np.mean(xs), np.mean(ys)
    length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
    angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
    polygon = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), half_width), int(angle), 0, 360, 1)
    cv2.fillConvexPoly(canvas, polygon, color)


def _body_points(norm: np.ndarray, scores: np.ndarray, toes: bool) -> tuple[np.ndarray, np.ndarray]:
    """First person's body (18 or 20 points, normalised) and scores; a toe is the mean of its two toe points."""
    body, score = norm[sk.BODY], scores[sk.BODY]
    if not toes:
        return body, score
    toe_xy = [(norm[a] + norm[b]) / 2 for a, b in (_LEFT_TOES, _RIGHT_TOES)]
    return np.concatenate([body, toe_xy]), np.concatenate([score, [scores[a] for a, _ in (_LEFT_TOES, _RIGHT_TOES)]])


def _part_points(norm, visible):
    """Hand/face points with hidden ones moved to −1 (as the references do, so they fail the > eps test)."""
    return np.where(visible[:, None], norm, -1.0)


def draw_plain(frame, width: int, height: int, style: str, body: bool = True, hands: bool = True,
               face: bool = False, feet: bool = True) -> np.ndarray:
    """uint8 ``[height, width, 3]`` in the ``unianimate`` / ``animate_x`` / ``steadydancer`` style."""
    spec = PLAIN_STYLES[style]
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    if frame.num_people:
        norm = frame.keypoints[0] / np.array([float(frame.width), float(frame.height)])
        scores = frame.scores[0]
        toes = spec.toes and feet
        points, point_scores = _body_points(norm, scores, toes)
        visible = point_scores > spec.body_threshold
        if toes:  # a toe needs both of its toe points
            visible[18] = all(scores[i] > spec.body_threshold for i in _LEFT_TOES)
            visible[19] = all(scores[i] > spec.body_threshold for i in _RIGHT_TOES)
        limbs = TOE_LIMBS if toes else sk.LIMBS[:sk.DRAWN_LIMBS]
        colors = UNIANIMATE_COLORS if toes else sk.COLORS
        if body:
            for i, (a, b) in enumerate(limbs):
                if visible[a] and visible[b]:
                    _ellipse(canvas, points[[a, b], 0] * float(width), points[[a, b], 1] * float(height), 4,
                             colors[i])
        canvas = dim_canvas(canvas)
        if body:
            for i in range(len(points)):
                if visible[i]:
                    x, y = int(points[i, 0] * width), int(points[i, 1] * height)
                    cv2.circle(canvas, (x, y), 4, colors[i], thickness=-1)
        if hands:
            for person, side in _drawn_hands(frame, spec.stacked_hands):
                part = (sk.LEFT_HAND, sk.RIGHT_HAND)[side]
                if frame.hands_present[person, side]:
                    hand = frame.keypoints[person, part] / np.array([float(frame.width), float(frame.height)])
                    shown = frame.scores[person, part] >= spec.part_threshold
                    _plain_hand(canvas, _part_points(hand, shown), width, height)
        if face and frame.face_present[0]:
            shown = scores[sk.FACE] >= spec.part_threshold
            for x, y in _part_points(norm[sk.FACE], shown):
                x, y = int(x * width), int(y * height)
                if x > _EPS and y > _EPS:
                    cv2.circle(canvas, (x, y), 3, (255, 255, 255), thickness=-1)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB) if spec.swap_red_blue else canvas


def _drawn_hands(frame, stacked: bool) -> list[tuple[int, int]]:
    """(person, side 0 = left / 1 = right) of the hands a plain style draws. Most draw the first person's two hands;
    SteadyDancer's drawer takes the first two rows of its hand array, which stacks every person's left hand and
    then every right hand: with two or more people that is person 0's and person 1's left hands."""
    if not stacked:
        return [(0, 0), (0, 1)]
    return [(person, side) for side in (0, 1) for person in range(frame.num_people)][:2]


def _plain_hand(canvas, peaks, width, height):
    for e, (a, b) in enumerate(sk.HAND_EDGES):
        x1, y1 = int(peaks[a, 0] * width), int(peaks[a, 1] * height)
        x2, y2 = int(peaks[b, 0] * width), int(peaks[b, 1] * height)
        if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
            color = tuple(float(c * 255) for c in HAND_EDGE_RGB[e])
            cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=2)
    for x, y in peaks:
        x, y = int(x * width), int(y * height)
        if x > _EPS and y > _EPS:
            cv2.circle(canvas, (x, y), 4, (0, 0, 255), thickness=-1)


def wan_stick_width(width: int, height: int) -> tuple[int, int]:
    """(body stick width and dot radius, hand line width and dot radius) of Wan2.2-Animate's ``v2`` widths."""
    stick = max(int(min(height, width) / 200) - 1, 1)
    return stick, max(stick // 2, 1)


def draw_wan_animate(frame, width: int, height: int, body: bool = True, hands: bool = True,
                     feet: bool = True) -> np.ndarray:
    """uint8 ``[height, width, 3]`` RGB in Wan2.2-Animate's pose style (never a face)."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    if not frame.num_people:
        return canvas
    stick, hand_width = wan_stick_width(width, height)
    size = np.array([float(frame.width), float(frame.height)])
    norm = frame.keypoints[0] / size
    scores = frame.scores[0]
    points, point_scores = _body_points(norm, scores, toes=True)
    # Wan's ViTPose keypoints have no neck: it is the mean of the shoulders, position and score.
    points[1] = (norm[2] + norm[5]) / 2
    point_scores[1] = (scores[2] + scores[5]) / 2
    if feet:  # the toe score is the mean of its two toe points' scores
        point_scores[18] = (scores[_LEFT_TOES[0]] + scores[_LEFT_TOES[1]]) / 2
        point_scores[19] = (scores[_RIGHT_TOES[0]] + scores[_RIGHT_TOES[1]]) / 2
    else:
        point_scores[18:] = 0.0
    pixels = points * (width, height)
    shown = point_scores >= WAN_THRESHOLD
    if body:
        for i, (a, b) in enumerate(TOE_LIMBS):
            if shown[a] and shown[b]:
                _ellipse(canvas, pixels[[a, b], 0], pixels[[a, b], 1], stick,
                         [int(float(c) * 0.6) for c in WAN_COLORS[i]])
        for i in range(len(pixels)):
            if shown[i]:
                cv2.circle(canvas, (int(pixels[i, 0]), int(pixels[i, 1])), stick, WAN_COLORS[i], thickness=-1)
    if hands:
        for part, present in ((sk.LEFT_HAND, frame.hands_present[0, 0]), (sk.RIGHT_HAND, frame.hands_present[0, 1])):
            if present:
                _wan_hand(canvas, norm[part] * (width, height), scores[part], hand_width)
    return canvas


def _wan_hand(canvas, pixels, scores, line_width):
    for e, (a, b) in enumerate(sk.HAND_EDGES):
        if scores[a] < WAN_THRESHOLD or scores[b] < WAN_THRESHOLD:
            continue
        x1, y1, x2, y2 = int(pixels[a, 0]), int(pixels[a, 1]), int(pixels[b, 0]), int(pixels[b, 1])
        if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
            cv2.line(canvas, (x1, y1), (x2, y2), tuple(float(c * 255) for c in HAND_EDGE_RGB[e]), thickness=line_width)
    for (x, y), score in zip(pixels, scores):
        if score < WAN_THRESHOLD:
            continue
        x, y = int(x), int(y)
        if x > _EPS and y > _EPS:
            cv2.circle(canvas, (x, y), line_width, (0, 0, 255), thickness=-1)


SCAIL_HEAD_LIMBS = range(13, 17)  # nose–eyes–ears
SCAIL_HEAD_POINTS = (0, 14, 15, 16, 17)
SCAIL_FACE_POINTS = tuple(range(17, 27)) + tuple(range(36, 68))  # brows, eyes, nose, mouth (no jaw line)
SCAIL_THRESHOLD = 0.3


def draw_scail_overlay(frame, width: int, height: int, hands: bool = True, face: bool = True) -> np.ndarray:
    """SCAIL's 2D layer over its capsules (SCAIL-Pose ``draw_pose`` with ``show_body=False, show_cheek=True,
    dw_hand=True``, optimised face): per person the nose–eye–ear limbs (stick 4, canvas × 0.6, dots radius 4),
    DWPose hands with lines and dots ``clamp(⌊min(W, H)/300⌋, 1, 2)`` px, and face landmarks 17–26 and 36–67 as
    white dots of that radius. Body points count when their score > 0.3, hand and face points when ≥ 0.3. The
    people's canvases are added (uint8, as SCAIL sums them). uint8 ``[height, width, 3]`` RGB."""
    final = np.zeros((height, width, 3), dtype=np.uint8)
    thin = min(max(int(min(height, width) / 300), 1), 2)
    size = np.array([float(frame.width), float(frame.height)])
    for p in range(frame.num_people):
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        norm = frame.keypoints[p] / size
        scores = frame.scores[p]
        visible = scores[sk.BODY] > SCAIL_THRESHOLD
        for i in SCAIL_HEAD_LIMBS:
            a, b = sk.LIMBS[i]
            if visible[a] and visible[b]:
                _ellipse(canvas, norm[[a, b], 0] * float(width), norm[[a, b], 1] * float(height), 4, sk.COLORS[i])
        canvas = dim_canvas(canvas)
        for i in SCAIL_HEAD_POINTS:
            if visible[i]:
                cv2.circle(canvas, (int(norm[i, 0] * width), int(norm[i, 1] * height)), 4, sk.COLORS[i], thickness=-1)
        if hands:
            for side, part in enumerate((sk.LEFT_HAND, sk.RIGHT_HAND)):
                if frame.hands_present[p, side]:
                    peaks = _part_points(norm[part], scores[part] >= SCAIL_THRESHOLD)
                    _scail_hand(canvas, peaks, width, height, thin)
        if face and frame.face_present[p]:
            points = _part_points(norm[sk.FACE], scores[sk.FACE] >= SCAIL_THRESHOLD)
            for i in SCAIL_FACE_POINTS:
                x, y = int(points[i, 0] * width), int(points[i, 1] * height)
                if x > _EPS and y > _EPS:
                    cv2.circle(canvas, (x, y), thin, (255, 255, 255), thickness=-1)
        final = final + canvas
    return final


def _scail_hand(canvas, peaks, width, height, thin):
    for e, (a, b) in enumerate(sk.HAND_EDGES):
        x1, y1 = int(peaks[a, 0] * width), int(peaks[a, 1] * height)
        x2, y2 = int(peaks[b, 0] * width), int(peaks[b, 1] * height)
        if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
            cv2.line(canvas, (x1, y1), (x2, y2), tuple(float(c * 255) for c in HAND_EDGE_RGB[e]), thickness=thin)
    for x, y in peaks:
        x, y = int(x * width), int(y * height)
        if x > _EPS and y > _EPS:
            cv2.circle(canvas, (x, y), thin, (0, 0, 255), thickness=-1)
