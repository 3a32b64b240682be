"""The built-in Anny body driven by SMPL-format motion (docs/architecture.md, *Reference algorithms*), on the real
``anny`` package."""
import numpy as np
import pytest
import torch
from motionguide.pipelines.smpl.body import anny_retarget as ar
from motionguide.pipelines.smpl.body.phenotype import PHENOTYPE_LABELS
from motionguide.pipelines.smpl.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_about_axis
from motionguide.pipelines.smpl.motion.sequence import validate_sequence

FACING_CAMERA = np.array([np.pi, 0.0, 0.0])  # SMPL's +y up / +z forward → camera −y up, body facing the camera
FRAMES = 60
# Chain bones whose direction a single SMPL joint rotation sets (parent → child with one child each).
CHAIN = [(1, 4), (2, 5), (4, 7), (5, 8), (7, 10), (8, 11), (3, 6), (6, 9), (12, 15), (13, 16), (14, 17),
         (16, 18), (17, 19), (18, 20), (19, 21), (20, 22), (21, 23)]
DIRECTION_TOLERANCE_DEG = 0.5
POSITION_TOLERANCE_M = 1e-4


def walk_turn_raise(frames=FRAMES, depth=6.0):
    """Walking in place, turning 180° about the vertical between frames 20 and 40, raising both arms."""
    t = np.arange(frames) / 30.0
    pose = np.zeros((frames, 69))
    swing = 0.5 * np.sin(2 * np.pi * 1.5 * t)
    pose[:, 0], pose[:, 3] = swing, -swing  # hips
    pose[:, 9], pose[:, 12] = np.maximum(-swing, 0), np.maximum(swing, 0)  # knees
    raise_ = np.linspace(-1.2, 0.4, frames)
    pose[:, 45 + 2], pose[:, 48 + 2] = raise_, -raise_  # shoulders about z: from down to above horizontal
    pose[:, 51 + 1], pose[:, 54 + 1] = -0.6, 0.6  # elbows (joints 18, 19) bent
    pose[:, 57], pose[:, 60] = 0.9 * np.sin(2 * np.pi * t), -0.9 * np.sin(2 * np.pi * t)  # wrists (20, 21) twist
    yaw = np.clip((np.arange(frames) - 20) / 20.0, 0, 1) * np.pi
    orient = matrix_to_axis_angle(axis_angle_to_matrix(FACING_CAMERA)[None]
                                  @ np.stack([rotation_about_axis("y", np.degrees(a)) for a in yaw]))
    transl = np.stack([0.3 * t, np.zeros(frames), depth + 0.0 * t], 1)
    return validate_sequence(dict(betas=np.zeros((frames, 10)), global_orient=orient, body_pose=pose, transl=transl,
                                  image_size=(576, 1024), K=_camera(frames), fps=30.0)), yaw


def _camera(frames):
    k = np.array([[900.0, 0, 288], [0, 900.0, 512], [0, 0, 1]], np.float32)
    return np.repeat(k[None], frames, 0)


def smpl_tree_fk(rest: np.ndarray, seq: dict) -> np.ndarray:
    """Plain SMPL forward kinematics of ``rest`` (24,3) joints: J_k = J_p + S_p (rest_k − rest_p)."""
    world = ar.smpl_global_rotations(torch.tensor(seq["global_orient"], dtype=torch.float64),
                                     torch.tensor(seq["body_pose"], dtype=torch.float64)).numpy()
    joints = np.zeros((len(world), 24, 3))
    joints[:, 0] = rest[0] + seq["transl"]
    for k in range(1, 24):
        p = ar.SMPL_PARENTS[k]
        joints[:, k] = joints[:, p] + world[:, p] @ (rest[k] - rest[p])
    return joints


