"""3D joints → SMPL-format motion: inverse kinematics by autograd on the body model's skeleton.

The Wan animators' ecosystem carries motion as 3D joints (``NLFPRED``: SMPL-24, millimetres, OpenCV camera). To
retarget such a motion with this pack, SMPL joint rotations are fitted so that the body model's skeleton
reproduces the joints:

- Forward kinematics on the body's own skeleton (its joints posed with zero rotations: SMPL's 24-joint tree for
  SMPL files and the built-in body alike): ``J_k = R_parent(k)·(rest_k − rest_parent(k)) + J_parent(k)``, root
  at the pelvis plus ``transl``. It is exactly the body model's joint chain, so the fitted joints are what the
  body model poses (the translation is finally corrected by posing the body model itself).
- Unknowns per frame: global orientation, 23 joint rotations (axis-angle, as ``SMPL_SEQUENCE`` stores them) and
  the translation. Start: the root from a Kabsch fit of the torso joints, then down the tree each joint's swing
  that points its bone(s) along the target's; translation from the pelvis.
- Loss: mean squared joint distance + temporal smoothness (squared second differences of rotations and
  translation, i.e. acceleration) + joint limits (knees and elbows are hinges, a soft bound on their bend
  direction and on every rotation's angle) + a small pull of every rotation towards rest (the twist about a
  bone cannot be seen from joints; this keeps it at rest).
- Adam, then the result is written as an ``SMPL_SEQUENCE`` in the same camera (``K`` given or NLF's 55° camera).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from ..body.joints import SMPL_PARENTS

logger = logging.getLogger(__name__)
from ..body.rotations import axis_angle_to_matrix, axis_angle_to_matrix_torch

TORSO = (0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17)  # pelvis, hips, spine, neck, collars, shoulders
KNEES, ELBOWS = (4, 5), (18, 19)
MAX_ANGLE = 2.6  # radians, soft bound on any joint rotation
DEFAULTS = {"iterations": 150, "learning_rate": 0.005, "smoothness": 0.001, "limits": 0.01, "rest_prior": 1e-4}


def forward_kinematics(rotations: torch.Tensor, rest: torch.Tensor, transl: torch.Tensor) -> torch.Tensor:
    """Posed joints `(T, 24, 3)` from local rotation matrices `(T, 24, 3, 3)`, rest joints `(T or 1, 24, 3)`."""
    frames = rotations.shape[0]
    rest = rest.expand(frames, -1, -1)
    glob = [rotations[:, 0]]
    joints = [rest[:, 0] + transl]
    for k in range(1, 24):
        parent = SMPL_PARENTS[k]
        glob.append(glob[parent] @ rotations[:, k])
        joints.append(joints[parent] + (glob[parent] @ (rest[:, k] - rest[:, parent])[..., None])[..., 0])
    return torch.stack(joints, 1)


def _kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation R minimising |R·(source − mean) − (target − mean)|² (both `(N, 3)`)."""
    s = source - source.mean(0)
    t = target - target.mean(0)
    u, _, vt = np.linalg.svd(t.T @ s)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(m).as_rotvec()


def _align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``source`` to ``target`` (both `(3,)`)."""
    a = source / max(np.linalg.norm(source), 1e-12)
    b = target / max(np.linalg.norm(target), 1e-12)
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(np.dot(a, b))
    if sin < 1e-9:
        if cos > 0:
            return np.eye(3)
        other = np.array([1.0, 0, 0]) if abs(a[0]) < 0.9 else np.array([0, 1.0, 0])
        axis = np.cross(a, other)
        return axis_angle_to_matrix(axis / np.linalg.norm(axis) * np.pi)
    return axis_angle_to_matrix(axis / sin * np.arctan2(sin, cos))


def initial_pose(target: np.ndarray, rest: np.ndarray, callback=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame root (Kabsch on the torso) and joint rotations that point every bone of the rest skeleton along
    the target's (swing only; a joint with several children aligns them together). `(T, 3)`, `(T, 23, 3)`."""
    frames = target.shape[0]
    children = {k: [c for c, p in enumerate(SMPL_PARENTS) if p == k] for k in range(24)}
    orient = np.zeros((frames, 3))
    pose = np.zeros((frames, 23, 3))
    for t in range(frames):
        if callback is not None and t % 100 == 0:  # ~16 ms per frame: 10,000 frames took 160 s with no Cancel
            callback(t, frames)
        glob = [None] * 24
        glob[0] = _kabsch(rest[[0, 1, 2, 3]], target[t, [0, 1, 2, 3]])
        orient[t] = _matrix_to_axis_angle(glob[0])
        for k in range(1, 24):
            parent_rot = glob[SMPL_PARENTS[k]]
            kids = children[k]
            if not kids:
                world = np.eye(3)
            elif len(kids) == 1:
                world = _align(parent_rot @ (rest[kids[0]] - rest[k]), target[t, kids[0]] - target[t, k])
            else:
                src = np.vstack([np.zeros(3)] + [parent_rot @ (rest[c] - rest[k]) for c in kids])
                dst = np.vstack([np.zeros(3)] + [target[t, c] - target[t, k] for c in kids])
                world = _kabsch(src, dst)
            glob[k] = world @ parent_rot
            pose[t, k - 1] = _matrix_to_axis_angle(parent_rot.T @ world @ parent_rot)
    return orient, pose


