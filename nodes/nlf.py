"""NLFPRED nodes: SMPL motion out to the Wan-based animators (SCAIL, MTVCrafter) and 3D joints back in (IK fit).

Thin wrappers around ``pipelines/smpl/estimate/nlf.py`` and ``pipelines/smpl/estimate/joint_fit.py`` (imported inside each call).
"""
from __future__ import annotations

import json
import logging

from ..pipelines import options
from . import comfy_adapter as adapter
from .sockets import FLOAT, INT, NLFPRED, SMPL_MODEL, SMPL_SEQUENCE, STRING

logger = logging.getLogger(__name__)

CATEGORY = "MotionGuide/smpl"
NLF_CAMERAS = list(options.NLF_CAMERAS)
MAX_SIZE = 8192


def _check_inputs(smpl_sequence, smpl_model):
    if not isinstance(smpl_sequence, dict) or "global_orient" not in smpl_sequence:
        raise ValueError("smpl_sequence must be an SMPL_SEQUENCE (from Transfer SMPL Shape, Set SMPL Camera or Load "
                         f"SMPL Motion), got {type(smpl_sequence).__name__}.")
    if not hasattr(smpl_model, "forward"):
        raise ValueError(f"smpl_model must come from Load Body Model (SMPL_MODEL), got {type(smpl_model).__name__}.")


class MotionGuideSMPLToNLF:
    DESCRIPTION = ("Turns an SMPL motion into NLFPRED (SMPL-24 joints in millimetres, OpenCV camera axes), the 3D "
                   "pose type that kijai's SCAIL renderer (Render NLF Poses) and MTVCrafter's encoder read.")
    CATEGORY = CATEGORY
    FUNCTION = "convert"
    RETURN_TYPES = (NLFPRED, INT, INT, STRING)
    RETURN_NAMES = ("nlf_poses", "width", "height", "intrinsics")
    OUTPUT_TOOLTIPS = (
        "{'joints3d_nonparam': [[tensor(1, 24, 3) per frame]]} in millimetres, x right, y down, z forward.",
        "Image width the joints are framed for (connect to the renderer's width).",
        "Image height the joints are framed for (connect to the renderer's height).",
        "The matching pinhole intrinsics as JSON [[fx,0,cx],[0,fy,cy],[0,0,1]] in pixels of width × height.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "smpl_sequence": (SMPL_SEQUENCE, {"tooltip": "The (retargeted) body motion in its camera, e.g. from "
                                                         "Transfer SMPL Shape or Set SMPL Camera."}),
            "smpl_model": (SMPL_MODEL, {"tooltip": "The body model the sequence was made for (Load Body Model)."}),
            "width": (INT, {"default": 0, "min": 0, "max": MAX_SIZE, "step": 8, "tooltip":
                      "Image width the joints are framed for; 0 = the sequence's frame size (SCAIL: 512 or 896)."}),
            "height": (INT, {"default": 0, "min": 0, "max": MAX_SIZE, "step": 8, "tooltip":
                       "Image height; 0 = the sequence's frame size (0 for one side keeps the aspect)."}),
            "camera": (NLF_CAMERAS, {"default": "nlf_fov55", "tooltip":
                       "'nlf_fov55': move the body along its viewing ray so that NLF's default 55° camera (which "
                       "Render NLF Poses assumes) shows it where the sequence's camera did. 'sequence': joints "
                       "unchanged, the sequence's own intrinsics (for consumers that take intrinsics)."}),
        }}

    def convert(self, smpl_sequence, smpl_model, width=0, height=0, camera="nlf_fov55"):
        from ..pipelines.smpl.estimate.nlf import sequence_to_nlf

        _check_inputs(smpl_sequence, smpl_model)
        nlf, K, size = sequence_to_nlf(smpl_model, smpl_sequence, width=width, height=height, camera=camera)
        logger.info("SMPL to NLF: %d frames at %dx%d (%s camera)", len(nlf["joints3d_nonparam"][0]), *size, camera)
        intrinsics = json.dumps([[round(float(v), 4) for v in row] for row in K])
        return (nlf, size[0], size[1], intrinsics)


def _parse_intrinsics(text: str):
    from ..pipelines.pinhole import parse_intrinsics

    return parse_intrinsics(text, "intrinsics")


class MotionGuideNLFToSMPL:
    DESCRIPTION = ("Fits SMPL joint rotations to NLFPRED 3D joints (from NLF Predict or another pack) with the body "
                   "model, so a motion from the Wan-animator ecosystem can be retargeted here without HMR2.")
    CATEGORY = CATEGORY
    FUNCTION = "fit"
    RETURN_TYPES = (SMPL_SEQUENCE, FLOAT)
    RETURN_NAMES = ("smpl_sequence", "fit_error_mm")
    OUTPUT_TOOLTIPS = ("The fitted motion (first person) in the NLF camera, ready for Transfer SMPL Shape.",
                       "Mean distance between the fitted and the given joints, millimetres.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "nlf_poses": (NLFPRED, {"tooltip": "3D joints: NLF Predict's output (or SMPL to NLF Poses)."}),
            "smpl_model": (SMPL_MODEL, {"tooltip": "The body model whose skeleton is fitted (Load Body Model)."}),
            "width": (INT, {"default": 512, "min": 16, "max": 8192, "step": 8, "tooltip":
                      "Width of the video NLF ran on (sets the 55° camera and the sequence's frame size)."}),
            "height": (INT, {"default": 896, "min": 16, "max": 8192, "step": 8, "tooltip":
                       "Height of the video NLF ran on."}),
            "fps": (FLOAT, {"default": 16.0, "min": 1.0, "max": 240.0, "step": 0.5, "tooltip":
                    "Frame rate of the motion."}),
            "iterations": (INT, {"default": 150, "min": 0, "max": 5000, "step": 10, "tooltip":
                           "Refinement steps after the direct bone-direction solve (0 = that solve only)."}),
            "smoothness": (FLOAT, {"default": 0.001, "min": 0.0, "max": 10.0, "step": 0.001, "tooltip":
                           "Weight of the temporal smoothness (acceleration) term; raise it for jittery input."}),
        }, "optional": {
            "intrinsics": (STRING, {"default": "", "tooltip": "Camera as JSON [[fx,0,cx],[0,fy,cy],[0,0,1]]; empty "
                                                              "= NLF's 55° camera for width × height."}),
        }}

    def fit(self, nlf_poses, smpl_model, width=512, height=896, fps=16.0, iterations=150, smoothness=0.001,
            intrinsics=""):
        from ..pipelines.smpl.estimate.joint_fit import nlf_to_sequence

        if not hasattr(smpl_model, "rest_joints"):
            raise ValueError(f"smpl_model must come from Load Body Model (SMPL_MODEL), got {type(smpl_model).__name__}.")
        K = _parse_intrinsics(intrinsics)
        progress = adapter.Progress(max(int(iterations), 1), "NLF to SMPL")
        warnings: list[str] = []
        seq, error = nlf_to_sequence(smpl_model, nlf_poses, width=width, height=height, K=K, fps=fps,
                                     iterations=int(iterations), smoothness=smoothness, callback=progress.callback,
                                     warnings=warnings)
        logger.info("NLF to SMPL: %d frames, mean joint error %.1f mm", len(error), float(error.mean()))
        if warnings:  # shown on the node as well as in the log
            return {"ui": {"text": [f"Warning: {w}" for w in warnings]}, "result": (seq, float(error.mean()))}
        return (seq, float(error.mean()))
