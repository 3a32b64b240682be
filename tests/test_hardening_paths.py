"""Load SMPL Motion and Load Pose read only inside ComfyUI's input folder (issue 11 item 7)."""
import json
import os

import numpy as np
import pytest
from motionguide.nodes import pose as pose_nodes
from motionguide.nodes import smpl as smpl_nodes


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    inputs, outside = tmp_path / "input", tmp_path / "secret"
    inputs.mkdir()
    outside.mkdir()
    monkeypatch.setenv("MOTIONGUIDE_INPUT_DIR", str(inputs))
    return inputs, outside


def _save_motion(path):
    from motionguide.pipelines.smpl.motion.sequence import save_sequence

    save_sequence(dict(betas=np.zeros((2, 10)), global_orient=np.zeros((2, 3)), body_pose=np.zeros((2, 69)),
                       transl=np.tile([0.0, 0.0, 5.0], (2, 1)), image_size=(64, 64)), path)
    return path


def _load_motion(motion_file="", path=""):
    return smpl_nodes.MotionGuideLoadSMPLMotion().load(motion_file, "auto", 64, 64, 0.0, path=path)


def test_load_smpl_motion_refuses_paths_outside_the_input_folder(folders):
    inputs, outside = folders
    secret = _save_motion(outside / "m.npz")
    for name in (str(secret), "../secret/m.npz"):
        with pytest.raises(ValueError, match="outside ComfyUI's input folder"):
            _load_motion(path=name)
    os.symlink(secret, inputs / "link.npz")
    with pytest.raises(ValueError, match="outside ComfyUI's input folder"):
        _load_motion("link.npz")
    # a folder of per-frame files may not smuggle one in either
    (inputs / "frames").mkdir()
    np.save(outside / "f0.npy", np.array({"x": 1}, dtype=object), allow_pickle=True)
    os.symlink(outside / "f0.npy", inputs / "frames" / "f0.npy")
    with pytest.raises(ValueError, match="outside ComfyUI's input folder"):
        _load_motion(path="frames")
    # inside the folder, absolute or relative, still works
    inside = _save_motion(inputs / "sub" / "m.npz")
    assert _load_motion(path=str(inside))[1] == 2 and _load_motion("sub/m.npz")[1] == 2
    assert smpl_nodes.MotionGuideLoadSMPLMotion.IS_CHANGED("", "auto", 64, 64, 0.0, path=str(secret)) != \
        smpl_nodes.MotionGuideLoadSMPLMotion.IS_CHANGED("", "auto", 64, 64, 0.0, path=str(secret))  # NaN


def test_load_smpl_motion_tooltip_no_longer_offers_any_path():
    tip = smpl_nodes.MotionGuideLoadSMPLMotion.INPUT_TYPES()["optional"]["path"][1]["tooltip"]
    assert "absolute" not in tip and "input folder" in tip


def test_load_pose_folder_does_not_follow_symlinks_out(folders):
    inputs, outside = folders
    frame = {"people": [], "canvas_width": 8, "canvas_height": 8}
    (outside / "a_000000000000_keypoints.json").write_text(json.dumps(frame))
    (inputs / "clip").mkdir()
    (inputs / "clip" / "a_000000000001_keypoints.json").write_text(json.dumps(frame))
    assert len(pose_nodes.MotionGuideLoadPose().load("clip/")[0]) == 1
    os.symlink(outside / "a_000000000000_keypoints.json", inputs / "clip" / "a_000000000000_keypoints.json")
    with pytest.raises(ValueError, match="outside ComfyUI's input folder"):
        pose_nodes.MotionGuideLoadPose().load("clip/")
    os.symlink(outside, inputs / "elsewhere")
    with pytest.raises(ValueError, match="outside ComfyUI's input folder"):
        pose_nodes.MotionGuideLoadPose().load("elsewhere/")
