"""Shape transfer (docs/architecture.md, *Reference algorithms*): the driving motion performed by the reference
person's body, in the reference camera.

Steps, for driving sequence D and reference sequence R (its first valid frame is the reference image):

1. Shape: β := β_R (median over the reference's valid frames) for every frame, and on the Anny body the
   reference's phenotype (its default shape when the reference has none); the driving joint rotations stay.
2. Root compensation: SMPL rotates about the root joint J0(β), which moves with β, so a translation written for
   β_D is rewritten as T' = T + J0(β_D) − J0(β_R): the root joint stays exactly where it was.
3. Fit: the reference body is first placed so its projected OpenPose-18 joints land on the reference's own 2D
   keypoints (least squares over the translation, when the reference sequence carries ``keypoints``); without
   keypoints, so that its projected mesh has the reference box's height, bottom and centre (a detector box of
   the whole person; a tight keypoint box would make the body ~6-10 % small with the soles at the ankles).
   With ``camera="driving"`` the placement is then carried into the driving frame (same spot and same share of
   the frame height), so the body is placed for the camera it is projected with.
4. Orientation: ``upright`` (default) keeps the driving facing but turns the motion so the driving body's mean
   up direction becomes the reference body's up (driving and reference cameras at different heights or pitch:
   the motion stays upright on the reference's ground); ``keep`` copies the driving rotations as they are;
   ``align_first`` turns the first frame to the reference's facing (G'_t = G_R · G_D,0⁻¹ · G_D,t). The
   trajectory is turned by the same rotation.
5. Trajectory relative to the first frame: root p'_t = p_R + s·Δ(p_D,t − p_D,0) in x, y and z with s the
   body-height ratio (a smaller person makes smaller steps, also towards the camera); or the root locked at the
   reference; or kept.
6. Ground: the feet are planted on the reference's ground (the height of its lowest foot point, along its body's
   up axis) in every frame where they touch the ground, smoothly in between, so jumps keep their height
   (:mod:`.ground`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ...options import GROUND_MODES, ORIENTATIONS, TRAJECTORIES, TRANSFER_CAMERAS, check_choice
from ...pinhole import project
from ..body.joints import openpose18_from_smpl
from ..body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from .ground import FOOT_PARTS, ground_shift
from .posing import check_motion_type
from .sequence import num_frames, validate_sequence

logger = logging.getLogger(__name__)

MAX_LEVELLING_DEG = 40.0  # "upright" turns the motion by at most this (a camera pitch), never a lying body up


def rest_height(model, betas, phenotype=None) -> np.ndarray:
    """(T,) standing height in metres of the body shaped by ``betas`` (SMPL) or ``phenotype`` (Anny)."""
    return model.rest_height(np.atleast_2d(np.asarray(betas, dtype=np.float64)), phenotype=phenotype)


def root_compensation(model, transl, betas_from, betas_to, phenotype_from=None, phenotype_to=None) -> np.ndarray:
    """T' = T + J0(from) − J0(to): the translation that keeps the root joint in place when the shape changes."""
    j_from = model.rest_joints(np.atleast_2d(betas_from), phenotype=phenotype_from)[:, 0]
    j_to = model.rest_joints(np.atleast_2d(betas_to), phenotype=phenotype_to)[:, 0]
    return np.asarray(transl, np.float64) + j_from - j_to


def fit_translation_to_box(local_vertices, transl, k, box, iterations: int = 4) -> np.ndarray:
    """Translation making the projected body as tall as ``box``, standing on its bottom, centred in x.

    Args:
        local_vertices (`array (V,3)`): posed vertices without translation.
        transl (`array (3,)`): starting translation (depth must be > 0).
        k (`array (3,3)`): intrinsics.
        box (`array (4,)`): x0, y0, x1, y1 pixels.
    """
    v = np.asarray(local_vertices, np.float64)
    t = np.asarray(transl, np.float64).copy()
    k = np.asarray(k, np.float64)
    x0, y0, x1, y1 = [float(c) for c in box]
    target_h = y1 - y0
    if target_h <= 1 or x1 <= x0:
        raise ValueError(f"reference box {list(box)} is empty; cannot fit the body to it.")
    centre = v.mean(0)
    for _ in range(iterations):
        uv = project((v + t)[None], k[None])[0]
        height = uv[:, 1].max() - uv[:, 1].min()
        depth = centre[2] + t[2]
        t[2] = depth * height / target_h - centre[2]  # projected size ∝ 1/z
        uv = project((v + t)[None], k[None])[0]
        depth = centre[2] + t[2]
        t[0] += ((x0 + x1) / 2 - (uv[:, 0].min() + uv[:, 0].max()) / 2) * depth / k[0, 0]
        t[1] += (y1 - uv[:, 1].max()) * depth / k[1, 1]
    return t


