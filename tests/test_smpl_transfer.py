"""Shape transfer geometry on the synthetic body model (docs/architecture.md, *Reference algorithms*)."""
import numpy as np
import pytest
from motionguide.pipelines.smpl.body import body_model as bm
from motionguide.pipelines.smpl.body.rotations import matrix_to_axis_angle, rotation_about_axis
from motionguide.pipelines.smpl.motion import transfer as tr
from motionguide.pipelines.smpl.motion.sequence import default_intrinsics, validate_sequence

# HMR2 puts a standing person in OpenCV camera axes with a 180° turn about x (SMPL y-up → camera y-down).
FACING_CAMERA = matrix_to_axis_angle(rotation_about_axis("x", 180.0))


@pytest.fixture(scope="module")
def model(smpl_model_dir):
    return bm.load_body_model(smpl_model_dir)


def walking(frames=24, seed=0, betas=None, depth=8.0, jump_frames=()):
    """A body facing the camera, swinging its legs and arms, walking right and away, optionally jumping."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 30.0
    pose = np.zeros((frames, 69))
    swing = 0.5 * np.sin(2 * np.pi * 1.5 * t)
    pose[:, 0], pose[:, 3] = swing, -swing  # hips (joints 1, 2) about x
    pose[:, 9], pose[:, 12] = np.maximum(-swing, 0), np.maximum(swing, 0)  # knees
    pose[:, 45 + 2], pose[:, 48 + 2] = -1.0, 1.0  # shoulders (16, 17) down about z
    transl = np.stack([0.6 * t, 0.0 * t, depth + 0.9 * t], 1)
    for f in jump_frames:
        transl[f, 1] -= 0.25  # camera y is down: -y is up
    return validate_sequence(dict(
        betas=np.repeat((betas if betas is not None else rng.normal(size=10) * 0.7)[None], frames, 0),
        global_orient=np.repeat(FACING_CAMERA[None], frames, 0), body_pose=pose, transl=transl,
        image_size=(576, 1024), fps=30.0))


def reference_seq(model, betas, box=None, depth=20.0):
    seq = dict(betas=betas[None], global_orient=FACING_CAMERA[None] + 0.0, body_pose=np.zeros((1, 69)),
               transl=np.array([[0.1, 0.2, depth]]), K=default_intrinsics(512, 768)[None], image_size=(512, 768))
    seq["body_pose"][0, 45 + 2], seq["body_pose"][0, 48 + 2] = -1.2, 1.2
    if box is not None:
        seq["bbox"] = np.asarray(box, np.float32)[None]
    return validate_sequence(seq)


def test_root_compensation_leaves_root_in_place(model):
    drv = walking(betas=np.eye(10)[0] * 2.0 + np.eye(10)[2])
    beta_r = np.eye(10)[0] * -1.5 + np.eye(10)[8] * 2
    new_t = tr.root_compensation(model, drv["transl"], drv["betas"], beta_r[None])
    _, before = model.forward(drv["betas"], drv["global_orient"], drv["body_pose"], drv["transl"])
    _, after = model.forward(beta_r, drv["global_orient"], drv["body_pose"], new_t)
    shift = np.abs(after[:, 0].double().numpy() - before[:, 0].double().numpy()).max()
    assert shift < 1e-6
    # without compensation the root moves by the change of J0 (centimetres)
    _, naive = model.forward(beta_r, drv["global_orient"], drv["body_pose"], drv["transl"])
    assert np.abs(naive[:, 0].numpy() - before[:, 0].numpy()).max() > 0.02


def test_keep_trajectory_is_pure_root_compensation(model):
    drv = walking()
    ref = reference_seq(model, np.eye(10)[0] * 2.0)
    out = tr.transfer_shape(drv, ref, model, trajectory="keep", fit_box=False, ground=False, camera="driving")
    _, before = model.forward(drv["betas"], drv["global_orient"], drv["body_pose"], drv["transl"])
    _, after = model.forward(out["betas"], out["global_orient"], out["body_pose"], out["transl"])
    assert np.abs(after[:, 0].numpy() - before[:, 0].numpy()).max() < 1e-5
    np.testing.assert_array_equal(out["betas"], np.repeat(ref["betas"][:1], 24, 0))
    np.testing.assert_array_equal(out["K"], drv["K"])


def test_transferred_joints_have_reference_bones_and_driving_rotations(model):
    # β0 is a uniform scale, so bone directions of driving and transfer must agree exactly; lengths follow β_r.
    drv = walking(betas=np.zeros(10))
    beta_r = np.eye(10)[0] * 2.5
    out = tr.transfer_shape(drv, reference_seq(model, beta_r), model, fit_box=False)
    np.testing.assert_array_equal(out["body_pose"], drv["body_pose"])
    np.testing.assert_allclose(out["global_orient"], drv["global_orient"], atol=1e-6)
    _, j_out = model.forward(out["betas"], out["global_orient"], out["body_pose"], out["transl"])
    _, j_drv = model.forward(drv["betas"], drv["global_orient"], drv["body_pose"], drv["transl"])
    parents = model.parents
    bones_out = (j_out[:, 1:24] - j_out[:, parents[1:24]]).double().numpy()
    bones_drv = (j_drv[:, 1:24] - j_drv[:, parents[1:24]]).double().numpy()
    rest = model.rest_joints(beta_r[None])[0]
    rest_len = np.linalg.norm(rest[1:] - rest[parents[1:24]], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(bones_out, axis=-1), np.broadcast_to(rest_len, (24, 23)), atol=2e-6)
    dir_out = bones_out / np.linalg.norm(bones_out, axis=-1, keepdims=True)
    dir_drv = bones_drv / np.linalg.norm(bones_drv, axis=-1, keepdims=True)
    np.testing.assert_allclose(dir_out, dir_drv, atol=1e-4)  # float32 joints at 8 m depth
    # and with a non-uniform β_r the lengths still are the reference's
    beta_r2 = np.eye(10)[2] * 2 + np.eye(10)[4] * -1.5 + np.eye(10)[8]
    out2 = tr.transfer_shape(drv, reference_seq(model, beta_r2), model, fit_box=False)
    _, j2 = model.forward(out2["betas"], out2["global_orient"], out2["body_pose"], out2["transl"])
    rest2 = model.rest_joints(beta_r2[None])[0]
    lengths = np.linalg.norm((j2[:, 1:24] - j2[:, parents[1:24]]).double().numpy(), axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.linalg.norm(rest2[1:] - rest2[parents[1:24]], axis=-1),
                                                        (24, 23)), atol=2e-6)


def test_fit_to_reference_box_height_within_one_percent(model):
    beta_r = np.eye(10)[0] * 1.0
    box = [180.0, 150.0, 330.0, 700.0]  # 550 px tall, feet at y = 700
    ref = reference_seq(model, beta_r, box=box, depth=30.0)
    local, _ = model.forward(ref["betas"], ref["global_orient"], ref["body_pose"])
    t = tr.fit_translation_to_box(local[0].numpy(), ref["transl"][0], ref["K"][0], box)
    uv = tr.project((local[0].numpy() + t)[None], ref["K"][:1])[0]
    height = uv[:, 1].max() - uv[:, 1].min()
    assert abs(height / 550.0 - 1) < 0.01
    assert abs(uv[:, 1].max() - 700.0) < 0.01 * 550
    assert abs((uv[:, 0].min() + uv[:, 0].max()) / 2 - 255.0) < 0.01 * 550
    # the transfer uses the fitted placement: the driving first frame lands in the box too
    drv = walking(frames=6, betas=np.zeros(10))
    drv["body_pose"][:] = ref["body_pose"][0]
    drv["transl"][:] = drv["transl"][0]
    out = tr.transfer_shape(drv, ref, model)
    assert abs((out["bbox"][0, 3] - out["bbox"][0, 1]) / 550.0 - 1) < 0.01
    assert abs(out["bbox"][0, 3] - 700.0) < 0.01 * 550


def test_feet_on_reference_ground_and_jumps_kept(model):
    ref = reference_seq(model, np.eye(10)[0] * -1.0, box=[200, 100, 320, 650], depth=15.0)
    drv = walking(frames=30, betas=np.eye(10)[0] * 1.5)
    up = np.array([0.0, -1.0, 0.0])  # both stand upright facing the camera
    feet = np.isin(model.part_labels, tr.FOOT_PARTS)
    # plant the driving feet on a level ground (the root bobs as the legs swing), then jump in frames 12-14
    verts, _ = model.forward(drv["betas"], drv["global_orient"], drv["body_pose"], drv["transl"])
    drv["transl"][:, 1] += (verts.double().numpy()[:, feet] @ up).min(1) - 0.3
    drv["transl"][12:15, 1] -= 0.25
    out = tr.transfer_shape(drv, ref, model)
    ref_local, _ = model.forward(ref["betas"], ref["global_orient"], ref["body_pose"])
    ref_t = tr.fit_translation_to_box(ref_local[0].numpy(), ref["transl"][0], ref["K"][0], ref["bbox"][0])
    ref_ground = ((ref_local[0].numpy()[feet] + ref_t) @ up).min()
    verts, _ = model.forward(out["betas"], out["global_orient"], out["body_pose"], out["transl"])
    lowest = (verts.double().numpy()[:, feet] @ up).min(1)
    standing = np.setdiff1d(np.arange(30), [12, 13, 14])
    # planted feet sit on the reference ground (mm), jumps rise above it by the height-scaled jump
    assert np.abs(np.percentile(lowest[standing], 10) - ref_ground) < 1e-3
    assert np.all(np.abs(lowest[standing] - ref_ground) < 2e-3)
    scale = tr.rest_height(model, ref["betas"][:1])[0] / tr.rest_height(model, drv["betas"][:1])[0]
    assert np.all(lowest[[12, 13, 14]] - ref_ground > 0.2 * scale)


def test_relative_trajectory_scaled_by_height_ratio_in_all_three_axes(model):
    ref = reference_seq(model, np.eye(10)[0] * -1.0, depth=16.0)
    drv = walking(frames=10, betas=np.eye(10)[0] * 1.0)
    out = tr.transfer_shape(drv, ref, model, fit_box=False, ground=False)
    root_out = out["transl"] + model.rest_joints(out["betas"])[:, 0]
    root_drv = drv["transl"] + model.rest_joints(drv["betas"])[:, 0]
    root_ref = ref["transl"][0] + model.rest_joints(ref["betas"])[0, 0]
    s = tr.rest_height(model, ref["betas"][:1])[0] / tr.rest_height(model, drv["betas"][:1])[0]
    np.testing.assert_allclose(root_out[:, 0] - root_ref[0], s * (root_drv[:, 0] - root_drv[0, 0]), atol=1e-5)
    # a smaller body makes smaller steps towards / away from the camera too (metres, like x and y)
    np.testing.assert_allclose(root_out - root_ref, s * (root_drv - root_drv[0]), atol=1e-5)
    locked = tr.transfer_shape(drv, ref, model, trajectory="lock_root", fit_box=False, ground=False)
    np.testing.assert_allclose(locked["transl"] + model.rest_joints(locked["betas"])[:, 0],
                               np.repeat(root_ref[None], 10, 0), atol=1e-5)


def test_align_first_takes_reference_facing(model):
    side = matrix_to_axis_angle(rotation_about_axis("y", 90.0) @ rotation_about_axis("x", 180.0))
    ref = reference_seq(model, np.zeros(10))
    ref["global_orient"][0] = side
    drv = walking(frames=5)
    out = tr.transfer_shape(drv, ref, model, orientation="align_first", fit_box=False, ground=False)
    from motionguide.pipelines.smpl.body.rotations import axis_angle_to_matrix

    np.testing.assert_allclose(axis_angle_to_matrix(out["global_orient"][0]), axis_angle_to_matrix(side), atol=1e-5)


def test_bad_options_and_empty_reference(model):
    drv = walking(frames=4)
    ref = reference_seq(model, np.zeros(10))
    with pytest.raises(ValueError, match="trajectory"):
        tr.transfer_shape(drv, ref, model, trajectory="fly")
    ref["valid"][:] = False
    with pytest.raises(ValueError, match="no valid frame"):
        tr.transfer_shape(drv, ref, model)


def test_frames_without_person_are_filled_not_used(model):
    drv = walking(frames=8)
    drv["valid"][3] = False
    drv["transl"][3] = 0.0  # an estimator leaves nothing usable there
    ref = reference_seq(model, np.zeros(10))
    out = tr.transfer_shape(drv, ref, model, fit_box=False, ground=False)
    assert not out["valid"][3]
    np.testing.assert_allclose(out["transl"][3], (out["transl"][2] + out["transl"][4]) / 2, atol=1e-4)


def _keypoints_of(model, seq, frame=0):
    """What a perfect detector sees: the body's projected OpenPose-18 joints, score 0.9."""
    _, joints = model.forward(seq["betas"][frame:frame + 1], seq["global_orient"][frame:frame + 1],
                              seq["body_pose"][frame:frame + 1], seq["transl"][frame:frame + 1])
    uv = tr.project(tr.openpose_points(model, joints.double().numpy()), seq["K"][frame:frame + 1])[0]
    uv[1] = (uv[2] + uv[5]) / 2
    return np.concatenate([uv, np.full((18, 1), 0.9)], 1)


