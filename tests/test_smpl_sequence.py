"""SMPL_SEQUENCE checks, files and resampling."""
import numpy as np
import pytest
from motionguide.pipelines.smpl.motion import sequence as sq


def make_sequence(frames=12, seed=0, fps=30.0):
    rng = np.random.default_rng(seed)
    return sq.validate_sequence(dict(
        betas=rng.normal(size=(frames, 10)) * 0.5, global_orient=rng.normal(size=(frames, 3)) * 0.4,
        body_pose=rng.normal(size=(frames, 69)) * 0.2, transl=rng.normal(size=(frames, 3)) + [0, 0, 5],
        image_size=(512, 768), fps=fps))


def test_default_intrinsics_hmr2_convention():
    k = sq.default_intrinsics(512, 768)
    np.testing.assert_allclose(k, [[15000, 0, 256], [0, 15000, 384], [0, 0, 1]])
    assert sq.default_intrinsics(640, 480, frames=4).shape == (4, 3, 3)


def test_nan_rejected_with_frame_index():
    seq = make_sequence()
    seq["body_pose"][7, 11] = np.inf
    with pytest.raises(ValueError, match=r"'body_pose' holds NaN or inf at frame 7"):
        sq.validate_sequence(seq)


def test_shapes_named_in_errors():
    seq = make_sequence()
    seq["transl"] = seq["transl"][:5]
    with pytest.raises(ValueError, match=r"'transl' must have shape \(12, 3\)"):
        sq.validate_sequence(seq)
    with pytest.raises(ValueError, match="image_size nor K"):
        sq.validate_sequence({k: v for k, v in make_sequence().items() if k not in ("image_size", "K")})


def test_leniencies():
    seq = make_sequence(frames=3)
    short = dict(seq, betas=seq["betas"][0, :6], body_pose=seq["body_pose"][:, :63])
    out = sq.validate_sequence(short)
    assert out["betas"].shape == (3, 10) and np.all(out["betas"][:, 6:] == 0)
    assert np.array_equal(out["body_pose"][:, :63], seq["body_pose"][:, :63]) and np.all(out["body_pose"][:, 63:] == 0)
    derived = sq.validate_sequence({k: v for k, v in seq.items() if k != "image_size"})
    assert derived["image_size"] == (512, 768)


def test_save_load_round_trip_without_pickle(tmp_path):
    seq = make_sequence()
    seq["valid"][4] = False
    path = sq.save_sequence(seq, tmp_path / "motion.npz")
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert data["model_type"].dtype.kind == "U"
    back = sq.load_sequence(path)
    for key in sq.PER_FRAME:
        assert np.array_equal(back[key], seq[key]), key
    assert back["image_size"] == (512, 768) and back["fps"] == 30.0 and back["model_type"] == "smpl"
    with pytest.raises(FileExistsError):
        sq.save_sequence(seq, path)


def test_slice_and_resample():
    seq = make_sequence(frames=11, fps=30)
    half = sq.slice_sequence(seq, 0, None, 2)
    assert len(half["valid"]) == 6 and half["fps"] == 15
    up = sq.resample_sequence(seq, fps=60)
    assert len(up["valid"]) == 21 and up["fps"] == 60
    # even frames are the originals, odd frames lie between their neighbours
    np.testing.assert_allclose(up["transl"][::2], seq["transl"], atol=1e-6)
    np.testing.assert_allclose(up["transl"][1], (seq["transl"][0] + seq["transl"][1]) / 2, atol=1e-6)
    np.testing.assert_allclose(up["global_orient"][::2], seq["global_orient"], atol=1e-5)
    seq["valid"][3] = False
    up = sq.resample_sequence(seq, fps=60)
    assert up["valid"][5:8].tolist() == [False, False, False] and up["valid"][4] and up["valid"][8]


def test_match_timing_resamples_fps_or_refuses_other_durations():
    seq = make_sequence(frames=31, fps=30)  # 1 s
    out = sq.match_timing(seq, frames=61, fps=60.0)
    assert len(out["valid"]) == 61 and out["fps"] == 60.0
    np.testing.assert_allclose(out["transl"][::2], seq["transl"], atol=1e-6)
    assert len(sq.match_timing(seq, frames=30, fps=30.0)["valid"]) == 30  # off by one: rounding
    with pytest.raises(ValueError, match="31 frames at 30 fps"):
        sq.match_timing(seq, frames=50, fps=30.0)
