"""SMPL render nodes: guidance maps (depth, normal, semantic, mask, preview) and the 3D-aware skeleton.

Thin wrappers around ``pipelines/render``; pipeline modules (torch, pyrender) are imported inside the functions.
"""
from __future__ import annotations

import logging

from ..pipelines import options
from . import comfy_adapter as adapter
from .sockets import BOOLEAN, FLOAT, IMAGE, INT, MASK, POSE_KEYPOINT, SMPL_MODEL, SMPL_SEQUENCE

logger = logging.getLogger(__name__)

CATEGORY = "MotionGuide/smpl"
RENDERERS = list(options.RENDER_BACKENDS)
MAX_SIZE = 8192


def _size_inputs():
    return {
        "width": (INT, {"default": 0, "min": 0, "max": MAX_SIZE, "step": 8, "tooltip":
                  "Output width in pixels; 0 = the sequence's frame size (0 for one side keeps the aspect)."}),
        "height": (INT, {"default": 0, "min": 0, "max": MAX_SIZE, "step": 8, "tooltip":
                   "Output height in pixels; 0 = the sequence's frame size (0 for one side keeps the aspect)."}),
    }


def _renderer_input(what: str):
    return (RENDERERS, {"default": "auto", "tooltip":
            f"How {what}: 'torch' (z-buffer rasteriser on the ComfyUI device, any OS, no system libraries), "
            "'pyrender' (OpenGL: EGL with a GPU driver, OSMesa on CPU; same maps), or 'auto' (torch, the "
            "fastest here on GPU and CPU)."})


def _check_model(smpl_model):
    if not all(hasattr(smpl_model, name) for name in ("forward", "faces", "part_labels")):
        raise ValueError(f"smpl_model must come from Load SMPL Model (SMPL_MODEL), got {type(smpl_model).__name__}.")


def _device_for(renderer: str):
    """The torch rasteriser runs on ComfyUI's device; pyrender always reads back to the CPU."""
    return adapter.get_torch_device() if renderer != "pyrender" else adapter.intermediate_device()


class MotionGuideRenderSMPL:
    DESCRIPTION = "Renders an SMPL motion into depth, normal, body-part and mask maps (plus a clay preview)."
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = (IMAGE, IMAGE, IMAGE, MASK, IMAGE)
    RETURN_NAMES = ("depth", "normal", "semantic", "mask", "preview")
    OUTPUT_TOOLTIPS = (
        "Depth, normalised over the whole sequence: nearest surface white, farthest 0.1 grey, background black.",
        "Camera-space normals n·0.5+0.5 (red right, green up, blue towards the camera), background black.",
        "The 24 SMPL body parts in a fixed Viridis palette (Champ's), one colour per part, background black.",
        "Body silhouette (1 where the body is).",
        "Clay-shaded render for checking the motion (black frames when preview is off).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "smpl_sequence": (SMPL_SEQUENCE, {"tooltip": "The body motion in its camera (from Estimate SMPL, "
                                                         "Transfer Shape, Set Camera or Load SMPL Motion)."}),
            "smpl_model": (SMPL_MODEL, {"tooltip": "The body model the sequence was made for (Load SMPL Model)."}),
            **_size_inputs(),
            "renderer": _renderer_input("to render"),
            "chunk_size": (INT, {"default": 16, "min": 1, "max": 256, "step": 1, "tooltip":
                           "Frames rendered at once; lower it if the GPU runs out of memory."}),
            "preview": (BOOLEAN, {"default": True, "tooltip": "Also render the clay preview."}),
        }}

    def render(self, smpl_sequence, smpl_model, width=0, height=0, renderer="auto", chunk_size=16, preview=True):
        import torch

        from ..pipelines.render.maps import ALL_MAPS
        from ..pipelines.render.smpl_render import render_sequence_maps

        _check_model(smpl_model)
        frames = len(smpl_sequence["global_orient"]) if isinstance(smpl_sequence, dict) and \
            "global_orient" in smpl_sequence else 0
        progress = adapter.Progress(max(frames, 1), "Render SMPL")
        maps = ALL_MAPS if preview else tuple(m for m in ALL_MAPS if m != "preview")
        out = render_sequence_maps(smpl_model, smpl_sequence, width=width, height=height, maps=maps,
                                   backend=renderer, device=_device_for(renderer), chunk_size=chunk_size,
                                   callback=progress.callback)
        depth = out["depth"][..., None].expand(-1, -1, -1, 3).contiguous()
        preview_image = out["preview"] if preview else torch.zeros(1, *out["mask"].shape[1:], 3)
        return (depth, out["normal"], out["semantic"], out["mask"], preview_image)


class MotionGuideSMPLToPose:
    DESCRIPTION = ("Projects the SMPL joints to OpenPose keypoints whose confidence drops where the body hides "
                   "them, with hands and face taken from the driving poses.")
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = (POSE_KEYPOINT,)
    RETURN_NAMES = ("pose_keypoint",)
    OUTPUT_TOOLTIPS = (("OpenPose-18 keypoints per frame in pixels (confidence = 3D visibility), plus grafted "
                        "hands/face; draw them with Draw Pose Maps."),)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "smpl_sequence": (SMPL_SEQUENCE, {"tooltip": "The body motion in its camera."}),
                "smpl_model": (SMPL_MODEL, {"tooltip": "The body model the sequence was made for."}),
                **_size_inputs(),
                "occluded_confidence": (FLOAT, {"default": 0.5, "min": 0.3, "max": 1.0, "step": 0.05, "tooltip":
                                        "Confidence of a joint hidden behind the body (visible joints get 1). "
                                        "At least 0.3 so hidden limbs are still drawn, only dimmer."}),
                "renderer": _renderer_input("the visibility test renders the body"),
            },
            "optional": {
                "driving_pose": (POSE_KEYPOINT, {"tooltip": "DWPose keypoints of the driving video (same frame "
                                 "count): its hands and face are moved onto the new wrists and nose."}),
                "rotate_hands": (BOOLEAN, {"default": True, "tooltip":
                                 "Turn grafted hands with the forearm's change of direction (off: move and "
                                 "scale only)."}),
            },
        }

    def convert(self, smpl_sequence, smpl_model, width=0, height=0, occluded_confidence=0.5, renderer="auto",
                driving_pose=None, rotate_hands=True):
        from ..pipelines.render.smpl_render import sequence_to_pose_keypoints

        _check_model(smpl_model)
        if driving_pose is not None and not isinstance(driving_pose, list):
            driving_pose = [driving_pose]  # a single-frame dict from other packs
        frames = len(smpl_sequence["global_orient"]) if isinstance(smpl_sequence, dict) and \
            "global_orient" in smpl_sequence else 0
        progress = adapter.Progress(max(frames, 1), "SMPL to Pose")
        pose = sequence_to_pose_keypoints(smpl_model, smpl_sequence, width=width, height=height,
                                          driving=driving_pose, occluded_confidence=occluded_confidence,
                                          rotate_hands=rotate_hands, backend=renderer,
                                          device=_device_for(renderer), callback=progress.callback)
        return (pose,)