def test_reference_body_is_fitted_to_its_keypoints_not_to_a_tight_box(model):
    # the true reference stands at 12 m; its estimate says 20 m and carries the tight keypoint box (eyes to
    # ankles, as controlnet_aux or Load Pose JSON give it) and the keypoints themselves
    truth = reference_seq(model, np.eye(10)[0] * 1.0, depth=12.0)
    kp = _keypoints_of(model, truth)
    tight = [kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()]
    estimate = reference_seq(model, np.eye(10)[0] * 1.0, box=tight, depth=20.0)
    drv = walking(frames=4, betas=np.zeros(10))
    drv["body_pose"][:] = truth["body_pose"][0]
    drv["transl"][:] = drv["transl"][0]
    boxed = tr.transfer_shape(drv, estimate, model, ground=False)
    with_kp = tr.transfer_shape(drv, dict(estimate, keypoints=kp[None]), model, ground=False)
    root = lambda s: s["transl"][0] + model.rest_joints(s["betas"][:1])[0, 0]  # noqa: E731
    # the keypoint fit finds the true placement (sub-millimetre); the tight box made the body ~8 % small
    np.testing.assert_allclose(root(with_kp), root(truth), atol=1e-3)
    assert root(boxed)[2] / root(truth)[2] > 1.05
    np.testing.assert_allclose(_keypoints_of(model, with_kp)[:, :2], kp[:, :2], atol=0.05)
    assert "keypoints" not in with_kp  # the reference's keypoints are not the result's


