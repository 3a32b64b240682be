"""SCAIL's pose guidance from an SMPL motion: shaded 3D capsules, SCAIL's 2D layer on top, and SCAIL-2's identity
mask (the Render SCAIL node's work).

The capsules and the mask are drawn by :mod:`.scail`; the sequence is first put in SCAIL's camera
(:func:`..smpl.estimate.nlf.sequence_in_camera`); the 2D layer is the projected skeleton with hidden joints left
out (:func:`.smpl_render.sequence_to_pose_keypoints`) drawn by SCAIL's drawer
(:func:`..dwpose.draw_styles.draw_scail_overlay`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..dwpose.draw_styles import draw_scail_overlay
from ..dwpose.keypoints import openpose_to_frame
from ..options import SCAIL_MASK_BACKGROUNDS, check_choice
from ..smpl.estimate.nlf import sequence_in_camera, sequence_joints
from ..size_limits import check_memory
from .scail import check_overlay_projection, half_size, identity_mask, overlay_2d, render_capsules
from .skeleton import MIN_FLOOR
from .smpl_render import render_sequence_maps, sequence_to_pose_keypoints


def _projected_frame(keypoints):
    """A frame of the 2D layer projected from the body; its check speaks of the SMPL input, not POSE_KEYPOINT."""
    try:
        return openpose_to_frame(keypoints)
    except ValueError as exc:
        raise ValueError(f"Render SCAIL: the SMPL body's 2D layer cannot be drawn ({exc}). The camera does not "
                         "frame the body: use camera 'nlf_fov55', move the camera with Set SMPL Camera, or switch "
                         "overlay_2d off.") from None


def render_scail_guidance(model, seq: dict, *, width: int, height: int, camera: str = "nlf_fov55",
                          identity: int = 0, mask_background: str = "black", backend: str = "auto",
                          with_overlay: bool = True, driving=None, device="cpu", mask_device="cpu",
                          callback: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """Render ``seq`` on ``model`` as SCAIL's guidance.

    Args:
        model (`SMPLModel`), seq (`dict`): the body and its ``SMPL_SEQUENCE``.
        width, height (`int`): output size.
        camera (`str`): ``"nlf_fov55"`` (SCAIL's camera, the body dollied to keep its place and size) or
            ``"sequence"``.
        identity (`int`), mask_background (`str`): SCAIL-2's identity colour and mask background.
        backend (`str`): rasteriser for the mask and the 2D layer's visibility test (``options.RENDER_BACKENDS``).
        with_overlay (`bool`): draw SCAIL's 2D layer over the capsules; ``driving`` (``POSE_KEYPOINT``,
            *optional*) lends its hands and face to it.
        device: where the capsules are ray-cast; ``mask_device``: where the rasteriser runs.
        callback: ``callback(done, total)`` over ``T + 1`` steps.

    Returns:
        dict of ``images`` `[T,H,W,3]` float 0..1, ``images_half`` `[T,H/2,W/2,3]`, ``mask`` `[T,H,W]` (capsule
        alpha > 0.5) and ``identity_mask`` `[T,H,W,3]`.
    """
    check_choice("mask_background", mask_background, SCAIL_MASK_BACKGROUNDS)
    framed = sequence_in_camera(model, seq, width=width, height=height, camera=camera)
    check_memory("Render SCAIL", len(framed["valid"]), *framed["image_size"],
                 "render fewer frames at a time, or a smaller size.")
    joints_mm = sequence_joints(model, framed) * 1000.0
    if with_overlay:  # before minutes of rendering, and worded for the SMPL input
        check_overlay_projection(joints_mm, framed["K"], framed["image_size"], framed["valid"])
    steps = len(joints_mm) + 1
    rgba = render_capsules([j[None] for j in joints_mm], framed["K"], framed["image_size"], device=device,
                           callback=None if callback is None else (lambda done, _frames: callback(done, steps)))
    if with_overlay:
        # Hidden joints get the lowest confidence (0.3), which SCAIL's drawer (score > 0.3) leaves out.
        keypoints = sequence_to_pose_keypoints(model, framed, driving=driving, occluded_confidence=MIN_FLOOR,
                                               backend=backend, device=mask_device)
        size = framed["image_size"]
        layer = np.stack([draw_scail_overlay(_projected_frame(k), size[0], size[1]) for k in keypoints])
        rgba = overlay_2d(rgba, layer)
    images = rgba[..., :3].float() / 255.0
    silhouettes = render_sequence_maps(model, framed, maps=("mask",), backend=backend,
                                       device=mask_device)["mask"].cpu()
    if callback is not None:
        callback(steps, steps)
    return {"images": images, "images_half": half_size(images), "mask": (rgba[..., 3] > 127).float(),
            "identity_mask": identity_mask(silhouettes, identity, mask_background)}
