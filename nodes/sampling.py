"""Nodes: Load Motion Model (SVD-XT 1.1 + MimicMotion) and Pose-Guided Sampler.

Thin wrappers: they resolve files, choose device/dtype, convert ComfyUI images, validate, report progress and
turn out-of-memory into advice. The work is in ``pipelines/mimicmotion``.
"""
from __future__ import annotations

import logging

from ..pipelines import options
from ..pipelines.options import check_choice
from . import comfy_adapter as adapter
from . import sockets
from .model_check import check_model_input

logger = logging.getLogger(__name__)

SVD_FOLDER_DEFAULT = "stable-video-diffusion-img2vid-xt-1-1"
SVD_FILE_DEFAULT = "svd_xt_1_1.safetensors"
MIMICMOTION_DEFAULT = "MimicMotion_1-1.pth"
POSE_NET_INSIDE = "(inside checkpoint)"
MEMORY_MODES = list(options.MEMORY_MODES)
DEVICES = ["auto", "cpu"]
FUSION_WEIGHTS = list(options.FUSION_WEIGHT_SHAPES)
NOISE_MODES = list(options.NOISE_MODES)
SIGMA_SCHEDULES = list(options.SIGMA_SCHEDULES)
NOISE_DEVICES = list(options.NOISE_DEVICES)
ARITHMETIC_MODES = list(options.ARITHMETIC_MODES)


def svd_base_choices() -> list[str]:
    """Diffusers SVD folders (those with ``vae/config.json``) and single ``.safetensors`` checkpoints."""
    folders = adapter.list_model_dirs("diffusers", "vae/config.json")
    files = [f for f in adapter.list_model_files("checkpoints", [".safetensors"]) if "svd" in f.lower()]
    return (folders + files) or [SVD_FOLDER_DEFAULT, SVD_FILE_DEFAULT]


def checkpoint_choices() -> list[str]:
    return adapter.list_model_files("mimicmotion") or [MIMICMOTION_DEFAULT]


def manage_model_parts(model) -> None:
    """Give each part of a MOTIONGUIDE_MODEL (CLIP image encoder, VAE, PoseNet, UNet, and an attached geometry
    adapter) a handle from the adapter, once per module, so that inside ComfyUI the parts load through its memory
    manager (which frees other models first and may unload ours between runs) and outside it they are plain moves.
    Sequential offload still streams the UNet itself."""
    handles = getattr(model, "part_handles", None)
    if handles is None:
        return
    for name in model.part_names:
        module = model._module(name)
        if name not in handles or handles[name].module is not module:
            handles[name] = adapter.managed_model(module, model.device, model.offload_device,
                                                  label=f"MotionGuide {name}")


def base_model_id(model) -> str | None:
    """The MimicMotion version of a loaded model from its checkpoint's file name (None when it does not say)."""
    import re

    name = str(getattr(model, "sources", {}).get("checkpoint") or "").replace("\\", "/").rsplit("/", 1)[-1].lower()
    if re.search(r"1[-_.]1", name):
        return "mimicmotion-1.1"
    if re.search(r"1[-_.]0", name) or name in ("mimicmotion.pth", "mimicmotion.safetensors"):
        return "mimicmotion-1.0"
    return None


def geometry_guidance(model, geometry_adapter, guidance_maps, poses, strength, start, end):
    """The sampler's geometry-adapter module, or None; every mismatch between the adapter, the maps, the pose maps
    and the model is a ``ValueError`` naming both sides."""
    from ..pipelines.guidance.geometry_adapter import ADAPTER_PART, GeometryGuidance, check_compatible
    from ..pipelines.guidance.maps_bundle import adapter_inputs

    if geometry_adapter is None:
        if guidance_maps is not None:
            logger.warning("[MotionGuide] guidance_maps is connected but no geometry_adapter: the maps are ignored "
                           "(connect Load Geometry Adapter to use them).")
        model.detach_part(ADAPTER_PART)  # an earlier run's adapter leaves the device (nothing when none)
        return None
    config = getattr(geometry_adapter, "config", None)
    if config is None or not hasattr(geometry_adapter, "encoders"):
        raise ValueError(f"geometry_adapter must come from Load Geometry Adapter, got {type(geometry_adapter).__name__}.")
    source = f"The geometry adapter '{geometry_adapter.__dict__.get('source', 'connected')}'"
    needs_bundle = [m for m in config.maps if m != "skeleton"]
    if guidance_maps is None and needs_bundle:
        raise ValueError(f"{source} reads the maps {list(config.maps)}: connect Render SMPL Maps' guidance_maps output "
                         "(rendered from the same motion, with reference_motion connected so frame 0 is the reference).")
    bundle = guidance_maps if guidance_maps is not None else {
        "maps": {}, "frames": poses.shape[0], "width": poses.shape[-1], "height": poses.shape[-2],
        "semantic_palette": config.semantic_palette, "depth_normalisation": config.depth_normalisation,
        "reference_frame": True}
    maps = adapter_inputs(bundle, config, poses, source=source)
    check_compatible(config, maps, base_model=base_model_id(model), out_channels=model.unet.conv_in.out_channels,
                     source=source)
    return GeometryGuidance(geometry_adapter, maps, strength, start, end, model=model)


