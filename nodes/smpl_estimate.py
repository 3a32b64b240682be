"""Node: Estimate SMPL (HMR2) — frames + DWPose keypoints → SMPL_SEQUENCE."""
from __future__ import annotations

import logging

from . import comfy_adapter as adapter
from .model_check import check_model_input
from .sockets import FLOAT, IMAGE, INT, POSE_KEYPOINT, SMPL_SEQUENCE

logger = logging.getLogger(__name__)

# One loaded network kept between runs: (path, mtime, size, dtype, device) -> (HMR2Network, ManagedModel handle).
# Inside ComfyUI the handle registers it with ComfyUI's memory manager, which unloads it when others need the room.
_NETWORK_CACHE: dict = {}


def _load_network(path, dtype, device):
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, str(dtype), str(device))
    cached = _NETWORK_CACHE.get(key)
    if cached is None:
        from ..pipelines.smpl.estimate.hmr2 import load_hmr2_network

        for _, old_handle in _NETWORK_CACHE.values():
            old_handle.offload()  # unregister the network this one replaces
        _NETWORK_CACHE.clear()
        network = load_hmr2_network(path, device=adapter.offload_device(), dtype=dtype)
        handle = adapter.managed_model(network, device, adapter.offload_device(), label="MotionGuide HMR2")
        cached = _NETWORK_CACHE[key] = (network, handle)
    return cached


class MotionGuideEstimateSMPL:
    DESCRIPTION = ("Estimates one person's SMPL body (pose, shape, camera translation) in every frame with HMR2.0, "
                   "cropping around the person found by Detect Pose.")
    CATEGORY = "MotionGuide/smpl"
    FUNCTION = "estimate"
    RETURN_TYPES = (SMPL_SEQUENCE,)
    RETURN_NAMES = ("smpl_sequence",)
    OUTPUT_TOOLTIPS = ("Per-frame SMPL parameters in the camera of the images (HMR2 focal 5000/256·max(W,H)); "
                       "frames without the person are marked invalid — smooth the motion to fill them.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": (IMAGE, {"tooltip": "Frames to estimate (a video is a batch of frames)."}),
                "pose_keypoint": (POSE_KEYPOINT, {
                    "tooltip": "Keypoints of the same frames from Detect Pose; they give the person box to crop."}),
                "estimator": (adapter.list_model_files("hmr2"), {
                    "tooltip": "HMR2.0 checkpoint in models/hmr2/ (4D-Humans epoch=35-step=1000000.ckpt, MIT)."}),
                "person_index": (INT, {"default": 0, "min": 0, "max": 63, "step": 1,
                                         "tooltip": "Which detected person to follow (0 = the first in each frame)."}),
                "precision": (adapter.PRECISIONS, {
                    "default": "auto", "tooltip": "Network precision; auto = fp32 on every device, as 4D-Humans runs "
                                              "HMR2 (fp16/bf16 save memory and time on a GPU)."}),
                "batch_size": (INT, {"default": 8, "min": 1, "max": 256, "step": 1,
                                     "tooltip": "Person crops per forward pass; lower it if you run out of memory."}),
                "fps": (FLOAT, {"default": 30.0, "min": 1.0, "max": 240.0, "step": 0.01,
                                "tooltip": "Frame rate of the images, stored in the sequence."}),
                "box_padding": (FLOAT, {"default": 1.2, "min": 1.0, "max": 2.0, "step": 0.05,
                                        "tooltip": "How much a box made from keypoints is enlarged before cropping "
                                                   "(1.2, HMR2's rule); Detect Pose's detector boxes are used as "
                                                   "they are."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, estimator):
        return check_model_input(("hmr2",), estimator)

    def estimate(self, images, pose_keypoint, estimator, person_index=0, precision="auto", batch_size=8, fps=30.0,
                 box_padding=1.2):
        from ..pipelines.smpl.estimate.estimator import body_keypoints_for_sequence, person_boxes_for_estimation
        from ..pipelines.smpl.estimate.hmr2 import HMR2Estimator

        # 1. Check the inputs against each other.
        if images is None or images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"images must be a non-empty IMAGE batch [F,H,W,3], got {getattr(images, 'shape', None)}.")
        count, height, width = int(images.shape[0]), int(images.shape[1]), int(images.shape[2])
        if isinstance(pose_keypoint, dict):
            pose_keypoint = [pose_keypoint]
        if not isinstance(pose_keypoint, (list, tuple)) or len(pose_keypoint) != count:
            frames = len(pose_keypoint) if isinstance(pose_keypoint, (list, tuple)) else type(pose_keypoint).__name__
            raise ValueError(f"pose_keypoint has {frames} frames but images has {count}: connect the "
                             "keypoints detected on these same frames.")
        boxes, padding = person_boxes_for_estimation(pose_keypoint, person_index, (width, height), box_padding)
        found = sum(b is not None for b in boxes)
        if found == 0:
            raise ValueError(f"No person with index {person_index} in any of the {count} frames of pose_keypoint: "
                             "check Detect Pose's output or pick another person_index.")

        # 2. Load the network (cached) and put it on the compute device (through ComfyUI's manager there).
        path = adapter.resolve_model_path("hmr2", estimator)
        device = adapter.get_torch_device()
        dtype = adapter.choose_dtype("fp32" if precision == "auto" else precision, device)  # HMR2 was run in fp32
        network, handle = _load_network(path, dtype, device)
        handle.load()  # inside ComfyUI: frees other models first, and ComfyUI may unload it after this run
        progress = adapter.Progress(found, label="Estimate SMPL")
        try:
            sequence = HMR2Estimator(network, batch_size=batch_size).estimate(
                images, boxes, callback=progress.callback, fps=fps, box_rescale=padding)
        except Exception as exc:
            if adapter.is_oom(exc):
                handle.offload()
                raise RuntimeError(f"Out of memory estimating SMPL with batch_size={batch_size}: lower batch_size "
                                   "or use precision fp16/bf16.") from exc
            raise
        finally:
            handle.release()  # outside ComfyUI back to RAM; inside, ComfyUI's manager decides
            adapter.soft_empty_cache()
        sequence["keypoints"] = body_keypoints_for_sequence(pose_keypoint, person_index, (width, height))
        if found < count:
            logger.info("Estimate SMPL: person %d missing in %d of %d frames (valid=False; Smooth fills them).",
                        person_index, count - found, count)
        return (sequence,)
