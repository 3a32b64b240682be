"""POSE_KEYPOINT conversion (ours and comfyui_controlnet_aux's) and person boxes."""
import numpy as np
import pytest

from motionguide.pipelines.dwpose import keypoints as kps


def _frame(people=2, width=640, height=480, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(5, 400, (people, 134, 2))
    sc = rng.uniform(0, 1, (people, 134))
    boxes = np.array([[10, 20, 300, 400, 0.93]] + [[np.nan] * 5] * (people - 1))
    return kps.PoseFrame(kp, sc, width, height, boxes=boxes)


def test_round_trip_keeps_real_scores_in_pixels():
    frame = _frame()
    data = kps.frame_to_openpose(frame)
    assert data["canvas_width"] == 640 and data["canvas_height"] == 480
    person = data["people"][0]
    assert len(person["pose_keypoints_2d"]) == 54 and len(person["face_keypoints_2d"]) == 204
    assert len(person["hand_left_keypoints_2d"]) == 63 and len(person["hand_right_keypoints_2d"]) == 63
    assert person["pose_keypoints_2d"][:3] == [frame.keypoints[0, 0, 0], frame.keypoints[0, 0, 1], frame.scores[0, 0]]
    assert person["hand_left_keypoints_2d"][:3] == [*frame.keypoints[0, 92], frame.scores[0, 92]]
    assert person["person_box_xyxy"] == [10, 20, 300, 400, 0.93] and "person_box_xyxy" not in data["people"][1]
    back = kps.openpose_to_frame(data)
    mask = np.ones(134, bool)
    mask[18:24] = False  # feet are not part of OpenPose-18 JSON
    np.testing.assert_array_equal(back.keypoints[:, mask], frame.keypoints[:, mask])
    np.testing.assert_array_equal(back.scores[:, mask], frame.scores[:, mask])
    np.testing.assert_array_equal(back.boxes[0], frame.boxes[0])


def test_toggles_write_null_parts():
    data = kps.frame_to_openpose(_frame(1), body=False, hands=False, face=True)
    person = data["people"][0]
    assert person["hand_left_keypoints_2d"] is None and person["hand_right_keypoints_2d"] is None
    assert person["pose_keypoints_2d"] == [0.0] * 54 and len(person["face_keypoints_2d"]) == 204
    back = kps.openpose_to_frame(data)
    assert back.hands_present.tolist() == [[False, False]] and back.face_present.tolist() == [True]


def test_controlnet_aux_input_normalised_binarised_70_face_points():
    body = [0.0] * 54
    body[0:3] = [0.5, 0.25, 1.0]
    body[3:6] = [0.5, 0.5, 1.0]
    face = [0.1, 0.2, 1.0] * 70
    frame = kps.openpose_to_frame({"people": [{"pose_keypoints_2d": body, "face_keypoints_2d": face,
                                               "hand_left_keypoints_2d": None}],
                                   "canvas_width": 640, "canvas_height": 480})
    assert frame.keypoints[0, 0].tolist() == [320, 120] and frame.keypoints[0, 1].tolist() == [320, 240]
    assert frame.keypoints[0, 24].tolist() == pytest.approx([64, 96]) and frame.scores[0, 91] == 1.0
    assert frame.face_present.tolist() == [True] and frame.hands_present.tolist() == [[False, False]]
    assert frame.keypoints[0, 2].tolist() == [0, 0] and frame.scores[0, 2] == 0  # missing stays missing


def test_pixel_input_is_not_rescaled():
    body = [0.0] * 54
    body[0:3] = [0.5, 0.25, 1.0]
    body[3:6] = [3.0, 0.5, 1.0]
    frame = kps.openpose_to_frame({"people": [{"pose_keypoints_2d": body}], "canvas_width": 640,
                                   "canvas_height": 480})
    assert frame.keypoints[0, 1].tolist() == [3.0, 0.5]


@pytest.mark.parametrize("bad, message", [
    ({"people": [{"pose_keypoints_2d": [1.0] * 50}], "canvas_width": 4, "canvas_height": 4}, "pose_keypoints_2d.*54"),
    ({"people": [{"pose_keypoints_2d": [1.0] * 54, "face_keypoints_2d": [1.0] * 9}], "canvas_width": 4,
      "canvas_height": 4}, "face_keypoints_2d.*204"),
    ({"people": []}, "canvas_width"),
    ({"people": [], "canvas_width": 0, "canvas_height": 10}, "at least 1"),
    ({"people": ["x"], "canvas_width": 4, "canvas_height": 4}, "person 0"),
])
def test_bad_frames_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        kps.pose_keypoint_to_frames([bad], "driving_pose")


def test_whole_value_shapes():
    assert kps.pose_keypoint_to_frames([]) == []
    assert len(kps.pose_keypoint_to_frames({"people": [], "canvas_width": 8, "canvas_height": 8})) == 1
    with pytest.raises(ValueError, match="driving_pose"):
        kps.pose_keypoint_to_frames("nope", "driving_pose")


def test_person_boxes():
    f0 = _frame(2)
    f1 = kps.PoseFrame.empty(640, 480)
    f2 = kps.PoseFrame(np.zeros((1, 134, 2)), np.zeros((1, 134)), 640, 480)
    f2.keypoints[0, 0], f2.scores[0, 0] = (100, 50), 0.9
    f2.keypoints[0, 4], f2.scores[0, 4] = (30, 200), 0.31
    f2.keypoints[0, 5], f2.scores[0, 5] = (500, 400), 0.3  # not above 0.3
    data = kps.frames_to_pose_keypoint([f0, f1, f2])
    boxes = kps.person_boxes(data)
    assert boxes[0].tolist() == [10, 20, 300, 400]  # the detector box
    assert np.isnan(boxes[1]).all()
    assert boxes[2].tolist() == [30, 50, 100, 200]  # confident keypoints
    second = kps.person_boxes(data, person_index=1)
    conf = f0.scores[1] > 0.3
    pts = f0.keypoints[1][conf & np.r_[np.ones(18, bool), np.zeros(6, bool), np.ones(110, bool)]]
    assert second[0].tolist() == [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
    assert np.isnan(second[2]).all()
    assert kps.person_boxes([f0], prefer_detector_box=False)[0, 0] != 10
