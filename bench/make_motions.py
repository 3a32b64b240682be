"""Synthetic SMPL motions for the retargeting benchmark (bench/retarget.py), written as SMPL_SEQUENCE ``.npz``.

Each motion is made of plain joint angles (SMPL's 24-joint layout) and a horizontal root path, seen by a level
camera 4 m in front of the starting spot (OpenCV axes: x right, y down, z away from the camera). The ground is
level: in every frame the root is lowered until the lowest ankle / toe joint of SMPL's neutral skeleton (plain
forward kinematics) is as high as it is standing, so the planted foot stays on the floor.

    python bench/make_motions.py [OUT_DIR]      # default bench/motions/

Motions: ``walk`` (three-quarter view, walking to the right and away), ``full_turn`` (a 360° turn on the spot,
arms out), ``squat_bend`` (squat, then a bend at the waist), ``arm_raise_kick`` (arms up overhead, then a front
kick with each leg), ``walk_towards`` (facing the camera, walking 1.6 m towards it), ``squat_hold`` (a deep
squat held at the bottom for 16 frames), ``jump`` (a tuck jump at 60 fps, in the air in 37 of its 40 frames).
Frames: 40 at 30 fps each (``jump``: 60 fps).
"""
from __future__ import annotations

import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv
import numpy as np  # noqa: E402

cli.load_pack()
from motionguide.pipelines.smpl.body.joints import SMPL_PARENTS, SMPL_REST_JOINTS  # noqa: E402
from motionguide.pipelines.smpl.body.rotations import axis_angle_to_matrix  # noqa: E402
from motionguide.pipelines.smpl.body.rotations import matrix_to_axis_angle as _axis_angle  # noqa: E402

OUT = ROOT / "bench" / "motions"
FPS = 30.0
FRAMES = 40
CAMERA_DISTANCE = 4.0  # metres from the camera to the starting spot
PELVIS_HEIGHT = 0.95  # of the performer, standing
CONTACT_JOINTS = (7, 8, 10, 11)  # ankles and toe bases
SMPL_PELVIS = np.array(SMPL_REST_JOINTS[0])  # where SMPL-format motion puts the root: transl + this

# SMPL joint ids
L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = 1, 2, 3, 4, 5, 6, 7, 8, 9
NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW = 12, 13, 14, 15, 16, 17, 18, 19


def _rot_y(deg):
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _facing(yaw_deg):
    """Root rotation in camera axes of an upright body turned by ``yaw`` from facing the camera (+ = towards its
    left, seen from above)."""
    flip = np.diag([1.0, -1.0, -1.0])  # SMPL's y-up body facing the camera, in OpenCV axes
    return flip @ _rot_y(yaw_deg)


class Pose:
    """Joint angles for T frames, in degrees, composed as x then y then z rotations per joint."""

    def __init__(self, frames):
        self.deg = np.zeros((frames, 24, 3))

    def set(self, joint, axis, values):
        self.deg[:, joint, "xyz".index(axis)] = values

    def body_pose(self):
        rad = np.deg2rad(self.deg)
        out = np.zeros(rad.shape[:2] + (3,))
        for t in range(rad.shape[0]):
            for j in range(24):
                x, y, z = rad[t, j]
                rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
                ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
                rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
                out[t, j] = _axis_angle(rz @ ry @ rx)
        return out[:, 1:].reshape(-1, 69)


def arms_down(pose, spread=75.0):
    pose.set(L_SHOULDER, "z", -spread)
    pose.set(R_SHOULDER, "z", spread)


def ground_drop(orient, body_pose):
    """(T,) how far the root must sink (m) so the lowest contact joint is as high as when standing."""
    rest = np.array(SMPL_REST_JOINTS, np.float64)
    frames = len(orient)
    local = axis_angle_to_matrix(body_pose.reshape(frames, 23, 3))
    world = [axis_angle_to_matrix(orient)]
    pos = [np.zeros((frames, 3))]
    for j in range(1, 24):
        parent = SMPL_PARENTS[j]
        world.append(world[parent] @ local[:, j - 1])
        pos.append(pos[parent] + np.einsum("tij,j->ti", world[parent], rest[j] - rest[parent]))
    pos = np.stack(pos, 1)
    height = -pos[:, list(CONTACT_JOINTS), 1]  # camera y points down: height above the root is −y
    standing = rest[list(CONTACT_JOINTS), 1] - rest[0, 1]
    return (height - standing).min(1)


