"""SMPL render nodes: guidance maps (depth, normal, semantic, mask, preview) and the 3D-aware skeleton.

Thin wrappers around ``pipelines/render``; pipeline modules (torch, pyrender) are imported inside the functions.
"""
from __future__ import annotations

import logging

from ..pipelines import options
from . import comfy_adapter as adapter
from .sockets import (
    BOOLEAN,
    FLOAT,
    IMAGE,
    INT,
    MASK,
    MOTIONGUIDE_GUIDANCE_MAPS,
    POSE_KEYPOINT,
    SMPL_MODEL,
    SMPL_SEQUENCE,
)

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
        raise ValueError(f"smpl_model must come from Load Body Model (SMPL_MODEL), got {type(smpl_model).__name__}.")


def _device_for(renderer: str):
    """The torch rasteriser runs on ComfyUI's device; pyrender always reads back to the CPU."""
    return adapter.get_torch_device() if renderer != "pyrender" else adapter.intermediate_device()


class MotionGuideRenderSMPL:
    DESCRIPTION = ("Renders an SMPL motion into depth, normal, body-part and mask maps (plus a clay preview), and "
                   "bundles them for a geometry adapter in the Pose-Guided Sampler.")
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = (IMAGE, IMAGE, IMAGE, MASK, IMAGE, MOTIONGUIDE_GUIDANCE_MAPS)
    RETURN_NAMES = ("depth", "normal", "semantic", "mask", "preview", "guidance_maps")
    OUTPUT_TOOLTIPS = (
        "Depth, normalised over the whole clip ('per-clip'): nearest surface white, farthest 0.1 grey, background "
        "black.",
        "Camera-space normals n·0.5+0.5 (red right, green up, blue towards the camera), background black.",
        "The 24 SMPL body parts in the palette 'motionguide-lr-v1': the person's left parts warm, right parts cool, "
        "the midline purple/green/grey; one colour per part with straight borders, background black.",
        "Body silhouette (1 where the body is).",
        "Clay-shaded render for checking the motion (black frames when preview is off).",
        "Depth, normal, semantic and mask maps with their conventions (palette, depth normalisation), for the "
        "Pose-Guided Sampler's guidance_maps (read by a geometry adapter). Connect reference_motion so frame 0 is "
        "the reference, as in the pose maps.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "smpl_sequence": (SMPL_SEQUENCE, {"tooltip": "The body motion in its camera (from Estimate SMPL, "
                                                         "Transfer Shape, Set Camera or Load SMPL Motion)."}),
            "smpl_model": (SMPL_MODEL, {"tooltip": "The body model the sequence was made for (Load Body Model)."}),
            **_size_inputs(),
            "renderer": _renderer_input("to render"),
            "chunk_size": (INT, {"default": 16, "min": 1, "max": 256, "step": 1, "tooltip":
                           "Frames rendered at once; lower it if the GPU runs out of memory."}),
            "preview": (BOOLEAN, {"default": True, "tooltip": "Also render the clay preview."}),
        }, "optional": {
            "reference_motion": (SMPL_SEQUENCE, {"tooltip": "The reference image's SMPL (Set Body Shape or Estimate "
                                 "SMPL on the reference): rendered first, so every output gets it as frame 0, like "
                                 "the pose maps the sampler reads (frame 0 = the reference pose). Needed for "
                                 "guidance_maps; the depth range then covers it too."}),
        }}

    def render(self, smpl_sequence, smpl_model, width=0, height=0, renderer="auto", chunk_size=16, preview=True,
               reference_motion=None):
        import torch

        from ..pipelines.guidance.maps_bundle import RENDERED_MAPS, guidance_bundle
        from ..pipelines.render.maps import ALL_MAPS
        from ..pipelines.render.smpl_render import render_sequence_maps

        _check_model(smpl_model)
        frames = len(smpl_sequence["global_orient"]) if isinstance(smpl_sequence, dict) and \
            "global_orient" in smpl_sequence else 0
        frames += 1 if reference_motion is not None else 0
        progress = adapter.Progress(max(frames, 1), "Render SMPL")
        maps = ALL_MAPS if preview else tuple(m for m in ALL_MAPS if m != "preview")
        out = render_sequence_maps(smpl_model, smpl_sequence, width=width, height=height, maps=maps,
                                   backend=renderer, device=_device_for(renderer), chunk_size=chunk_size,
                                   reference=reference_motion, callback=progress.callback)
        depth = out["depth"][..., None].expand(-1, -1, -1, 3).contiguous()
        preview_image = out["preview"] if preview else torch.zeros(1, *out["mask"].shape[1:], 3)
        bundle = guidance_bundle({name: out[name] for name in RENDERED_MAPS},
                                 reference_frame=reference_motion is not None)
        return (depth, out["normal"], out["semantic"], out["mask"], preview_image, bundle)


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


