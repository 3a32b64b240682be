"""Malformed POSE_KEYPOINT is refused where it enters a node, naming the input, frame and person (issue 11
item 9)."""
import json
import math

import pytest

from motionguide.nodes import pose as nodes
from motionguide.pipelines.dwpose.keypoints import pose_keypoint_to_frames


def _frame(body=None, **extra):
    person = {"pose_keypoints_2d": body if body is not None else [10.0, 20.0, 0.9] * 18}
    frame = {"people": [person], "canvas_width": 64, "canvas_height": 96}
    frame.update(extra)
    return frame


def _with_bad_point(value, index=4):
    body = [10.0, 20.0, 0.9] * 18
    body[index] = value
    return body


@pytest.mark.parametrize("value, words", [
    (math.nan, "not a finite number"), (math.inf, "not a finite number"), (-math.inf, "not a finite number"),
    (1e300, "far outside"), ("12", "not a number"), (None, "not a number"), ([1.0], "not a number"),
    (True, "not a number"),
])
def test_bad_coordinates_name_input_frame_and_person(value, words):
    pose = [_frame(), _frame(), _frame(body=_with_bad_point(value))]
    with pytest.raises(ValueError, match=rf"driving_pose frame 2, person 0: 'pose_keypoints_2d' .*{words}"):
        pose_keypoint_to_frames(pose, "driving_pose")


@pytest.mark.parametrize("frame, words", [
    (_frame(people=5), "'people' must be a list"),
    (_frame(people="abc"), "'people' must be a list"),
    (_frame(canvas_width="abc"), "canvas_width"),
    (_frame(canvas_width=math.nan), "canvas_width"),
    (_frame(canvas_height=math.inf), "canvas_height"),
    (_frame(canvas_width=10 ** 30), "canvas_width"),
    (_frame(canvas_width=64.5), "canvas_width"),
    (_frame(body="1,2,3"), "'pose_keypoints_2d' must be a list"),
    ({"people": [{"pose_keypoints_2d": [10.0, 20.0, 0.9] * 18, "person_box_xyxy": "box"}],
      "canvas_width": 64, "canvas_height": 96}, "person_box_xyxy"),
    ({"people": [{"pose_keypoints_2d": [10.0, 20.0, 0.9] * 18, "person_box_xyxy": [1, 2, math.nan, 4]}],
      "canvas_width": 64, "canvas_height": 96}, "person_box_xyxy"),
])
def test_bad_frame_fields(frame, words):
    with pytest.raises(ValueError, match=rf"pose_keypoint frame 0.*{words}"):
        pose_keypoint_to_frames([frame])


def test_deep_nesting_is_refused_without_recursion():
    deep = [10.0, 20.0, 0.9]
    for _ in range(50000):
        deep = [deep]
    with pytest.raises(ValueError, match=r"frame 0, person 0: 'pose_keypoints_2d'"):
        pose_keypoint_to_frames([_frame(body=deep)])


def test_accepted_forms_still_load():
    triples = [[10.0, 20.0, 0.9]] * 18  # a list of [x, y, c]
    frames = pose_keypoint_to_frames([_frame(), _frame(body=triples), _frame(canvas_width="64", canvas_height=96.0)])
    assert [f.width for f in frames] == [64, 64, 64] and frames[1].keypoints[0, 0].tolist() == [10.0, 20.0]
    import numpy as np

    as_array = _frame(body=np.array([10.0, 20.0, 0.9] * 18, np.float32))
    assert pose_keypoint_to_frames([as_array])[0].scores[0, 0] == pytest.approx(0.9)


def test_nodes_refuse_at_entry_and_save_pose_never_writes_nan(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path))
    bad = [_frame(body=_with_bad_point(math.nan))]
    with pytest.raises(ValueError, match="pose_keypoint frame 0, person 0"):
        nodes.MotionGuideSavePose().save(bad, "p")
    with pytest.raises(ValueError, match="pose_keypoint frame 0, person 0"):
        nodes.MotionGuideDrawPose().draw(bad, 64, 64)
    with pytest.raises(ValueError, match="driving_pose frame 0, person 0"):
        nodes.MotionGuideAlignPose().align(bad, [_frame()])
    assert list(tmp_path.iterdir()) == []
    path = nodes.MotionGuideSavePose().save([_frame()], "p")["result"][0]
    json.loads(open(path).read(), parse_constant=lambda c: pytest.fail(f"{c} in the saved JSON"))
