"""Camera orbit/dolly/zoom/paths and temporal smoothing."""
import numpy as np
import pytest
from motionguide.pipelines.smpl.body import body_model as bm
from motionguide.pipelines.smpl.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_about_axis
from motionguide.pipelines.smpl.motion import camera as cam
from motionguide.pipelines.smpl.motion import smoothing as sm
from motionguide.pipelines.smpl.motion.sequence import validate_sequence
from motionguide.pipelines.smpl.motion.transfer import project

UPRIGHT = rotation_about_axis("x", 180.0)  # SMPL y-up body in OpenCV camera axes, facing the camera


@pytest.fixture(scope="module")
def model(smpl_model_dir):
    return bm.load_body_model(smpl_model_dir)


def standing(orient_matrix, frames=1, depth=6.0):
    return validate_sequence(dict(betas=np.zeros((frames, 10)),
                                  global_orient=np.repeat(matrix_to_axis_angle(orient_matrix)[None], frames, 0),
                                  body_pose=np.zeros((frames, 69)), transl=np.tile([0.0, 0.3, depth], (frames, 1)),
                                  image_size=(512, 512), fps=30.0))


def shoulders_px(model, seq):
    _, joints = model.forward(seq["betas"], seq["global_orient"], seq["body_pose"], seq["transl"])
    uv = project(joints[:, [16, 17]].double().numpy(), seq["K"])
    return uv[:, 0], uv[:, 1]  # left, right shoulder pixels


def test_orbit_90_turns_side_facing_body_to_front(model):
    # body turned to face the camera's +x (its left shoulder is nearer to the camera, both overlap in x)
    side = standing(rotation_about_axis("y", -90.0) @ UPRIGHT)
    f, depth = side["K"][0, 0, 0], 6.0
    expected = f * 0.346 / depth  # shoulder width (2 × 0.173 m) seen face-on
    left, right = shoulders_px(model, side)
    assert abs(left[0, 0] - right[0, 0]) < 0.02 * expected
    front = cam.set_camera(side, model, yaw=90.0)
    left, right = shoulders_px(model, front)
    # facing the camera: the person's left shoulder appears on the image right, a full shoulder width apart
    assert left[0, 0] - right[0, 0] == pytest.approx(expected, rel=0.03)
    # the orbit pivots on the root: the pelvis stays where it was
    j0 = model.rest_joints(side["betas"])[:, 0]
    np.testing.assert_allclose(front["transl"] + j0, side["transl"] + j0, atol=1e-6)


def test_pitch_dolly_zoom(model):
    seq = standing(UPRIGHT)
    _, joints = model.forward(seq["betas"], seq["global_orient"], seq["body_pose"], seq["transl"])
    looked_down = cam.set_camera(seq, model, pitch=30.0)
    _, j2 = model.forward(looked_down["betas"], looked_down["global_orient"], looked_down["body_pose"],
                          looked_down["transl"])
    # camera above: the head (joint 15) comes nearer to the camera than the pelvis
    assert j2[0, 15, 2] - j2[0, 0, 2] < -0.1 and abs(joints[0, 15, 2] - joints[0, 0, 2]) < 0.05
    far = cam.set_camera(seq, model, dolly=2.0)
    root = far["transl"] + model.rest_joints(far["betas"])[:, 0]
    root0 = seq["transl"] + model.rest_joints(seq["betas"])[:, 0]
    assert root[0, 2] == pytest.approx(2 * root0[0, 2], rel=1e-6)
    zoomed = cam.set_camera(seq, model, zoom=1.5)
    assert zoomed["K"][0, 0, 0] == pytest.approx(1.5 * seq["K"][0, 0, 0])
    assert zoomed["K"][0, 0, 2] == seq["K"][0, 0, 2]


def test_camera_path_is_eased_from_start_to_end(model):
    seq = standing(UPRIGHT, frames=11)
    moved = cam.set_camera(seq, model, yaw=0.0, yaw_end=90.0, easing="ease_in_out")
    rot = axis_angle_to_matrix(moved["global_orient"]) @ UPRIGHT.T
    yaw = np.degrees(np.arctan2(rot[:, 0, 2], rot[:, 0, 0]))
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(yaw, 90 * t * t * (3 - 2 * t), atol=1e-4)
    np.testing.assert_allclose(cam.ease([0, 0.5, 1], "ease_in_out"), [0, 0.5, 1])
    with pytest.raises(ValueError, match="dolly"):
        cam.set_camera(seq, model, dolly=0.0)


