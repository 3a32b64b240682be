"""Motion files: a small file declaring gigabytes is refused before anything is read, only the keys used are
read (once), and crafted content gets a message naming the file, never a raw numpy/KeyError (issue 23 cases 3
and 7)."""
import resource
import sys

import numpy as np
import pytest
from motionguide.pipelines import size_limits
from motionguide.pipelines.smpl.motion.importers import load_motion_file
from motionguide.pipelines.smpl.motion.sequence import save_sequence

T = 4


def _seq():
    return dict(betas=np.zeros((T, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (T, 1)),
                body_pose=np.zeros((T, 69)), transl=np.tile([0.0, 0.2, 5.0], (T, 1)), image_size=(64, 96))


def _hmr2():
    return dict(global_orient=np.tile(np.eye(3), (T, 1, 1, 1)), body_pose=np.tile(np.eye(3), (T, 23, 1, 1)),
                betas=np.zeros((T, 10)), cam_t=np.tile([0.0, 0.0, 10.0], (T, 1)),
                scaled_focal_length=np.full(T, 500.0), render_res=np.array([64, 96]))


def _amass():
    return dict(poses=np.zeros((T, 72)), trans=np.zeros((T, 3)), betas=np.zeros(10), mocap_framerate=np.float64(30))


def _wham():
    return dict(pose=np.zeros((T, 72)), trans=np.tile([0.0, 0.0, 5.0], (T, 1)), betas=np.zeros((T, 10)))


def test_valid_layouts_still_load(tmp_path):
    for name, arrays in (("hmr2", _hmr2()), ("amass", _amass()), ("wham", _wham())):
        np.savez(tmp_path / f"{name}.npz", **arrays)
        assert len(load_motion_file(tmp_path / f"{name}.npz", image_size=(64, 96))["valid"]) == T
    assert load_motion_file(save_sequence(_seq(), tmp_path / "ours.npz"))["betas"].shape == (T, 10)


def test_small_file_declaring_gigabytes_is_refused_before_reading(tmp_path):
    """A few-MB compressed .npz whose entries declare 3 GB: refused from the headers, with the numbers."""
    path = tmp_path / "bomb.npz"
    frames = 5_000_000  # 5M frames × 69 float32 = 1.4 GB of zeros, ~1.3 MB compressed
    np.savez_compressed(path, global_orient=np.zeros((frames, 3), np.float32), body_pose=np.zeros((frames, 69),
                        np.float32), transl=np.zeros((frames, 3), np.float32), betas=np.zeros(10, np.float32),
                        image_size=np.array([64, 96]))
    assert path.stat().st_size < 3e6
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=rf"bomb.npz.*5000000 frames.*at most {size_limits.MAX_MOTION_FRAMES}"):
        load_motion_file(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, grown_mb


def test_only_the_keys_used_are_read_once(tmp_path, monkeypatch):
    path = tmp_path / "hmr2.npz"
    np.savez(path, **_hmr2(), unrelated=np.zeros((T, 1000)))
    read = []
    from motionguide.pipelines import weights

    real = weights.npz_array

    def counting(data, key, *args, **kwargs):
        read.append(key)
        return real(data, key, *args, **kwargs)

    monkeypatch.setattr(weights, "npz_array", counting)
    load_motion_file(path)
    assert "unrelated" not in read and len(read) == len(set(read))
    read.clear()
    load_motion_file(save_sequence(_seq(), tmp_path / "ours.npz"))
    assert len(read) == len(set(read)) and "global_orient" in read


def _crafted():
    ours = dict(save=True)
    return [
        ("ours_inf_size", dict(_seq(), image_size=np.array([np.inf, 5.0]), format="motionguide_smpl_sequence_v1"),
         r"image_size"),
        ("ours_array_fps", dict(_seq(), fps=np.array([30.0, 25.0])), r"'fps' must be one number"),
        ("ours_array_model_type", dict(_seq(), model_type=np.array(["smpl", "smplx"])),
         r"'model_type' must be one"),
        ("ours_string_pose", dict(_seq(), body_pose=np.array("not numbers")), r"'body_pose' .*numbers"),
        ("hmr2_bad_body_pose", dict(_hmr2(), body_pose=np.zeros((T, 1))), r"'body_pose'"),
        ("hmr2_no_body_pose", {k: v for k, v in _hmr2().items() if k != "body_pose"}, r"'body_pose'"),
        ("hmr2_short_betas", dict(_hmr2(), betas=np.zeros(1)), r"'betas'"),
        ("amass_bad_trans", dict(_amass(), trans=np.zeros(1)), r"'trans'"),
        ("amass_bad_betas", dict(_amass(), betas=np.array("x")), r"'betas'"),
        ("amass_array_fps", dict(_amass(), mocap_framerate=np.zeros(3)), r"'mocap_framerate' must be one"),
        ("wham_short_pose", dict(_wham(), pose=np.zeros(5)), r"'pose'"),
        ("wham_no_betas", {k: v for k, v in _wham().items() if k != "betas"}, r"'betas'"),
    ], ours


@pytest.mark.parametrize("name, arrays, words", _crafted()[0], ids=[c[0] for c in _crafted()[0]])
def test_crafted_content_gets_a_message_naming_the_file(tmp_path, name, arrays, words):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=words) as info:
        load_motion_file(path, image_size=(64, 96))
    assert f"{name}.npz" in str(info.value)


def test_gvhmr_pt_with_wrong_shapes(tmp_path):
    import torch

    path = tmp_path / "hmr4d_results.pt"
    torch.save({"smpl_params_incam": {"global_orient": torch.zeros(T, 3), "body_pose": torch.zeros(7),
                                      "betas": torch.zeros(T, 10), "transl": torch.zeros(T, 3)}}, path)
    with pytest.raises(ValueError, match=r"hmr4d_results.pt.*body_pose"):
        load_motion_file(path, image_size=(64, 96))
    torch.save({"smpl_params_incam": {"global_orient": torch.zeros(T, 3)}}, path)
    with pytest.raises(ValueError, match=r"hmr4d_results.pt.*lacks.*body_pose"):
        load_motion_file(path, image_size=(64, 96))


if sys.platform != "linux":  # ru_maxrss units differ
    test_small_file_declaring_gigabytes_is_refused_before_reading = pytest.mark.skip(
        test_small_file_declaring_gigabytes_is_refused_before_reading)
