"""3D-aware skeleton: joint mapping, hip adjustment, projection, visibility confidences, hand/face grafting."""
import math

import numpy as np
import pytest
import torch
from motionguide.pipelines.pinhole import scale_intrinsics
from motionguide.pipelines.render.skeleton import (
    OPENPOSE18_FROM_SMPL45,
    graft_hands_and_face,
    openpose18_from_smpl,
    own_parts,
    project,
    skeleton_keypoints,
    to_pose_keypoint,
    visible_fraction,
)
from motionguide.pipelines.render.smpl_render import sequence_to_pose_keypoints
from motionguide.pipelines.smpl.body.body_model import OPENPOSE18_FROM_SMPL45 as SMPL_MAP
from motionguide.pipelines.smpl.body.body_model import load_body_model
from motionguide.pipelines.smpl.motion.posing import pose_sequence
from scipy.spatial.transform import Rotation

W, H = 256, 384
FRONT = Rotation.from_rotvec([math.pi, 0.0, 0.0])  # SMPL's y-up body upright in the OpenCV camera, facing it
SIDE = Rotation.from_euler("y", 90, degrees=True) * FRONT  # body's left side towards the camera


def body_sequence(orients, transl=(0.0, 0.2, 3.0), focal=460.8):
    frames = len(orients)
    K = np.array([[focal, 0, W / 2], [0, focal, H / 2], [0, 0, 1]], np.float32)
    return {"betas": np.zeros((frames, 10), np.float32),
            "global_orient": np.stack([r.as_rotvec() for r in orients]).astype(np.float32),
            "body_pose": np.zeros((frames, 69), np.float32), "transl": np.tile(transl, (frames, 1)).astype(np.float32),
            "K": np.repeat(K[None], frames, 0), "image_size": (W, H), "fps": 30.0, "model_type": "smpl"}


@pytest.fixture(scope="module")
def body(smpl_model_dir):
    return load_body_model(smpl_model_dir, "neutral", "smpl")


def test_joint_map_matches_the_body_model():
    assert OPENPOSE18_FROM_SMPL45 == SMPL_MAP


def test_hips_move_outward_and_towards_pelvis_exactly():
    joints = torch.zeros(1, 45, 3)
    joints[0, 0] = torch.tensor([0.0, 0.0, 0.0])  # pelvis
    joints[0, 2] = torch.tensor([-0.1, 0.1, 0.0])  # SMPL right hip
    joints[0, 1] = torch.tensor([0.1, 0.1, 0.0])  # SMPL left hip
    joints[0, 17] = torch.tensor([-0.2, -0.5, 0.0])
    joints[0, 16] = torch.tensor([0.2, -0.5, 0.1])
    op = openpose18_from_smpl(joints)[0]
    # right: -0.1 + 0.25·(-0.2) = -0.15 in x; y: 0.1 + 0.5·(0 − 0.1) = 0.05
    assert op[8].tolist() == pytest.approx([-0.15, 0.05, 0.0])
    assert op[11].tolist() == pytest.approx([0.15, 0.05, 0.0])
    assert op[1].tolist() == pytest.approx([0.0, -0.5, 0.05])  # neck = shoulder midpoint


def test_projection_and_intrinsics_scaling_exact():
    K = torch.tensor([[[100.0, 0, 50], [0, 200, 20], [0, 0, 1]]])
    pixels, front = project(torch.tensor([[[1.0, -1.0, 2.0], [0.0, 0.0, -1.0]]]), K)
    assert pixels[0, 0].tolist() == [100.0, -80.0] and front.tolist() == [[True, False]]
    half = scale_intrinsics(K, (100, 40), (50, 20))
    assert half[0].tolist() == [[50.0, 0.0, 24.75], [0.0, 100.0, 9.75], [0.0, 0.0, 1.0]]


def test_own_parts_follow_the_kinematic_tree():
    assert own_parts(4) == (19, 21, 23)  # right wrist: elbow part, wrist part, hand
    assert own_parts(9) == (2, 5, 8)  # right knee
    assert own_parts(0) == ()  # the nose is a surface vertex: depth test instead