def sequence(pose, yaw_deg, root_xz, name, lift=None, fps=FPS):
    """SMPL_SEQUENCE dict: root at (x, ground − pelvis + drop − lift, z) in the camera 4 m away, facing by yaw;
    ``lift`` `(T,)` raises the body off the ground (metres; a jump's flight)."""
    frames = pose.deg.shape[0]
    yaw = np.broadcast_to(np.asarray(yaw_deg, float), (frames,))
    orient = _axis_angle(np.stack([_facing(a) for a in yaw]))
    root_drop = ground_drop(orient, pose.body_pose())
    root = np.zeros((frames, 3))
    root[:, 0] = root_xz[:, 0]
    root[:, 2] = CAMERA_DISTANCE + root_xz[:, 1]
    root[:, 1] = -(PELVIS_HEIGHT - 1.0) + root_drop  # camera at 1 m height; y down: a lower pelvis is +y
    if lift is not None:
        root[:, 1] -= lift
    f = 1000.0
    k = np.array([[f, 0, 360.0], [0, f, 640.0], [0, 0, 1]])
    return {"betas": np.zeros((frames, 10), np.float32), "global_orient": orient.astype(np.float32),
            "body_pose": pose.body_pose().astype(np.float32), "transl": (root - SMPL_PELVIS).astype(np.float32),
            "K": np.repeat(k[None], frames, 0).astype(np.float32), "image_size": (720, 1280),
            "valid": np.ones(frames, bool), "bbox": np.zeros((frames, 4), np.float32), "fps": fps,
            "model_type": "smpl", "source": f"bench/make_motions.py:{name}"}


def gait(pose, phase, stride=28.0):
    """Walking legs and arms for a phase array (radians)."""
    swing = stride * np.sin(phase)
    pose.set(L_HIP, "x", -swing)
    pose.set(R_HIP, "x", swing)
    knee_l = 45.0 * np.clip(np.sin(phase + np.pi / 2), 0, None)  # the swinging leg bends
    knee_r = 45.0 * np.clip(np.sin(phase - np.pi / 2), 0, None)
    pose.set(L_KNEE, "x", knee_l)
    pose.set(R_KNEE, "x", knee_r)
    pose.set(L_ANKLE, "x", swing - knee_l)  # feet kept level: the planted foot stays flat on the ground
    pose.set(R_ANKLE, "x", -swing - knee_r)
    arms_down(pose)
    pose.set(L_SHOULDER, "y", 0.8 * swing)  # arms swing against the legs (swung in the T-pose plane, then lowered)
    pose.set(R_SHOULDER, "y", 0.8 * swing)
    pose.set(L_ELBOW, "y", -15.0)
    pose.set(R_ELBOW, "y", 15.0)


def walk(frames=FRAMES):
    t = np.arange(frames) / FPS
    pose = Pose(frames)
    gait(pose, 2 * np.pi * 0.9 * t)
    yaw = 60.0  # three-quarter view: facing and walking to the image right, a little towards the camera
    direction = np.array([np.sin(np.deg2rad(yaw)), -np.cos(np.deg2rad(yaw))])  # (x, z) of the body's forward
    path = 0.8 * t[:, None] * direction
    return sequence(pose, yaw, path, "walk")


def walk_towards(frames=FRAMES):
    t = np.arange(frames) / FPS
    pose = Pose(frames)
    gait(pose, 2 * np.pi * 0.9 * t)
    path = np.stack([0.0 * t, -1.2 * t], 1)  # 1.6 m towards the camera over 1.33 s
    return sequence(pose, 0.0, path, "walk_towards")


def full_turn(frames=FRAMES):
    s = np.arange(frames) / (frames - 1)
    pose = Pose(frames)
    arms_down(pose, 45.0 - 20.0 * np.sin(2 * np.pi * s))
    pose.set(L_ELBOW, "y", -30.0 * s)
    pose.set(R_HIP, "x", -10.0 * np.sin(2 * np.pi * s))
    return sequence(pose, 360.0 * s, np.zeros((frames, 2)), "full_turn")


def squat_bend(frames=FRAMES):
    s = np.arange(frames) / (frames - 1)
    pose = Pose(frames)
    arms_down(pose, 70.0)
    squat = np.sin(np.pi * np.clip(s / 0.5, 0, 1))  # 0 → 1 → 0 over the first half
    bend = np.sin(np.pi * np.clip((s - 0.5) / 0.5, 0, 1))  # then a bend at the waist
    hip, knee = 95.0 * squat, 120.0 * squat
    for j in (L_HIP, R_HIP):
        pose.set(j, "x", -hip - 20.0 * bend)
    for j in (L_KNEE, R_KNEE):
        pose.set(j, "x", knee)
    for j in (L_ANKLE, R_ANKLE):
        pose.set(j, "x", -(knee - hip))  # feet flat
    for j in (SPINE1, SPINE2, SPINE3):
        pose.set(j, "x", 20.0 * squat + 25.0 * bend)
    pose.set(L_SHOULDER, "y", -60.0 * squat)  # arms forward for balance
    pose.set(R_SHOULDER, "y", 60.0 * squat)
    return sequence(pose, 20.0, np.zeros((frames, 2)), "squat_bend")


