"""Shape transfer (DESIGN §7): the driving motion performed by the reference person's body, in the reference camera.

Steps, for driving sequence D and reference sequence R (its first valid frame is the reference image):

1. Shape: β := β_R (median over the reference's valid frames) for every frame; the driving joint rotations stay.
2. Root compensation: SMPL rotates about the root joint J0(β), which moves with β, so a translation written for
   β_D is rewritten as T' = T + J0(β_D) − J0(β_R): the root joint stays exactly where it was.
3. Orientation: kept, or aligned to the reference's first-frame facing (G'_t = G_R · G_D,0⁻¹ · G_D,t; the
   trajectory is turned by the same rotation).
4. Trajectory relative to the first frame: root p'_t = p_R + s·Δ(p_D,t − p_D,0) in x, y with s the body-height
   ratio, and the depth ratio kept (z'_t = z_R·(1 + Δz_t / z_D,0)); or the root locked at the reference; or kept.
5. Fit: the reference body is first placed so its projection has the reference box's height, bottom and centre
   (a few fixed-point steps, since projected height goes as 1/z).
6. Ground: a constant shift along the reference "up" axis puts the driving ground (a low percentile of the
   per-frame lowest foot point) at the reference feet: no sliding or floating, jumps keep their height.
"""
from __future__ import annotations

import logging

import numpy as np

from ..options import ORIENTATIONS, TRAJECTORIES, TRANSFER_CAMERAS
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle
from .sequence import num_frames, validate_sequence

logger = logging.getLogger(__name__)

FOOT_PARTS = (7, 8, 10, 11)  # ankles (feet) and toes in SMPL's 24 parts
GROUND_PERCENTILE = 10.0


def shaped_rest_vertices(model, betas) -> np.ndarray:
    """(T,V,3) float64 template vertices shaped by ``betas`` (no pose, no translation)."""
    b = np.atleast_2d(np.asarray(betas, dtype=np.float64))[:, : model.num_betas]
    dirs = model.arrays["shapedirs"][:, :, : b.shape[1]].astype(np.float64)
    return model.arrays["v_template"][None].astype(np.float64) + np.einsum("vcb,tb->tvc", dirs, b)


def rest_height(model, betas) -> np.ndarray:
    """(T,) standing height in metres: vertical extent of the shaped rest mesh (SMPL's y is up)."""
    v = shaped_rest_vertices(model, betas)
    return v[..., 1].max(1) - v[..., 1].min(1)


def root_compensation(model, transl, betas_from, betas_to) -> np.ndarray:
    """T' = T + J0(β_from) − J0(β_to): the translation that keeps the root joint in place when β changes."""
    j_from = model.rest_joints(np.atleast_2d(betas_from))[:, 0]
    j_to = model.rest_joints(np.atleast_2d(betas_to))[:, 0]
    return np.asarray(transl, np.float64) + j_from - j_to


def project(points, k) -> np.ndarray:
    """Pinhole projection of (T,N,3) camera points with (T,3,3) intrinsics → (T,N,2) pixels."""
    points, k = np.asarray(points, np.float64), np.asarray(k, np.float64)
    uvw = np.matmul(points, np.swapaxes(k, -1, -2))
    return uvw[..., :2] / uvw[..., 2:3]


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


def _first_valid(seq: dict) -> int:
    good = np.flatnonzero(seq["valid"])
    if len(good) == 0:
        raise ValueError("The reference SMPL sequence has no valid frame (no person in the reference image).")
    return int(good[0])


def _forward_local(model, betas, orient, pose, device, batch_size=64):
    verts, joints = model.forward(betas, orient, pose, None, device=device, batch_size=batch_size)
    return verts.cpu().numpy().astype(np.float64), joints.cpu().numpy().astype(np.float64)