@torch.inference_mode(False)  # ComfyUI runs nodes in inference mode, which records no graph
@torch.enable_grad()
def fit_joints(joints: np.ndarray, rest_joints: np.ndarray, *, iterations: int = DEFAULTS["iterations"],
               learning_rate: float = DEFAULTS["learning_rate"], smoothness: float = DEFAULTS["smoothness"],
               limits: float = DEFAULTS["limits"], rest_prior: float = DEFAULTS["rest_prior"],
               callback: Callable[[int, int], None] | None = None,
               init_callback: Callable[[int, int], None] | None = None) -> dict:
    """Fit SMPL rotations to joints.

    ``callback(step, iterations)`` reports the Adam steps (every step from 500 frames on, where one step takes
    seconds), ``init_callback(frame, frames)`` the direct solve before them; both also serve as Cancel checks.

    Args:
        joints (`(T, 24, 3)`): target SMPL-24 joints in metres (camera coordinates).
        rest_joints (`(24, 3)` or `(T, 24, 3)`): the body's rest joints (``model.rest_joints``).

    Returns:
        dict with ``global_orient (T,3)``, ``body_pose (T,69)``, ``transl (T,3)`` (float32) and ``error_m``
        `(T, 24)`, the per-joint distance left after the fit (metres).
    """
    target = torch.as_tensor(np.asarray(joints, dtype=np.float64))
    if target.ndim != 3 or target.shape[1:] != (24, 3):
        raise ValueError(f"joints must be (frames, 24, 3) SMPL-24 joints, got {tuple(target.shape)}.")
    frames = target.shape[0]
    rest = torch.as_tensor(np.asarray(rest_joints, dtype=np.float64)).reshape(-1, 24, 3)
    orient0, pose0 = initial_pose(target.numpy(), rest[0].numpy(), callback=init_callback)
    orient = torch.tensor(orient0, requires_grad=True)
    pose = torch.tensor(pose0, requires_grad=True)
    transl = (target[:, 0] - rest[:, 0]).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([orient, pose, transl], lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(iterations, 1))
    hinge_off_axis = torch.zeros(23, 3, dtype=torch.float64)
    for k in KNEES:
        hinge_off_axis[k - 1, 1:] = 1.0  # knees bend about x only
    for k in ELBOWS:
        hinge_off_axis[k - 1, [0, 2]] = 1.0  # elbows bend about y only

    def total_loss():
        rotations = axis_angle_to_matrix_torch(torch.cat([orient[:, None], pose], 1))
        posed = forward_kinematics(rotations, rest, transl)
        data = ((posed - target) ** 2).sum(-1).mean()
        loss = data
        if frames > 2 and smoothness > 0:
            params = torch.cat([pose.reshape(frames, -1), transl], 1)
            accel = params[2:] - 2 * params[1:-1] + params[:-2]
            loss = loss + smoothness * 1e-2 * (accel ** 2).sum(-1).mean()
        if limits > 0:
            angle = pose.norm(dim=-1)
            loss = loss + limits * 1e-3 * ((pose * hinge_off_axis) ** 2).sum(-1).mean()
            loss = loss + limits * 1e-3 * torch.relu(angle - MAX_ANGLE).pow(2).mean()
            loss = loss + limits * 1e-3 * torch.relu(-pose[:, [k - 1 for k in KNEES], 0]).pow(2).mean()
        return loss + rest_prior * 1e-2 * (pose ** 2).sum(-1).mean(), posed

    for step in range(iterations):
        optimizer.zero_grad()
        loss, _ = total_loss()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if callback is not None and ((step + 1) % 20 == 0 or frames >= 500 or step + 1 == iterations):
            callback(step + 1, iterations)
    with torch.no_grad():
        _, posed = total_loss()
        error = (posed - target).norm(dim=-1)
    return {"global_orient": orient.detach().numpy().astype(np.float32),
            "body_pose": pose.detach().reshape(frames, 69).numpy().astype(np.float32),
            "transl": transl.detach().numpy().astype(np.float32), "error_m": error.numpy()}


class _Phases:
    """One ``callback(done, 100)`` across consecutive phases, each given its share of the bar."""

    def __init__(self, callback, shares: list[int]):
        self.callback, self.shares = callback, shares

    def phase(self, index: int):
        if self.callback is None:
            return None
        start, width = sum(self.shares[:index]), self.shares[index]
        return lambda done, total: self.callback(start + int(width * min(done, total) / max(total, 1)), 100)