def test_retarget_reproduces_smpl_tree_kinematics(anny_body):
    seq, _ = walk_turn_raise()
    _, joints = anny_body.forward(None, seq["global_orient"], seq["body_pose"], seq["transl"])
    joints = joints.double().numpy()
    _, tpose = anny_body.forward(None, np.zeros((1, 3)), np.zeros((1, 69)), np.zeros((1, 3)))
    # the same rotations on the body's own T-posed skeleton: joint positions agree to 0.1 mm
    expected = smpl_tree_fk(tpose[0, :24].double().numpy(), seq)
    assert np.abs(joints[:, :24] - expected).max() < POSITION_TOLERANCE_M
    # and on SMPL's T-pose skeleton: every chain bone points the same way (rest alignment), within 0.5°
    smpl = smpl_tree_fk(ar.SMPL_REST_JOINTS.numpy(), seq)
    for parent, child in CHAIN:
        a = joints[:, child] - joints[:, parent]
        b = smpl[:, child] - smpl[:, parent]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < DIRECTION_TOLERANCE_DEG, (parent, child)
    # the pelvis sits where SMPL puts it: SMPL's neutral pelvis + transl
    assert np.abs(joints[:, 0] - (ar.SMPL_REST_JOINTS[0].numpy() + seq["transl"])).max() < 1e-5


def test_forearm_twist_bone_takes_half_the_wrist_twist(anny_body):
    pose = np.zeros((1, 69))
    pose[0, 57] = 1.2  # left wrist (joint 20) twisted about SMPL's x (the T-pose forearm)
    rest = anny_body.rest()
    world = ar.smpl_global_rotations(torch.zeros(1, 3), torch.tensor(pose, dtype=torch.float32))
    g = anny_body.retarget.bone_rotations(world, rest["alignment"], rest["twist_axes"])[0]
    index = anny_body.retarget.index
    relative = g[index["lowerarm02.L"]] @ g[index["lowerarm01.L"]].T
    angle = np.degrees(np.arccos(np.clip((float(torch.trace(relative)) - 1) / 2, -1, 1)))
    assert angle == pytest.approx(np.degrees(0.6), abs=1.5)  # half of 1.2 rad (the axis is not exactly x)
    assert float((g[index["upperarm02.L"]] - g[index["upperarm01.L"]]).abs().max()) == 0.0


def test_facing_and_left_right_through_the_turn(anny_body):
    seq, yaw = walk_turn_raise()
    _, joints = anny_body.forward(None, seq["global_orient"], seq["body_pose"], seq["transl"])
    op = anny_body.openpose18(joints).numpy()
    nose_ahead = op[:, 0, 2] - op[:, 1, 2]  # camera z: negative = nose nearer the camera than the neck
    left_minus_right_x = op[:, 5, 0] - op[:, 2, 0]  # left shoulder minus right shoulder, camera x
    front = yaw < np.pi / 2 - 0.3
    back = yaw > np.pi / 2 + 0.3
    assert (nose_ahead[front] < 0).all() and (nose_ahead[back] > 0).all()
    # facing the camera the body's left is on the image's right (+x); seen from behind it is on the left
    assert (left_minus_right_x[front] > 0.05).all() and (left_minus_right_x[back] < -0.05).all()
    # SMPL-24 left/right joints follow the same sides as the COCO ones
    assert np.all(np.sign((joints[:, 16, 0] - joints[:, 17, 0]).numpy())[front | back]
                  == np.sign(left_minus_right_x[front | back]))