def transfer_shape(driving: dict, reference: dict, model, *, orientation: str = "keep",
                   trajectory: str = "relative", fit_box: bool = True, ground: bool = True,
                   camera: str = "reference", device=None, callback=None) -> dict:
    """The driving motion with the reference body and camera (see the module docstring for the steps).

    Args:
        driving (`dict`): SMPL_SEQUENCE of the driving motion.
        reference (`dict`): SMPL_SEQUENCE of the reference person; its first valid frame is used.
        model (`BodyModel`): the body model both were estimated with.
        orientation (`str`, defaults to ``"keep"``): ``"keep"`` or ``"align_first"``.
        trajectory (`str`, defaults to ``"relative"``): ``"relative"``, ``"lock_root"`` or ``"keep"`` (the root
            stays exactly where the driving root was: root compensation only).
        fit_box (`bool`, defaults to True): place the reference body in its box first (needs a known bbox).
        ground (`bool`, defaults to True): put the driving ground at the reference feet.
        camera (`str`, defaults to ``"reference"``): intrinsics and image size of the output
            (``"reference"`` or ``"driving"``).
        callback (`callable`, *optional*): ``callback(done, total)`` progress.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}.")
    if trajectory not in TRAJECTORIES:
        raise ValueError(f"trajectory must be one of {TRAJECTORIES}, got {trajectory!r}.")
    if camera not in TRANSFER_CAMERAS:
        raise ValueError(f"camera must be 'reference' or 'driving', got {camera!r}.")
    drv = validate_sequence(driving, "driving SMPL sequence")
    if not drv["valid"].all():  # frames without a person carry no usable parameters: interpolate them first
        from .smoothing import fill_invalid_frames

        drv = fill_invalid_frames(drv)
    ref = validate_sequence(reference, "reference SMPL sequence")
    if drv["model_type"] != model.model_type or ref["model_type"] != model.model_type:
        raise ValueError(f"sequences are {drv['model_type']}/{ref['model_type']} but the body model is "
                         f"{model.model_type}; load the matching body model.")
    frames = num_frames(drv)
    r0 = _first_valid(ref)
    d0 = _first_valid(drv)
    step = 0
    total = 4

    def progress():
        nonlocal step
        step += 1
        if callback is not None:
            callback(step, total)

    # 1. shape
    beta_r = np.median(ref["betas"][ref["valid"]], 0).astype(np.float64)
    beta_d = drv["betas"].astype(np.float64)
    betas_out = np.repeat(beta_r[None], frames, 0)
    j0_r = model.rest_joints(beta_r[None])[0, 0]
    # 2. driving roots in camera space (root compensation: these points are what the output keeps or moves)
    root_d = drv["transl"].astype(np.float64) + model.rest_joints(beta_d)[:, 0]
    # reference placement (5. fitted to its box)
    k_ref = ref["K"][r0].astype(np.float64)
    ref_orient, ref_pose = ref["global_orient"][r0:r0 + 1], ref["body_pose"][r0:r0 + 1]
    ref_local, _ = _forward_local(model, beta_r[None], ref_orient, ref_pose, device)
    t_ref = ref["transl"][r0].astype(np.float64)
    box = ref["bbox"][r0]
    if fit_box and (box[2] - box[0]) > 1 and (box[3] - box[1]) > 1:
        t_ref = fit_translation_to_box(ref_local[0], t_ref, k_ref, box)
    elif fit_box:
        logger.info("Reference box unknown; the reference body keeps its estimated placement.")
    root_r = t_ref + j0_r
    progress()

    # 3. orientation
    rot_d = axis_angle_to_matrix(drv["global_orient"])
    if orientation == "align_first":
        delta = axis_angle_to_matrix(ref_orient[0]) @ rot_d[d0].T
        orient_out = matrix_to_axis_angle(delta[None] @ rot_d)
    else:
        delta = np.eye(3)
        orient_out = drv["global_orient"].astype(np.float64)  # copied, not round-tripped (π is ambiguous)

    # 4. trajectory
    if trajectory == "keep":
        root_out = root_d
    elif trajectory == "lock_root":
        root_out = np.repeat(root_r[None], frames, 0)
    else:
        if root_d[d0, 2] <= 0:
            raise ValueError(f"driving root depth at frame {d0} is {root_d[d0, 2]:.3f} m; the person must be in "
                             "front of the camera (z > 0) for the relative trajectory.")
        scale = float(rest_height(model, beta_r[None])[0] / rest_height(model, np.median(beta_d, 0)[None])[0])
        moved = (root_d - root_d[d0]) @ delta.T
        root_out = np.empty_like(root_d)
        root_out[:, :2] = root_r[:2] + scale * moved[:, :2]
        root_out[:, 2] = root_r[2] * (1.0 + moved[:, 2] / root_d[d0, 2])
    transl_out = root_out - j0_r
    progress()

    local, _ = _forward_local(model, betas_out, orient_out, drv["body_pose"], device)
    progress()

    # 6. ground at the reference feet
    if ground and trajectory != "keep":
        up = axis_angle_to_matrix(ref_orient[0]) @ np.array([0.0, 1.0, 0.0])  # body's up in camera axes
        feet = np.isin(model.part_labels, FOOT_PARTS)
        ref_ground = ((ref_local[0, feet] + t_ref) @ up).min()
        heights = ((local[:, feet] + transl_out[:, None]) @ up).min(1)
        pool = heights[drv["valid"]] if drv["valid"].any() else heights
        drv_ground = np.percentile(pool, GROUND_PERCENTILE)
        transl_out = transl_out + (ref_ground - drv_ground) * up

    out = dict(drv)
    out.update(betas=betas_out.astype(np.float32), global_orient=orient_out.astype(np.float32),
               transl=transl_out.astype(np.float32))
    if camera == "reference":
        out["K"] = np.repeat(ref["K"][r0:r0 + 1], frames, 0)
        out["image_size"] = ref["image_size"]
    uv = project(local + transl_out[:, None], out["K"])
    out["bbox"] = np.concatenate([uv.min(1), uv.max(1)], 1).astype(np.float32)
    progress()
    return validate_sequence(out, "transferred SMPL sequence")
