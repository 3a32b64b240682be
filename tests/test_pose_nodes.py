"""Pose nodes through the tiny ONNX models: detection, cache, progress/cancel, align, draw, save/load."""
import json
import logging

import numpy as np
import pytest
import torch
from motionguide.headless.tiny_models.dwpose import person_image
from motionguide.nodes import comfy_adapter
from motionguide.nodes import pose as nodes
from motionguide.pipelines.dwpose import draw, wholebody
from motionguide.pipelines.dwpose.keypoints import pose_keypoint_to_frames


def _images(*arrays):
    return torch.from_numpy(np.stack(arrays)).float() / 255.0


def _clip():
    two = ((0.25, 0.5, 0.2, 0.6), (0.75, 0.5, 0.2, 0.6))
    return _images(person_image(blobs=two, seed=1), np.zeros((256, 192, 3), np.uint8),
                   person_image(blobs=((0.3, 0.5, 0.25, 0.7), (0.75, 0.5, 0.2, 0.6)), seed=2))


def _detect(images, **kw):
    args = dict(detector="yolox_l.onnx", pose_model="dw-ll_ucoco_384.onnx", device="cpu")
    args.update(kw)
    return nodes.MotionGuideDetectPose().detect(images, **args)


@pytest.fixture()
def dwpose(tiny_dwpose_dir, use_models_dir):
    wholebody.DETECTIONS.clear()
    yield tiny_dwpose_dir
    wholebody.DETECTIONS.clear()


def test_input_types_list_model_files(dwpose):
    spec = nodes.MotionGuideDetectPose.INPUT_TYPES()["required"]
    assert spec["detector"][0][0] == "yolox_l.onnx" and spec["pose_model"][0][0] == "dw-ll_ucoco_384.onnx"
    for cls in (nodes.MotionGuideDetectPose, nodes.MotionGuideAlignPose, nodes.MotionGuideDrawPose,
                nodes.MotionGuideSavePose, nodes.MotionGuideLoadPose):
        for name, (kind, options) in cls.INPUT_TYPES()["required"].items():
            assert options.get("tooltip"), (cls.__name__, name)


