"""Person choice, IoU tracking across frames, and filling frames without the person."""
import numpy as np
import pytest

from motionguide.pipelines.dwpose import tracking
from motionguide.pipelines.dwpose.keypoints import PoseFrame


def _people(boxes, width=200, height=100):
    """One person per xyxy box; body points spread inside it with score 0.9."""
    n = len(boxes)
    kp = np.zeros((n, 134, 2))
    sc = np.zeros((n, 134))
    for p, (x1, y1, x2, y2) in enumerate(boxes):
        kp[p, :18, 0] = np.linspace(x1, x2, 18)
        kp[p, :18, 1] = np.linspace(y1, y2, 18)
        sc[p, :18] = 0.9
    return PoseFrame(kp, sc, width, height)


def test_iou():
    assert tracking.iou(np.array([0, 0, 10, 10.0]), np.array([5, 0, 15, 10.0])) == pytest.approx(1 / 3)
    assert tracking.iou(np.array([0, 0, 10, 10.0]), np.array([20, 20, 30, 30.0])) == 0.0


def test_pick_rules():
    frame = _people([(0, 0, 30, 90), (90, 40, 110, 60), (150, 0, 190, 50)])
    assert tracking.pick_person(frame, [0, 1, 2], "largest") == 0
    assert tracking.pick_person(frame, [0, 1, 2], "most central") == 1
    assert tracking.pick_person(frame, [0, 1, 2], "index", 2) == 2
    assert tracking.pick_person(frame, [0, 1, 2], "index", 5) is None


def test_identity_kept_when_detection_order_changes():
    frames = [
        _people([(10, 10, 60, 90), (120, 20, 150, 60)]),
        _people([(125, 20, 155, 60), (16, 10, 66, 90)]),  # order swapped
        _people([(130, 20, 160, 60)]),  # followed person gone
        _people([(130, 20, 160, 60), (28, 10, 78, 90)]),  # back: re-acquired as the largest
    ]
    assert tracking.track_person(frames, "largest") == [0, 1, None, 1]
    central = tracking.track_person(frames, "most central")
    assert central == [1, 0, 0, 0]  # the small person stays followed once picked
    out, found = tracking.select_people(frames, "largest", keep_others=True)
    assert found == [True, True, False, True]
    assert out[1].keypoints[0, 0].tolist() == [16, 10]  # followed person first
    assert out[1].num_people == 2 and out[2].num_people == 1
    only, _ = tracking.select_people(frames, "largest")
    assert [f.num_people for f in only] == [1, 1, 0, 1]


def test_fallback_frames_have_nobody():
    frame = _people([(0, 0, 200, 100)])
    frame.extra["fallback_box"] = True
    assert tracking.real_people(frame) == []
    out, found = tracking.select_people([frame], "all")
    assert found == [False] and out[0].num_people == 1


def test_fill_missing():
    frames = [_people([(0, 0, 20, 40)]), PoseFrame.empty(200, 100), PoseFrame.empty(200, 100),
              _people([(30, 0, 50, 40)]), PoseFrame.empty(200, 100)]
    frames[0].scores[0, 3] = 0.5
    found = [True, False, False, True, False]
    filled = tracking.fill_missing(frames, found, "interpolate")
    np.testing.assert_allclose(filled[1].keypoints[0, 0], [10, 0])  # one third of the way from 0 to 30
    np.testing.assert_allclose(filled[2].keypoints[0, 0], [20, 0])
    assert filled[1].scores[0, 3] == 0.5  # the weaker end's score
    np.testing.assert_allclose(filled[4].keypoints[0, 0], [30, 0])  # copied at the end
    assert filled[1].extra["interpolated"]
    empty = tracking.fill_missing(frames, found, "empty")
    assert [f.num_people for f in empty] == [1, 0, 0, 1, 0]
    kept = tracking.fill_missing(frames, found, "keep (reference)")
    assert [f.num_people for f in kept] == [1, 0, 0, 1, 0]
    nobody = tracking.fill_missing(frames[1:3], [False, False], "interpolate")
    assert [f.num_people for f in nobody] == [0, 0]
    with pytest.raises(ValueError, match="missing-person"):
        tracking.fill_missing(frames, found, "guess")
