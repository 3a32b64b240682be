"""The built-in body in the pack: cache folder rules, no network, bad input, sequences and nodes
(docs/architecture.md, *Reference algorithms*)."""
import logging
import shutil
import socket
import sys

import numpy as np
import pytest
from motionguide.nodes import smpl as smpl_nodes
from motionguide.pipelines.smpl.body import anny_cache
from motionguide.pipelines.smpl.motion.sequence import (
    load_sequence,
    resample_sequence,
    save_sequence,
    validate_sequence,
)
from test_anny_body import walk_turn_raise


def test_prune_removes_only_what_the_build_created(tmp_path):
    version = tmp_path / "v14"
    version.mkdir()
    (version / "load_data_old.safetensors").write_bytes(b"x" * 7)  # there before the build: kept
    before = anny_cache._files_under(tmp_path)
    for name in ("build_compact_model_data_abc.safetensors", "build_model_data_def.safetensors",
                 "load_data_123.safetensors"):
        (version / name).write_bytes(b"x" * 10)
    assert not anny_cache.is_built(tmp_path / "nothing")
    assert anny_cache.prune(tmp_path, before, keep=version / "build_compact_model_data_abc.safetensors") == 20
    assert sorted(p.name for p in version.iterdir()) == ["build_compact_model_data_abc.safetensors",
                                                        "load_data_old.safetensors"]


def test_cache_dir_env_wins_and_unwritable_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ANNY_CACHE_DIR", str(tmp_path / "env"))
    assert anny_cache.cache_dir(tmp_path / "models" / "anny") == tmp_path / "env"
    monkeypatch.delenv("ANNY_CACHE_DIR")
    assert anny_cache.cache_dir(tmp_path / "models" / "anny") == tmp_path / "models" / "anny"
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match=r"a_file/anny.*not writable.*ANNY_CACHE_DIR"):
        anny_cache.load_anny_body(blocker / "anny")


def test_missing_anny_disables_only_the_builtin_choice(monkeypatch, smpl_model_dir, use_models_dir, caplog):
    monkeypatch.setattr(anny_cache, "anny_status", lambda: (False, "the 'anny' package is not installed (test)"))
    monkeypatch.setattr(anny_cache, "_BODIES", {})
    monkeypatch.setattr(smpl_nodes, "_WARNED", set())
    node = smpl_nodes.MotionGuideLoadSMPLModel()
    with pytest.raises(RuntimeError, match=r"not installed \(test\).*SMPL file"):
        node.load(smpl_nodes.ANNY_MODEL, "neutral")
    assert node.load(smpl_nodes.AUTO_MODEL, "neutral")[0].model_type == "smpl"  # SMPL files still work
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "anny" else real(name, *a))
    with caplog.at_level(logging.WARNING):
        spec = smpl_nodes.MotionGuideLoadSMPLModel.INPUT_TYPES()["required"]["model_file"]
    assert spec[0][0] == smpl_nodes.ANNY_MODEL  # kept, so saved workflows still bind
    assert "unavailable" in caplog.text and "pip install anny==0.6.2" in caplog.text


def test_builtin_body_is_the_default_without_smpl_files(monkeypatch):
    monkeypatch.setattr(smpl_nodes, "list_model_files", lambda key: [])
    spec = smpl_nodes.MotionGuideLoadSMPLModel.INPUT_TYPES()["required"]["model_file"]
    assert spec[0][0] == smpl_nodes.ANNY_MODEL and spec[1]["default"] == smpl_nodes.ANNY_MODEL


