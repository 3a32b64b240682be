"""Nodes: Fit Reference Image (MimicMotion's size rule) and Decode Video (chunked temporal VAE decode)."""
from __future__ import annotations

import logging

from . import comfy_adapter as adapter
from . import sockets

logger = logging.getLogger(__name__)


class MotionGuideFitReference:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": (sockets.IMAGE, {"tooltip": "Reference image (or any batch of same-size images) to bring to the model's working size."}),
                "resolution": (sockets.INT, {"default": 576, "min": 64, "max": 2048, "step": 64, "tooltip": "Short side. Portrait → resolution × floor(resolution·16/9/64)·64 (576 → 576×1024); landscape and square → the same, swapped."}),
            },
        }

    RETURN_TYPES = (sockets.IMAGE, sockets.INT, sockets.INT)
    RETURN_NAMES = ("image", "width", "height")
    OUTPUT_TOOLTIPS = ("The image cover-resized (bilinear) and centre-cropped to the working size.",
                       "Working width, for drawing the pose maps.", "Working height, for drawing the pose maps.")
    FUNCTION = "fit"
    CATEGORY = "MotionGuide/video"
    DESCRIPTION = "Resizes and centre-crops an image to MimicMotion's working size (576×1024 portrait or 1024×576 landscape at 576)."

    def fit(self, image, resolution):
        from ..pipelines.mimicmotion.preprocess import cover_resize_crop, image_to_uint8, reference_size, uint8_to_image

        if image is None or image.ndim != 4 or image.shape[0] == 0 or image.shape[-1] != 3:
            raise ValueError(f"image must be a non-empty IMAGE batch [frames, height, width, 3], got "
                             f"{None if image is None else list(image.shape)}.")
        if resolution % 64:
            raise ValueError(f"resolution must be a multiple of 64, got {resolution}.")
        height, width = image.shape[1:3]
        target_w, target_h = reference_size(width, height, resolution)
        fitted = cover_resize_crop(image_to_uint8(image), target_w, target_h)
        return (uint8_to_image(fitted), target_w, target_h)


class MotionGuideDecode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (sockets.LATENT, {"tooltip": "From Pose-Guided Sampler."}),
                "chunk_size": (sockets.INT, {"default": 8, "min": 1, "max": 128, "step": 1, "tooltip": "Frames decoded together (reference 8). Lower it if decoding runs out of memory."}),
                "drop_reference_frame": (sockets.BOOLEAN, {"default": True, "tooltip": "Drop frame 0 (the reference image's own frame) when the latent says it is there, as the reference does."}),
            },
            "optional": {
                "model": (sockets.MOTIONGUIDE_MODEL, {"tooltip": "From Load Motion Model: its SVD temporal VAE decodes. Connect this or vae."}),
                "vae": (sockets.VAE, {"tooltip": "Or a core VAE: SVD's VAE loaded by core nodes (e.g. Image Only Checkpoint Loader with svd_xt_1_1.safetensors, or Load VAE). Used when model is not connected."}),
                "chunk_overlap": (sockets.INT, {"default": 0, "min": 0, "max": 64, "step": 1, "tooltip": "Frames shared by neighbouring chunks and cross-faded, so chunk seams don't show (0 = reference). Must be below chunk_size."}),
            },
        }

    RETURN_TYPES = (sockets.IMAGE, sockets.FLOAT)
    RETURN_NAMES = ("frames", "fps")
    OUTPUT_TOOLTIPS = ("Decoded video frames.", "Frame rate of the video, from the sampler's video_fps.")
    FUNCTION = "decode"
    CATEGORY = "MotionGuide/video"
    DESCRIPTION = ("Decodes MotionGuide video latents to frames with SVD's temporal VAE, chunk by chunk: the Motion "
                   "Model's VAE or a core VAE.")

    def decode(self, model=None, latent=None, chunk_size=8, drop_reference_frame=True, chunk_overlap=0, vae=None):
        from ..pipelines.mimicmotion.decode import decode_in_chunks
        from ..pipelines.mimicmotion.sampler import MimicMotionPipeline
        from .sampling import manage_model_parts

        samples = latent.get("samples") if isinstance(latent, dict) else None
        if samples is None or samples.ndim != 4 or samples.shape[1] != 4 or samples.shape[0] == 0:
            raise ValueError(f"latent must hold 'samples' [frames, 4, h, w], got "
                             f"{None if samples is None else list(samples.shape)}.")
        if chunk_overlap >= chunk_size:
            raise ValueError(f"chunk_overlap ({chunk_overlap}) must be below chunk_size ({chunk_size}).")
        if model is None and vae is None:
            raise ValueError("Decode Video needs a VAE: connect model (from Load Motion Model) or vae (a core SVD VAE).")
        progress = adapter.Progress(1, "MotionGuideDecode")
        try:
            if model is not None:
                manage_model_parts(model)
                frames = MimicMotionPipeline(model).decode_latents(samples, chunk_size=chunk_size, overlap=chunk_overlap,
                                                                   callback=progress.callback)
            else:
                frames = decode_in_chunks(adapter.core_vae_decoder(vae), samples, chunk_size=chunk_size,
                                          overlap=chunk_overlap, callback=progress.callback)
        except Exception as exc:
            if not adapter.is_oom(exc):
                raise
            if model is not None:
                model.offload_all()
            adapter.soft_empty_cache()
            raise RuntimeError(f"Out of memory decoding {samples.shape[0]} frames with chunk_size {chunk_size}; "
                               "lower chunk_size (e.g. 2 or 1).") from exc
        if drop_reference_frame and latent.get("has_reference_frame", False):
            if frames.shape[0] < 2:
                raise ValueError("The latent holds only the reference frame; nothing is left after dropping it.")
            frames = frames[1:]
        return (frames, float(latent.get("fps", 15.0)))