def test_driving_camera_places_the_body_for_the_driving_frame(model):
    ref = reference_seq(model, np.eye(10)[0] * 0.5, depth=40.0)  # 512×768, HMR2 focal
    drv = walking(frames=5, betas=np.zeros(10))  # 576×1024
    drv["K"][:] = default_intrinsics(1024, 576)
    drv["image_size"] = (1024, 576)  # a landscape driving video with another focal length
    for trajectory in ("relative", "lock_root"):
        ref_out = tr.transfer_shape(drv, ref, model, trajectory=trajectory, fit_box=False, ground=False)
        drv_out = tr.transfer_shape(drv, ref, model, trajectory=trajectory, fit_box=False, ground=False,
                                    camera="driving")
        assert drv_out["image_size"] == (1024, 576)
        # the body starts at the same spot of the frame, fills the same share of its height and moves by the same
        # share of it in both cameras
        centre = lambda s: (s["bbox"][:, 0] + s["bbox"][:, 2]) / 2  # noqa: E731
        assert centre(drv_out)[0] / 1024 == pytest.approx(centre(ref_out)[0] / 512, abs=2e-3)
        np.testing.assert_allclose((centre(drv_out) - centre(drv_out)[0]) / 576,
                                   (centre(ref_out) - centre(ref_out)[0]) / 768, atol=2e-3)
        np.testing.assert_allclose(drv_out["bbox"][:, [1, 3]] / 576, ref_out["bbox"][:, [1, 3]] / 768, atol=2e-3)
        np.testing.assert_allclose((drv_out["bbox"][:, 2] - drv_out["bbox"][:, 0]) / 576,
                                   (ref_out["bbox"][:, 2] - ref_out["bbox"][:, 0]) / 768, atol=2e-3)


