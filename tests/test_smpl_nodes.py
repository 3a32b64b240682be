"""SMPL node classes called the way ComfyUI calls them."""
import numpy as np
import pytest
from motionguide.nodes import smpl as nodes
from motionguide.pipelines.smpl.body.rotations import matrix_to_axis_angle, rotation_about_axis
from motionguide.pipelines.smpl.motion.sequence import load_sequence, validate_sequence

NODE_IDS = ["MotionGuideLoadSMPLModel", "MotionGuideLoadSMPLMotion", "MotionGuideSaveSMPLMotion",
            "MotionGuideSmoothSMPL", "MotionGuideTransferShape", "MotionGuideSetCamera"]


def motion(frames=8, depth=10.0, box=None):
    orient = matrix_to_axis_angle(rotation_about_axis("x", 180.0))
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.repeat(orient[None], frames, 0),
               body_pose=np.zeros((frames, 69)), transl=np.tile([0.0, 0.2, depth], (frames, 1)),
               image_size=(512, 768), fps=25.0)
    if box is not None:
        seq["bbox"] = np.tile(np.asarray(box, np.float32), (frames, 1))
    return validate_sequence(seq)


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_declarations(node_id):
    cls = getattr(nodes, node_id)
    spec = cls.INPUT_TYPES()
    for group in spec.values():
        for name, (kind, options) in group.items():
            assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
            if kind in ("INT", "FLOAT"):
                assert {"default", "min", "max", "step"} <= set(options), f"{node_id}.{name}"
    assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
    assert cls.CATEGORY.startswith("MotionGuide/") and cls.DESCRIPTION and hasattr(cls, cls.FUNCTION)


def test_load_model_auto_and_by_file(use_models_dir, smpl_model_dir):
    (model,) = nodes.MotionGuideLoadSMPLModel().load(nodes.AUTO_MODEL, "male")
    assert model.gender == "male" and model.num_vertices == 6890 and model.source.endswith("SMPL_MALE.npz")
    assert "chumpy_style/SMPL_NEUTRAL.pkl" in nodes.MotionGuideLoadSMPLModel.INPUT_TYPES()["required"]["model_file"][0]
    (chumpy,) = nodes.MotionGuideLoadSMPLModel().load("chumpy_style/SMPL_NEUTRAL.pkl", "neutral")
    assert np.array_equal(chumpy.faces, model.faces)


def test_load_model_missing_names_files_folder_and_source(tmp_path):
    from motionguide.nodes import comfy_adapter

    comfy_adapter.set_models_dir(tmp_path)
    try:
        with pytest.raises(FileNotFoundError) as info:
            nodes.MotionGuideLoadSMPLModel().load(nodes.AUTO_MODEL, "neutral")
    finally:
        comfy_adapter.set_models_dir(None)
    msg = str(info.value)
    assert "SMPL_NEUTRAL.pkl" in msg and "SMPL_NEUTRAL.npz" in msg and str(tmp_path / "smpl") in msg
    assert "smpl.is.tue.mpg.de" in msg and "MPI" in msg


def test_save_then_load_motion_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("MOTIONGUIDE_INPUT_DIR", str(tmp_path / "out"))
    seq = motion()
    saver = nodes.MotionGuideSaveSMPLMotion()
    first = saver.save(seq, "clips/walk", "motionguide")
    second = saver.save(seq, "clips/walk", "motionguide")
    assert first["result"][0].endswith("walk_00001.npz") and second["result"][0].endswith("walk_00002.npz")
    assert first["ui"]["text"] == [first["result"][0]]
    assert "clips/walk_00001.npz" in nodes.MotionGuideLoadSMPLMotion.INPUT_TYPES()["required"]["motion_file"][0]
    loaded, count, fps = nodes.MotionGuideLoadSMPLMotion().load("clips/walk_00001.npz", "auto", 576, 1024, 0.0)
    assert count == 8 and fps == 25.0
    np.testing.assert_array_equal(loaded["transl"], seq["transl"])
    _, _, fps = nodes.MotionGuideLoadSMPLMotion().load("", "auto", 576, 1024, 12.0, path=first["result"][0])
    assert fps == 12.0
    with pytest.raises(ValueError, match="outside the output folder"):
        saver.save(seq, "../escape", "motionguide")
    with pytest.raises(FileNotFoundError):
        nodes.MotionGuideLoadSMPLMotion().load("nope.npz", "auto", 576, 1024, 0.0)
    assert load_sequence(first["result"][0])["fps"] == 25.0


def test_smooth_transfer_and_camera_nodes(use_models_dir, smpl_model_dir):
    (model,) = nodes.MotionGuideLoadSMPLModel().load(nodes.AUTO_MODEL, "neutral")
    rng = np.random.default_rng(0)
    drv = motion(frames=16)
    drv["transl"] = drv["transl"] + rng.normal(size=(16, 3)).astype(np.float32) * 0.02
    drv["valid"][5] = False
    (smooth,) = nodes.MotionGuideSmoothSMPL().smooth(drv, "median", 9, "quaternion", "savgol", 9, 1.0, 0.05, True)
    assert np.diff(smooth["transl"], 2, axis=0).std() < np.diff(drv["transl"], 2, axis=0).std() / 3
    ref = motion(frames=1, depth=20.0, box=[200, 100, 320, 700])
    ref["betas"][0, 0] = 1.5
    (out,) = nodes.MotionGuideTransferShape().transfer(smooth, ref, model, "keep", "relative", True, True, "reference")
    assert np.allclose(out["betas"], ref["betas"][0]) and out["image_size"] == (512, 768)
    assert abs((out["bbox"][0, 3] - out["bbox"][0, 1]) / 600 - 1) < 0.01  # first frame fits the 600-px box
    (moved,) = nodes.MotionGuideSetCamera().set_camera(out, model, 0.0, 0.0, 1.0, 1.0, True, 90.0, 0.0, 1.0, 2.0,
                                                       "linear", "first_frame")
    assert moved["K"][-1, 0, 0] == pytest.approx(2 * out["K"][-1, 0, 0])
    assert moved["K"][0, 0, 0] == pytest.approx(out["K"][0, 0, 0])
    (static,) = nodes.MotionGuideSetCamera().set_camera(out, model, 0.0, 0.0, 1.0, 1.0, False, 90.0, 0.0, 1.0, 2.0,
                                                        "linear", "first_frame")
    np.testing.assert_allclose(static["transl"], out["transl"], atol=1e-6)
    with pytest.raises(ValueError, match="SMPL_SEQUENCE"):
        nodes.MotionGuideSmoothSMPL().smooth([1, 2], "median", 9, "quaternion", "savgol", 9, 1.0, 0.05, True)


def test_nodes_registered_in_pack():
    import motionguide

    for node_id in NODE_IDS:
        assert motionguide.NODE_CLASS_MAPPINGS[node_id] is getattr(nodes, node_id)