def arm_raise_kick(frames=FRAMES):
    s = np.arange(frames) / (frames - 1)
    pose = Pose(frames)
    raise_ = np.sin(np.pi * np.clip(s / 0.4, 0, 1))
    spread = 75.0 - 160.0 * raise_  # arms down → overhead → down
    arms_down(pose, spread)
    kick_l = np.sin(np.pi * np.clip((s - 0.4) / 0.3, 0, 1))
    kick_r = np.sin(np.pi * np.clip((s - 0.7) / 0.3, 0, 1))
    pose.set(L_HIP, "x", -75.0 * kick_l)
    pose.set(R_HIP, "x", -75.0 * kick_r)
    pose.set(L_KNEE, "x", 20.0 * kick_l)
    pose.set(R_KNEE, "x", 20.0 * kick_r)
    pose.set(SPINE1, "x", -8.0 * (kick_l + kick_r))  # leaning back a little while kicking
    return sequence(pose, -30.0, np.zeros((frames, 2)), "arm_raise_kick")


def squat_hold(frames=FRAMES):
    """Down in 12 frames, 16 frames at the bottom (hips 110°, knees 130°, feet flat), up in 12."""
    t = np.arange(frames, dtype=np.float64)
    down = np.clip(t / 11.0, 0, 1)
    up = np.clip((t - 28.0) / 11.0, 0, 1)
    depth = 0.5 - 0.5 * np.cos(np.pi * np.minimum(down, 1 - up))  # 0 → 1, held, → 0
    pose = Pose(frames)
    arms_down(pose, 70.0)
    hip, knee = 110.0 * depth, 130.0 * depth
    for j in (L_HIP, R_HIP):
        pose.set(j, "x", -hip)
    for j in (L_KNEE, R_KNEE):
        pose.set(j, "x", knee)
    for j in (L_ANKLE, R_ANKLE):
        pose.set(j, "x", -(knee - hip))  # feet flat
    for j in (SPINE1, SPINE2, SPINE3):
        pose.set(j, "x", 15.0 * depth)
    pose.set(L_SHOULDER, "y", -70.0 * depth)  # arms forward for balance
    pose.set(R_SHOULDER, "y", 70.0 * depth)
    return sequence(pose, 15.0, np.zeros((frames, 2)), "squat_hold")


JUMP_FPS = 60.0
GRAVITY = 9.81


def jump(frames=FRAMES):
    """A tuck jump filmed at 60 fps: standing in frames 0-1, in the air in frames 2-38 (a 0.62 s flight, 0.47 m
    high), landed in frame 39."""
    t = np.arange(frames) / JUMP_FPS
    take_off, landing = 1.5 / JUMP_FPS, (frames - 1.5) / JUMP_FPS
    flight = landing - take_off
    in_air = np.clip(t - take_off, 0, flight)
    lift = np.where((t > take_off) & (t < landing), 0.5 * GRAVITY * in_air * (flight - in_air), 0.0)
    tuck = np.sin(np.pi * in_air / flight)  # legs pulled up mid-flight
    pose = Pose(frames)
    arms_down(pose, 75.0 - 100.0 * tuck)  # arms swing up
    for j in (L_HIP, R_HIP):
        pose.set(j, "x", -60.0 * tuck)
    for j in (L_KNEE, R_KNEE):
        pose.set(j, "x", 90.0 * tuck)
    return sequence(pose, 10.0, np.zeros((frames, 2)), "jump", lift=lift, fps=JUMP_FPS)


MOTIONS = {"walk": walk, "full_turn": full_turn, "squat_bend": squat_bend, "arm_raise_kick": arm_raise_kick,
           "walk_towards": walk_towards, "squat_hold": squat_hold, "jump": jump}


def write_motions(out_dir=OUT, names=None) -> dict[str, Path]:
    """Write the motions (all by default) as ``<out_dir>/<name>.npz``; existing files are replaced."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names or MOTIONS:
        seq = MOTIONS[name]()
        arrays = {k: np.asarray(v) for k, v in seq.items() if k not in ("image_size", "fps", "model_type", "source")}
        arrays.update(image_size=np.asarray(seq["image_size"], np.int64), fps=np.float64(seq["fps"]),
                      model_type=np.str_(seq["model_type"]))
        paths[name] = out_dir / f"{name}.npz"
        np.savez(paths[name], **arrays)
    return paths


if __name__ == "__main__":
    for name, path in write_motions(sys.argv[1] if len(sys.argv) > 1 else OUT).items():
        print(f"{name}: {path}")