def test_visible_fraction_counts_own_parts_and_background():
    depth = torch.full((1, 5, 5), 2.0)
    label = torch.full((1, 5, 5), 9, dtype=torch.long)  # chest everywhere ...
    label[0, :, :2] = 21  # ... except the two left columns: right forearm
    label[0, 0, :] = -1  # top row background
    points = torch.zeros(1, 18, 3)
    points[..., 2] = 2.5
    pixels = torch.full((1, 18, 2), 2.0)
    pixels[0, 4] = torch.tensor([1.0, 2.0])  # right wrist centred on column 1
    pixels[0, 8] = torch.tensor([3.0, 3.0])  # right hip
    frac = visible_fraction(points, pixels, depth, label)
    assert float(frac[0, 4]) == pytest.approx(6 / 9)  # columns 0-1 are its forearm, column 2 is chest
    assert float(frac[0, 3]) == pytest.approx(3 / 9)  # right elbow at (2,2): the forearm column is its child part
    assert float(frac[0, 8]) == pytest.approx(0.0)  # right hip at (3,3): all chest
    points[0, 0, 2] = 2.01  # nose 1 cm behind the surface: visible (tolerance 3 cm) ...
    assert float(visible_fraction(points, pixels, depth, label)[0, 0]) == 1.0
    points[0, 0, 2] = 2.2  # ... 20 cm behind it: hidden
    assert float(visible_fraction(points, pixels, depth, label)[0, 0]) == 0.0


def test_projected_joints_fall_inside_the_silhouette(body):
    from motionguide.pipelines.render.smpl_render import render_sequence_maps

    seq = body_sequence([FRONT])
    maps = render_sequence_maps(body, seq, backend="torch", maps=("mask",))
    kp = np.array(sequence_to_pose_keypoints(body, seq, backend="torch")[0]["people"][0]["pose_keypoints_2d"])
    kp = kp.reshape(18, 3)
    mask = maps["mask"][0].numpy() > 0
    for joint in range(18):
        x, y = round(kp[joint, 0]), round(kp[joint, 1])
        if joint in (16, 17):  # ears sit on the head's outline: allow one pixel
            assert mask[y - 1:y + 2, x - 1:x + 2].any(), joint
        else:
            assert mask[y, x], joint


