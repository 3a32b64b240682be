"""Retargeting benchmark with ground truth (docs/architecture.md, *Reference algorithms*): the 3D path against
MimicMotion's 2D alignment.

    python bench/retarget.py [CASE.json ...] [--plot out.png] [--json results.json] [--no-ground]
    python bench/retarget.py bench/cases/child_walk_high_camera.json      # an example case file

Without case files it runs the built-in set (:data:`BUILTIN_CASES`) and prints one row per case, then the
geometric mean of the 3D/2D error ratios. A case is JSON::

    {"name": str,
     "motion": SMPL_SEQUENCE .npz (relative paths: to the case file, else to bench/motions/),
     "driving_body": {"model": "anny", "phenotype": {gender, age, muscle, weight, height, proportions}},
     "reference_body": {...},
     "driving_camera": {"focal_px", "distance_m", "height_m", "pitch_deg" (0), "image_size": [W, H]},
     "reference_camera": {...},
     "reference_shape": "known" | "fit",
     "estimator_noise": {} | {"rotation_deg", "translation_m", "seed"},
     "frames": [start, stop, step] (optional: a slice of the motion, for quick runs)}

World: x right, y down (the ground is y = 0), z away from the cameras; each body starts at x = z = 0. A camera
stands ``distance_m`` in front of that spot with its optical centre ``height_m`` above the ground, looking
horizontally, then tilted by ``pitch_deg`` (negative looks down). The motion file's rotations and root path are
read in its own (level) camera axes, which are the world's.

- Ground truth: the reference body performing the motion's rotations, its root placed at the reference's
  standing spot and moved by the motion's root path times the body-height ratio, projected with the reference
  camera. Its skeleton is :func:`forward_kinematics` (plain SMPL-tree kinematics on the reference's rest joints);
  its OpenPose-18 points are the body's own surface landmarks at that skeleton (:func:`body_points`: the posed
  mesh read by the body's COCO regressor, as a detector would find them on the person), and every frame's
  joints are checked against the plain kinematics (:data:`SKELETON_TOLERANCE_M`). It never calls the pack's
  transfer code. The driving video and the reference image are made the same way. (Carrying each landmark
  rigidly with one joint instead gave even the exact answer a 2.1% bone error on "towards camera": skin around
  the shoulders and elbows follows the neighbouring bones too.)
- 2D path: the driving body's projected keypoints (a perfect detector) aligned onto the reference image's
  keypoints (the reference body standing, arms down) by MimicMotion's reference alignment (docs/architecture.md,
  *Reference algorithms*).
- 2D+bones: the same alignment followed by the pack's ``retarget_bones`` option (each bone scaled by its
  reference / first-frame length ratio), reported beside it.
- 3D path: the pack's chain as a workflow runs it: the driving motion as an estimator would give it (optionally
  with rotation / translation noise) → Smooth SMPL Motion → Transfer SMPL Shape to the reference's estimate
  (shape known, or Set Body Shape's fit to the reference keypoints) → SMPL to Pose Keypoints.
- Errors (over all frames): ``joint_err`` mean 2D joint distance over visible GT joints ÷ GT body height in
  pixels; ``bone_err`` mean |limb length − GT| ÷ that limb's longest GT projection in the clip (17 OpenPose
  limbs); ``lr_swaps`` fraction of frames whose left/right-mirrored labelling fits the GT clearly better;
  ``joint_err_3d`` mean 3D distance of the 18 points in the reference camera ÷ the GT body height.
- Ground step (unless ``--no-ground``): the 3D path again with Transfer Shape's earlier ground rule (one shift from a
  low percentile of the lowest foot point) and with no ground step, beside the default (feet planted on contacts),
  with how the GT feet meet the ground (how deep the reference body's ankles sink below standing, and the share of
  frames in the air). The GT is the reference body doing the motion's root path scaled by the height ratio, so its
  feet need not stay planted: a squat can sink a few centimetres, a jump is in the air most of the clip.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
MOTIONS = BENCH / "motions"
for path in (ROOT, BENCH):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv
import numpy as np  # noqa: E402

cli.load_pack()
from motionguide.pipelines.dwpose import skeleton as sk  # noqa: E402
from motionguide.pipelines.dwpose.align import align_poses, retarget_bones  # noqa: E402
from motionguide.pipelines.dwpose.keypoints import PoseFrame  # noqa: E402
from motionguide.pipelines.pinhole import project  # noqa: E402
from motionguide.pipelines.smpl.body.joints import SMPL_PARENTS, SMPL_REST_JOINTS  # noqa: E402
from motionguide.pipelines.smpl.body.phenotype import PHENOTYPE_LABELS  # noqa: E402
from motionguide.pipelines.smpl.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle  # noqa: E402
from motionguide.pipelines.smpl.motion.sequence import load_sequence, slice_sequence, validate_sequence  # noqa: E402

SMPL_PELVIS = np.array(SMPL_REST_JOINTS[0])  # where SMPL-format motion puts the root: transl + this
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])  # an upright SMPL body (y up, facing +z) facing the cameras
NEUTRAL_ARMS_DEG = 75.0  # the reference image: standing, arms down along the body
SKELETON_TOLERANCE_M = 1e-3  # the posed body's joints against plain forward kinematics
LR_PAIRS = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13))
LR_MARGIN = 0.02  # of the body height: a mirrored labelling must fit this much better to count as a swap
LIMBS = sk.LIMBS[:sk.DRAWN_LIMBS]

ADULT = {"gender": 0.5, "age": 0.67, "muscle": 0.5, "weight": 0.5, "height": 0.5, "proportions": 0.5}
CHILD = {"gender": 0.5, "age": 0.25, "muscle": 0.4, "weight": 0.45, "height": 0.4, "proportions": 0.3}
TALL = {"gender": 0.1, "age": 0.7, "muscle": 0.6, "weight": 0.5, "height": 0.95, "proportions": 0.7}
SHORT = {"gender": 0.9, "age": 0.7, "muscle": 0.4, "weight": 0.5, "height": 0.1, "proportions": 0.3}
THIN = {"gender": 0.3, "age": 0.6, "muscle": 0.2, "weight": 0.05, "height": 0.6, "proportions": 0.6}
HEAVY = {"gender": 0.3, "age": 0.6, "muscle": 0.6, "weight": 0.98, "height": 0.45, "proportions": 0.4}
TEEN = dict(ADULT, age=0.45, height=0.4, proportions=0.4)  # squatting like this, the adult's feet sink ~4 cm


def _camera(focal=1000.0, distance=4.0, height=1.0, pitch=0.0, size=(576, 1024)):
    return {"focal_px": focal, "distance_m": distance, "height_m": height, "pitch_deg": pitch,
            "image_size": list(size)}


def _case(name, motion, driving, reference, driving_camera=None, reference_camera=None, shape="known",
          noise=None):
    return {"name": name, "motion": f"{motion}.npz",
            "driving_body": {"model": "anny", "phenotype": driving},
            "reference_body": {"model": "anny", "phenotype": reference},
            "driving_camera": driving_camera or _camera(), "reference_camera": reference_camera or _camera(),
            "reference_shape": shape, "estimator_noise": noise or {}}


BUILTIN_CASES = [
    _case("adult→child walk", "walk", ADULT, CHILD),
    _case("tall→short full turn", "full_turn", TALL, SHORT),
    _case("thin→heavy squat/bend", "squat_bend", THIN, HEAVY),
    _case("child→adult arms/kicks", "arm_raise_kick", CHILD, ADULT),
    _case("adult→child towards camera", "walk_towards", ADULT, CHILD,
          driving_camera=_camera(focal=900.0, distance=4.5, height=1.0)),
    _case("cameras differ (walk)", "walk", ADULT, SHORT,
          driving_camera=_camera(focal=1000.0, distance=3.5, height=1.6, pitch=-15.0, size=(1024, 576)),
          reference_camera=_camera(focal=1800.0, distance=5.5, height=0.8, pitch=5.0)),
    _case("noise 3° (squat/bend)", "squat_bend", TALL, CHILD, noise={"rotation_deg": 3.0, "translation_m": 0.02,
                                                                    "seed": 1}),
    _case("noise 8° (walk)", "walk", SHORT, TALL, noise={"rotation_deg": 8.0, "translation_m": 0.05, "seed": 2}),
    _case("shape fit (arms/kicks)", "arm_raise_kick", ADULT, CHILD, shape="fit"),
    # the ground step: a squat whose GT feet sink at the bottom, a jump in the air most of the clip, both noisy
    _case("teen→adult squat hold (GT sinks)", "squat_hold", TEEN, ADULT),
    _case("adult→child jump (in the air)", "jump", ADULT, CHILD),
    _case("noise 5° squat hold", "squat_hold", TEEN, ADULT, noise={"rotation_deg": 5.0, "translation_m": 0.03,
                                                                   "seed": 3}),
    _case("noise 5° jump", "jump", ADULT, CHILD, noise={"rotation_deg": 5.0, "translation_m": 0.03, "seed": 4}),
]


# --------------------------------------------------------------------------------------------------------------
# Bodies, cameras, motions


_BODIES: dict[str, object] = {}


def load_body(spec: dict):
    """The body model of a case body (``{"model": "anny", "phenotype": {...}}``) and its phenotype `(6,)`."""
    kind = spec.get("model", "anny")
    if kind != "anny":
        raise ValueError(f"body model {kind!r} is not supported by the benchmark (use 'anny').")
    if kind not in _BODIES:
        from motionguide.pipelines.smpl.body.anny_cache import load_anny_body

        _BODIES[kind] = load_anny_body()
    values = spec.get("phenotype", {})
    unknown = set(values) - set(PHENOTYPE_LABELS)
    if unknown:
        raise ValueError(f"unknown phenotype keys {sorted(unknown)}; use {PHENOTYPE_LABELS}.")
    pheno = np.array([float(values.get(k, ADULT[k])) for k in PHENOTYPE_LABELS], np.float32)
    return _BODIES[kind], pheno


class Camera:
    """A pinhole camera of a case: world → camera rotation ``R``, centre ``C`` (world), intrinsics ``K``."""

    def __init__(self, spec: dict):
        width, height = (int(v) for v in spec["image_size"])
        f = float(spec["focal_px"])
        self.size = (width, height)
        self.K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
        down = np.deg2rad(-float(spec.get("pitch_deg", 0.0)))
        # rows: camera x, y, z axes in world coordinates (y down: looking down turns z towards +y)
        self.R = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(down), -math.sin(down)],
                           [0.0, math.sin(down), math.cos(down)]])
        self.C = np.array([0.0, -float(spec["height_m"]), -float(spec["distance_m"])])

    def to_camera(self, points):
        return (np.asarray(points) - self.C) @ self.R.T

    def pixels(self, points_world):
        """(T,N,3) world points → (T,N,2) pixels and (T,N) in-front mask."""
        cam = self.to_camera(points_world)
        uv = project(cam, np.broadcast_to(self.K, cam.shape[:-2] + (3, 3)))
        return uv, cam[..., 2] > 1e-3


def load_motion(path, frames=None) -> dict:
    """Rotations (world axes), root path relative to the first frame, and fps of a motion file; ``frames``
    ``[start, stop, step]`` takes a slice (fps divided by the step)."""
    seq = load_sequence(path)
    if frames:
        seq = slice_sequence(seq, *frames)
    root = seq["transl"].astype(np.float64) + SMPL_PELVIS
    return {"global": axis_angle_to_matrix(seq["global_orient"]), "body_pose": seq["body_pose"].astype(np.float64),
            "delta": root - root[0], "fps": seq["fps"], "frames": len(root)}


def ensure_motion(path: Path) -> Path:
    if not path.exists() and path.parent == MOTIONS and path.suffix == ".npz":
        from make_motions import MOTIONS as GENERATORS
        from make_motions import write_motions

        if path.stem in GENERATORS:
            write_motions(MOTIONS, [path.stem])
    if not path.exists():
        raise FileNotFoundError(f"motion file {path} not found (bench/make_motions.py writes the built-in ones).")
    return path


# --------------------------------------------------------------------------------------------------------------
# Ground truth: plain forward kinematics


class RestBody:
    """A case body at rest: the model and phenotype, SMPL-layout rest joints, standing pelvis height and stature
    (SMPL axes: y up, metres)."""

    def __init__(self, model, phenotype):
        self.model, self.phenotype = model, phenotype
        zeros = np.zeros((1, 3))  # SMPL's rest pose (a T-pose), which the motion's rotations start from
        _, joints = model.forward(None, zeros, np.zeros((1, 69)), zeros, phenotype=phenotype)
        self.joints = joints[0, :24].double().numpy()
        verts = model.rest_vertices(phenotype=phenotype)
        self.height = float(verts[:, 1].max() - verts[:, 1].min())
        self.pelvis_height = float(self.joints[0, 1] - verts[:, 1].min())


def local_rotations(body_pose, frames):
    return axis_angle_to_matrix(np.asarray(body_pose, np.float64).reshape(frames, 23, 3))


def forward_kinematics(rest: RestBody, global_rot, body_rot, root):
    """World joint positions `(T,24,3)`: SMPL's tree chained from the root with the rest body's bone offsets.

    Args:
        global_rot (`(T,3,3)`): root rotation (SMPL body axes → world); body_rot (`(T,23,3,3)`): local rotations.
        root (`(T,3)`): world position of the root joint.
    """
    world = [global_rot]
    pos = [np.asarray(root, np.float64)]
    for j in range(1, 24):
        parent = SMPL_PARENTS[j]
        world.append(world[parent] @ body_rot[:, j - 1])
        pos.append(pos[parent] + np.einsum("tij,j->ti", world[parent], rest.joints[j] - rest.joints[parent]))
    return np.stack(pos, 1)


def body_points(rest: RestBody, global_rot, body_pose, root):
    """World OpenPose-18 points `(T,18,3)` of the body doing the motion: its posed surface's landmarks.

    The body's skeleton must agree with :func:`forward_kinematics` to :data:`SKELETON_TOLERANCE_M` in every
    frame, so the posing is checked independently and only the surface (where skin and landmarks sit around the
    joints) comes from the body model.
    """
    frames = len(root)
    body_pose = np.asarray(body_pose, np.float64).reshape(frames, 69)
    _, joints = rest.model.forward(None, matrix_to_axis_angle(global_rot), body_pose, np.zeros((frames, 3)),
                                   phenotype=rest.phenotype)
    points = rest.model.openpose18(joints).double().numpy()
    joints = joints[:, :24].double().numpy()
    shift = np.asarray(root, np.float64)[:, None] - joints[:, :1]
    fk = forward_kinematics(rest, global_rot, local_rotations(body_pose, frames), root)
    worst = float(np.abs(joints + shift - fk).max())
    if worst > SKELETON_TOLERANCE_M:
        raise RuntimeError(f"the body model's skeleton is {worst * 1000:.2f} mm from plain forward kinematics "
                           f"(allowed {SKELETON_TOLERANCE_M * 1000:.1f} mm): the ground truth would be wrong.")
    return points + shift


def standing_root(rest: RestBody) -> np.ndarray:
    return np.array([0.0, -rest.pelvis_height, 0.0])


def keypoints_2d(camera: Camera, points_world, score: float = 1.0):
    """(T,18,3) pixels + score of world points as a perfect detector reports them (neck: 2D shoulder midpoint);
    points behind the camera or outside the image get score 0."""
    uv, front = camera.pixels(points_world)
    uv[:, 1] = 0.5 * (uv[:, 2] + uv[:, 5])
    width, height = camera.size
    inside = front & (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
    return np.concatenate([uv, (score * inside)[..., None]], -1)


def neutral_pose():
    pose = np.zeros((1, 23, 3))
    pose[0, 15, 2] = -np.deg2rad(NEUTRAL_ARMS_DEG)  # left shoulder (joint 16) down
    pose[0, 16, 2] = np.deg2rad(NEUTRAL_ARMS_DEG)
    return pose.reshape(1, 69)


# --------------------------------------------------------------------------------------------------------------
# The two paths


def _pose_frames(keypoints, size):
    frames = []
    for kp in keypoints:
        full = np.zeros((1, sk.NUM_KEYPOINTS, 2))
        scores = np.zeros((1, sk.NUM_KEYPOINTS))
        full[0, :18] = kp[:, :2]
        scores[0, :18] = kp[:, 2]
        frames.append(PoseFrame(full, scores, size[0], size[1], np.zeros(1, bool), np.zeros((1, 2), bool)))
    return frames


def path_2d(driving_kp, driving_size, reference_kp, reference_size):
    """MimicMotion's reference alignment of the driving keypoints onto the reference image (docs/architecture.md,
    *Reference algorithms*), and the
    same alignment followed by the pack's option that gives the skeleton the reference's proportions (Align
    Pose's ``retarget_bones``): two `(T,18,3)` arrays."""
    reference = _pose_frames(reference_kp[None], reference_size)[0]
    aligned, _ = align_poses(_pose_frames(driving_kp, driving_size), reference)

    def keypoints(frames):
        return np.stack([np.concatenate([f.keypoints[0, :18], f.scores[0, :18, None]], 1) for f in frames])

    return keypoints(aligned), keypoints(retarget_bones(aligned, reference))


def add_noise(seq: dict, noise: dict) -> dict:
    """Estimator noise: every joint rotation (root included) turned by N(0, rotation_deg) about a random axis,
    and N(0, translation_m) added to the translation."""
    if not noise:
        return seq
    rng = np.random.default_rng(int(noise.get("seed", 0)))
    frames = len(seq["transl"])
    rot = np.concatenate([seq["global_orient"], seq["body_pose"]], 1).reshape(frames, 24, 3).astype(np.float64)
    axis = rng.normal(size=(frames, 24, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.deg2rad(float(noise.get("rotation_deg", 0.0))) * rng.normal(size=(frames, 24, 1))
    rot = matrix_to_axis_angle(axis_angle_to_matrix(axis * angle) @ axis_angle_to_matrix(rot))
    out = dict(seq)
    out["global_orient"] = rot[:, 0].astype(np.float32)
    out["body_pose"] = rot[:, 1:].reshape(frames, 69).astype(np.float32)
    out["transl"] = (seq["transl"] + rng.normal(size=(frames, 3)) * float(noise.get("translation_m", 0.0))
                     ).astype(np.float32)
    return out


def estimate(camera: Camera, global_world, body_pose, root_world, phenotype, keypoints, fps):
    """The SMPL_SEQUENCE an estimator with known intrinsics would return for a body seen by ``camera``."""
    frames = len(root_world)
    box = np.concatenate([keypoints[..., :2].min(1), keypoints[..., :2].max(1)], 1)
    return validate_sequence({
        "betas": np.zeros((frames, 10)), "global_orient": matrix_to_axis_angle(camera.R @ global_world),
        "body_pose": body_pose, "transl": camera.to_camera(root_world) - SMPL_PELVIS,
        "K": np.repeat(camera.K[None], frames, 0), "image_size": camera.size, "fps": fps,
        "bbox": box, "keypoints": keypoints, "phenotype": phenotype, "model_type": "smpl"})


def path_3d(model, driving_seq, reference_seq, reference_shape, ground_mode="contacts"):
    """The pack's 3D chain → `(T,18,3)` 2D keypoints, the reference phenotype used, and the transferred body's
    OpenPose-18 points `(T,18,3)` in the reference camera (metres). ``ground_mode`` ``None`` skips the ground
    step."""
    from motionguide.pipelines.render.smpl_render import sequence_to_pose_keypoints
    from motionguide.pipelines.smpl.motion.posing import pose_sequence
    from motionguide.pipelines.smpl.motion.smoothing import smooth_sequence
    from motionguide.pipelines.smpl.motion.transfer import transfer_shape

    if reference_shape == "fit":
        from motionguide.pipelines.smpl.motion.anny_shape import set_body_shape

        reference_seq = set_body_shape(dict(reference_seq, phenotype=None), model, mode="fit")
    elif reference_shape != "known":
        raise ValueError(f"reference_shape must be 'known' or 'fit', got {reference_shape!r}.")
    smooth = smooth_sequence(driving_seq, model=model)
    moved = transfer_shape(smooth, reference_seq, model, ground=ground_mode is not None,
                           ground_mode=ground_mode or "contacts")
    frames = sequence_to_pose_keypoints(model, moved)
    kp = np.array([f["people"][0]["pose_keypoints_2d"] for f in frames], np.float64).reshape(len(frames), 18, 3)
    _, joints = pose_sequence(model, moved)
    return kp, reference_seq.get("phenotype"), model.openpose18(joints).double().numpy()


# --------------------------------------------------------------------------------------------------------------
# Errors


def errors(pred, gt, body_px) -> dict:
    """``joint_err``, ``bone_err``, ``lr_swaps`` (docs/architecture.md, *Reference algorithms*) of predicted
    `(T,18,3)` against GT `(T,18,3)`."""
    visible = gt[..., 2] > 0
    present = visible & (pred[..., 2] > 0)
    dist = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1) / body_px[:, None]
    dist = np.where(present, dist, np.where(visible, 1.0, 0.0))  # a visible joint not predicted: one body height
    joint_err = float(dist[visible].mean())
    bone = []
    for a, b in LIMBS:
        both = visible[:, a] & visible[:, b]
        if not both.any():
            continue
        gt_len = np.linalg.norm(gt[:, a, :2] - gt[:, b, :2], axis=-1)
        pred_len = np.linalg.norm(pred[:, a, :2] - pred[:, b, :2], axis=-1)
        longest = gt_len[both].max()
        if longest > 1e-6:
            bone.append(np.abs(pred_len - gt_len)[both] / longest)
    bone_err = float(np.concatenate(bone).mean()) if bone else float("nan")
    ids = [i for pair in LR_PAIRS for i in pair]
    mirrored = [j for a, b in LR_PAIRS for j in (b, a)]
    straight = np.linalg.norm(pred[:, ids, :2] - gt[:, ids, :2], axis=-1).mean(1)
    swapped = np.linalg.norm(pred[:, mirrored, :2] - gt[:, ids, :2], axis=-1).mean(1)
    lr_swaps = float(np.mean(swapped + LR_MARGIN * body_px < straight))
    return {"joint_err": joint_err, "bone_err": bone_err, "lr_swaps": lr_swaps}


# --------------------------------------------------------------------------------------------------------------
# One case


def errors_3d(pred_camera, gt_camera, height: float) -> float:
    """Mean 3D distance of the 18 OpenPose points `(T,18,3)` (reference camera, metres) ÷ the GT body height."""
    return float(np.linalg.norm(pred_camera - gt_camera, axis=-1).mean() / height)


def ground_contact_stats(rest: RestBody, gt_world, standing_world) -> dict:
    """How the GT feet meet the ground: the deepest the lower ankle sinks below its standing height (m; the
    reference body doing the motion's root path need not keep its feet planted) and the share of frames with
    both ankles over 5 cm above it (in the air). World y points down."""
    ankles = [10, 13]
    standing = -standing_world[0, ankles, 1].min()
    lowest = -gt_world[:, ankles, 1].max(1)
    return {"gt_sink_m": float(max(standing - lowest.min(), 0.0)),
            "airborne": float(np.mean(lowest > standing + 0.05))}


GROUND_MODES = ("contacts", "constant", None)  # the ground step compared: per-frame contacts, one shift, none


def run_case(case: dict, base_dir: Path | None = None, compare_ground: bool = False) -> dict:
    """Run one case (see the module docstring) → ``{"2d": {...}, "3d": {...}}`` plus timing and shapes;
    ``compare_ground`` adds the 3D path's errors for every ground step of :data:`GROUND_MODES`."""
    started = time.perf_counter()
    motion_path = Path(case["motion"])
    if not motion_path.is_absolute():
        local = (base_dir or MOTIONS) / motion_path
        motion_path = local if local.exists() or base_dir is None else MOTIONS / motion_path
    motion = load_motion(ensure_motion(motion_path), case.get("frames"))
    frames = motion["frames"]
    model, pheno_d = load_body(case["driving_body"])
    model_r, pheno_r = load_body(case["reference_body"])
    cam_d, cam_r = Camera(case["driving_camera"]), Camera(case["reference_camera"])
    rest_d, rest_r = RestBody(model, pheno_d), RestBody(model_r, pheno_r)

    # driving video: the driving body performs the motion from its standing spot
    root_d = standing_root(rest_d) + motion["delta"]
    driving_kp = keypoints_2d(cam_d, body_points(rest_d, motion["global"], motion["body_pose"], root_d))
    # reference image: the reference body standing, arms down, facing the cameras
    neutral = neutral_pose()
    ref_global = FACING_CAMERA[None]
    ref_root = standing_root(rest_r)[None]
    reference_kp = keypoints_2d(cam_r, body_points(rest_r, ref_global, neutral, ref_root))[0]
    # ground truth: the reference body performs the motion, its path scaled by the height ratio
    scale = rest_r.height / rest_d.height
    root_gt = standing_root(rest_r) + scale * motion["delta"]
    gt_world = body_points(rest_r, motion["global"], motion["body_pose"], root_gt)
    gt = keypoints_2d(cam_r, gt_world)
    body_px = cam_r.K[1, 1] * rest_r.height / cam_r.to_camera(root_gt)[:, 2]

    pred_2d, pred_2d_bones = path_2d(driving_kp, cam_d.size, reference_kp, cam_r.size)
    driving_seq = add_noise(estimate(cam_d, motion["global"], motion["body_pose"], root_d, pheno_d, driving_kp,
                                     motion["fps"]), case.get("estimator_noise") or {})
    reference_seq = estimate(cam_r, ref_global, neutral, ref_root, pheno_r, reference_kp[None], motion["fps"])
    shape = case.get("reference_shape", "known")
    pred_3d, used_pheno, points_3d = path_3d(model_r, driving_seq, reference_seq, shape)
    gt_camera = cam_r.to_camera(gt_world)
    result_3d = dict(errors(pred_3d, gt, body_px), joint_err_3d=errors_3d(points_3d, gt_camera, rest_r.height))
    ground = {}
    if compare_ground:
        standing = body_points(rest_r, ref_global, neutral, ref_root)
        ground = dict(ground_contact_stats(rest_r, gt_world, standing), modes={})
        for mode in GROUND_MODES:
            if mode == "contacts":
                ground["modes"][str(mode)] = result_3d
                continue
            kp, _, points = path_3d(model_r, driving_seq, reference_seq, shape, ground_mode=mode)
            ground["modes"][str(mode)] = dict(errors(kp, gt, body_px),
                                              joint_err_3d=errors_3d(points, gt_camera, rest_r.height))
    return {"name": case.get("name", motion_path.stem), "frames": frames,
            "2d": errors(pred_2d, gt, body_px), "2d_retarget_bones": errors(pred_2d_bones, gt, body_px),
            "3d": result_3d, "ground": ground,
            "height_ratio": scale, "reference_phenotype": [round(float(v), 3) for v in used_pheno],
            "seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------------------------------------------
# Report


def ratio(result: dict) -> float:
    return result["3d"]["joint_err"] / max(result["2d"]["joint_err"], 1e-12)


def table(results: list[dict]) -> str:
    head = ("| case | frames | 2D joint_err | 2D+bones joint_err | 3D joint_err | 3D/2D | 2D bone_err "
            "| 2D+bones bone_err | 3D bone_err | 2D lr_swaps | 3D lr_swaps | s |")
    lines = [head, "|" + "---|" * 12]
    for r in results:
        a, c, b = r["2d"], r["2d_retarget_bones"], r["3d"]
        lines.append(f"| {r['name']} | {r['frames']} | {a['joint_err']:.2%} | {c['joint_err']:.2%} | "
                     f"{b['joint_err']:.2%} | {ratio(r):.2f} | {a['bone_err']:.2%} | {c['bone_err']:.2%} | "
                     f"{b['bone_err']:.2%} | {a['lr_swaps']:.0%} | {b['lr_swaps']:.0%} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def ground_table(results: list[dict]) -> str:
    """The ground step compared: 3D joint error (3D distance ÷ body height) and 2D joint_err per mode."""
    rows = [r for r in results if r.get("ground")]
    head = ("| case | GT sinks | GT in the air | 3D err: contacts | constant (before) | no ground step "
            "| 2D err: contacts | constant | none |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        g, m = r["ground"], r["ground"]["modes"]
        lines.append(f"| {r['name']} | {g['gt_sink_m'] * 100:.1f} cm | {g['airborne']:.0%} | "
                     f"{m['contacts']['joint_err_3d']:.2%} | {m['constant']['joint_err_3d']:.2%} | "
                     f"{m['None']['joint_err_3d']:.2%} | {m['contacts']['joint_err']:.2%} | "
                     f"{m['constant']['joint_err']:.2%} | {m['None']['joint_err']:.2%} |")
    return "\n".join(lines)


def geometric_mean_ratio(results: list[dict]) -> float:
    return float(np.exp(np.mean([np.log(max(ratio(r), 1e-12)) for r in results])))


def plot(results: list[dict], path) -> Path:
    """Bar chart PNG (joint error per case, 2D vs 3D) drawn with OpenCV."""
    import cv2

    rows = len(results)
    width, row_h, left, top = 1100, 46, 330, 70
    height = top + rows * row_h + 60
    img = np.full((height, width, 3), 255, np.uint8)
    worst = max(max(r["2d"]["joint_err"], r["3d"]["joint_err"]) for r in results)
    scale = (width - left - 90) / max(worst, 1e-9)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "Joint error / body height (lower is better)", (20, 32), font, 0.75, (30, 30, 30), 2,
                cv2.LINE_AA)
    colours = {"2d": (60, 120, 230), "3d": (70, 160, 60)}  # BGR: orange-ish 2D, green 3D
    cv2.rectangle(img, (left, 44), (left + 14, 58), colours["2d"], -1)
    cv2.putText(img, "2D alignment (MimicMotion)", (left + 20, 57), font, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left + 300, 44), (left + 314, 58), colours["3d"], -1)
    cv2.putText(img, "3D path (this pack)", (left + 320, 57), font, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    for i, r in enumerate(results):
        y = top + i * row_h
        name = r["name"].replace("→", "->").replace("°", " deg")
        cv2.putText(img, name, (10, y + 26), font, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
        for j, key in enumerate(("2d", "3d")):
            value = r[key]["joint_err"]
            y0 = y + 6 + j * 18
            cv2.rectangle(img, (left, y0), (left + max(int(value * scale), 1), y0 + 15), colours[key], -1)
            cv2.putText(img, f"{value:.1%}", (left + int(value * scale) + 6, y0 + 13), font, 0.45, (30, 30, 30), 1,
                        cv2.LINE_AA)
    cv2.putText(img, f"geometric mean 3D/2D = {geometric_mean_ratio(results):.2f}", (20, height - 20), font, 0.6,
                (30, 30, 30), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="case JSON files (default: the built-in set)")
    parser.add_argument("--plot", help="write a PNG bar chart here")
    parser.add_argument("--json", help="write all results as JSON here")
    parser.add_argument("--only", help="run only built-in cases whose name contains this")
    parser.add_argument("--no-ground", action="store_true",
                        help="skip the ground-step comparison (three transfers per case instead of one)")
    args = parser.parse_args(argv)
    if args.cases:
        cases = [(json.loads(Path(p).read_text()), Path(p).resolve().parent) for p in args.cases]
    else:
        cases = [(c, None) for c in BUILTIN_CASES if not args.only or args.only in c["name"]]
    started = time.perf_counter()
    results = []
    for case, base in cases:
        try:
            results.append(run_case(case, base, compare_ground=not args.no_ground))
        except ImportError as exc:  # e.g. Set Body Shape's fit missing from this checkout
            print(f"  {case.get('name')}: skipped ({exc})", flush=True)
            continue
        last = results[-1]
        print(f"  {last['name']}: 2D {last['2d']['joint_err']:.2%}  3D {last['3d']['joint_err']:.2%}"
              f"  ({last['seconds']:.1f} s)", flush=True)
    print()
    print(table(results))
    if not args.no_ground:
        print("\nGround step of Transfer Shape (3D err: mean 3D joint distance ÷ body height):\n")
        print(ground_table(results))
    print(f"\ngeometric mean of 3D/2D joint_err ratios: {geometric_mean_ratio(results):.3f} "
          f"over {len(results)} cases; total {time.perf_counter() - started:.0f} s")
    if args.plot:
        print(f"plot: {plot(results, args.plot)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
