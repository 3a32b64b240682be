"""RTMPose crop maths, SimCC decoding, neck rule and OpenPose remap on hand-made arrays; batching on tiny ONNX."""
import numpy as np
import pytest

from motionguide.pipelines.dwpose import pose_model as pm
from motionguide.pipelines.dwpose import runtime


def test_box_centre_scale_and_aspect():
    center, scale = pm.box_to_center_scale([10, 20, 110, 220])
    assert center.tolist() == [60, 120] and scale.tolist() == [125, 250]
    assert pm.fix_aspect_ratio(scale, 0.75).tolist() == [187.5, 250]  # too narrow: widen
    assert pm.fix_aspect_ratio(np.array([300.0, 200.0]), 0.75).tolist() == [300, 400]  # too wide: heighten


def test_warp_matrix_is_scale_and_translation():
    mat = pm.warp_matrix(np.array([60.0, 120.0]), np.array([187.5, 250.0]), (288, 384))
    s = 288 / 187.5
    np.testing.assert_allclose(mat, [[s, 0, 144 - 60 * s], [0, s, 192 - 120 * s]], atol=1e-4)


def test_crop_samples_the_box_and_normalises():
    image = np.zeros((400, 300, 3), np.uint8)
    image[150:250, 100:200] = [200, 100, 50]
    crop, center, scale = pm.crop_person(image, [100, 150, 200, 250])
    assert crop.shape == (3, 384, 288) and crop.dtype == np.float32
    assert center.tolist() == [150, 200] and scale.tolist() == [125, 125 / 0.75]
    expected = (np.array([200, 100, 50]) - pm.MEAN) / pm.STD
    np.testing.assert_allclose(crop[:, 192, 144], expected, rtol=1e-6)
    np.testing.assert_allclose(crop[:, 2, 2], -pm.MEAN / pm.STD, rtol=1e-6)  # outside the box: black


def test_simcc_decode():
    sx = np.zeros((1, 3, 576), np.float32)
    sy = np.zeros((1, 3, 768), np.float32)
    sx[0, 0, 10], sy[0, 0, 21] = 0.8, 0.5
    sx[0, 1, 7], sx[0, 1, 9], sy[0, 1, 3] = 0.6, 0.6, 0.9  # tie: first maximum wins
    sx[0, 2] -= 1.0
    sy[0, 2, 5] = 0.7  # x max −1 → score −1 ≤ 0 → location −1
    locs, vals = pm.decode_simcc(sx, sy)
    np.testing.assert_allclose(locs[0], [[5.0, 10.5], [3.5, 1.5], [-0.5, -0.5]])
    np.testing.assert_allclose(vals[0], [0.5, 0.6, -1.0])


def test_crop_to_image():
    center, scale = np.array([150.0, 200.0]), np.array([125.0, 125 / 0.75])
    out = pm.crop_to_image(np.array([[144.0, 192.0], [0.0, 0.0], [288.0, 384.0]]), center, scale)
    np.testing.assert_allclose(out, [[150, 200], [87.5, 200 - 125 / 1.5], [212.5, 200 + 125 / 1.5]])


def test_neck_rule_and_openpose_remap():
    raw = np.stack([np.arange(133.0), 1000 + np.arange(133.0)], axis=-1)[None].repeat(2, axis=0)
    scores = np.full((2, 133), 0.9)
    scores[0, 5], scores[0, 6] = 0.5, 0.31
    scores[1, 5], scores[1, 6] = 0.5, 0.3  # 0.3 is not > 0.3
    kp, sc = pm.to_openpose_layout(raw, scores)
    assert kp.shape == (2, 134, 2) and sc.shape == (2, 134)
    assert kp[0, 1].tolist() == [5.5, 1005.5] and sc[0, 1] == 1.0 and sc[1, 1] == 0.0
    expected_raw = {0: 0, 2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 8: 12, 9: 14, 10: 16, 11: 11, 12: 13, 13: 15,
                    14: 2, 15: 1, 16: 4, 17: 3, 18: 17, 23: 22, 24: 23, 91: 90, 92: 91, 112: 111, 113: 112, 133: 132}
    for new, old in expected_raw.items():
        assert kp[0, new, 0] == old, (new, old)
    assert sc[0, 5] == 0.5 and sc[0, 2] == pytest.approx(0.31)


def _sessions(tiny_dwpose_dir):
    dynamic = pm.RTMPoseWholebody(runtime.create_session(tiny_dwpose_dir / "dw-ll_ucoco_384.onnx", "cpu"))
    fixed = pm.RTMPoseWholebody(runtime.create_session(tiny_dwpose_dir / "dw-ll_ucoco_384_fixed.onnx", "cpu"))
    return dynamic, fixed


def test_batch_dimension_detected_and_batched_equals_per_person(tiny_dwpose_dir):
    dynamic, fixed = _sessions(tiny_dwpose_dir)
    assert dynamic.dynamic_batch and not fixed.dynamic_batch
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (240, 180, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 90, 200, 0.9], [80, 30, 170, 230, 0.8], [0, 0, 180, 240, 0.5]])
    kp_b, sc_b = dynamic.estimate(image, boxes)
    kp_1, sc_1 = dynamic.estimate(image, boxes, batched=False)
    kp_f, sc_f = fixed.estimate(image, boxes)
    np.testing.assert_allclose(kp_b, kp_1, atol=1e-4)
    np.testing.assert_allclose(sc_b, sc_1, atol=1e-6)
    np.testing.assert_allclose(kp_b, kp_f, atol=1e-4)
    assert kp_b.shape == (3, 134, 2)
    # The pipeline equals decoding the model's raw output by hand for person 1.
    crop, center, scale = pm.crop_person(image, boxes[1])
    sx, sy = dynamic.session.run(None, {"input": crop[None]})
    locs, vals = pm.decode_simcc(sx, sy)
    kp, sc = pm.to_openpose_layout(pm.crop_to_image(locs[0], center, scale)[None], vals)
    np.testing.assert_allclose(kp_b[1], kp[0], atol=1e-6)
    assert dynamic.estimate(image, np.zeros((0, 5)))[0].shape == (0, 134, 2)