def resolve_svd_base(name: str):
    if name.lower().endswith(".safetensors"):
        return adapter.resolve_model_path("checkpoints", name)
    return adapter.resolve_model_path("diffusers", name)


class MotionGuideLoadModel:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "svd_base": (svd_base_choices(), {"tooltip": "SVD-XT 1.1: a diffusers folder in models/diffusers/ (vae, image_encoder, scheduler, feature_extractor) or the single svd_xt_1_1.safetensors in models/checkpoints/. Only its VAE and CLIP image encoder are used."}),
                "mimicmotion_checkpoint": (checkpoint_choices(), {"tooltip": "MimicMotion_1-1.pth (UNet + PoseNet) in models/mimicmotion/, or a safetensors conversion of it."}),
                "precision": (list(adapter.PRECISIONS), {"default": "auto", "tooltip": "auto = fp16 on a GPU, fp32 on the CPU. The reference runs fp16; bf16 for GPUs that prefer it."}),
                "memory_mode": (MEMORY_MODES, {"default": "keep_loaded", "tooltip": "keep_loaded: stay on the GPU between runs (fastest; ComfyUI may still unload it when another model needs the memory). offload_after_run: move to RAM after each run. sequential_offload: only the part in use (CLIP, VAE, PoseNet) sits on the GPU and the UNet streams through it block by block, for small GPUs (slower)."}),
            },
            "optional": {
                "pose_net_file": ([POSE_NET_INSIDE] + adapter.list_model_files("mimicmotion"), {"default": POSE_NET_INSIDE, "tooltip": "A separate PoseNet weight file, for UNet-only conversions of the checkpoint. Leave on '(inside checkpoint)' for MimicMotion_1-1.pth."}),
                "device": (DEVICES, {"default": "auto", "tooltip": "auto = ComfyUI's GPU; cpu works everywhere, slowly."}),
            },
        }

    RETURN_TYPES = (sockets.MOTIONGUIDE_MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("SVD VAE + CLIP and the MimicMotion UNet + PoseNet, with their device and memory policy.",)
    FUNCTION = "load"
    CATEGORY = "MotionGuide/loaders"
    DESCRIPTION = "Loads SVD-XT 1.1 (VAE, CLIP image encoder) and the MimicMotion UNet + PoseNet, checking every weight key."

    @classmethod
    def VALIDATE_INPUTS(cls, svd_base, mimicmotion_checkpoint):
        """Both files are checked when the workflow is queued (with every other missing model file listed)."""
        folders = ("checkpoints",) if str(svd_base).lower().endswith(".safetensors") else ("diffusers",)
        for keys, name in ((folders, svd_base), (("mimicmotion",), mimicmotion_checkpoint)):
            verdict = check_model_input(keys, name)
            if verdict is not True:
                return verdict
        return True

    def load(self, svd_base, mimicmotion_checkpoint, precision, memory_mode, pose_net_file=POSE_NET_INSIDE, device="auto"):
        import torch

        from ..pipelines.mimicmotion.loading import load_motion_model

        check_choice("memory_mode", memory_mode, MEMORY_MODES)
        svd_path = resolve_svd_base(svd_base)
        checkpoint = adapter.resolve_model_path("mimicmotion", mimicmotion_checkpoint)
        pose_path = None
        if pose_net_file and pose_net_file != POSE_NET_INSIDE:
            pose_path = adapter.resolve_model_path("mimicmotion", pose_net_file)
        torch_device = adapter.get_torch_device() if device == "auto" else torch.device(device)
        dtype = adapter.choose_dtype(precision, torch_device)
        model = load_motion_model(svd_path, checkpoint, dtype=dtype, device=torch_device, pose_net_file=pose_path,
                                  memory_mode=memory_mode, offload_device=adapter.offload_device())
        model.before_load = lambda size: adapter.free_memory(size, torch_device)
        manage_model_parts(model)
        logger.info("[MotionGuide] loaded %s + %s on %s as %s (%s)", svd_path.name, checkpoint.name, torch_device,
                    dtype, memory_mode)
        return (model,)


def _image_batch_to_uint8(images, name: str):
    from ..pipelines.mimicmotion.preprocess import image_to_uint8

    if images is None or images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] != 3:
        shape = None if images is None else list(images.shape)
        raise ValueError(f"{name} must be a non-empty IMAGE batch [frames, height, width, 3], got {shape}.")
    return image_to_uint8(images)


