"""NLFPRED out (SMPL to NLF Poses) on the synthetic SMPL body: the format kijai's consumers read, mm, cameras."""
import json
import math

import numpy as np
import pytest
import torch
from motionguide.nodes.nlf import MotionGuideSMPLToNLF
from motionguide.pipelines.smpl.body.body_model import load_body_model
from motionguide.pipelines.smpl.estimate.nlf import dolly_to_camera, first_person_track, fov_intrinsics, nlf_frames
from motionguide.pipelines.smpl.motion.posing import pose_sequence
from scipy.spatial.transform import Rotation

W, H = 256, 384
FOCAL = 600.0


def motion(frames=4, seed=0):
    rng = np.random.default_rng(seed)
    orients = [Rotation.from_euler("y", 20 * t, degrees=True) * Rotation.from_rotvec([math.pi, 0, 0])
               for t in range(frames)]
    K = np.array([[FOCAL, 0, W / 2 + 7], [0, FOCAL, H / 2 - 5], [0, 0, 1]], np.float32)
    return {"betas": np.zeros((frames, 10), np.float32),
            "global_orient": np.stack([r.as_rotvec() for r in orients]).astype(np.float32),
            "body_pose": (0.3 * rng.standard_normal((frames, 69))).astype(np.float32),
            "transl": np.tile(np.array([0.2, 0.1, 4.0], np.float32), (frames, 1)),
            "K": np.repeat(K[None], frames, 0), "image_size": (W, H), "valid": np.ones(frames, bool),
            "fps": 16.0, "model_type": "smpl"}


@pytest.fixture(scope="module")
def body(smpl_model_dir):
    return load_body_model(smpl_model_dir, "neutral", "smpl")


def test_nlfpred_has_kijais_layout_in_millimetres(body):
    seq = motion()
    nlf, width, height, intrinsics = MotionGuideSMPLToNLF().convert(seq, body, camera="sequence")
    # What RenderNLFPoses / MTVCrafterEncodePoses read: nlf['joints3d_nonparam'][0] is the frame list, and
    # each frame's first person is pose[0] (24, 3).
    frames = nlf["joints3d_nonparam"][0]
    assert len(nlf["joints3d_nonparam"]) == 1 and len(frames) == 4
    assert all(torch.is_tensor(f) and f.dtype == torch.float32 and tuple(f.shape) == (1, 24, 3) for f in frames)
    _, joints = pose_sequence(body, seq)
    expected = joints[:, :24].numpy() * 1000.0
    np.testing.assert_allclose(np.stack([f[0].numpy() for f in frames]), expected, atol=1e-2)
    assert (width, height) == (W, H)
    np.testing.assert_allclose(json.loads(intrinsics), seq["K"][0], atol=1e-3)
    # OpenCV axes: 4 m in front of the camera, head (15) above (smaller y than) the pelvis (0).
    assert 3500 < float(frames[0][0, 0, 2]) < 4500
    assert float(frames[0][0, 15, 1]) < float(frames[0][0, 0, 1])


def test_fov55_camera_is_nlfs_and_the_pelvis_keeps_its_pixel(body):
    seq = motion()
    nlf, width, height, intrinsics = MotionGuideSMPLToNLF().convert(seq, body, width=512, height=768,
                                                                      camera="nlf_fov55")
    K = np.array(json.loads(intrinsics))
    focal = 768 / (2 * math.tan(math.radians(27.5)))
    np.testing.assert_allclose(K, [[focal, 0, 256], [0, focal, 384], [0, 0, 1]], atol=1e-3)
    np.testing.assert_allclose(fov_intrinsics(512, 768), K, atol=1e-3)
    joints = np.stack([f[0].numpy() for f in nlf["joints3d_nonparam"][0]]).astype(np.float64)
    _, original = pose_sequence(body, seq)
    original = original[:, :24].double().numpy() * 1000.0
    K_seq = seq["K"][0].astype(np.float64) * [[2, 1, 2], [1, 2, 2], [1, 1, 1]]
    K_seq[0, 2] = (seq["K"][0, 0, 2] + 0.5) * 2 - 0.5
    K_seq[1, 2] = (seq["K"][0, 1, 2] + 0.5) * 2 - 0.5

    def pixels(points, k):
        return points[..., :2] / points[..., 2:] * [k[0, 0], k[1, 1]] + k[:2, 2]

    np.testing.assert_allclose(pixels(joints[:, 0], K), pixels(original[:, 0], K_seq), atol=1e-2)
    # A rigid move: bone lengths are unchanged; depth scaled by the focal ratio.
    np.testing.assert_allclose(np.linalg.norm(joints[:, 15] - joints[:, 0], axis=-1),
                               np.linalg.norm(original[:, 15] - original[:, 0], axis=-1), atol=1e-2)
    np.testing.assert_allclose(joints[:, 0, 2], original[:, 0, 2] * focal / K_seq[0, 0], rtol=1e-5)
    # The skeleton's image changes only by the dolly's perspective (here the focal drops to 61 %): every joint
    # stays within 8 % of the body's image height of where it was, 3 % on average.
    before = pixels(original, K_seq)
    extent = (before[..., 1].max(1) - before[..., 1].min(1)).min()
    drift = np.linalg.norm(pixels(joints, K) - before, axis=-1)
    assert drift.max() < 0.08 * extent and drift.mean() < 0.03 * extent, (drift.max(), drift.mean(), extent)


