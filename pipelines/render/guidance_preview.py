"""3D guidance previews for newcomers: a motion retargeted onto a body shaped to a reference person, rendered.

Used by the smoke demo (no estimator weights needed): the reference person is given by its 2D OpenPose-18
keypoints and stands facing the camera; the built-in body is placed in its box, its height and proportions are
fitted to the keypoints (Set Body Shape's fit), the motion is transferred onto it (Transfer Shape, root locked),
and pose maps plus depth / normal / body-part maps are rendered side by side. The camera is widened once for the
whole clip when the body would leave the frame (a raised hand), so every panel shows all of it with a margin.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..smpl.motion.anny_shape import set_body_shape
from ..smpl.motion.sequence import default_intrinsics, validate_sequence
from ..smpl.motion.transfer import fit_translation_to_box, transfer_shape

STANDING_SHOULDERS = 1.2  # radians the arms hang down from SMPL's T-pose (arms slightly away from the body)
FRAME_MARGIN = 0.05  # of the panel's height, kept free around the body over the whole clip


def frame_whole_clip(body, seq: dict, margin: float = FRAME_MARGIN) -> dict:
    """``seq`` with one camera zoom (focal length and principal point, same for every frame) that keeps the whole
    body inside the frame with ``margin``·height free on every side over the whole clip; unchanged when it already
    fits. Only for previews: the generation itself keeps the reference camera."""
    import torch

    from ..pinhole import project
    from ..smpl.motion.posing import pose_sequence

    width, height = seq["image_size"]
    vertices, _ = pose_sequence(body, seq)
    K = torch.as_tensor(np.asarray(seq["K"]), dtype=torch.float32)
    uv = project(vertices, K.expand(len(vertices), 3, 3))
    lo, hi = uv.reshape(-1, 2).min(0).values.numpy(), uv.reshape(-1, 2).max(0).values.numpy()
    pad = margin * height
    slack = 0.5  # pixels: a clip framed by this function fits again despite rounding
    if min(lo) >= pad - slack and hi[0] <= width - pad + slack and hi[1] <= height - pad + slack:
        return seq
    scale = min(1.0, (width - 2 * pad) / max(hi[0] - lo[0], 1e-6), (height - 2 * pad) / max(hi[1] - lo[1], 1e-6))
    centre = (lo + hi) / 2.0
    framed = dict(seq)
    k = np.array(seq["K"], dtype=np.float32, copy=True)
    k[..., 0, 0] *= scale
    k[..., 1, 1] *= scale
    k[..., 0, 1] *= scale
    k[..., 0, 2] = scale * (k[..., 0, 2] - centre[0]) + width / 2.0
    k[..., 1, 2] = scale * (k[..., 1, 2] - centre[1]) + height / 2.0
    framed["K"] = k
    return framed


def standing_reference(body, keypoints: np.ndarray, image_size: tuple[int, int]) -> dict:
    """One-frame SMPL_SEQUENCE of a person standing facing the camera, fitted to the keypoints' box.

    Args:
        keypoints (`array (18,3)`): OpenPose-18 pixels + score of the reference person.
        image_size (`(W, H)`): the reference image's size.
    """
    width, height = image_size
    kp = np.asarray(keypoints, np.float32).reshape(18, 3)
    seen = kp[kp[:, 2] > 0.3, :2]
    if len(seen) < 6:
        raise ValueError("the reference keypoints hold fewer than 6 confident body points.")
    head = float(np.linalg.norm(kp[1, :2] - kp[0, :2])) if kp[0, 2] > 0.3 and kp[1, 2] > 0.3 else 0.0
    box = np.array([seen[:, 0].min(), seen[:, 1].min() - 1.2 * head, seen[:, 0].max(), seen[:, 1].max()],
                   np.float32)  # the nose is not the top of the head; ankles are close to the soles
    pose = np.zeros((1, 69), np.float32)
    pose[0, 45 + 2], pose[0, 48 + 2] = -STANDING_SHOULDERS, STANDING_SHOULDERS
    seq = dict(betas=np.zeros((1, 10)), global_orient=np.array([[np.pi, 0.0, 0.0]]), body_pose=pose,
               transl=np.array([[0.0, 0.0, 20.0]]), K=default_intrinsics(width, height)[None],
               image_size=(width, height), bbox=box[None], keypoints=kp[None])
    seq = validate_sequence(seq, "reference")
    local, _ = body.forward(None, seq["global_orient"], seq["body_pose"], None)
    seq["transl"] = fit_translation_to_box(local[0].double().numpy(), seq["transl"][0], seq["K"][0],
                                           box)[None].astype(np.float32)
    return seq


def guidance_preview(body, motion: dict, reference_keypoints: np.ndarray, image_size: tuple[int, int], *,
                     fit_iterations: int = 60, callback: Callable[[int, int], None] | None = None) -> dict:
    """The motion on the reference-shaped body, rendered.

    Returns:
        dict with ``frames`` uint8 `(T,H,2W... )`: per frame [pose map | depth | normal | parts] side by side,
        ``phenotype`` (6,), ``sequence`` (the transferred SMPL_SEQUENCE) and ``fps``.
    """
    from ..dwpose.draw import draw_pose_maps
    from .smpl_render import render_sequence_maps, sequence_to_pose_keypoints

    reference = standing_reference(body, reference_keypoints, image_size)
    shaped = set_body_shape(reference, body, "fit", iterations=fit_iterations)
    moved = frame_whole_clip(body, transfer_shape(motion, shaped, body, trajectory="lock_root"))
    width, height = image_size
    pose = sequence_to_pose_keypoints(body, moved, backend="torch")
    pose_maps = draw_pose_maps(pose, width, height, style="thick")  # lines and joints that survive a small panel
    maps = render_sequence_maps(body, moved, maps=("depth", "normal", "semantic"), backend="torch",
                                callback=callback)
    depth = np.repeat(maps["depth"].numpy()[..., None], 3, -1)
    panels = [pose_maps, *(np.clip(m * 255 + 0.5, 0, 255).astype(np.uint8)
                           for m in (depth, maps["normal"].numpy(), maps["semantic"].numpy()))]
    return {"frames": np.concatenate(panels, 2), "phenotype": shaped["phenotype"], "sequence": moved,
            "fps": float(moved["fps"])}


def write_preview(result: dict, directory: Path, prefix: str) -> list[Path]:
    """Write the preview as ``<prefix>.mp4`` and its first frame as ``<prefix>.png`` (never overwriting)."""
    from ..output_paths import unique_path
    from ..video.io import write_image, write_video

    video = write_video(result["frames"], result["fps"], unique_path(directory, prefix, ".mp4"))
    still = write_image(result["frames"][0], unique_path(directory, prefix, ".png"))
    return [video, still]