SCAIL_CAMERAS = list(options.NLF_CAMERAS)
MASK_BACKGROUNDS = list(options.SCAIL_MASK_BACKGROUNDS)


class MotionGuideRenderSCAIL:
    DESCRIPTION = ("Renders an SMPL motion as SCAIL's pose guidance (13 shaded 3D capsules, SCAIL-Pose's exact "
                   "colours and lighting) plus SCAIL-2's identity mask, for Wan SCAIL / SCAIL-2 nodes.")
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = (IMAGE, IMAGE, MASK, IMAGE)
    RETURN_NAMES = ("pose_images", "pose_images_half", "mask", "identity_mask")
    OUTPUT_TOOLTIPS = (
        "The capsule rendering at width × height (SCAIL trains at 512×896 or 896×512); core WanSCAILToVideo "
        "halves it itself.",
        "The same at half size (bilinear), for kijai's WanVideoAddSCAILPoseEmbeds, which encodes images as given.",
        "Where a capsule was drawn (SCAIL's alpha > 0.5).",
        "SCAIL-2 pose_video_mask: the body silhouette in the identity's pure palette colour on black or white.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "smpl_sequence": (SMPL_SEQUENCE, {"tooltip": "The (retargeted) body motion in its camera."}),
            "smpl_model": (SMPL_MODEL, {"tooltip": "The body model the sequence was made for (Load Body Model)."}),
            "width": (INT, {"default": 512, "min": 16, "max": MAX_SIZE, "step": 16, "tooltip":
                      "Output width; SCAIL renders 512 wide (portrait) or 896 (landscape)."}),
            "height": (INT, {"default": 896, "min": 16, "max": MAX_SIZE, "step": 16, "tooltip":
                       "Output height; SCAIL renders 896 high (portrait) or 512 (landscape)."}),
            "camera": (SCAIL_CAMERAS, {"default": "nlf_fov55", "tooltip":
                       "'nlf_fov55': SCAIL's own camera (55° on the longer side, as in its training data), the body "
                       "dollied so it keeps its place and size in the frame; 'sequence': the sequence's camera."}),
        }, "optional": {
            "identity": (INT, {"default": 0, "min": 0, "max": 5, "step": 1, "tooltip":
                         "SCAIL-2 identity colour: 0 blue, 1 red, 2 green, 3 magenta, 4 cyan, 5 yellow."}),
            "mask_background": (MASK_BACKGROUNDS, {"default": "black", "tooltip":
                                "SCAIL-2 mask background: black for animation, white for replacement."}),
            "renderer": _renderer_input("the identity mask and the 2D layer's visibility test render the body"),
            "overlay_2d": (BOOLEAN, {"default": True, "tooltip":
                           "Draw SCAIL's 2D layer over the capsules, as in its training data: nose–eye–ear lines "
                           "(from the body, hidden ones left out) and, with driving_pose, DWPose hands and face."}),
            "driving_pose": (POSE_KEYPOINT, {"tooltip": "DWPose keypoints of the driving video (same frame count): "
                             "its hands and face are moved onto the new wrists and head for the 2D layer."}),
        }}

    def render(self, smpl_sequence, smpl_model, width=512, height=896, camera="nlf_fov55", identity=0,
               mask_background="black", renderer="auto", overlay_2d=True, driving_pose=None):
        from ..pipelines.render.scail_guidance import render_scail_guidance

        _check_model(smpl_model)
        progress = adapter.Progress(1, "Render SCAIL")
        out = render_scail_guidance(smpl_model, smpl_sequence, width=width, height=height, camera=camera,
                                    identity=identity, mask_background=mask_background, backend=renderer,
                                    with_overlay=overlay_2d, driving=driving_pose, device=adapter.get_torch_device(),
                                    mask_device=_device_for(renderer),
                                    callback=progress.callback)
        return (out["images"], out["images_half"], out["mask"], out["identity_mask"])