def test_dolly_without_focal_change_is_the_identity():
    joints = np.random.default_rng(1).normal(size=(3, 24, 3)) + [0, 0, 5]
    K = np.repeat(fov_intrinsics(100, 200)[None], 3, 0)
    np.testing.assert_allclose(dolly_to_camera(joints, K, K), joints, atol=1e-12)


def test_reading_nlfpred_accepts_kijai_layouts_and_fills_empty_frames():
    person = torch.ones(1, 24, 3)
    frames = nlf_frames({"joints3d_nonparam": [(person, torch.zeros(0, 24, 3), 2 * person)]})
    assert [f.shape[0] for f in frames] == [1, 0, 1]
    joints, valid = first_person_track(frames)
    assert valid.tolist() == [True, False, True]
    assert joints[1, 0, 0] in (1.0, 2.0)
    assert len(nlf_frames([person, person])) == 2
    with pytest.raises(ValueError, match="joints3d_nonparam"):
        nlf_frames({"boxes": []})
    with pytest.raises(ValueError, match=r"\(persons, 24, 3\)"):
        nlf_frames({"joints3d_nonparam": [[torch.ones(1, 17, 3)]]})
    with pytest.raises(ValueError, match="no person"):
        first_person_track([torch.zeros(0, 24, 3).numpy()])


def test_node_rejects_wrong_inputs_with_the_remedy(body):
    with pytest.raises(ValueError, match="SMPL_SEQUENCE"):
        MotionGuideSMPLToNLF().convert({"nope": 1}, body)
    with pytest.raises(ValueError, match="camera must be one of"):
        MotionGuideSMPLToNLF().convert(motion(), body, camera="orthographic")


def test_smpl_pose_keypoints_carry_feet_for_the_toe_styles(body):
    from motionguide.pipelines.dwpose import draw
    from motionguide.pipelines.render.smpl_render import sequence_to_pose_keypoints

    seq = motion(frames=1)
    seq["body_pose"][:] = 0.0
    frames = sequence_to_pose_keypoints(body, seq, backend="torch")
    person = frames[0]["people"][0]
    feet = np.array(person["foot_keypoints_2d"]).reshape(6, 3)
    pose = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    _, joints = pose_sequence(body, seq)
    j = joints[0, 29:35].numpy()
    K = seq["K"][0]
    np.testing.assert_allclose(feet[:, :2], j[:, :2] / j[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2], atol=1e-2)
    np.testing.assert_allclose(feet[:3, 2], pose[13, 2])
    np.testing.assert_allclose(feet[3:, 2], pose[10, 2])
    with_toes = draw.draw_pose_map(frames[0], W, H, style="wan_animate")
    without = draw.draw_pose_map(frames[0], W, H, style="wan_animate", feet=False)
    toe_colour = np.array([200, 200, 0])  # Wan's left-toe joint dot
    assert (with_toes == toe_colour).all(-1).any() and not (without == toe_colour).all(-1).any()


def test_round_trip_smpl_to_nlf_to_fit_to_nlf_within_half_a_millimetre(body):
    from motionguide.nodes.nlf import MotionGuideNLFToSMPL

    seq = motion(frames=6, seed=3)
    nlf, width, height, intrinsics = MotionGuideSMPLToNLF().convert(seq, body, camera="sequence")
    # This motion jumps randomly from frame to frame: the default smoothness costs a few millimetres there.
    _, smoothed_mm = MotionGuideNLFToSMPL().fit(nlf, body, width=width, height=height, intrinsics=intrinsics)
    assert smoothed_mm < 5.0
    fitted, error_mm = MotionGuideNLFToSMPL().fit(nlf, body, width=width, height=height, fps=16.0,
                                                  smoothness=0.0, intrinsics=intrinsics)
    assert error_mm < 0.5
    again, *_ = MotionGuideSMPLToNLF().convert(fitted, body, camera="sequence")
    a = np.stack([f[0].numpy() for f in nlf["joints3d_nonparam"][0]])
    b = np.stack([f[0].numpy() for f in again["joints3d_nonparam"][0]])
    distance = np.linalg.norm(a - b, axis=-1)
    assert distance.mean() < 0.5 and distance.max() < 2.0, (distance.mean(), distance.max())
    np.testing.assert_allclose(fitted["K"][0], seq["K"][0], atol=1e-3)
    assert fitted["image_size"] == (W, H) and fitted["valid"].all()


def test_fit_keeps_hinges_and_fills_empty_frames(body):
    from motionguide.pipelines.smpl.estimate.joint_fit import fit_joints, nlf_to_sequence

    seq = motion(frames=3, seed=4)
    nlf, *_ = MotionGuideSMPLToNLF().convert(seq, body, camera="sequence")
    frames = list(nlf["joints3d_nonparam"][0])
    frames[1] = torch.zeros(0, 24, 3)  # NLF found nobody
    fitted, error = nlf_to_sequence(body, {"joints3d_nonparam": [frames]}, width=W, height=H)
    assert fitted["valid"].tolist() == [True, False, True] and error.max() < 5.0
    # A straight-knee target: the fit keeps the knee a hinge (no sideways rotation appears).
    rest = body.rest_joints(np.zeros((1, 10)))[:1]
    result = fit_joints(rest + np.array([0, 0, 3.0]), rest, iterations=50)
    assert np.abs(result["body_pose"].reshape(-1, 23, 3)[:, [3, 4]]).max() < 1e-2
    assert result["error_m"].max() < 1e-3
    with pytest.raises(ValueError, match=r"\(frames, 24, 3\)"):
        fit_joints(np.zeros((2, 17, 3)), rest)
