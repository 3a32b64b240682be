"""Alignment fit numbers on hand-made sequences, options, and bad input."""
import logging

import numpy as np
import pytest

from motionguide.pipelines.dwpose import align
from motionguide.pipelines.dwpose import skeleton as sk
from motionguide.pipelines.dwpose.keypoints import PoseFrame


def _person(points: dict, width=100, height=100, people=1, default_score=0.1):
    kp = np.zeros((people, 134, 2))
    sc = np.full((people, 134), default_score)
    for i, (x, y, c) in points.items():
        kp[0, i], sc[0, i] = (x, y), c
    return PoseFrame(kp, sc, width, height)


def _reference():
    # only the nose and the neck are confident → alignment ids [0, 1]
    return _person({0: (50, 40, 0.9), 1: (50, 80, 0.8)})


def _driving():
    a = _person({0: (40, 20, 0.9), 1: (40, 40, 0.9)})
    b = _person({0: (60, 30, 0.9), 1: (60, 50, 0.9)})
    return [a, b]


def test_reference_fit_numbers():
    fit = align.fit_alignment(_driving(), _reference())
    # y pairs (0.2→0.4, 0.4→0.8, 0.3→0.4, 0.5→0.8): slope 0.08/0.05 = 1.6, intercept 0.6 − 1.6·0.35 = 0.04
    np.testing.assert_allclose(fit.scale, [1.6, 1.6], atol=1e-12)
    np.testing.assert_allclose(fit.offset, [0.5 - 1.6 * 0.5, 0.04], atol=1e-12)
    assert (fit.frames_used, fit.points_used) == (2, 4)
    out = align.apply_alignment(_driving(), fit, 100, 100)
    np.testing.assert_allclose(out[0].keypoints[0, 0], [1.6 * 0.4 - 0.3, 1.6 * 0.2 + 0.04] * np.array(100.0))


def test_different_sizes_keep_pixel_aspect():
    ref = PoseFrame(np.zeros((1, 134, 2)), np.zeros((1, 134)), 100, 200)
    rng = np.random.default_rng(0)
    ids = list(sk.ALIGN_IDS)
    ref.scores[0, ids] = 0.9
    driving = []
    ay, by, bx = 0.7, 0.1, 0.05
    ax = ay / (100 / 200 / 200 * 100)  # driving 200 wide × 100 high, reference 100 × 200
    ref_n = rng.uniform(0.1, 0.9, (134, 2))
    ref.keypoints[0] = ref_n * [100, 200]
    for _ in range(3):
        d = (ref_n - [bx, by]) / [ax, ay]
        driving.append(PoseFrame(d[None] * [200, 100], np.full((1, 134), 0.9), 200, 100))
    fit = align.fit_alignment(driving, ref)
    np.testing.assert_allclose(fit.scale, [ax, ay], rtol=1e-9)
    np.testing.assert_allclose(fit.offset, [bx, by], atol=1e-9)
    out = align.apply_alignment(driving, fit, 100, 200)
    assert out[0].width == 100 and out[0].height == 200
    np.testing.assert_allclose(out[0].keypoints[0], ref.keypoints[0], atol=1e-9)
    # one driving pixel step is the same length in x and y on the reference
    assert ax * 100 / 200 == pytest.approx(ay * 200 / 100)


def test_multi_person_frames_skipped_by_reference_used_when_confident_only():
    drv = _driving()
    crowd = _person({0: (10, 90, 0.9), 1: (10, 95, 0.9)}, people=2)
    fit_ref = align.fit_alignment(drv + [crowd], _reference())
    assert fit_ref.frames_used == 2 and fit_ref.scale[1] == pytest.approx(1.6)
    fit_conf = align.fit_alignment(drv + [crowd], _reference(), confident_only=True)
    assert fit_conf.frames_used == 3 and fit_conf.scale[1] != pytest.approx(1.6)


def test_confident_only_drops_weak_points_and_weighting_follows_scores():
    drv = _driving()
    drv[1].scores[0, [0, 1]] = 0.001
    fit = align.fit_alignment(drv, _reference(), confident_only=True)
    assert fit.frames_used == 1  # frame b has no confident point
    np.testing.assert_allclose(fit.scale[1], 2.0)  # frame a alone: 0.2→0.4, 0.4→0.8
    weighted = align.fit_alignment(drv, _reference(), weighted=True)
    assert weighted.scale[1] == pytest.approx(2.0, abs=0.01)
    plain = align.fit_alignment(drv, _reference())
    assert plain.scale[1] == pytest.approx(1.6)