def test_upright_levels_a_motion_filmed_from_above(model):
    # the driving camera looked 25° down on an upright walker; the reference camera is level
    drv = walking(frames=8, betas=np.zeros(10))
    tilt = rotation_about_axis("x", -25.0)
    drv["global_orient"] = matrix_to_axis_angle(tilt @ tr.axis_angle_to_matrix(drv["global_orient"]))
    drv["transl"] = ((drv["transl"] + model.rest_joints(drv["betas"])[:, 0]) @ tilt.T
                     - model.rest_joints(drv["betas"])[:, 0]).astype(np.float32)
    ref = reference_seq(model, np.zeros(10))
    up_ref = tr.axis_angle_to_matrix(ref["global_orient"][0]) @ [0.0, 1.0, 0.0]
    out = tr.transfer_shape(drv, ref, model, fit_box=False, ground=False)
    ups = tr.axis_angle_to_matrix(out["global_orient"]) @ [0.0, 1.0, 0.0]
    np.testing.assert_allclose(ups, np.broadcast_to(up_ref, (8, 3)), atol=1e-5)  # upright again
    kept = tr.transfer_shape(drv, ref, model, orientation="keep", fit_box=False, ground=False)
    assert np.degrees(np.arccos(np.clip(tr.axis_angle_to_matrix(kept["global_orient"][0]) @ [0, 1.0, 0] @ up_ref,
                                        -1, 1))) == pytest.approx(25.0, abs=0.01)
    # the walk's path is levelled with it: no depth change from the tilt, only the walk's own
    root = out["transl"] + model.rest_joints(out["betas"])[:, 0]
    walk = walking(frames=8, betas=np.zeros(10))["transl"]
    np.testing.assert_allclose(root - root[0], walk - walk[0], atol=1e-5)
    # a body lying down is no camera pitch: left as it is
    lying = dict(drv, global_orient=matrix_to_axis_angle(rotation_about_axis("x", 90.0) @ tr.axis_angle_to_matrix(
        walking(frames=8)["global_orient"])))
    flat = tr.transfer_shape(lying, ref, model, fit_box=False, ground=False)
    np.testing.assert_allclose(flat["global_orient"], lying["global_orient"], atol=1e-6)