def test_no_network_and_no_noncommercial_code(anny_body, tmp_path, monkeypatch):
    """A fresh load from a folder holding only the compact file, a forward pass and a fit, with sockets blocked."""
    import anny.paths

    source = anny_cache.compact_files(anny_cache.cache_dir())[0]
    (tmp_path / anny_cache.SUBFOLDER / source.parent.name).mkdir(parents=True)
    shutil.copy(source, tmp_path / anny_cache.SUBFOLDER / source.parent.name / source.name)
    shutil.copy(source.parent.parent / anny_cache.MANIFEST, tmp_path / anny_cache.SUBFOLDER)

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(anny.paths, "download_noncommercial_data", refuse)
    monkeypatch.delenv("ANNY_CACHE_DIR", raising=False)
    body = anny_cache.load_anny_body(tmp_path)
    assert body is not anny_body
    seq, _ = walk_turn_raise(frames=3)
    vertices, _ = body.forward(None, seq["global_orient"], seq["body_pose"], seq["transl"])
    assert vertices.shape == (3, body.num_vertices, 3)
    assert [p.name for p in tmp_path.rglob("*.safetensors")] == [source.name]  # nothing else built
    assert "anny.models.smpl" not in sys.modules


def test_sequence_carries_phenotype_keypoints_and_hands(tmp_path):
    seq, _ = walk_turn_raise(frames=6)
    seq = dict(seq, phenotype={"gender": 0.2, "age": 0.4, "muscle": 0.5, "weight": 0.6, "height": 0.7,
                               "proportions": 0.8},
               keypoints=np.random.default_rng(0).uniform(0, 500, (6, 18, 3)), hand_pose=np.full((6, 90), 0.1))
    seq = validate_sequence(seq)
    assert seq["phenotype"].tolist() == pytest.approx([0.2, 0.4, 0.5, 0.6, 0.7, 0.8])
    back = load_sequence(save_sequence(seq, tmp_path / "m.npz"))
    for key in ("phenotype", "keypoints", "hand_pose"):
        np.testing.assert_allclose(back[key], seq[key], atol=1e-6)
    half = resample_sequence(seq, frames=3)
    assert half["keypoints"].shape == (3, 18, 3) and half["hand_pose"].shape == (3, 90)
    np.testing.assert_allclose(half["hand_pose"], 0.1, atol=1e-5)
    with pytest.raises(ValueError, match=r"0\.\.1.*weight=1\.5"):
        validate_sequence(dict(seq, phenotype=[0.5, 0.5, 0.5, 1.5, 0.5, 0.5]))


def test_smpl_body_drops_finger_poses_with_a_log_line(smpl_model_dir, caplog):
    from motionguide.pipelines.smpl.body.body_model import load_body_model

    model = load_body_model(smpl_model_dir)
    with caplog.at_level(logging.INFO):
        plain, _ = model.forward(np.zeros(10), np.zeros((1, 3)), np.zeros((1, 69)))
        with_hands, _ = model.forward(np.zeros(10), np.zeros((1, 3)), np.zeros((1, 69)), hand_pose=np.ones((1, 90)))
    assert np.allclose(plain.numpy(), with_hands.numpy())
    assert "hands dropped" in caplog.text


def test_transfer_uses_the_reference_phenotype(anny_body):
    from motionguide.pipelines.smpl.motion.transfer import transfer_shape

    driving, _ = walk_turn_raise(frames=8)
    child = np.array([0.5, 0.33, 0.5, 0.5, 0.5, 0.5], np.float32)
    reference = validate_sequence({key: (value[:1] if key in ("global_orient", "body_pose", "transl", "K", "valid",
                                                               "bbox", "betas") else value)
                                   for key, value in driving.items()})
    reference = dict(reference, phenotype=child, bbox=np.array([[200.0, 300.0, 380.0, 800.0]], np.float32))
    out = transfer_shape(driving, reference, anny_body)
    np.testing.assert_allclose(out["phenotype"], child)
    assert out["model_type"] == "smpl"
    # the transferred body is the child: fitted to the 500 px box, feet on its bottom edge
    from motionguide.pipelines.smpl.motion.posing import pose_sequence

    vertices, _ = pose_sequence(anny_body, validate_sequence(dict(out)))
    frame0 = vertices[0].double().numpy()
    v = frame0[:, 1] / frame0[:, 2] * out["K"][0, 1, 1] + out["K"][0, 1, 2]
    assert v.max() == pytest.approx(800.0, abs=3.0)


