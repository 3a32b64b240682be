"""Reference pose-map pixels for hand-made keypoints with confidences around the 0.3 threshold."""
import cv2
import numpy as np
import pytest

from motionguide.pipelines.dwpose import draw
from motionguide.pipelines.dwpose.keypoints import PoseFrame, frame_to_openpose

S = 2160  # frame canvas = output = drawing canvas: no resize, pixels are exact


def _frame(shoulder_score=0.31):
    kp = np.zeros((1, 134, 2))
    sc = np.zeros((1, 134))
    kp[0, 1], sc[0, 1] = (1000.5, 1000.5), 0.5  # neck
    kp[0, 2], sc[0, 2] = (1200.5, 1000.5), shoulder_score  # right shoulder
    kp[0, 92], sc[0, 92] = (500.5, 500.5), 0.5  # left hand wrist
    kp[0, 93], sc[0, 93] = (600.5, 500.5), 0.8  # left hand point 1
    kp[0, 24], sc[0, 24] = (300.5, 300.5), 0.6  # face point 0
    kp[0, 25], sc[0, 25] = (0.4, 10.5), 0.9  # x truncates to 0: never drawn
    return PoseFrame(kp, sc, S, S)


def test_limb_joint_hand_face_pixels():
    out = draw.draw_pose_map(_frame(0.31), S, S)
    assert out.shape == (S, S, 3) and out.dtype == np.uint8
    # limb 0 colour (255,0,0)·0.5·0.31 → 39, ×0.6 → 23, written as BGR then swapped → blue
    assert out[1000, 1100].tolist() == [0, 0, 23]
    assert out[1003, 1100].tolist() == [0, 0, 23]  # inside the 4 px half-axis
    assert out[1006, 1100].tolist() == [0, 0, 0]
    assert out[1000, 1000].tolist() == [0, 42, 127]  # neck joint (255,85,0)·0.5
    assert out[1000, 1200].tolist() == [0, 52, 79]  # shoulder joint (255,170,0)·0.31
    assert out[1000, 1204].tolist() == [0, 52, 79] and out[1000, 1206].tolist() == [0, 0, 0]
    assert out[500, 550].tolist() == [0, 0, 102]  # hand edge 0: HSV red × int(0.5·0.8·255)
    assert out[500, 500].tolist() == [127, 0, 0]  # hand points (0,0,255c) BGR → red
    assert out[500, 600].tolist() == [204, 0, 0]
    assert out[300, 300].tolist() == [153, 153, 153] and out[300, 303].tolist() == [153, 153, 153]
    assert out[300, 305].tolist() == [0, 0, 0]
    assert out[10, 0].tolist() == [0, 0, 0]
    assert int((out > 0).any(axis=2).sum()) < 2000  # nothing else drawn


def test_below_threshold_skips_limb_and_joint():
    out = draw.draw_pose_map(_frame(0.29), S, S)
    assert out[1000, 1100].tolist() == [0, 0, 0]
    assert out[1000, 1200].tolist() == [0, 0, 0]
    assert out[1000, 1000].tolist() == [0, 42, 127]
    out = draw.draw_pose_map(_frame(0.3), S, S)
    # limb drawn (no end below 0.3): 255·0.5·0.3 → 38, ×0.6 → 22; the joint needs a score above 0.3
    assert out[1000, 1100].tolist() == [0, 0, 22] and out[1000, 1200].tolist() == [0, 0, 22]


def test_part_toggles():
    out = draw.draw_pose_map(_frame(), S, S, body=False, hands=True, face=False)
    assert out[1000, 1000].tolist() == [0, 0, 0] and out[300, 300].tolist() == [0, 0, 0]
    assert out[500, 550].tolist() == [0, 0, 102]
    out = draw.draw_pose_map(_frame(), S, S, hands=False)
    assert out[500, 550].tolist() == [0, 0, 0] and out[300, 300].tolist() == [153, 153, 153]


def test_downscale_is_inter_linear_from_the_2160_canvas():
    frame = _frame()
    frame.keypoints[0, 1] = (300.5, 900.5)
    frame.keypoints[0, 2] = (700.5, 1400.5)
    full = draw.draw_pose_map(frame, 2160, 3840)
    small = draw.draw_pose_map(frame, 576, 1024)
    np.testing.assert_array_equal(small, cv2.resize(full, (576, 1024), interpolation=cv2.INTER_LINEAR))
    assert draw.canvas_size(576, 1024) == (2160, 3840, 2160 / 576)
    assert draw.canvas_size(1024, 576)[:2] == (3840, 2160)


def test_normalised_by_the_frame_canvas():
    frame = _frame()
    half = PoseFrame(frame.keypoints / 2, frame.scores, S // 2, S // 2)
    np.testing.assert_array_equal(draw.draw_pose_map(half, S, S), draw.draw_pose_map(frame, S, S))


def test_thick_style_survives_downscale():
    frame = _frame(0.9)
    ref = draw.draw_pose_map(frame, 576, 576)
    thick = draw.draw_pose_map(frame, 576, 576, style="thick")
    x, y = int(1100 / 3.75), int(1000 / 3.75)
    assert thick[y, x, 2] == int(int(255 * 0.45) * 0.6)  # the limb's full colour survives
    assert ref[y + 2, x].tolist() == [0, 0, 0] and thick[y + 2, x].tolist() == [0, 0, 68]
    assert (thick > 0).any(axis=2).sum() > 3 * (ref > 0).any(axis=2).sum()
    with pytest.raises(ValueError, match="style"):
        draw.draw_pose_map(frame, 64, 64, style="neon")


def test_draws_dicts_without_hands_or_face():
    data = frame_to_openpose(_frame(), hands=False, face=False)
    out = draw.draw_pose_map(data, S, S)
    assert out[1000, 1100].tolist() == [0, 0, 23] and out[500, 550].tolist() == [0, 0, 0]
    empty = draw.draw_pose_map({"people": [], "canvas_width": 10, "canvas_height": 20}, 10, 20)
    assert empty.shape == (20, 10, 3) and not empty.any()
    maps = draw.draw_pose_maps([data, data], 64, 32)
    assert maps.shape == (2, 32, 64, 3)