# -- the ground step (pipelines/smpl/motion/ground.py) --------------------------------------------------------

UP = np.array([0.0, -1.0, 0.0])  # camera y points down
FEET_LABELS = np.array([7, 10, 8, 11, 0])  # left ankle, left toes, right ankle, right toes, a pelvis vertex


def _feet(left, right):
    """Vertices `(T,5,3)` whose left / right foot's lowest point is at the given heights (metres, along UP)."""
    left, right = np.asarray(left, float), np.asarray(right, float)
    v = np.zeros((len(left), 5, 3))
    v[:, 0, 1], v[:, 1, 1] = -(left + 0.05), -left
    v[:, 2, 1], v[:, 3, 1] = -(right + 0.05), -right
    v[:, 4, 1] = -(np.minimum(left, right) + 0.9)
    return v


def test_ground_squat_sinking_at_the_bottom_is_not_lifted_whole():
    from motionguide.pipelines.smpl.motion import ground as gr

    # 40 frames at 30 fps: standing at 0.10 m, the feet sink slowly to 0.07 m at the bottom of a squat (frames
    # 12-27), back up; the reference ground is at 0.0 m
    t = np.arange(40)
    sink = 0.03 * np.clip(np.minimum(t / 12.0, (39 - t) / 12.0), 0, 1)
    h = 0.10 - sink
    contacts = gr.detect_contacts(np.stack([h, h], 1), 30.0)
    assert contacts.all()  # low and slow all along
    shift = gr.ground_shift(_feet(h, h), FEET_LABELS, UP, 0.0, 30.0)
    # one contact from frame 0: planted where it touched down, the bottom keeps its 3 cm sink
    assert np.allclose(shift, -0.0975, atol=1e-9), shift  # touchdown: the median of the first 0.1 s (3 frames)
    planted = h + shift
    assert abs(planted[0]) < 3e-3 and abs(planted[20] + 0.03) < 3e-3
    # the earlier constant rule lifted the whole clip by the sink: 3 cm above the ground while standing
    constant = gr.ground_shift(_feet(h, h), FEET_LABELS, UP, 0.0, 30.0, mode="constant")
    assert np.allclose(constant, -0.07, atol=1e-9) and abs(h[0] + constant[0] - 0.03) < 1e-9


