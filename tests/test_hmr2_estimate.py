"""HMR2 estimation end to end on the tiny checkpoint: sequence contents, missing people, the node, Cancel."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from motionguide.nodes import comfy_adapter
from motionguide.pipelines.smpl.body.rotations import matrix_to_axis_angle as rotmat_to_axis_angle
from motionguide.pipelines.smpl.estimate.estimator import (
    SMPLEstimator,
    assemble_sequence,
    nearest_valid_index,
    person_boxes_for_estimation,
)
from motionguide.pipelines.smpl.estimate.hmr2 import HMR2Estimator
from motionguide.pipelines.smpl.estimate.hmr2_geometry import (
    box_center_and_size,
    cam_crop_to_full,
    crop_person,
    full_image_focal,
)

WIDTH, HEIGHT = 160, 120


def _frames(count=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, HEIGHT, WIDTH, 3), dtype=np.uint8)


def _person(box, score=0.9):
    """An OpenPose-18 person whose visible keypoints span ``box`` (two corners + one inside)."""
    x0, y0, x1, y1 = box
    body = [[0.0, 0.0, 0.0]] * 18
    body[0] = [x0, y0, score]
    body[10] = [x1, y1, score]
    body[1] = [(x0 + x1) / 2, (y0 + y1) / 2, score]
    body[5] = [x1 + 30, y1 + 30, 0.1]  # below the score threshold: ignored
    return {"pose_keypoints_2d": [v for point in body for v in point], "face_keypoints_2d": None,
            "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}


def _pose(boxes, canvas=(WIDTH, HEIGHT)):
    return [{"people": [] if box is None else [_person(box)], "canvas_width": canvas[0], "canvas_height": canvas[1]}
            for box in boxes]


BOXES = [(40, 10, 100, 110), None, (50, 20, 90, 100), (10, 5, 150, 118)]


# ---------------------------------------------------------------------------------------------------- boxes


def test_keypoint_boxes_get_the_padding_and_detector_boxes_none():
    frames = _pose([(40, 10, 100, 110), None, (50, 20, 90, 100)])
    frames[2]["people"][0]["person_box_xyxy"] = [45.0, 5.0, 95.0, 115.0, 0.9]
    boxes, padding = person_boxes_for_estimation(frames, 0, (WIDTH, HEIGHT), keypoint_padding=1.25)
    np.testing.assert_allclose(boxes[0], [40, 10, 100, 110])  # low-score point (x1+30) is ignored
    assert boxes[1] is None
    np.testing.assert_allclose(boxes[2], [45, 5, 95, 115])
    np.testing.assert_allclose(padding, [1.25, 1.25, 1.0])


def test_boxes_pick_the_person_index_and_scale_other_canvases():
    frames = [{"people": [_person((0, 0, 10, 10)), _person((20, 30, 40, 50))], "canvas_width": 80,
               "canvas_height": 60}, {"people": [_person((1, 1, 5, 5))], "canvas_width": 80, "canvas_height": 60}]
    boxes, _ = person_boxes_for_estimation(frames, 1, (160, 120))
    np.testing.assert_allclose(boxes[0], [40, 60, 80, 100])
    assert boxes[1] is None


def test_nearest_valid_index():
    valid = np.array([False, True, False, False, False, True, False])
    assert nearest_valid_index(valid).tolist() == [1, 1, 1, 1, 5, 5, 5]
    assert nearest_valid_index(np.array([False, False, True])).tolist() == [2, 2, 2]


# ---------------------------------------------------------------------------------------------------- estimator


@pytest.fixture(scope="module")
def estimator(hmr2_tiny_checkpoint):
    return HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, batch_size=3)


def test_hmr2_backend_implements_the_estimator_interface(hmr2_tiny_checkpoint):
    est = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, batch_size=2)
    assert isinstance(est, SMPLEstimator) and est.name == "hmr2" and est.batch_size == 2


def test_estimate_sequence_contents(estimator):
    frames = _frames()
    boxes = [None if b is None else np.array(b, float) for b in BOXES]
    calls = []
    seq = estimator.estimate(frames, boxes, callback=lambda done, total: calls.append((done, total)), fps=24.0)
    assert calls == [(3, 3)]  # three frames with a person, batch size 3: one batch
    assert seq["betas"].shape == (4, 10) and seq["global_orient"].shape == (4, 3)
    assert seq["body_pose"].shape == (4, 69) and seq["transl"].shape == (4, 3) and seq["K"].shape == (4, 3, 3)
    assert all(seq[k].dtype == np.float32 for k in ("betas", "global_orient", "body_pose", "transl", "K", "bbox"))
    assert seq["valid"].tolist() == [True, False, True, True]
    assert seq["image_size"] == (WIDTH, HEIGHT) and seq["fps"] == 24.0 and seq["model_type"] == "smpl"
    np.testing.assert_allclose(seq["bbox"], [BOXES[0], [0, 0, 0, 0], BOXES[2], BOXES[3]])
    focal = 5000 / 256 * WIDTH
    np.testing.assert_allclose(seq["K"][1], [[focal, 0, 80], [0, focal, 60], [0, 0, 1]])

    # Recompute frame 2 by hand: crop → network → rotations / camera conversion.
    center, size = box_center_and_size(BOXES[2], 1.2)
    out = estimator.predict_crops(crop_person(frames[2], center, size)[None])
    np.testing.assert_allclose(seq["global_orient"][2], rotmat_to_axis_angle(out["global_orient"][0, 0]), atol=1e-6)
    np.testing.assert_allclose(seq["body_pose"][2], rotmat_to_axis_angle(out["body_pose"][0]).reshape(-1), atol=1e-6)
    np.testing.assert_allclose(seq["betas"][2], out["betas"][0], atol=1e-6)
    transl = cam_crop_to_full(out["cam"], center[None], [size], (WIDTH, HEIGHT), full_image_focal((WIDTH, HEIGHT)))
    np.testing.assert_allclose(seq["transl"][2], transl[0], rtol=1e-5)
    # Frame 1 (no person) holds the nearest valid frame's parameters (frame 0: ties go earlier).
    for key in ("betas", "global_orient", "body_pose", "transl"):
        np.testing.assert_array_equal(seq[key][1], seq[key][0])
    assert not np.array_equal(seq["transl"][0], seq["transl"][2])


def test_batch_size_and_input_type_do_not_change_results(hmr2_tiny_checkpoint, estimator):
    frames = _frames()
    boxes = [None if b is None else np.array(b, float) for b in BOXES]
    one = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, batch_size=1).estimate(frames, boxes)
    floats = torch.from_numpy(frames.astype(np.float32) / 255.0)
    many = estimator.estimate(floats, boxes)
    for key in ("betas", "global_orient", "body_pose", "transl"):
        np.testing.assert_allclose(one[key], many[key], rtol=1e-4, atol=1e-5)


def test_box_padding_changes_the_crop_and_the_depth(hmr2_tiny_checkpoint):
    frames = _frames(1)
    boxes = [np.array(BOXES[0], float)]
    tight = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, box_rescale=1.0).estimate(frames, boxes)
    loose = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, box_rescale=1.5).estimate(frames, boxes)
    assert not np.allclose(tight["transl"], loose["transl"])


def test_estimate_rejects_bad_input(estimator):
    frames = _frames(2)
    with pytest.raises(ValueError, match="2 person boxes for 3 frames|Got 2 person boxes"):
        estimator.estimate(_frames(3), [None, None])
    with pytest.raises(ValueError, match="None of the 2 frames has a person box"):
        estimator.estimate(frames, [None, np.array([5.0, 5.0, 5.0, 5.0])])


def test_assemble_sequence_rejects_non_finite_values():
    zeros = dict(betas=np.zeros((2, 10)), global_orient=np.zeros((2, 3)), body_pose=np.zeros((2, 69)),
                 transl=np.array([[0, 0, 1.0], [0, np.nan, 1.0]]), K=np.tile(np.eye(3), (2, 1, 1)),
                 valid=np.array([True, True]), bbox=np.zeros((2, 4)), image_size=(4, 4), fps=30)
    with pytest.raises(ValueError, match=r"'transl' holds NaN or inf at frame 1"):
        assemble_sequence(**zeros)


# ---------------------------------------------------------------------------------------------------- node


def _node():
    from motionguide.nodes.smpl_estimate import MotionGuideEstimateSMPL

    return MotionGuideEstimateSMPL()


def test_node_through_the_registry(use_models_dir, hmr2_tiny_checkpoint):
    import motionguide

    cls = motionguide.NODE_CLASS_MAPPINGS["MotionGuideEstimateSMPL"]
    assert cls.CATEGORY == "MotionGuide/smpl" and cls.RETURN_TYPES == ("SMPL_SEQUENCE",)
    inputs = cls.INPUT_TYPES()["required"]
    assert "hmr2_tiny.ckpt" in inputs["estimator"][0]
    assert all("tooltip" in spec[1] for spec in inputs.values())
    images = torch.from_numpy(_frames().astype(np.float32) / 255.0)
    (seq,) = cls().estimate(images=images, pose_keypoint=_pose(BOXES), estimator="hmr2_tiny.ckpt", person_index=0,
                            precision="fp32", batch_size=2, fps=25.0, box_padding=1.2)
    assert seq["valid"].tolist() == [True, False, True, True] and seq["fps"] == 25.0
    np.testing.assert_allclose(seq["bbox"][3], BOXES[3])
    direct = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint).estimate(
        images, [None if b is None else np.array(b, float) for b in BOXES], fps=25.0)
    np.testing.assert_allclose(seq["transl"], direct["transl"], rtol=1e-5)


def test_node_reports_progress_per_batch(use_models_dir, hmr2_tiny_checkpoint, monkeypatch):
    seen = []
    monkeypatch.setattr(comfy_adapter, "progress_listener", lambda done, total, label: seen.append((done, total)))
    _node().estimate(images=torch.rand(5, HEIGHT, WIDTH, 3), pose_keypoint=_pose([BOXES[0]] * 5),
                     estimator="hmr2_tiny.ckpt", batch_size=2)
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_node_cancel_stops_and_the_next_run_works(use_models_dir, hmr2_tiny_checkpoint):
    images = torch.rand(4, HEIGHT, WIDTH, 3)
    comfy_adapter.request_interrupt()
    with pytest.raises(comfy_adapter.Interrupted):
        _node().estimate(images=images, pose_keypoint=_pose([BOXES[0]] * 4), estimator="hmr2_tiny.ckpt",
                         batch_size=1)
    (seq,) = _node().estimate(images=images, pose_keypoint=_pose([BOXES[0]] * 4), estimator="hmr2_tiny.ckpt")
    assert seq["valid"].all()


def test_node_errors_name_the_input(use_models_dir, hmr2_tiny_checkpoint):
    images = torch.rand(3, HEIGHT, WIDTH, 3)
    with pytest.raises(ValueError, match="pose_keypoint has 2 frames but images has 3"):
        _node().estimate(images=images, pose_keypoint=_pose(BOXES[:2]), estimator="hmr2_tiny.ckpt")
    with pytest.raises(ValueError, match="No person with index 1 in any of the 3 frames"):
        _node().estimate(images=images, pose_keypoint=_pose(BOXES[:3]), estimator="hmr2_tiny.ckpt", person_index=1)
    with pytest.raises(FileNotFoundError, match="hmr2_missing.ckpt"):
        _node().estimate(images=images, pose_keypoint=_pose(BOXES[:3]), estimator="hmr2_missing.ckpt")


# ---------------------------------------------------------------------------------------------------- real weights


def _real_checkpoint():
    base = os.environ.get("MOTIONGUIDE_MODELS_DIR")
    if not base:
        return None
    for name in ("hmr2_epoch_35.ckpt", "epoch=35-step=1000000.ckpt"):
        path = Path(base) / "hmr2" / name
        if path.exists():
            return path
    return None


@pytest.mark.real_weights
def test_real_hmr2_checkpoint_loads_strictly_and_predicts_a_plausible_body():
    path = _real_checkpoint()
    if path is None:
        pytest.skip("real HMR2.0 checkpoint not found under $MOTIONGUIDE_MODELS_DIR/hmr2/")
    device = comfy_adapter.get_torch_device()
    estimator = HMR2Estimator.from_checkpoint(path, device=device, dtype=comfy_adapter.choose_dtype("auto", device))
    cfg = estimator.config
    assert (cfg.embed_dim, cfg.depth, cfg.head_depth) == (1280, 32, 6)
    # The mean parameters of the public file: SPIN's mean pose with the root turned ≈180° about x.
    init_root = estimator.network.smpl_head.init_body_pose[0, :6].float().cpu()
    assert init_root[0] > 0.9 and init_root[4] < -0.5
    frames = np.full((2, 512, 384, 3), 128, np.uint8)
    seq = estimator.estimate(frames, [np.array([92.0, 56.0, 292.0, 456.0])] * 2)
    assert np.isfinite(seq["transl"]).all() and (seq["transl"][:, 2] > 0).all()
    assert np.abs(seq["betas"]).max() < 5.0


def test_node_uses_detector_boxes_unpadded(use_models_dir, hmr2_tiny_checkpoint):
    images = torch.from_numpy(_frames(2).astype(np.float32) / 255.0)
    pose = _pose([BOXES[0], BOXES[0]])
    pose[1]["people"][0]["person_box_xyxy"] = list(BOXES[0]) + [0.95]
    (seq,) = _node().estimate(images=images, pose_keypoint=pose, estimator="hmr2_tiny.ckpt", box_padding=1.3)
    est = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint)
    box = [np.array(BOXES[0], float)]
    padded = est.estimate(images[:1], box, box_rescale=1.3)
    unpadded = est.estimate(images[1:], box, box_rescale=1.0)
    np.testing.assert_allclose(seq["transl"][0], padded["transl"][0], rtol=1e-5)
    np.testing.assert_allclose(seq["transl"][1], unpadded["transl"][0], rtol=1e-5)


def test_bf16_network_gives_float32_outputs_close_to_fp32(hmr2_tiny_checkpoint, estimator):
    frames = _frames(2)
    boxes = [np.array(BOXES[0], float), np.array(BOXES[3], float)]
    half = HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, dtype=torch.bfloat16).estimate(frames, boxes)
    full = estimator.estimate(frames, boxes)
    assert next(HMR2Estimator.from_checkpoint(hmr2_tiny_checkpoint, dtype=torch.bfloat16).network.parameters()).dtype \
        == torch.bfloat16
    assert half["transl"].dtype == np.float32
    np.testing.assert_allclose(half["global_orient"], full["global_orient"], atol=0.05)
    np.testing.assert_allclose(half["transl"], full["transl"], rtol=0.05)


def test_degenerate_boxes_are_skipped(estimator):
    # zero width (or zero height) is no box, even when the other side is long
    frames = _frames(3)
    seq = estimator.estimate(frames, [np.array([40.0, 10, 40, 110]), np.array([40.0, 50, 100, 50]),
                                      np.array([40.0, 10, 100, 110])])
    assert seq["valid"].tolist() == [False, False, True]


def test_auto_precision_runs_hmr2_in_fp32_like_4d_humans(use_models_dir, hmr2_tiny_checkpoint, monkeypatch):
    from motionguide.nodes import smpl_estimate

    seen = []

    def fake_load(path, dtype, device):
        seen.append(dtype)
        raise RuntimeError("stop here")

    monkeypatch.setattr(smpl_estimate, "_load_network", fake_load)
    monkeypatch.setattr(comfy_adapter, "get_torch_device", lambda: torch.device("cuda"))
    for precision in ("auto", "fp16"):
        with pytest.raises(RuntimeError, match="stop here"):
            _node().estimate(images=torch.rand(1, HEIGHT, WIDTH, 3), pose_keypoint=_pose([BOXES[0]]),
                             estimator="hmr2_tiny.ckpt", precision=precision)
    assert seen == [torch.float32, torch.float16]


def test_estimate_keeps_the_keypoints_it_came_from(use_models_dir, hmr2_tiny_checkpoint):
    (seq,) = _node().estimate(images=torch.rand(2, HEIGHT, WIDTH, 3),
                              pose_keypoint=_pose([BOXES[0], None], canvas=(WIDTH * 2, HEIGHT * 2)),
                              estimator="hmr2_tiny.ckpt")
    assert seq["keypoints"].shape == (2, 18, 3)
    np.testing.assert_allclose(seq["keypoints"][0, 10], [BOXES[0][2] / 2, BOXES[0][3] / 2, 0.9], rtol=1e-6)
    assert not seq["keypoints"][1].any()  # no person: zeros
