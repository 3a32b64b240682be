"""NLF to SMPL reports progress (and so answers Cancel) in every phase, poses long sequences in chunks, and
fits that "succeed" on garbage say so (issue 23 cases 4, 5 and 10)."""
import logging

import numpy as np
import pytest
import torch
from motionguide.pipelines.smpl.body.body_model import load_body_model
from motionguide.pipelines.smpl.estimate import nlf as nlf_module
from motionguide.pipelines.smpl.estimate.joint_fit import nlf_to_sequence


@pytest.fixture()
def smpl(smpl_model_dir):
    return load_body_model(smpl_model_dir / "SMPL_NEUTRAL.npz")


def _nlf(smpl, frames, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.1, (frames, 69))
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
               body_pose=pose, transl=np.tile([0.0, 0.2, 4.0], (frames, 1)), image_size=(64, 96))
    joints = nlf_module.sequence_joints(smpl, seq) * 1000.0 * scale
    return {"joints3d_nonparam": [[torch.from_numpy(j[None]).float() for j in joints]]}


class Cancelled(Exception):
    pass


def test_progress_and_cancel_in_the_first_phase(smpl):
    """10,000 frames spent ~160 s in the direct solve with no progress and no Cancel."""
    nlf = _nlf(smpl, 300)
    calls = []
    nlf_to_sequence(smpl, nlf, width=64, height=96, iterations=2, callback=lambda d, t: calls.append((d, t)))
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1] == (100, 100)
    assert sum(d < 15 for d in done) >= 3  # the direct solve reports as it goes (every 100 frames)
    assert sum(85 < d < 100 for d in done) >= 2  # posing the result reports too

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        nlf_to_sequence(smpl, nlf, width=64, height=96, iterations=2, callback=cancel)


def test_joints_of_a_long_sequence_are_posed_in_chunks(smpl, monkeypatch):
    """SMPL to NLF Poses built whole meshes for 10,000 frames (5.3 GB) to get 24 joints."""
    frames = 700
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
               body_pose=np.random.default_rng(0).normal(0, 0.1, (frames, 69)),
               transl=np.tile([0.0, 0.2, 4.0], (frames, 1)), image_size=(64, 96))
    whole = nlf_module.sequence_joints(smpl, seq)
    sizes = []
    real = nlf_module.pose_sequence

    def recording(model, part, **kw):
        sizes.append(len(part["global_orient"]))
        return real(model, part, **kw)

    monkeypatch.setattr(nlf_module, "pose_sequence", recording)
    chunked = nlf_module.sequence_joints(smpl, seq)
    assert max(sizes) <= nlf_module.JOINT_CHUNK and sum(sizes) == frames
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_nlf_fit_on_garbage_warns(smpl, caplog):
    """Joints ×1e30 returned a fit error of 5e32 mm, silently."""
    from motionguide.nodes.nlf import MotionGuideNLFToSMPL

    with caplog.at_level(logging.WARNING):
        seq, error = nlf_to_sequence(smpl, _nlf(smpl, 3, scale=1e30), width=64, height=96, iterations=0)
    assert "mm from the camera" in caplog.text and "do not trust" in caplog.text
    out = MotionGuideNLFToSMPL().fit(_nlf(smpl, 3, scale=1e30), smpl, width=64, height=96, iterations=0)
    assert out["ui"]["text"][0].startswith("Warning:") and out["result"][1] > 1e6
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        seq, error = nlf_to_sequence(smpl, _nlf(smpl, 3), width=64, height=96, iterations=0)
    assert error.mean() < 100 and "NLF to SMPL" not in caplog.text  # a real skeleton: no warning
    assert isinstance(MotionGuideNLFToSMPL().fit(_nlf(smpl, 3), smpl, width=64, height=96, iterations=0), tuple)


def test_body_shape_fit_on_random_keypoints_warns(anny_body, caplog):
    """Set Body Shape on random keypoints returned age 0.006 silently."""
    from motionguide.nodes.smpl import MotionGuideSetBodyShape

    frames, rng = 2, np.random.default_rng(3)
    keypoints = np.concatenate([rng.uniform(0, [576, 1024], (frames, 18, 2)), np.ones((frames, 18, 1))], -1)
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
               body_pose=np.zeros((frames, 69)), transl=np.tile([0.0, 0.3, 6.0], (frames, 1)),
               image_size=(576, 1024), keypoints=keypoints)
    with caplog.at_level(logging.WARNING):
        out = MotionGuideSetBodyShape().set_shape(seq, anny_body, "fit", 0.5, 0.67, 0.5, 0.5, 0.38, 0.5,
                                                  iterations=20)
    assert "Set Body Shape" in caplog.text and "keypoints" in caplog.text
    assert out["ui"]["text"][0].startswith("Warning:") and "phenotype" in out["result"][0]