def nlf_to_sequence(model, nlfpred, *, width: int, height: int, K=None, fps: float = 16.0, betas=None,
                    callback=None, warnings: list | None = None, **fit_options) -> tuple[dict, np.ndarray]:
    """An ``SMPL_SEQUENCE`` (first person) fitted to an ``NLFPRED``, and the per-frame mean joint error in mm.

    ``K`` defaults to NLF's 55° camera for ``width`` × ``height``. Frames without a person take the nearest
    frame's joints and are marked ``valid = False``. A fit that should not be trusted (:func:`fit_warnings`) is
    logged as a warning and appended to ``warnings`` when given.
    """
    from ...pinhole import check_intrinsics_matrix
    from .nlf import first_person_track, fov_intrinsics, nlf_frames, sequence_joints

    if K is not None:  # checked where it enters, before minutes of fitting
        K = check_intrinsics_matrix(K, "intrinsics (the camera NLF ran with)")
    joints_mm, valid = first_person_track(nlf_frames(nlfpred))
    frames = len(joints_mm)
    shape = np.zeros((1, 10), np.float32) if betas is None else np.asarray(betas, np.float32).reshape(1, -1)
    # The skeleton the body model itself poses: its joints at zero rotation and translation (for SMPL files the
    # regressed rest joints; for the built-in body its T-posed SMPL-layout joints, which its retarget drives).
    _, zero_pose = model.forward(shape, np.zeros((1, 3), np.float32), np.zeros((1, 69), np.float32),
                                 np.zeros((1, 3), np.float32))
    rest = zero_pose[:, :24].double().cpu().numpy()
    # progress (and Cancel) in every phase: direct solve, Adam steps, posing the result twice
    phases = _Phases(callback, [15, 70, 7, 8] if fit_options.get("iterations", DEFAULTS["iterations"]) else
                     [50, 0, 25, 25])
    result = fit_joints(joints_mm / 1000.0, rest, callback=phases.phase(1), init_callback=phases.phase(0),
                        **fit_options)
    K = fov_intrinsics(width, height) if K is None else np.asarray(K, dtype=np.float64)
    seq = {"betas": np.repeat(shape[:, :10], frames, 0), "global_orient": result["global_orient"],
           "body_pose": result["body_pose"], "transl": result["transl"],
           "K": np.repeat(K.astype(np.float32)[None], frames, 0), "image_size": (int(width), int(height)),
           "valid": valid, "bbox": np.zeros((frames, 4), np.float32), "fps": float(fps),
           # SMPL-format motion; only an SMPL-X body model takes SMPL-X sequences (the built-in body takes "smpl").
           "model_type": "smplx" if getattr(model, "model_type", "smpl") == "smplx" else "smpl"}
    # Pose the body model itself: a body may turn its root about another pivot than SMPL's pelvis (the built-in
    # body does), which only shifts every joint of a frame alike, so the least-squares translation fixes it.
    target = joints_mm / 1000.0
    seq["transl"] = (seq["transl"] + (target - sequence_joints(model, seq, phases.phase(2))).mean(1)).astype(
        np.float32)
    error_mm = np.linalg.norm(sequence_joints(model, seq, phases.phase(3)) - target, axis=-1).mean(1) * 1000.0
    for warning in fit_warnings(joints_mm, error_mm):
        logger.warning("NLF to SMPL: %s", warning)
        if warnings is not None:  # the node shows them too
            warnings.append(warning)
    return seq, error_mm


PLAUSIBLE_ERROR_MM = 100.0  # a fit to a real NLF skeleton leaves tens of millimetres at most
PLAUSIBLE_EXTENT_MM = 1e5  # joints 100 m from the camera are not a person filmed in a video


def fit_warnings(joints_mm: np.ndarray, error_mm: np.ndarray) -> list[str]:
    """Why a fit that ran to the end should not be trusted (empty when it looks like a person): a mean joint
    error above :data:`PLAUSIBLE_ERROR_MM`, or joints beyond :data:`PLAUSIBLE_EXTENT_MM` (wrong units)."""
    warnings = []
    extent = float(np.abs(joints_mm).max()) if joints_mm.size else 0.0
    if not np.isfinite(extent) or extent > PLAUSIBLE_EXTENT_MM:
        warnings.append(f"the input joints reach {extent:.3g} mm from the camera (more than "
                        f"{PLAUSIBLE_EXTENT_MM / 1000:g} m): NLFPRED holds millimetres; check the units and the "
                        "source of nlf_poses.")
    mean = float(np.mean(error_mm)) if len(error_mm) else 0.0
    if not np.isfinite(mean) or mean > PLAUSIBLE_ERROR_MM:
        worst = int(np.nanargmax(error_mm)) if np.isfinite(error_mm).any() else 0
        warnings.append(f"the fitted body is {mean:.3g} mm from the given joints on average (worst frame {worst}); "
                        f"a person's skeleton fits within {PLAUSIBLE_ERROR_MM:g} mm: the joints are probably not an "
                        "SMPL-24 skeleton in millimetres, so do not trust this motion.")
    return warnings
