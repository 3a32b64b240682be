"""Nodes: Load DisPose and Prepare DisPose (motion field + keypoint features), fed to the Pose-Guided Sampler.

Thin wrappers: they resolve files (one message for every missing one), convert ComfyUI types and report progress.
The work is in ``pipelines/dispose``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import comfy_adapter as adapter
from . import sockets

logger = logging.getLogger(__name__)

DISPOSE_DEFAULT = "DisPose.pth"
CMP_DEFAULT = "ckpt_iter_42000.pth.tar"
SD15_DEFAULT = "stable-diffusion-v1-5"


@dataclass
class DisPoseModel:
    """The ``DISPOSE_MODEL`` payload: the loaded ControlNet and where CMP and SD-1.5 are (loaded when used)."""

    controlnet: object
    cmp_path: Path
    sd_path: Path
    dtype: object
    device: object


@dataclass
class DisPoseInput:
    """The ``DISPOSE_GUIDANCE`` payload: the ControlNet and one video's hints."""

    controlnet: object
    hints: object


def _find(key: str, name: str) -> Path | None:
    try:
        return adapter.resolve_model_path(key, name)
    except FileNotFoundError:
        return None


def _expected(key: str, name: str) -> Path:
    return _find(key, name) or adapter.model_folder_paths(key)[0] / name


class MotionGuideLoadDisPose:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (sockets.MOTIONGUIDE_MODEL, {"tooltip": "From Load Motion Model (MimicMotion): DisPose's ControlNet is built from its UNet and runs in its precision and memory mode."}),
                "dispose_file": (adapter.list_model_files("dispose") or [DISPOSE_DEFAULT], {"tooltip": "DisPose.pth in models/dispose/ (huggingface.co/lihxxx/DisPose)."}),
                "cmp_file": (adapter.list_model_files("cmp") or [CMP_DEFAULT], {"tooltip": "CMP checkpoint ckpt_iter_42000.pth.tar in models/cmp/ (huggingface.co/MyNiuuu/MOFA-Video-Hybrid). Loaded by Prepare DisPose, freed after."}),
                "sd15": (adapter.list_model_dirs("diffusers", "text_encoder/config.json") or [SD15_DEFAULT], {"tooltip": "Stable Diffusion 1.5 diffusers folder in models/diffusers/ (unet, vae, text_encoder, tokenizer, scheduler), for DIFT keypoint features. Loaded by Prepare DisPose, freed after."}),
            },
        }

    RETURN_TYPES = (sockets.DISPOSE_MODEL,)
    RETURN_NAMES = ("dispose",)
    OUTPUT_TOOLTIPS = ("DisPose's ControlNet plus the CMP and SD-1.5 files, for Prepare DisPose.",)
    FUNCTION = "load"
    CATEGORY = "MotionGuide/loaders"
    DESCRIPTION = "Loads DisPose (ICLR 2025) for MimicMotion: its hybrid ControlNet now, CMP and SD-1.5 when a video is prepared."

    def load(self, model, dispose_file, cmp_file, sd15):
        from ..pipelines.dispose.loading import load_dispose
        from ..pipelines.dispose.prepare import dispose_file_table, missing_files

        paths = (_expected("dispose", dispose_file), _expected("cmp", cmp_file), _expected("diffusers", sd15),
                 getattr(model, "sources", {}).get("checkpoint"))
        message = missing_files(dispose_file_table(*paths))
        if message:
            raise FileNotFoundError(message)
        controlnet = load_dispose(paths[0], dict(model.unet.config), model.dtype, model.vae_scale_factor)
        return (DisPoseModel(controlnet, paths[1], paths[2], model.dtype, model.device),)


class MotionGuidePrepareDisPose:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dispose": (sockets.DISPOSE_MODEL, {"tooltip": "From Load DisPose."}),
                "reference_image": (sockets.IMAGE, {"tooltip": "The reference image at the working size (the sampler's size). Only the first image is used."}),
                "pose_keypoint": (sockets.POSE_KEYPOINT, {"tooltip": "Body keypoints of every frame, frame 0 = the reference's own pose, as for the pose maps (Align Pose to Reference with the reference frame, or SMPL to Pose Keypoints). Rescaled to the reference size if drawn on another canvas."}),
                "seed": (sockets.INT, {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "step": 1, "tooltip": "Noise of the DIFT feature ensemble (DisPose itself leaves it unseeded)."}),
            },
            "optional": {
                "reference_pose": (sockets.POSE_KEYPOINT, {"tooltip": "The reference image's pose (Detect Pose on it). Connected: its first frame is put before pose_keypoint's frames (for driving keypoints that do not start with the reference, e.g. SMPL to Pose Keypoints), as Batch Images does for the pose maps."}),
                "chunk": (sockets.INT, {"default": 8, "min": 1, "max": 64, "step": 1, "tooltip": "Frames per CMP call (memory vs speed)."}),
            },
        }

    RETURN_TYPES = (sockets.DISPOSE_GUIDANCE,)
    RETURN_NAMES = ("dispose_guidance",)
    OUTPUT_TOOLTIPS = ("Motion field and keypoint features of this video, for the Pose-Guided Sampler's dispose input.",)
    FUNCTION = "prepare"
    CATEGORY = "MotionGuide/sampling"
    DESCRIPTION = "Computes DisPose's motion hints (trajectory flow, CMP dense flow) and the reference's DIFT keypoint features once per video; CMP and SD-1.5 are freed afterwards."

    def prepare(self, dispose, reference_image, pose_keypoint, seed, reference_pose=None, chunk=8):
        import numpy as np

        from ..pipelines.dispose.prepare import body_keypoints, compute_hints
        from ..pipelines.dwpose.keypoints import pose_keypoint_to_frames
        from .sampling import _image_batch_to_uint8

        reference = _image_batch_to_uint8(reference_image, "reference_image")[:1]
        height, width = reference.shape[-2:]
        frames = pose_keypoint_to_frames(pose_keypoint, "pose_keypoint")
        if reference_pose is not None:
            frames = pose_keypoint_to_frames(reference_pose, "reference_pose")[:1] + frames
        if len(frames) < 2:
            raise ValueError(f"pose_keypoint has {len(frames)} frame(s); DisPose needs the reference pose (frame 0) "
                             "and at least one driving frame.")
        keypoints = body_keypoints(frames)
        scale = np.array([[width / f.width, height / f.height, 1.0] for f in frames])[:, None, :]
        keypoints = keypoints * scale
        progress = adapter.Progress(1, "MotionGuidePrepareDisPose")
        hints = compute_hints(reference, keypoints, dispose.cmp_path, dispose.sd_path, dispose.device, dispose.dtype,
                              seed=seed, chunk=chunk, callback=progress.callback)
        return (DisPoseInput(dispose.controlnet, hints),)