def test_reference_without_person_is_a_clear_error():
    with pytest.raises(ValueError, match="reference_pose has no person"):
        align.align_poses(_driving(), PoseFrame.empty(100, 100))
    with pytest.raises(ValueError, match="only 1 of the body keypoints"):
        align.align_poses(_driving(), _person({0: (50, 40, 0.9)}))


def test_driving_without_people_does_not_crash(caplog):
    empty = [PoseFrame.empty(200, 100), PoseFrame.empty(200, 100)]
    with caplog.at_level(logging.WARNING):
        out, fit = align.align_poses(empty, _reference())
    assert len(out) == 2 and all(f.num_people == 0 for f in out) and "no driving frame" in caplog.text
    assert align.align_poses([], _reference())[0] == []


def test_retarget_scales_bones_by_first_frame_ratios():
    ref = _person({1: (50, 20, 0.9), 2: (38, 20, 0.9), 3: (38, 35, 0.9), 0: (50, 10, 0.9)})
    drv = _person({1: (50, 20, 0.9), 2: (40, 20, 0.9), 3: (40, 30, 0.9), 4: (40, 40, 0.9), 0: (50, 10, 0.9)})
    drv.keypoints[0, 113:134] = (40, 42)  # right hand block near the right wrist (4)
    turned = _person({1: (50, 20, 0.9), 2: (45, 20, 0.9), 3: (45, 25, 0.9), 4: (45, 35, 0.9), 0: (50, 10, 0.9)})
    first, second = align.retarget_bones([drv, turned], ref)
    kp = first.keypoints[0]
    np.testing.assert_allclose(kp[2], [38, 20])  # neck→shoulder 10 → the reference's 12, direction kept (−x)
    np.testing.assert_allclose(kp[3], [38, 35])  # shoulder→elbow 10 → 15 (ratio 1.5)
    np.testing.assert_allclose(kp[4], [38, 45])  # elbow→wrist unknown on the reference: driving length 10 kept
    np.testing.assert_allclose(kp[113], [38, 47])  # the hand follows its wrist
    np.testing.assert_allclose(kp[1], [50, 20])
    # the same factors later in the clip: a bone seen foreshortened stays foreshortened
    np.testing.assert_allclose(second.keypoints[0, 2], [44, 20])  # 5 × 1.2
    np.testing.assert_allclose(second.keypoints[0, 3], [44, 27.5])  # 5 × 1.5


def test_retarget_ratio_is_clamped():
    ref = _person({1: (50, 20, 0.9), 2: (10, 20, 0.9), 0: (50, 10, 0.9)})  # a 40 px neck→shoulder
    side = _person({1: (50, 20, 0.9), 2: (48, 20, 0.9), 0: (50, 10, 0.9)})  # 2 px: seen from the side
    out = align.retarget_bones([side], ref)[0]
    low, high = align.RETARGET_RATIO_RANGE
    np.testing.assert_allclose(out.keypoints[0, 2], [50 - 2 * high, 20])  # ×1.5, not ×20


def test_smoothing():
    t = np.arange(12, dtype=np.float64)
    frames = []
    for i in t:
        kp = np.zeros((1, 134, 2))
        kp[0, :, 0] = 2 + 0.5 * i + 0.25 * i * i
        kp[0, :, 1] = 7.0
        frames.append(PoseFrame(kp, np.ones((1, 134)), 100, 100))
    sg = align.smooth_first_person(frames, "savitzky-golay", window=5)
    np.testing.assert_allclose([f.keypoints[0, 0, 0] for f in sg], 2 + 0.5 * t + 0.25 * t * t, atol=1e-9)
    euro = align.smooth_first_person(frames, "one-euro")
    assert all(f.keypoints[0, 5, 1] == pytest.approx(7.0) for f in euro)  # a constant stays constant
    lagged = [f.keypoints[0, 0, 0] for f in euro]
    assert lagged[0] == frames[0].keypoints[0, 0, 0] and lagged[-1] < frames[-1].keypoints[0, 0, 0]
    step = np.array([0.0] * 5 + [10.0] * 5)
    filtered = align.one_euro(step[:, None], min_cutoff=1.0, beta=0.0, rate=30.0)[:, 0]
    alpha = 1 / (1 + 30 / (2 * np.pi))
    assert filtered[5] == pytest.approx(alpha * 10) and 0 < filtered[5] < filtered[6] < 10
    gap = frames[:3] + [PoseFrame.empty(100, 100)] + frames[4:6]
    assert align.smooth_first_person(gap, "savitzky-golay", window=3)[3].num_people == 0
    with pytest.raises(ValueError, match="smoothing"):
        align.smooth_first_person(frames, "kalman")