def test_ground_jump_in_the_air_most_frames_keeps_its_height():
    from motionguide.pipelines.smpl.motion import ground as gr

    # 60 fps, a trampoline bounce: on the ground (0.2 m) in frames 0-5 (0.1 s), in the air in frames 6-69 (91%)
    t = np.arange(70) / 60.0
    flight = (69.5 - 5.5) / 60.0
    in_air = np.clip(t - 5.5 / 60.0, 0, flight)
    lift = 0.5 * 9.81 * in_air * (flight - in_air)
    h = 0.2 + lift
    contacts = gr.detect_contacts(np.stack([h, h], 1), 60.0)
    assert np.flatnonzero(contacts[:, 0]).tolist() == [0, 1, 2, 3, 4, 5]
    shift = gr.ground_shift(_feet(h, h), FEET_LABELS, UP, 0.0, 60.0)
    assert np.allclose(shift, -0.2, atol=1e-6)  # feet on the ground before the take-off, the 1.4 m bounce kept
    assert abs((h + shift).max() - lift.max()) < 1e-6 and lift.max() > 1.3
    # the constant rule took an airborne frame (its 10th percentile) for the ground: standing went into the floor
    constant = gr.ground_shift(_feet(h, h), FEET_LABELS, UP, 0.0, 60.0, mode="constant")
    assert (h + constant)[0] == pytest.approx(-0.0433, abs=1e-3)  # 4.3 cm into the floor
    # a foot still for less than 0.1 s is no contact: two standing frames before a take-off give no ground
    short = np.concatenate([h[4:], np.full(4, h[-1])])
    assert np.flatnonzero(gr.detect_contacts(np.stack([short, short], 1), 60.0)[:, 0]).tolist()[:2] == [0, 1]
    assert np.array_equal(gr.ground_shift(_feet(short[:50], short[:50]), FEET_LABELS, UP, 0.0, 60.0), np.zeros(50))


def test_ground_walk_plants_each_step_and_blends_between():
    from motionguide.pipelines.smpl.motion import ground as gr

    # alternating steps at 30 fps; the estimate drifts down 4 cm over the clip: every touchdown is planted
    t = np.arange(60)
    drift = -0.04 * t / 59
    swing = np.maximum(np.sin(2 * np.pi * t / 30.0), 0) * 0.12  # left swings in the first half of each cycle
    left, right = 0.3 + drift + swing, 0.3 + drift + np.maximum(-np.sin(2 * np.pi * t / 30.0), 0) * 0.12
    shift = gr.ground_shift(_feet(left, right), FEET_LABELS, UP, 0.0, 30.0)
    lowest = np.minimum(left, right) + shift
    assert np.abs(lowest).max() < 0.012, lowest  # within 1.2 cm of the ground in every frame (drift was 4 cm)
    constant = gr.ground_shift(_feet(left, right), FEET_LABELS, UP, 0.0, 30.0, mode="constant")
    assert np.abs(np.minimum(left, right) + constant).max() > 0.03


def test_ground_without_contacts_keeps_the_motion_and_rejects_unknown_modes():
    from motionguide.pipelines.smpl.motion import ground as gr

    h = 1.0 + 1.5 * np.arange(20) / 30.0  # rising all along (1.5 m/s): never still
    assert np.array_equal(gr.ground_shift(_feet(h, h), FEET_LABELS, UP, 0.0, 30.0), np.zeros(20))
    with pytest.raises(ValueError, match="ground mode must be one of 'contacts', 'constant'; got 'lowest'"):
        gr.ground_shift(_feet(h, h), FEET_LABELS, UP, 0.0, 30.0, mode="lowest")