def test_detect_pose_people_scores_and_missing_frames(dwpose, caplog):
    with caplog.at_level(logging.WARNING):
        pose, preview = _detect(_clip())
    assert len(pose) == 3 and pose[0]["canvas_width"] == 192 and pose[0]["canvas_height"] == 256
    assert len(pose[0]["people"]) == 2  # everybody, as the reference
    scores = np.array(pose[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)[:, 2]
    assert not np.isin(scores, [0.0, 1.0]).all()  # real scores, not binarised
    assert pose[0]["people"][0]["person_box_xyxy"][4] > 0.3
    assert "no person found in 1 of 3 frames" in caplog.text
    # the empty frame is interpolated from its neighbours' first person
    mid = np.array(pose[1]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    a = np.array(pose[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    b = np.array(pose[2]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    np.testing.assert_allclose(mid[:, :2], (a[:, :2] + b[:, :2]) / 2)
    assert preview.shape == (3, 256, 192, 3) and preview.dtype == torch.float32
    expected = draw.draw_pose_map(pose[0], 192, 256)
    np.testing.assert_array_equal(np.round(preview[0].numpy() * 255).astype(np.uint8), expected)


def test_person_selection_and_toggles(dwpose):
    pose, _ = _detect(_clip(), person="largest", missing_person="empty", hands=False, face=False)
    assert [len(f["people"]) for f in pose] == [1, 0, 1]
    assert pose[0]["people"][0]["hand_left_keypoints_2d"] is None
    assert pose[0]["people"][0]["face_keypoints_2d"] is None
    box = pose[2]["people"][0]["person_box_xyxy"]
    assert box[0] < 96  # the larger, left person (width 0.25) is followed
    kept, _ = _detect(_clip(), person="most central", keep_others=True, missing_person="keep (reference)")
    assert [len(f["people"]) for f in kept] == [2, 1, 2]  # the reference's whole-image guess is kept


def test_cache_skips_detection(dwpose, monkeypatch):
    first, _ = _detect(_clip())

    def no_session(*args, **kwargs):
        raise AssertionError("detection should come from the cache")

    monkeypatch.setattr(wholebody, "load_wholebody", no_session)
    second, _ = _detect(_clip())
    assert second == first
    with pytest.raises(AssertionError, match="cache"):
        _detect(_clip()[:1])  # different frames: not cached


def test_progress_and_cancel(dwpose, monkeypatch):
    seen = []
    monkeypatch.setattr(comfy_adapter, "progress_listener", lambda done, total, label: seen.append((done, total)))
    _detect(_clip())
    assert seen[0] == (1, 6) and seen[-1] == (6, 6)
    wholebody.DETECTIONS.clear()
    comfy_adapter.request_interrupt()
    try:
        with pytest.raises(comfy_adapter.Interrupted):
            _detect(_clip())
    finally:
        comfy_adapter.clear_interrupt()


def test_empty_and_single_frame_batches(dwpose):
    # an empty batch fails where it enters, not later at the sampler (issue 11 item 11)
    with pytest.raises(ValueError, match=r"images is an empty batch \(0 frames\)"):
        _detect(torch.zeros((0, 64, 48, 3)))
    pose, preview = _detect(_clip()[:1])
    assert len(pose) == 1 and preview.shape[0] == 1


def test_no_person_in_the_whole_video_is_an_error(dwpose):
    with pytest.raises(ValueError, match=r"no person in any of the 3 frames"):
        _detect(torch.zeros((3, 64, 48, 3)))
    with pytest.raises(ValueError, match=r"no person in any of the 3 frames"):
        _detect(torch.zeros((3, 64, 48, 3)), person="largest", missing_person="empty")
    with pytest.raises(ValueError, match=r"person_index 7\) is in none of the 3 frames"):
        _detect(_clip(), person="index", person_index=7)
    # "keep (reference)" keeps the reference's whole-image guess even when nobody is in any frame (issue 22 item 17)
    kept, _ = _detect(torch.zeros((3, 64, 48, 3)), missing_person="keep (reference)")
    assert len(kept) == 3 and all(len(frame["people"]) == 1 for frame in kept)
    assert all(len(frame["people"][0]["pose_keypoints_2d"]) == 54 for frame in kept)
    # a person missing from some frames only (the clip's black frame 1) is still filled in (and logged)
    pose, _ = _detect(_clip())
    assert len(pose) == 3 and pose[1]["people"]


def test_bad_model_files(dwpose):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        _detect(_clip(), detector="missing.onnx")
    with pytest.raises(ValueError, match=r"wrong_signature\.onnx.*simcc_x"):
        _detect(_clip(), pose_model="broken/wrong_signature.onnx")
    with pytest.raises(ValueError, match="images must be an IMAGE"):
        _detect(torch.zeros((2, 8, 8)))


def test_align_node_with_different_sizes(dwpose):
    reference, _ = _detect(_images(person_image(240, 320, blobs=((0.5, 0.5, 0.3, 0.8),), seed=5)))
    driving, _ = _detect(_clip())
    (aligned,) = nodes.MotionGuideAlignPose().align(driving, reference)
    assert len(aligned) == 4 and aligned[0] == reference[0]
    assert all(f["canvas_width"] == 240 and f["canvas_height"] == 320 for f in aligned)
    (plain,) = nodes.MotionGuideAlignPose().align(driving, reference, fit="confident points, weighted",
                                                  smoothing="one-euro", retarget_bones=True,
                                                  include_reference_frame=False)
    assert len(plain) == 3
    with pytest.raises(ValueError, match="reference_pose has no person"):
        nodes.MotionGuideAlignPose().align(driving, [{"people": [], "canvas_width": 8, "canvas_height": 8}])
    with pytest.raises(ValueError, match="reference_pose is empty"):
        nodes.MotionGuideAlignPose().align(driving, [])
    with pytest.raises(ValueError, match="driving_pose is empty"):
        nodes.MotionGuideAlignPose().align([], reference)


def test_draw_node(dwpose):
    body = [0.0] * 54
    body[3:9] = [0.5, 0.4, 1.0, 0.6, 0.4, 1.0]  # controlnet_aux style: normalised, binarised, no hands/face
    data = [{"people": [{"pose_keypoints_2d": body, "face_keypoints_2d": None}], "canvas_width": 576,
             "canvas_height": 1152}]
    (images,) = nodes.MotionGuideDrawPose().draw(data, 0, 0)
    assert images.shape == (1, 1152, 576, 3)
    np.testing.assert_array_equal(np.round(images[0].numpy() * 255).astype(np.uint8),
                                  draw.draw_pose_map(data[0], 576, 1152))
    assert images.max() > 0
    (sized,) = nodes.MotionGuideDrawPose().draw(data, 32, 48, style="thick")
    assert sized.shape == (1, 48, 32, 3)
    with pytest.raises(ValueError, match="pose_keypoint is empty"):
        nodes.MotionGuideDrawPose().draw([], 32, 48)


def test_save_and_load_never_overwrite(dwpose, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("MOTIONGUIDE_INPUT_DIR", str(tmp_path / "out"))
    pose, _ = _detect(_clip())
    saver = nodes.MotionGuideSavePose()
    first = saver.save(pose, "poses/run")["result"][0]
    second = saver.save(pose, "poses/run")["result"][0]
    assert first.endswith("run_00001.json") and second.endswith("run_00002.json")
    assert json.loads(open(first).read()) == pose
    folder = saver.save(pose, "poses/frames", format="OpenPose file per frame")["result"][0]
    assert folder == str(tmp_path / "out" / "poses" / "frames_00001")
    files = sorted(p.name for p in (tmp_path / "out" / "poses" / "frames_00001").iterdir())
    assert files == [f"frames_00001_{i:012d}_keypoints.json" for i in range(3)]
    assert "poses/run_00001.json" in nodes.MotionGuideLoadPose.INPUT_TYPES()["required"]["file"][0]
    (loaded,) = nodes.MotionGuideLoadPose().load("poses/run_00001.json")
    assert loaded == pose
    (from_folder,) = nodes.MotionGuideLoadPose().load("poses/frames_00001/")
    assert [len(f["people"]) for f in from_folder] == [len(f["people"]) for f in pose]
    a, b = pose_keypoint_to_frames(from_folder), pose_keypoint_to_frames(pose)
    np.testing.assert_array_equal(a[0].keypoints, b[0].keypoints)
    with pytest.raises(ValueError, match="outside the output folder"):
        saver.save(pose, "../escape")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        nodes.MotionGuideLoadPose().load("nope.json")
    (tmp_path / "out" / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        nodes.MotionGuideLoadPose().load("bad.json")