def test_set_body_shape_node_sliders_and_errors(anny_body, smpl_model_dir):
    from motionguide.pipelines.smpl.body.body_model import load_body_model

    seq, _ = walk_turn_raise(frames=2)
    node = smpl_nodes.MotionGuideSetBodyShape()
    (out,) = node.set_shape(seq, anny_body, "sliders", 0.1, 0.33, 0.2, 0.9, 0.4, 0.6)
    assert out["phenotype"].tolist() == pytest.approx([0.1, 0.33, 0.2, 0.9, 0.4, 0.6])
    with pytest.raises(ValueError, match=r"age=1\.4"):
        node.set_shape(seq, anny_body, "sliders", 0.1, 1.4, 0.2, 0.9, 0.4, 0.6)
    with pytest.raises(ValueError, match="anny \\(built-in\\)"):
        node.set_shape(seq, load_body_model(smpl_model_dir), "sliders", 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="no 2D keypoints"):
        node.set_shape(seq, anny_body, "fit", 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)


def test_every_smpl_stage_runs_unchanged_on_the_builtin_body(anny_body, tmp_path):
    """Importer round trip (AMASS), Smooth, Transfer, Set Camera, Render and SMPL to Pose with the Anny body."""
    from motionguide.pipelines.render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints
    from motionguide.pipelines.smpl.motion.camera import set_camera
    from motionguide.pipelines.smpl.motion.importers import load_motion_file, save_motion_file
    from motionguide.pipelines.smpl.motion.smoothing import smooth_sequence
    from motionguide.pipelines.smpl.motion.transfer import transfer_shape

    motion, _ = walk_turn_raise(frames=6)
    motion = dict(motion, phenotype=np.array([0.5, 0.6, 0.5, 0.5, 0.5, 0.5], np.float32))
    amass = load_motion_file(save_motion_file(motion, tmp_path / "m.npz", "amass", model=anny_body), "amass",
                             image_size=(576, 1024), model=anny_body)
    np.testing.assert_allclose(amass["transl"], motion["transl"], atol=1e-4)  # exact root maths with Anny's pelvis
    smooth = smooth_sequence(motion)
    reference = validate_sequence({key: (value[:1] if key in ("global_orient", "body_pose", "transl", "K", "valid",
                                                               "bbox", "betas") else value)
                                   for key, value in motion.items()})
    moved = set_camera(transfer_shape(smooth, reference, anny_body), anny_body, yaw=30.0, yaw_end=60.0)
    maps = render_sequence_maps(anny_body, moved, width=144, height=256, backend="torch",
                                maps=("depth", "semantic", "mask"))
    assert maps["mask"].shape == (6, 256, 144) and (maps["mask"].flatten(1).mean(1) > 0.01).all()
    pose = sequence_to_pose_keypoints(anny_body, dict(moved, model_type="smplx"), width=144, height=256,
                                      backend="torch")
    kp = np.array([f["people"][0]["pose_keypoints_2d"] for f in pose]).reshape(6, 18, 3)
    assert (kp[..., 2] >= 0.5).all() and np.isfinite(kp).all()


def test_new_views_drop_the_old_2d_keypoints(anny_body):
    from motionguide.pipelines.smpl.motion.camera import set_camera
    from motionguide.pipelines.smpl.motion.transfer import transfer_shape

    motion, _ = walk_turn_raise(frames=3)
    motion = validate_sequence(dict(motion, keypoints=np.ones((3, 18, 3))))
    assert "keypoints" not in set_camera(motion, anny_body, yaw=20.0)
    reference = validate_sequence({key: (value[:1] if key in ("global_orient", "body_pose", "transl", "K", "valid",
                                                               "bbox", "betas", "keypoints") else value)
                                   for key, value in motion.items()})
    assert "keypoints" not in transfer_shape(motion, reference, anny_body)