def test_openpose_keypoints_lie_inside_the_rendered_silhouette(anny_body):
    from motionguide.pipelines.render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints

    seq, _ = walk_turn_raise()
    picked = {key: (value[[0, 10, 59]] if key in ("global_orient", "body_pose", "transl", "K", "valid", "bbox",
                                                  "betas") else value) for key, value in seq.items()}
    picked = validate_sequence(picked)
    mask = render_sequence_maps(anny_body, picked, backend="torch", maps=("mask",))["mask"].numpy() > 0
    frames = sequence_to_pose_keypoints(anny_body, picked, backend="torch")
    for t, frame in enumerate(frames):
        kp = np.array(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
        for joint in range(18):
            x, y = round(kp[joint, 0]), round(kp[joint, 1])
            assert mask[t, y - 1:y + 2, x - 1:x + 2].any(), (t, joint)


def test_parts_are_exclusive_and_sit_on_their_bones(anny_body):
    labels = anny_body.part_labels
    assert labels.shape == (anny_body.num_vertices,) and labels.min() == 0 and labels.max() == 23
    assert set(np.unique(labels)) == set(range(24))  # one label per vertex, every part used
    rest = anny_body.rest_vertices()
    joints = anny_body.rest_joints()[0]
    for part in range(24):
        centre = rest[labels == part].mean(0)
        # nearest SMPL joint to each part's centre is the part's own joint or one of its children
        children = [k for k, p in enumerate(ar.SMPL_PARENTS) if p == part]
        nearest = int(np.argmin(np.linalg.norm(joints - centre, axis=1)))
        assert nearest in [part] + children + [ar.SMPL_PARENTS[part]], (part, nearest)
    # left parts on the body's left (+x in SMPL axes)
    for left, right in ((16, 17), (18, 19), (20, 21), (1, 2), (4, 5)):
        assert rest[labels == left][:, 0].mean() > 0 > rest[labels == right][:, 0].mean()


def test_shape_fit_recovers_stature_within_five_percent(anny_body):
    from motionguide.pipelines.smpl.motion.anny_shape import set_body_shape

    true = np.array([0.5, 0.5, 0.5, 0.5, 0.85, 0.3], np.float32)
    frames, rng = 4, np.random.default_rng(1)
    orient = np.tile(FACING_CAMERA, (frames, 1)) + rng.normal(0, 0.1, (frames, 3))
    pose = rng.normal(0, 0.15, (frames, 69))
    transl = np.tile([0.0, 0.3, 6.0], (frames, 1))
    k = _camera(frames)
    _, joints = anny_body.forward(None, orient, pose, transl, phenotype=true)
    op = anny_body.openpose18(joints).double().numpy()
    uv = op[..., :2] / op[..., 2:] * 900.0 + [288, 512]
    seq = dict(betas=np.zeros((frames, 10)), global_orient=orient, body_pose=pose, transl=transl, K=k,
               image_size=(576, 1024), keypoints=np.concatenate([uv, np.ones((frames, 18, 1))], -1))
    out = set_body_shape(seq, anny_body, "fit", iterations=60)
    stature, fitted = anny_body.rest_height(phenotype=true)[0], anny_body.rest_height(phenotype=out["phenotype"])[0]
    start = anny_body.rest_height()[0]
    assert abs(start - stature) / stature > 0.05  # the default body is not already right
    assert abs(fitted - stature) / stature < 0.05
    assert out["phenotype"][[0, 2, 3]].tolist() == pytest.approx([0.5, 0.5, 0.5])  # not identifiable: kept


def test_shape_fit_reads_a_standing_child_from_one_frame(anny_body):
    """Issue 13: descent from the default adult read this child as a short old adult (age 0.95, height 0.05,
    14 px residual); the grid start finds the child's basin."""
    from motionguide.pipelines.smpl.motion.anny_shape import FIT_LABELS, fit_phenotype

    child = np.array([0.5, 0.25, 0.4, 0.45, 0.4, 0.3], np.float32)  # the benchmark's child reference
    pose = np.zeros((1, 69))
    pose[0, 45 + 2], pose[0, 48 + 2] = -np.deg2rad(75), np.deg2rad(75)  # standing, arms down
    orient, transl, k = FACING_CAMERA[None], np.array([[0.0, 0.4, 4.0]]), _camera(1)
    _, joints = anny_body.forward(None, orient, pose, transl, phenotype=child)
    op = anny_body.openpose18(joints).double().numpy()
    uv = op[..., :2] / op[..., 2:] * 900.0 + [288, 512]
    seq = dict(betas=np.zeros((1, 10)), global_orient=orient, body_pose=pose, transl=transl, K=k,
               image_size=(576, 1024), keypoints=np.concatenate([uv, np.ones((1, 18, 1))], -1))
    # the best any fit can do: the true age/height/proportions with gender, muscle, weight kept from the start
    best = anny_body.phenotype.copy()
    fit_idx = [PHENOTYPE_LABELS.index(name) for name in FIT_LABELS]
    best[fit_idx] = child[fit_idx]
    _, best_joints = anny_body.forward(None, orient, pose, transl, phenotype=best)
    best_op = anny_body.openpose18(best_joints).double().numpy()
    best_px = np.linalg.norm(best_op[..., :2] / best_op[..., 2:] * 900.0 + [288, 512] - uv, axis=-1).mean()

    fitted, info = fit_phenotype(anny_body, seq, anny_body.phenotype, iterations=40)
    assert abs(anny_body.phenotype[1] - child[1]) > 0.4  # the default start is far from the child
    assert fitted[1] == pytest.approx(child[1], abs=0.08)  # age
    assert fitted[4] == pytest.approx(child[4], abs=0.15)  # height
    assert best_px < 1.0 and info["error_px"] < best_px + 1.0


def test_phenotype_changes_the_body_and_is_checked(anny_body):
    child = anny_body.rest_height(phenotype=[0.5, 0.33, 0.5, 0.5, 0.5, 0.5])[0]
    adult = anny_body.rest_height()[0]
    assert child < 0.85 * adult
    with pytest.raises(ValueError, match=r"age=1\.2"):
        anny_body.rest_height(phenotype=[0.5, 1.2, 0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="6 values"):
        anny_body.forward(None, np.zeros((1, 3)), np.zeros((1, 69)), phenotype=[0.5, 0.5])


def test_smplh_fingers_drive_the_finger_bones(anny_body):
    hands = np.zeros((2, 90))
    hands[1, 3 * 3 + 2] = 1.2  # left middle finger base curls (MANO joint 3) about z
    _, j0 = anny_body.forward(None, np.zeros((2, 3)), np.zeros((2, 69)), hand_pose=hands)
    verts, _ = anny_body.forward(None, np.zeros((2, 3)), np.zeros((2, 69)), hand_pose=hands)
    moved = (verts[1] - verts[0]).norm(dim=-1).numpy()
    assert moved.max() > 0.02
    # only the left hand moved
    assert (anny_body.part_labels[moved > 1e-4] == 22).mean() > 0.9


def test_batched_float32_and_devices(anny_body):
    seq, _ = walk_turn_raise(frames=5)
    v, j = anny_body.forward(None, seq["global_orient"], seq["body_pose"], seq["transl"], batch_size=2)
    assert v.dtype == torch.float32 and v.shape == (5, anny_body.num_vertices, 3) and j.shape == (5, 63, 3)
    v_all, _ = anny_body.forward(None, seq["global_orient"], seq["body_pose"], seq["transl"])
    assert torch.allclose(v, v_all, atol=1e-5)
    if torch.cuda.is_available():
        v_gpu, _ = anny_body.forward(None, seq["global_orient"], seq["body_pose"], seq["transl"], device="cuda")
        assert torch.allclose(v_gpu.cpu(), v_all, atol=1e-4)


def test_fits_work_inside_comfyuis_inference_mode(anny_body, monkeypatch):
    """ComfyUI runs every node under torch.inference_mode(): Load Body Model builds the body there and Set Body
    Shape / NLF Poses to SMPL fit there (a real ComfyUI run failed with 'element 0 of tensors does not require
    grad')."""
    from motionguide.pipelines.smpl.body import anny_cache
    from motionguide.pipelines.smpl.estimate.joint_fit import fit_joints
    from motionguide.pipelines.smpl.motion.anny_shape import fit_phenotype

    monkeypatch.setattr(anny_cache, "_BODIES", {})  # load afresh, as the node does in a new ComfyUI process
    pose = np.zeros((1, 69))
    orient, transl, k = FACING_CAMERA[None], np.array([[0.0, 0.4, 4.0]]), _camera(1)
    with torch.inference_mode():
        body = anny_cache.load_anny_body()
        assert body is not anny_body
        _, joints = body.forward(None, orient, pose, transl)
        op = body.openpose18(joints).double().numpy()
        uv = op[..., :2] / op[..., 2:] * 900.0 + [288, 512]
        seq = dict(betas=np.zeros((1, 10)), global_orient=orient, body_pose=pose, transl=transl, K=k,
                   image_size=(576, 1024), keypoints=np.concatenate([uv, np.ones((1, 18, 1))], -1))
        fitted, info = fit_phenotype(body, seq, body.phenotype, iterations=4, starts=1)
        rest = joints[:, :24].double().numpy()
        fit = fit_joints(rest + 0.01, rest, iterations=3)
    assert np.isfinite(info["error_px"]) and fitted.shape == (6,)
    assert all(np.isfinite(np.asarray(v)).all() for v in fit.values() if isinstance(v, np.ndarray))


def test_warp_banner_is_kept_out_of_the_console(anny_body, monkeypatch):
    """Anny's skinning library prints a start-up banner and a line per kernel load at its INFO level."""
    warp = pytest.importorskip("warp")
    from motionguide.pipelines.smpl.body.quiet import quiet_warp as _quiet_warp

    assert warp.config.log_level == warp.LOG_WARNING  # set when the body was loaded
    monkeypatch.setattr(warp.config, "log_level", warp.LOG_DEBUG)  # a level the user chose is kept
    _quiet_warp()
    assert warp.config.log_level == warp.LOG_DEBUG