def test_joint_hidden_behind_the_torso_is_dimmer_but_drawable(body):
    seq = body_sequence([FRONT, SIDE])
    frames = sequence_to_pose_keypoints(body, seq, backend="torch", occluded_confidence=0.4)
    front = np.array(frames[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    side = np.array(frames[1]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    right_wrist, left_wrist, right_elbow = 4, 7, 3
    assert front[right_wrist, 2] == 1.0  # visible from the front
    assert side[right_wrist, 2] < front[right_wrist, 2]  # behind the torso and the near arm from the side
    assert side[right_wrist, 2] == pytest.approx(0.4)
    assert side[right_elbow, 2] == pytest.approx(0.4)
    assert side[left_wrist, 2] == 1.0  # the near arm stays visible
    assert (side[:, 2] >= 0.4).all() and (front[:, 2] >= 0.4).all()  # every limb still drawn (≥ 0.3)
    assert side[1, 2] == max(side[2, 2], side[5, 2])  # neck follows the better shoulder


def test_pose_keypoint_format_and_canvas(body):
    seq = body_sequence([FRONT, FRONT])
    frames = sequence_to_pose_keypoints(body, seq, width=128, backend="torch")
    assert len(frames) == 2
    frame = frames[0]
    assert frame["canvas_width"] == 128 and frame["canvas_height"] == 192
    person = frame["people"][0]
    assert len(person["pose_keypoints_2d"]) == 54
    assert person["face_keypoints_2d"] is None and person["hand_left_keypoints_2d"] is None
    full = np.array(sequence_to_pose_keypoints(body, seq, backend="torch")[0]["people"][0]["pose_keypoints_2d"])
    half = np.array(person["pose_keypoints_2d"])
    # same camera at half the size: (u + 0.5)/2 − 0.5
    assert np.allclose(half[0::3], (full[0::3] + 0.5) / 2 - 0.5, atol=2e-3)


def test_without_a_mesh_every_joint_in_front_is_fully_confident(body):
    seq = body_sequence([FRONT])
    _, joints = pose_sequence(body, seq)
    kp = skeleton_keypoints(joints, torch.as_tensor(seq["K"]), (W, H))
    assert torch.all(kp[0, :, 2] == 1.0)
    behind = joints.clone()
    behind[..., 2] *= -1
    assert torch.all(skeleton_keypoints(behind, torch.as_tensor(seq["K"]), (W, H))[0] == 0)


def _person(body_xy, conf=0.9, hand_offset=(10.0, 0.0)):
    body = np.zeros((18, 3))
    for joint, (x, y) in body_xy.items():
        body[joint] = (x, y, conf)
    hand = np.zeros((21, 3))
    wrist = body[4, :2]
    hand[:, :2] = wrist + np.array(hand_offset) * np.arange(21)[:, None] / 20
    hand[:, 2] = 0.8
    hand[5] = 0  # one undetected point
    face = np.zeros((68, 3))
    face[:, :2] = body[0, :2] + np.array([0.0, -4.0])
    face[:, 2] = 0.7
    return {"pose_keypoints_2d": body.flatten().tolist(), "hand_right_keypoints_2d": hand.flatten().tolist(),
            "hand_left_keypoints_2d": None, "face_keypoints_2d": face.flatten().tolist()}


def test_hand_and_face_graft_follow_wrist_forearm_and_head():
    driving = _person({0: (50, 10), 1: (50, 30), 3: (30, 40), 4: (30, 60)})  # forearm 20 px pointing down
    new = torch.zeros(18, 3)
    new[0] = torch.tensor([100.0, 50.0, 1.0])
    new[1] = torch.tensor([100.0, 90.0, 1.0])  # head (nose–neck) 40 px: twice the driving 20 px
    new[3] = torch.tensor([200.0, 100.0, 1.0])
    new[4] = torch.tensor([240.0, 100.0, 0.5])  # forearm 40 px pointing right: ×2, rotated −90°
    out = graft_hands_and_face(new, driving)
    hand = np.array(out["hand_right_keypoints_2d"]).reshape(21, 3)
    # driving point 20: wrist + (10, 0); scaled ×2 and rotated by −90° (down → right): (0, −20)
    assert hand[0, :2] == pytest.approx([240.0, 100.0])
    assert hand[20, :2] == pytest.approx([240.0, 80.0], abs=1e-4)
    assert hand[20, 2] == pytest.approx(0.8 * 0.5)  # dimmed with the new wrist's visibility
    assert hand[5].tolist() == [0.0, 0.0, 0.0]  # undetected stays undetected
    face = np.array(out["face_keypoints_2d"]).reshape(68, 3)
    assert face[0].tolist() == pytest.approx([100.0, 42.0, 0.7])  # nose + 2·(0, −4)
    assert out["hand_left_keypoints_2d"] is None
    unrotated = np.array(graft_hands_and_face(new, driving, rotate_hands=False)["hand_right_keypoints_2d"])
    assert unrotated.reshape(21, 3)[20, :2] == pytest.approx([260.0, 100.0], abs=1e-4)


def test_to_pose_keypoint_uses_driving_frames_and_tolerates_empty_ones():
    kp = torch.zeros(2, 18, 3)
    kp[..., 2] = 1.0
    kp[:, 4, :2] = torch.tensor([5.0, 5.0])
    kp[:, 3, :2] = torch.tensor([5.0, 0.0])
    driving = [{"people": [_person({0: (50, 10), 1: (50, 30), 3: (30, 40), 4: (30, 60)})]}, {"people": []}]
    frames = to_pose_keypoint(kp, (64, 32), driving)
    assert frames[0]["people"][0]["hand_right_keypoints_2d"] is not None
    assert frames[1]["people"][0]["hand_right_keypoints_2d"] is None
    assert frames[1]["canvas_width"] == 64 and frames[1]["canvas_height"] == 32


def test_driving_frame_count_must_match(body):
    seq = body_sequence([FRONT, FRONT])
    with pytest.raises(ValueError, match="driving_pose has 1 frames"):
        sequence_to_pose_keypoints(body, seq, driving=[{"people": [], "canvas_width": W, "canvas_height": H}],
                                   backend="torch")
    with pytest.raises(ValueError, match="floor"):
        sequence_to_pose_keypoints(body, seq, occluded_confidence=0.1, backend="torch")


def _posed(model, frames=4):
    """A body mid-stride with crossed, raised arms, turning from front to side: limbs occlude each other."""
    pose = np.zeros((frames, 69), np.float32)
    pose[:, 0], pose[:, 3] = 0.5, -0.4  # hips: one leg forward, one back
    pose[:, 45], pose[:, 48] = 0.9, -0.9  # shoulders swing the arms across the chest (z)
    pose[:, 51 + 1], pose[:, 54 + 1] = -1.2, 1.2  # elbows bent
    orients = [Rotation.from_euler("y", angle, degrees=True) * FRONT for angle in np.linspace(0, 100, frames)]
    seq = body_sequence(orients, transl=(0.0, 0.2, 2.5))
    seq["body_pose"] = pose
    vertices, joints = pose_sequence(model, seq)
    openpose18 = getattr(model, "openpose18", None)
    if openpose18 is not None:
        joints = openpose18(joints)
    return vertices, joints, torch.as_tensor(seq["K"])


@pytest.mark.parametrize("which", ["smpl", "anny"])
def test_sampled_visibility_matches_full_buffers_on_posed_body(which, request):
    """The joints-only rasterisation finds the same surface per sample as rendering whole buffers, at the
    default reduced resolution and at full canvas resolution. Tolerance: no confidence may differ by more than
    one sample of nine (float rounding at a face edge may move one sample), on average < 0.5 %."""
    model = request.getfixturevalue("body" if which == "smpl" else "anny_body")
    vertices, joints, K = _posed(model, frames=2)
    common = dict(vertices=vertices, faces=model.faces, vertex_labels=model.part_labels, floor=0.3)
    for long_side in (192, 0):  # 192 < 384: a scaled-down camera; 0: the canvas itself
        fast = skeleton_keypoints(joints, K, (W, H), visibility_long_side=long_side, **common)
        full = skeleton_keypoints(joints, K, (W, H), visibility_long_side=long_side, dense_visibility=True, **common)
        assert torch.equal(fast[..., :2], full[..., :2])
        diff = (fast[..., 2] - full[..., 2]).abs()
        assert float(diff.max()) <= 0.7 / 9 + 1e-6 and float(diff.mean()) < 0.005
        assert float(full[..., 2].min()) < 0.6  # the pose really hides joints (the comparison is not vacuous)


def test_sampled_visibility_work_does_not_grow_with_the_image(body):
    """The faces tested per joint shrink (never grow) with a finer pixel grid, grow linearly with frames, and
    stay a small share of the mesh: no step scales with the image area or the whole mesh per joint."""
    from motionguide.pipelines.render.skeleton import neighbourhood
    from motionguide.pipelines.render.torch_raster import sample_nearest

    vertices, joints, K = _posed(body, frames=2)
    faces = torch.as_tensor(body.faces, dtype=torch.int64)
    pairs = {}
    for scale in (1, 8):
        K_s = K.clone()
        K_s[:, :2] *= scale
        pixels, _ = project(joints, K_s)
        col, row = neighbourhood(pixels)
        for frames in (slice(0, 1), slice(1, 2), slice(0, 2)):
            stats = {}
            face, _ = sample_nearest(vertices[frames], faces, K_s[frames], (W * scale, H * scale), col[frames],
                                     row[frames], stats=stats)
            assert (face >= 0).any()
            pairs[scale, frames.start, frames.stop] = stats["pairs"]
    assert pairs[8, 0, 1] <= pairs[1, 0, 1] and pairs[8, 1, 2] <= pairs[1, 1, 2]
    assert pairs[1, 0, 2] == pairs[1, 0, 1] + pairs[1, 1, 2]  # frames are independent: linear in frames
    assert pairs[1, 0, 1] < 0.02 * 18 * len(faces)  # a few faces per joint, not the mesh