SEED_TOOLTIP = (
    "Seed of the single noise stream (the augmentation noise, then the latent noise). With noise_device = cpu the "
    "noise is the same on every machine, so the same seed, inputs and settings give the same video on any device up "
    "to float rounding: precision (fp16/bf16/fp32), the GPU model, attention kernels and unet_batch (batched kernels "
    "round differently, ~1e-3) change the last bits, which the steps can grow into small visible differences. With "
    "noise_device = model the noise itself depends on the device (on a GPU it matches the reference implementation's "
    "CUDA generator).")


class MotionGuideSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (sockets.MOTIONGUIDE_MODEL, {"tooltip": "From Load Motion Model."}),
                "reference_image": (sockets.IMAGE, {"tooltip": "The person to animate, at the working size (width and height multiples of 64; use Fit Reference Image). Only the first image is used."}),
                "pose_images": (sockets.IMAGE, {"tooltip": "Pose maps at the same size; frame 0 must be the reference image's own pose, then one map per output frame."}),
                "steps": (sockets.INT, {"default": 25, "min": 1, "max": 200, "step": 1, "tooltip": "Denoising steps (reference 25). Each step runs every tile."}),
                "cfg_min": (sockets.FLOAT, {"default": 2.0, "min": 0.0, "max": 20.0, "step": 0.1, "tooltip": "Guidance at the first frame; it ramps linearly to cfg_max at the last frame (reference 2.0)."}),
                "cfg_max": (sockets.FLOAT, {"default": 2.0, "min": 0.0, "max": 20.0, "step": 0.1, "tooltip": "Guidance at the last frame. With cfg_min and cfg_max both at 1 or below the unconditional pass is skipped (twice as fast, no guidance); when either is above 1 every frame gets its own value from the ramp."}),
                "seed": (sockets.INT, {"default": 42, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "step": 1, "control_after_generate": True, "tooltip": SEED_TOOLTIP}),
                "fps": (sockets.INT, {"default": 7, "min": 1, "max": 60, "step": 1, "tooltip": "Frame rate the model is conditioned on (it sees fps - 1). MimicMotion uses 7 whatever the video's rate."}),
                "motion_bucket": (sockets.INT, {"default": 127, "min": 0, "max": 1023, "step": 1, "tooltip": "SVD's motion amount (reference 127)."}),
                "noise_aug": (sockets.FLOAT, {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Noise added to the reference before encoding (reference 0). More lets the video drift from the reference."}),
                "tile_size": (sockets.INT, {"default": 72, "min": 2, "max": 128, "step": 1, "tooltip": "Frames per tile of progressive latent fusion. 72 = what MimicMotion 1.1 was trained with (reference); 16 (MimicMotion 1.0's length) is much lighter for small GPUs and CPUs but shows more artifacts with 1.1. Memory grows with it."}),
                "tile_overlap": (sockets.INT, {"default": 6, "min": 1, "max": 127, "step": 1, "tooltip": "Frames shared by neighbouring tiles, counting frame 0 (reference 6). Must be below tile_size."}),
            },
            "optional": {
                "video_fps": (sockets.FLOAT, {"default": 15.0, "min": 0.1, "max": 240.0, "step": 0.1, "tooltip": "Frame rate of the output video (the pose sequence's rate), carried in the LATENT to Decode Video."}),
                "fusion_weights": (FUSION_WEIGHTS, {"default": "triangle", "tooltip": "How tiles are blended: triangle (reference; edges count less) or flat (plain average)."}),
                "noise": (NOISE_MODES, {"default": "periodic", "tooltip": "periodic: one tile of noise repeated over the video (reference). independent: fresh noise per frame."}),
                "pose_strength": (sockets.FLOAT, {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "Multiplies the pose features (1 = reference)."}),
                "pose_start": (sockets.FLOAT, {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Fraction of the steps after which the pose starts to guide."}),
                "pose_end": (sockets.FLOAT, {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Fraction of the steps after which the pose stops guiding."}),
                "reference_strength": (sockets.FLOAT, {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "Multiplies the reference image's CLIP embedding (1 = reference)."}),
                "unet_batch": (sockets.INT, {"default": 1, "min": 1, "max": 64, "step": 1, "tooltip": "UNet passes per call: 1 = reference (least memory), 2 = both guidance passes of a tile at once, more = several tiles too. Faster on big GPUs; the same result up to float rounding (batched kernels differ at ~1e-3)."}),
                "sigma_schedule": (SIGMA_SCHEDULES, {"default": "karras", "tooltip": "karras (reference), exponential, or align_your_steps (good at ~10 steps)."}),
                "noise_device": (NOISE_DEVICES, {"default": "cpu", "tooltip": "Where the seed's noise is drawn. cpu: the same noise on any machine (same seed → same video up to float rounding). model: the model's device; on a GPU this reproduces the reference implementation's CUDA-generator noise (but differs between devices)."}),
                "arithmetic": (ARITHMETIC_MODES, {"default": "reference", "tooltip": "reference: noise, tile weights, fusion sums, guidance and the latents between steps in the model's precision, exactly as the reference implementation computes them. precise: all of these in fp32 (the UNet still runs in its precision) — better with bf16, where bf16 latents lose ~0.4% per step."}),
                "guidance_maps": (sockets.MOTIONGUIDE_GUIDANCE_MAPS, {"tooltip": "Render SMPL Maps' guidance_maps (depth, normal, body parts, mask), rendered from the same motion as the pose maps, at the same size, with reference_motion connected so frame 0 is the reference. Read only by a geometry_adapter."}),
                "geometry_adapter": (sockets.MOTIONGUIDE_GEOMETRY_ADAPTER, {"tooltip": "From Load Geometry Adapter: lets the model read guidance_maps besides the pose maps (its output is added to PoseNet's). Must be trained for this MimicMotion version and these maps. Unconnected = MimicMotion as before, bit for bit."}),
                "adapter_strength": (sockets.FLOAT, {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "Multiplies the geometry adapter's features (1 = as trained)."}),
                "adapter_start": (sockets.FLOAT, {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Fraction of the steps after which the geometry adapter starts to guide."}),
                "adapter_end": (sockets.FLOAT, {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Fraction of the steps after which the geometry adapter stops guiding."}),
                "dispose": (sockets.DISPOSE_GUIDANCE, {"tooltip": "Optional DisPose guidance (Prepare DisPose): its hybrid ControlNet adds motion-field and keypoint-correspondence residuals to every UNet call, both guidance passes, as DisPose does. Unconnected: plain MimicMotion."}),
                "dispose_strength": (sockets.FLOAT, {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "Multiplies DisPose's ControlNet residuals (1 = DisPose's controlnet_cond_scale)."}),
            },
        }

    RETURN_TYPES = (sockets.LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Video latents [frames, 4, H/8, W/8] in raw VAE space; frame 0 is the reference frame. Decode with Decode Video.",)
    FUNCTION = "sample"
    CATEGORY = "MotionGuide/sampling"
    DESCRIPTION = "Animates the reference image along the pose maps with SVD + MimicMotion, any length via progressive latent fusion."

    def sample(self, model, reference_image, pose_images, steps, cfg_min, cfg_max, seed, fps, motion_bucket, noise_aug,
               tile_size, tile_overlap, video_fps=15.0, fusion_weights="triangle", noise="periodic", pose_strength=1.0,
               pose_start=0.0, pose_end=1.0, reference_strength=1.0, unet_batch=1, sigma_schedule="karras",
               noise_device="cpu", arithmetic="reference", guidance_maps=None, geometry_adapter=None,
               adapter_strength=1.0, adapter_start=0.0, adapter_end=1.0, dispose=None, dispose_strength=1.0):
        from ..pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions

        reference = _image_batch_to_uint8(reference_image, "reference_image")
        if reference.shape[0] > 1:
            logger.warning("[MotionGuide] reference_image has %d images; using the first.", reference.shape[0])
        reference = reference[:1]
        poses = _image_batch_to_uint8(pose_images, "pose_images")
        options = SamplerOptions(fusion_weights=fusion_weights, noise=noise, pose_strength=pose_strength,
                                 pose_start=pose_start, pose_end=pose_end, reference_strength=reference_strength,
                                 unet_batch=unet_batch, sigma_schedule=sigma_schedule, noise_device=noise_device,
                                 arithmetic=arithmetic)
        checkpoint = str(getattr(model, "sources", {}).get("checkpoint") or "")
        if "1-1" in checkpoint and tile_size != 72 and poses.shape[0] > tile_size:
            logger.info("[MotionGuide] MimicMotion 1.1 was trained with 72-frame tiles; tile_size %d is faster but "
                        "may show more artifacts.", tile_size)
        geometry = geometry_guidance(model, geometry_adapter, guidance_maps, poses, adapter_strength, adapter_start,
                                     adapter_end)
        guidance = ([geometry] if geometry is not None else []) + _dispose_guidance(model, dispose, dispose_strength,
                                                                                      reference)
        manage_model_parts(model)
        progress = adapter.Progress(steps, "MotionGuideSampler")  # the sampler's callback brings steps × tiles
        pipe = MimicMotionPipeline(model)
        try:
            out = pipe(reference, poses, num_inference_steps=steps, min_guidance_scale=cfg_min,
                       max_guidance_scale=cfg_max, fps=fps, motion_bucket_id=motion_bucket,
                       noise_aug_strength=noise_aug, tile_size=tile_size, tile_overlap=tile_overlap, seed=seed,
                       options=options, guidance=guidance or None, callback=progress.callback,
                       on_step=adapter.latent_preview_callback(progress, model.device))
        except Exception as exc:
            if not adapter.is_oom(exc):
                raise
            model.offload_all()
            adapter.soft_empty_cache()
            height, width = reference.shape[-2:]
            raise RuntimeError(
                f"Out of memory sampling {poses.shape[0]} frames at {width}×{height} with tile_size {tile_size} and "
                f"unet_batch {unet_batch}. Lower unet_batch to 1 first, then tile_size (e.g. 16), or set the loader's "
                "memory_mode to sequential_offload and precision to fp16, or use a smaller resolution.") from exc
        latent = {"samples": out.latents, "fps": float(video_fps), "condition_fps": int(fps), "has_reference_frame": True}
        return (latent,)


def _dispose_guidance(model, dispose, strength: float, reference) -> list:
    """``[DisPoseGuidance]`` for a connected ``dispose`` input (its ControlNet attached to the model's parts, so the
    memory mode moves or streams it like the UNet), else ``[]`` (the sampler is then untouched, and an earlier
    run's ControlNet leaves the device)."""
    from ..pipelines.dispose.guidance import CONTROLNET_PART, DisPoseGuidance

    if dispose is None:
        model.detach_part(CONTROLNET_PART)  # nothing when none is attached
        return []

    hints = dispose.hints
    height, width = reference.shape[-2:]
    if (hints.width, hints.height) != (width, height):
        raise ValueError(f"dispose was prepared at {hints.width}×{hints.height} but reference_image is {width}×{height}: "
                         "give Prepare DisPose the same reference image as the sampler.")
    model.attach_part(CONTROLNET_PART, dispose.controlnet, streamed=True)
    module = DisPoseGuidance(model, dispose.controlnet, hints.keypoints, hints.dense_flow, hints.traj_flow,
                             hints.point_features, strength=strength)
    return [module]