def noisy_sequence(frames=120, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 30.0
    clean_rot = np.zeros((frames, 24, 3))
    clean_rot[:, :, 0] = 0.6 * np.sin(2 * np.pi * 0.5 * t)[:, None]
    clean_rot[:, 0] = matrix_to_axis_angle(UPRIGHT @ axis_angle_to_matrix(clean_rot[:, 0]))  # near π: sign flips
    clean_t = np.stack([0.5 * t, 0.1 * np.sin(2 * np.pi * t), 6 + 0.2 * t], 1)
    rot = matrix_to_axis_angle(axis_angle_to_matrix(rng.normal(size=(frames, 24, 3)) * noise)
                               @ axis_angle_to_matrix(clean_rot))
    seq = validate_sequence(dict(betas=rng.normal(size=(frames, 10)) * 0.3 + np.arange(10) * 0.1,
                                 global_orient=rot[:, 0], body_pose=rot[:, 1:].reshape(frames, 69),
                                 transl=clean_t + rng.normal(size=(frames, 3)) * noise * 0.5,
                                 image_size=(512, 512), fps=30.0))
    return seq, clean_rot, clean_t


def test_smoothing_reduces_jitter_by_a_factor_of_4():
    seq, clean_rot, clean_t = noisy_sequence()
    out = sm.smooth_sequence(seq, rotation_window=11, translation_window=11)
    # jitter of rotation matrices (continuous even where axis-angle wraps) and of translations
    mats = lambda s: axis_angle_to_matrix(np.concatenate([s["global_orient"], s["body_pose"]], 1)  # noqa: E731
                                          .reshape(-1, 24, 3)).reshape(-1, 24 * 9)
    assert sm.jitter(mats(out)) * 4 < sm.jitter(mats(seq))
    assert sm.jitter(out["transl"]) * 4 < sm.jitter(seq["transl"])
    # and it moved towards the truth
    assert np.abs(out["transl"] - clean_t).mean() < 0.5 * np.abs(seq["transl"] - clean_t).mean()
    err = lambda s: np.abs(mats(s) - axis_angle_to_matrix(clean_rot).reshape(-1, 216)).mean()  # noqa: E731
    assert err(out) < 0.6 * err(seq)
    # one body shape: the median
    np.testing.assert_allclose(out["betas"], np.repeat(np.median(seq["betas"], 0)[None], 120, 0), atol=1e-6)
    six = sm.smooth_sequence(seq, rotation_window=11, rotation_space="6d", translation_filter="one_euro")
    assert sm.jitter(mats(six)) * 4 < sm.jitter(mats(seq)) and sm.jitter(six["transl"]) * 2 < sm.jitter(seq["transl"])


def test_gap_filling_interpolates_invalid_frames():
    seq, _, _ = noisy_sequence(frames=10, noise=0.0)
    seq["transl"][:] = np.arange(10)[:, None] * [1.0, 0, 0] + [0, 0, 5]
    seq["valid"][[0, 4, 5]] = False
    broken = dict(seq, transl=seq["transl"].copy())
    broken["transl"][[0, 4, 5]] = 99.0
    filled = sm.fill_invalid_frames(broken)
    np.testing.assert_allclose(filled["transl"][4:6, 0], [4.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(filled["transl"][0], filled["transl"][1])  # held before the first valid frame
    np.testing.assert_allclose(axis_angle_to_matrix(filled["global_orient"][4]),
                               axis_angle_to_matrix(seq["global_orient"][4]), atol=1e-2)  # slerp of a sine
    assert filled["valid"].tolist() == seq["valid"].tolist()
    none = dict(seq, valid=np.zeros(10, bool))
    with pytest.raises(ValueError, match="no valid frame"):
        sm.fill_invalid_frames(none)


def test_median_betas_keep_the_root_joint_in_place(model):
    # per-frame shape jitter of an estimator, with the root joint standing still: one median body must not move it
    seq, _, _ = noisy_sequence(frames=20, noise=0.0)
    rng = np.random.default_rng(1)
    seq["betas"] = (rng.normal(size=(20, 10)) * 0.8).astype(np.float32)
    root = np.array([0.2, 0.1, 6.0])
    seq["transl"] = (root - model.rest_joints(seq["betas"])[:, 0]).astype(np.float32)
    kwargs = dict(rotation_window=1, translation_filter="none")
    out = sm.smooth_sequence(seq, model=model, **kwargs)
    roots = out["transl"] + model.rest_joints(out["betas"])[:, 0]
    np.testing.assert_allclose(roots, np.broadcast_to(root, (20, 3)), atol=1e-5)
    # without the body model the pelvis jitters by the change of J0 (what the node did before)
    blind = sm.smooth_sequence(seq, **kwargs)
    assert np.abs(blind["transl"] + model.rest_joints(blind["betas"])[:, 0] - root).max() > 0.01


def test_yaw_turns_about_the_body_vertical_axis(model):
    # a body seen from 40° above (its up axis tilted towards the camera): yaw must keep that axis, and the pivot
    tilted = standing(rotation_about_axis("x", 40.0) @ UPRIGHT)
    turned = cam.set_camera(tilted, model, yaw=70.0)
    down = cam.body_down_axis(tilted["global_orient"][0])
    np.testing.assert_allclose(cam.body_down_axis(turned["global_orient"][0]), down, atol=1e-6)
    # and it really turned by 70° about that axis
    delta = axis_angle_to_matrix(turned["global_orient"][0]) @ axis_angle_to_matrix(tilted["global_orient"][0]).T
    np.testing.assert_allclose(matrix_to_axis_angle(delta), np.deg2rad(70.0) * down, atol=1e-6)
    # an upright body turns about camera y exactly as before
    upright = standing(UPRIGHT)
    np.testing.assert_allclose(axis_angle_to_matrix(cam.set_camera(upright, model, yaw=30.0)["global_orient"][0]),
                               rotation_about_axis("y", 30.0) @ UPRIGHT, atol=1e-6)