def fit_translation_to_keypoints(points, transl, k, keypoints, threshold: float = 0.3,
                                 iterations: int = 12) -> np.ndarray | None:
    """Translation whose projection of ``points`` best matches the confident 2D ``keypoints`` (Gauss–Newton on
    the squared pixel error; the depth follows from the keypoints' spread).

    Args:
        points (`array (18,3)`): the body's OpenPose-18 joints, posed, without translation.
        transl (`array (3,)`): starting translation (depth > 0).
        k (`array (3,3)`): intrinsics; keypoints (`array (18,3)`): x, y pixels and score.

    Returns:
        `(3,)` float64, or None when fewer than 4 keypoints are confident or they span no height.
    """
    points = np.asarray(points, np.float64)
    kp = np.asarray(keypoints, np.float64)
    ok = kp[:, 2] > threshold
    if ok.sum() < 4 or np.ptp(kp[ok, 1]) < 2.0:
        return None
    p, target = points[ok], kp[ok, :2]
    k = np.asarray(k, np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    t = np.asarray(transl, np.float64).copy()
    # start at the depth where the body's projected height matches the keypoints' height
    height_m = np.ptp(p[:, 1])
    if height_m > 1e-6:
        t[2] = max(fy * height_m / np.ptp(target[:, 1]) - p[:, 2].mean(), 1e-3 - p[:, 2].min())
    for _ in range(iterations):
        x, y, z = (p + t).T
        z = np.maximum(z, 1e-3)
        residual = np.concatenate([fx * x / z + cx - target[:, 0], fy * y / z + cy - target[:, 1]])
        zeros = np.zeros_like(z)
        jac = np.concatenate([np.stack([fx / z, zeros, -fx * x / z ** 2], 1),
                              np.stack([zeros, fy / z, -fy * y / z ** 2], 1)])
        step = np.linalg.lstsq(jac, -residual, rcond=None)[0]
        t += step
        t[2] = max(t[2], 1e-3 - p[:, 2].min())
        if np.abs(step).max() < 1e-9:
            break
    return t


def carry_to_camera(point, k_from, size_from, k_to, size_to) -> np.ndarray:
    """A camera-space point moved to the same spot of another camera's frame: the same fraction of the width and
    height, at the depth where a body keeps the same share of the frame height."""
    point = np.asarray(point, np.float64)
    uv = project(point[None, None], np.asarray(k_from, np.float64)[None])[0, 0]
    uv = uv / np.asarray(size_from, np.float64) * np.asarray(size_to, np.float64)
    k_to = np.asarray(k_to, np.float64)
    depth = point[2] * (k_to[1, 1] / float(k_from[1, 1])) * (float(size_from[1]) / float(size_to[1]))
    x = ((uv[0] - k_to[0, 2]) - k_to[0, 1] * (uv[1] - k_to[1, 2]) / k_to[1, 1]) * depth / k_to[0, 0]
    y = (uv[1] - k_to[1, 2]) * depth / k_to[1, 1]
    return np.array([x, y, depth])


def openpose_points(model, joints) -> np.ndarray:
    """The body model's OpenPose-18 3D points `(T,18,3)` float64 from its ``forward`` joints (the model's own
    ``openpose18``: SMPL's hips pushed like HMR2, Anny's COCO regressor)."""
    own = getattr(model, "openpose18", None)
    if own is None:
        return openpose18_from_smpl(np.asarray(joints, np.float64))
    return own(torch.as_tensor(np.asarray(joints, np.float64))).numpy()


def _first_valid(seq: dict) -> int:
    good = np.flatnonzero(seq["valid"])
    if len(good) == 0:
        raise ValueError("The reference SMPL sequence has no valid frame (no person in the reference image).")
    return int(good[0])


def _forward_local(model, betas, orient, pose, device, batch_size=64, **shape):
    verts, joints = model.forward(betas, orient, pose, None, device=device, batch_size=batch_size, **shape)
    return verts.cpu().numpy().astype(np.float64), joints.cpu().numpy().astype(np.float64)


def upright_rotation(driving_rotations, valid, reference_rotation) -> np.ndarray:
    """The smallest rotation taking the driving body's mean up direction (SMPL's +y through each frame's root
    rotation, averaged over valid frames) to the reference body's up; identity beyond
    :data:`MAX_LEVELLING_DEG` (a body lying down or upside down is not a camera pitch)."""
    ups = np.asarray(driving_rotations)[np.asarray(valid, bool)] @ np.array([0.0, 1.0, 0.0])
    up_d = ups.mean(0)
    up_r = np.asarray(reference_rotation) @ np.array([0.0, 1.0, 0.0])
    if np.linalg.norm(up_d) < 1e-6:
        return np.eye(3)
    up_d = up_d / np.linalg.norm(up_d)
    axis = np.cross(up_d, up_r)
    angle = np.arctan2(np.linalg.norm(axis), float(up_d @ up_r))
    if np.degrees(angle) > MAX_LEVELLING_DEG:
        logger.info("Transfer Shape: the driving body's mean up direction is %.0f° from the reference's; the motion "
                    "is not levelled (more than %.0f° is no camera pitch).", np.degrees(angle), MAX_LEVELLING_DEG)
        return np.eye(3)
    if angle < 1e-9:
        return np.eye(3)
    return axis_angle_to_matrix(axis / np.linalg.norm(axis) * angle)


def transfer_shape(driving: dict, reference: dict, model, *, orientation: str = "upright",
                   trajectory: str = "relative", fit_box: bool = True, ground: bool = True,
                   camera: str = "reference", ground_mode: str = "contacts", device=None, callback=None) -> dict:
    """The driving motion with the reference body and camera (see the module docstring for the steps).

    Args:
        driving (`dict`): SMPL_SEQUENCE of the driving motion.
        reference (`dict`): SMPL_SEQUENCE of the reference person; its first valid frame is used.
        model (`BodyModel`): the body model both were estimated with.
        orientation (`str`, defaults to ``"upright"``): ``"upright"``, ``"keep"`` or ``"align_first"``.
        trajectory (`str`, defaults to ``"relative"``): ``"relative"``, ``"lock_root"`` or ``"keep"`` (the root
            stays exactly where the driving root was: root compensation only).
        fit_box (`bool`, defaults to True): place the reference body on its 2D keypoints (``keypoints`` of the
            reference sequence), else in its box (needs a known bbox), first.
        ground (`bool`, defaults to True): put the driving ground at the reference feet.
        ground_mode (`str`, defaults to ``"contacts"``): plant the feet per frame where they touch the ground, or
            ``"constant"``: the earlier single shift for the whole clip (:mod:`.ground`).
        camera (`str`, defaults to ``"reference"``): intrinsics and image size of the output
            (``"reference"`` or ``"driving"``). With ``"driving"`` and a relative or locked trajectory, the
            reference placement is carried into the driving frame (:func:`carry_to_camera`).
        callback (`callable`, *optional*): ``callback(done, total)`` progress.
    """
    check_choice("orientation", orientation, ORIENTATIONS)
    check_choice("trajectory", trajectory, TRAJECTORIES)
    check_choice("camera", camera, TRANSFER_CAMERAS)
    check_choice("ground_mode", ground_mode, GROUND_MODES)
    drv = validate_sequence(driving, "driving SMPL sequence")
    if not drv["valid"].all():  # frames without a person carry no usable parameters: interpolate them first
        from .smoothing import fill_invalid_frames

        drv = fill_invalid_frames(drv)
    ref = validate_sequence(reference, "reference SMPL sequence")
    check_motion_type(model, drv, ref)
    d0 = _first_valid(drv)
    step = 0
    total = 4

    def progress():
        nonlocal step
        step += 1
        if callback is not None:
            callback(step, total)

    shape = _reference_shape(model, drv, ref)  # 1.
    root_d = _driving_roots(model, drv, shape)  # 2.
    place = _place_reference(model, drv, ref, shape, fit_box, camera, trajectory, device)  # 3.
    progress()
    orient_out, delta = _orientation(drv, d0, place.orient, orientation)  # 4.
    root_out = _trajectory(model, shape, place, root_d, d0, delta, trajectory)  # 5.
    transl_out = root_out - shape.j0
    progress()
    local, _ = _forward_local(model, shape.betas_out, orient_out, drv["body_pose"], device, phenotype=shape.pheno,
                              hand_pose=drv.get("hand_pose"))
    progress()
    if ground and trajectory != "keep":  # 6.
        transl_out = _ground(model, place, local, transl_out, drv, ground_mode)
    out = _output_sequence(drv, ref, place, shape, orient_out, transl_out, local, camera)
    progress()
    return out


@dataclass
class _Shape:
    """Step 1: the reference's shape for every output frame, and what the driving shape was."""

    beta_r: np.ndarray  # (10,) reference betas (median over its valid frames)
    beta_d: np.ndarray  # (T,10) driving betas
    betas_out: np.ndarray  # (T,10)
    pheno: np.ndarray | None  # reference phenotype (phenotype bodies)
    pheno_d: np.ndarray | None  # driving phenotype
    j0: np.ndarray  # (3,) the reference body's rest root joint


@dataclass
class _Placement:
    """Step 3: the reference body in the reference image."""

    frame: int  # first valid reference frame
    orient: np.ndarray  # (1,3) its global orientation
    local: np.ndarray  # (1,V,3) its posed vertices before translation
    transl: np.ndarray  # (3,) its fitted translation
    root: np.ndarray  # (3,) its root joint in camera space


def _reference_shape(model, drv: dict, ref: dict) -> _Shape:
    """1. β := β_R for every frame; the reference phenotype (the body's default when the reference has none)."""
    beta_r = np.median(ref["betas"][ref["valid"]], 0).astype(np.float64)
    beta_d = drv["betas"].astype(np.float64)
    pheno_r, pheno_d = ref.get("phenotype"), drv.get("phenotype")
    if pheno_r is None and model.shape_kind == "phenotype":
        pheno_r = np.asarray(model.phenotype, np.float32)  # the Anny body's default shape
    j0_r = model.rest_joints(beta_r[None], phenotype=pheno_r)[0, 0]
    return _Shape(beta_r, beta_d, np.repeat(beta_r[None], num_frames(drv), 0), pheno_r, pheno_d, j0_r)


def _driving_roots(model, drv: dict, shape: _Shape) -> np.ndarray:
    """2. The driving root joints `(T,3)` in camera space (root compensation: these points are what the output
    keeps or moves)."""
    return drv["transl"].astype(np.float64) + model.rest_joints(shape.beta_d, phenotype=shape.pheno_d)[:, 0]


def _place_reference(model, drv: dict, ref: dict, shape: _Shape, fit_box: bool, camera: str, trajectory: str,
                     device) -> _Placement:
    """3. The reference body on its 2D keypoints (or in its box), carried into the driving camera if asked."""
    r0 = _first_valid(ref)
    k_ref = ref["K"][r0].astype(np.float64)
    ref_orient, ref_pose = ref["global_orient"][r0:r0 + 1], ref["body_pose"][r0:r0 + 1]
    ref_hands = None if ref.get("hand_pose") is None else ref["hand_pose"][r0:r0 + 1]
    ref_local, ref_joints = _forward_local(model, shape.beta_r[None], ref_orient, ref_pose, device,
                                           phenotype=shape.pheno, hand_pose=ref_hands)
    t_ref = ref["transl"][r0].astype(np.float64)
    box = ref["bbox"][r0]
    fitted = None
    if fit_box and ref.get("keypoints") is not None:
        fitted = fit_translation_to_keypoints(openpose_points(model, ref_joints)[0], t_ref, k_ref,
                                              ref["keypoints"][r0])
    if fitted is not None:
        t_ref = fitted
    elif fit_box and (box[2] - box[0]) > 1 and (box[3] - box[1]) > 1:
        t_ref = fit_translation_to_box(ref_local[0], t_ref, k_ref, box)
    elif fit_box:
        logger.info("Reference keypoints and box unknown; the reference body keeps its estimated placement.")
    j0_r = shape.j0
    if camera == "driving" and trajectory != "keep":
        d0 = _first_valid(drv)
        t_ref = carry_to_camera(t_ref + j0_r, k_ref, ref["image_size"], drv["K"][d0], drv["image_size"]) - j0_r
    return _Placement(r0, ref_orient, ref_local, t_ref, t_ref + j0_r)


def _orientation(drv: dict, d0: int, ref_orient: np.ndarray, orientation: str) -> tuple[np.ndarray, np.ndarray]:
    """4. The output global orientations `(T,3)` and the rotation `(3,3)` applied to the driving motion."""
    rot_d = axis_angle_to_matrix(drv["global_orient"])
    if orientation == "align_first":
        delta = axis_angle_to_matrix(ref_orient[0]) @ rot_d[d0].T
        return matrix_to_axis_angle(delta[None] @ rot_d), delta
    if orientation == "upright":
        delta = upright_rotation(rot_d, drv["valid"], axis_angle_to_matrix(ref_orient[0]))
        if np.allclose(delta, np.eye(3)):
            return drv["global_orient"].astype(np.float64), delta
        return matrix_to_axis_angle(delta[None] @ rot_d), delta
    return drv["global_orient"].astype(np.float64), np.eye(3)  # copied, not round-tripped (π is ambiguous)


def _trajectory(model, shape: _Shape, place: _Placement, root_d: np.ndarray, d0: int, delta: np.ndarray,
                trajectory: str) -> np.ndarray:
    """5. The output root joints `(T,3)`: kept, locked at the reference, or moved like the driving root
    (relative to its first frame, turned by ``delta``, scaled by the body-height ratio)."""
    if trajectory == "keep":
        return root_d
    if trajectory == "lock_root":
        return np.repeat(place.root[None], len(root_d), 0)
    if root_d[d0, 2] <= 0:
        raise ValueError(f"driving root depth at frame {d0} is {root_d[d0, 2]:.3f} m; the person must be in "
                         "front of the camera (z > 0) for the relative trajectory.")
    scale = float(rest_height(model, shape.beta_r[None], shape.pheno)[0]
                  / rest_height(model, np.median(shape.beta_d, 0)[None], shape.pheno_d)[0])
    moved = (root_d - root_d[d0]) @ delta.T
    return place.root + scale * moved


def _ground(model, place: _Placement, local: np.ndarray, transl: np.ndarray, drv: dict, mode: str) -> np.ndarray:
    """6. The driving feet on the reference's ground (its lowest foot point), along the reference body's up axis."""
    up = axis_angle_to_matrix(place.orient[0]) @ np.array([0.0, 1.0, 0.0])  # body's up in camera axes
    feet = np.isin(model.part_labels, FOOT_PARTS)
    ref_ground = ((place.local[0, feet] + place.transl) @ up).min()
    shift = ground_shift(local + transl[:, None], model.part_labels, up, ref_ground, float(drv["fps"]),
                         drv["valid"], mode)
    return transl + shift[:, None] * up


def _output_sequence(drv: dict, ref: dict, place: _Placement, shape: _Shape, orient: np.ndarray,
                     transl: np.ndarray, local: np.ndarray, camera: str) -> dict:
    """The driving sequence with the new shape, orientation and translation, in the chosen camera."""
    frames = num_frames(drv)
    out = dict(drv)
    out.update(betas=shape.betas_out.astype(np.float32), global_orient=orient.astype(np.float32),
               transl=transl.astype(np.float32))
    if shape.pheno is not None:
        out["phenotype"] = np.asarray(shape.pheno, np.float32)
    out.pop("keypoints", None)  # the driving image's 2D keypoints no longer match this body and camera
    if camera == "reference":
        out["K"] = np.repeat(ref["K"][place.frame:place.frame + 1], frames, 0)
        out["image_size"] = ref["image_size"]
    uv = project(local + transl[:, None], out["K"])
    out["bbox"] = np.concatenate([uv.min(1), uv.max(1)], 1).astype(np.float32)
    return validate_sequence(out, "transferred SMPL sequence")
