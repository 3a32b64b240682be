"""SMPL sequences: intrinsics, bodies at or behind the camera and absurd body shapes are named, not rendered as
empty maps or joints at (0, 0) (issue 11 item 10)."""
import numpy as np
import pytest
from motionguide.pipelines.smpl.motion.sequence import validate_sequence


def _seq(frames=4, z=5.0, **extra):
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
               body_pose=np.zeros((frames, 69)), transl=np.tile([0.0, 0.2, z], (frames, 1)), image_size=(64, 96))
    seq.update(extra)
    return seq


@pytest.mark.parametrize("k, words", [
    (np.zeros((3, 3)), r"fx=0.*fy=0"),
    (np.array([[-500.0, 0, 32], [0, 500, 48], [0, 0, 1]]), r"fx=-500"),
    (np.array([[500.0, 0, 32], [0, 0, 48], [0, 0, 1]]), r"fx=500, fy=0"),
])
def test_intrinsics_need_positive_focal_lengths(k, words):
    with pytest.raises(ValueError, match=rf"'K' at frame 0 has {words}.*fx, fy > 0"):
        validate_sequence(_seq(K=k))
    per_frame = np.repeat(np.array([[500.0, 0, 32], [0, 500, 48], [0, 0, 1]])[None], 4, 0)
    per_frame[2] = k
    with pytest.raises(ValueError, match="'K' at frame 2"):
        validate_sequence(_seq(K=per_frame))


@pytest.mark.parametrize("value", [1e6, -50.0, 1e30])
def test_huge_betas_are_refused_with_a_clear_message(value):
    betas = np.zeros((4, 10))
    betas[1, 3] = value
    with pytest.raises(ValueError, match=r"'betas' at frame 1 .*within ±20"):
        validate_sequence(_seq(betas=betas))
    assert validate_sequence(_seq(betas=np.full((4, 10), 19.5)))["betas"].max() == 19.5


@pytest.mark.parametrize("z", [0.0, -2.0])
def test_a_body_at_or_behind_the_camera_is_reported(smpl_model_dir, z):
    from motionguide.pipelines.render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints
    from motionguide.pipelines.smpl.body.body_model import load_body_model

    model = load_body_model(smpl_model_dir / "SMPL_NEUTRAL.npz")
    transl = np.tile([0.0, 0.2, 5.0], (4, 1))
    transl[[1, 3], 2] = z
    for call in (render_sequence_maps, sequence_to_pose_keypoints):
        with pytest.raises(ValueError, match=r"at or behind the camera .* 2 frames \(1, 3\)"):
            call(model, _seq(transl=transl))
    # frames marked as having no person do not count
    keypoints = sequence_to_pose_keypoints(model, _seq(transl=transl, valid=[True, False, True, False]))
    assert len(keypoints) == 4
