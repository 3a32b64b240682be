"""MimicMotion's pose-guided SVD sampler with progressive latent fusion (docs/architecture.md, *Reference
algorithms*), diffusers-style.

Default options reproduce the MimicMotion reference: CLIP + VAE conditioning of the reference image, added time
ids ``[fps-1, motion_bucket, aug]``, Karras/Euler v-prediction, tiles that all contain frame 0, triangular fusion
of the tiles' v-predictions, per-frame linear CFG with separate unconditional (zero CLIP, zero reference latent,
no pose) and conditional (pose added after ``conv_in``) passes, periodic noise from one generator stream, and the
reference's arithmetic: on its fp16 path the round trip of the reference image, the noise, tile weights,
accumulators, guidance and the latents between steps are all float16 (``arithmetic="precise"`` keeps them float32).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..guidance.hook import GuidanceModule, UNetCall, UNetResidualHooks, sum_residuals
from ..options import ARITHMETIC_MODES, NOISE_DEVICES, NOISE_MODES, check_choice
from . import schedule as sched
from .decode import decode_latents
from .loading import MotionModel
from .pose_guidance import PoseGuidance
from .preprocess import clip_input, to_unit_range, uint8_round_trip
from .tiles import WEIGHT_SHAPES, plan_tiles, tile_weights_tensor

logger = logging.getLogger(__name__)

POSE_CACHE_PLACES = ("auto", "device", "cpu")


@dataclass
class SamplerOptions:
    """Choices beyond the reference; the defaults are the reference behaviour.

    Args:
        fusion_weights (`str`, defaults to "triangle"): tile position weights, "triangle" (reference) or "flat".
        noise (`str`, defaults to "periodic"): "periodic" repeats one tile-long noise draw over the video
            (reference); "independent" draws every frame's noise.
        pose_strength (`float`, defaults to 1.0): multiplies the PoseNet features.
        pose_start / pose_end (`float`, defaults to 0.0 / 1.0): fraction of the steps during which the pose is
            applied (step ``i`` uses the pose when ``start·steps <= i < end·steps``).
        reference_strength (`float`, defaults to 1.0): multiplies the CLIP embedding of the conditional pass.
        unet_batch (`int`, defaults to 1): passes per UNet call. 1 = the reference's separate passes (least
            memory); 2 = both CFG passes of a tile together; more also batches tiles. Faster on big GPUs.
        sigma_schedule (`str`, defaults to "karras"): "karras" (reference), "exponential" or "align_your_steps".
        pose_cache (`str`, defaults to "auto"): where the once-per-run PoseNet features (for MimicMotion's UNet the
            128 channels before ``final_proj``, not its 320-channel output) live: "device", "cpu", or "auto" (the device when the video is one tile, else pinned CPU
            memory, so device memory grows only with the latents; each UNet call then copies one tile's features over
            and projects them to the UNet's width).
        noise_device (`str`, defaults to "cpu"): where the seed's generator runs. "cpu": the same noise (so the same
            video, up to float rounding) on any device; "model": the model's device, which on a GPU reproduces the
            reference implementation's CUDA-generator numbers.
        arithmetic (`str`, defaults to "reference"): "reference" draws the latent noise, builds the tile weights and
            guidance, accumulates the fused prediction and keeps the latents between steps in the model's dtype, as
            the reference does on its fp16 path; "precise" keeps all of these in float32 (the model still runs in its
            dtype): better for bf16, where latents stored in bf16 lose ~0.4% per step.
    """

    fusion_weights: str = "triangle"
    noise: str = "periodic"
    pose_strength: float = 1.0
    pose_start: float = 0.0
    pose_end: float = 1.0
    reference_strength: float = 1.0
    unet_batch: int = 1
    sigma_schedule: str = "karras"
    pose_cache: str = "auto"
    noise_device: str = "cpu"
    arithmetic: str = "reference"

    def validate(self) -> None:
        check_choice("fusion_weights", self.fusion_weights, WEIGHT_SHAPES)
        check_choice("noise", self.noise, NOISE_MODES)
        check_choice("sigma_schedule", self.sigma_schedule, sched.SIGMA_SCHEDULES)
        check_choice("noise_device", self.noise_device, NOISE_DEVICES)
        check_choice("arithmetic", self.arithmetic, ARITHMETIC_MODES)
        check_choice("pose_cache", self.pose_cache, POSE_CACHE_PLACES)
        if not 0.0 <= self.pose_start <= self.pose_end <= 1.0:
            raise ValueError(f"Need 0 <= pose_start <= pose_end <= 1, got {self.pose_start} and {self.pose_end}.")
        if self.unet_batch < 1:
            raise ValueError(f"unet_batch must be at least 1, got {self.unet_batch}.")


@dataclass
class SamplerOutput:
    """``latents``: ``[F,4,h,w]`` float32 on the CPU in raw VAE space (sampled / scaling factor); frame 0 is the
    reference-pose frame."""

    latents: torch.Tensor
    tiles: list = field(default_factory=list)
    sigmas: torch.Tensor | None = None
    unet_calls: int = 0


@dataclass
class _Pass:
    tile: int
    cond: bool


class MimicMotionPipeline:
    """Runs a :class:`~.loading.MotionModel`; one method per stage, ``__call__`` in numbered sections."""

    def __init__(self, model: MotionModel):
        self.model = model

    # -- stages ------------------------------------------------------------------------------------------------

    def check_inputs(self, reference: torch.Tensor, poses: torch.Tensor, steps: int, tile_size: int, overlap: int,
                     options: SamplerOptions) -> list[list[int]]:
        """Raise a clear ``ValueError`` for inputs the sampler cannot use; return the tiles (:func:`.tiles.plan_tiles`),
        planned once per run here."""
        if reference.dtype != torch.uint8 or reference.ndim != 4 or reference.shape[:2] != (1, 3):
            raise ValueError(f"reference must be uint8 [1,3,H,W], got {reference.dtype} {list(reference.shape)}.")
        if poses.dtype != torch.uint8 or poses.ndim != 4 or poses.shape[1] != 3:
            raise ValueError(f"poses must be uint8 [F,3,H,W], got {poses.dtype} {list(poses.shape)}.")
        if poses.shape[0] < 2:
            raise ValueError(f"Need at least 2 pose frames (frame 0 = the reference pose, then the motion), got {poses.shape[0]}.")
        if poses.shape[-2:] != reference.shape[-2:]:
            raise ValueError(f"pose_images are {poses.shape[-1]}×{poses.shape[-2]} but reference_image is "
                             f"{reference.shape[-1]}×{reference.shape[-2]}: draw the poses at the reference size.")
        factor = self.model.total_downsampling
        height, width = reference.shape[-2:]
        if height % factor or width % factor:
            raise ValueError(f"Width and height must be multiples of {factor} for this model, got {width}×{height}; "
                             f"resize the reference (Fit Reference Image) and draw the poses at that size.")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}.")
        tiles = plan_tiles(poses.shape[0], tile_size, overlap)  # raises on a bad tile size / overlap
        options.validate()
        return tiles

    @torch.no_grad()
    def _encode_image(self, reference: torch.Tensor) -> torch.Tensor:
        """CLIP ``image_embeds`` of the reference, ``[1,1,D]`` in the model dtype on the device."""
        m = self.model
        size = int(m.image_encoder.config.image_size)
        pixels = clip_input(reference, size, m.image_mean, m.image_std).to(m.device, m.dtype)
        with m.use("image_encoder"):
            embeds = m.image_encoder(pixel_values=pixels).image_embeds
        return embeds.unsqueeze(1)

    @torch.no_grad()
    def _encode_vae_image(self, reference: torch.Tensor, noise: torch.Tensor, noise_aug_strength: float) -> torch.Tensor:
        """``vae.encode(img + aug·noise).latent_dist.mode()`` without scaling, ``[1,4,h,w]``.

        The image has channels-last strides, as the reference's (diffusers' image processor builds it from an HWC
        array): the VAE's convolutions round differently on it, by one fp16 ulp in the latent, which grows to ~0.5% of
        the sampled latents on the fp16 path."""
        m = self.model
        image = to_unit_range(reference).contiguous(memory_format=torch.channels_last)
        image = image + noise_aug_strength * noise  # fp32, like the reference; keeps the image's strides
        with m.use("vae"):
            return m.vae.encode(image.to(m.device, m.dtype)).latent_dist.mode()

    def _get_add_time_ids(self, fps: int, motion_bucket_id: int, noise_aug_strength: float) -> torch.Tensor:
        """``[[fps-1, motion_bucket_id, noise_aug]]`` (the reference passes fps 7 → 6)."""
        unet = self.model.unet
        ids = [fps - 1, motion_bucket_id, noise_aug_strength]
        expected = unet.add_embedding.linear_1.in_features
        passed = unet.config.addition_time_embed_dim * len(ids)
        if expected != passed:
            raise ValueError(f"The UNet expects added time embeddings of size {expected}, but {len(ids)} ids × "
                             f"addition_time_embed_dim {unet.config.addition_time_embed_dim} = {passed}; check "
                             "unet/config.json (projection_class_embeddings_input_dim).")
        return torch.tensor([ids], dtype=self.model.dtype, device=self.model.device)

    @staticmethod
    def prepare_latents(generator: torch.Generator, num_frames: int, period: int, latent_shape: tuple[int, int, int],
                        init_scale: float, independent: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Initial latents ``[1,F,4,h,w]`` in ``dtype`` on the generator's device: one draw of ``period`` frames
        repeated over the video (frame ``f`` gets draw ``f mod period``), or ``F`` independent frames; × ``init_scale``
        (the reference draws in its default dtype and multiplies by a float32 scalar, staying in that dtype)."""
        count = num_frames if independent else period
        draw = torch.randn((1, count, *latent_shape), generator=generator, dtype=dtype, device=generator.device)
        index = torch.arange(num_frames, device=generator.device) % count
        return draw[:, index] * init_scale

    @staticmethod
    def guidance_per_frame(num_frames: int, min_guidance: float, max_guidance: float,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Per-frame guidance scale ``linspace(min, max, F)`` over the whole video, ``[F]`` in ``dtype`` (the reference
        builds it in its default dtype)."""
        return torch.linspace(min_guidance, max_guidance, num_frames, dtype=dtype)

    def decode_latents(self, latents: torch.Tensor, chunk_size: int = 8, overlap: int = 0,
                       callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Raw-space latents ``[F,4,h,w]`` → frames ``[F,H,W,3]`` 0..1 on the CPU (all frames, frame 0 included)."""
        m = self.model
        try:
            with m.use("vae"):
                return decode_latents(m.vae, latents, device=m.device, dtype=m.dtype, chunk_size=chunk_size,
                                      overlap=overlap, callback=callback)
        finally:
            m.end_run()

    # -- the run -----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, reference: torch.Tensor, poses: torch.Tensor, *, num_inference_steps: int = 25,
                 min_guidance_scale: float = 2.0, max_guidance_scale: float = 2.0, fps: int = 7,
                 motion_bucket_id: int = 127, noise_aug_strength: float = 0.0, tile_size: int = 72,
                 tile_overlap: int = 6, seed: int = 42, options: SamplerOptions | None = None,
                 guidance: list[GuidanceModule] | None = None,
                 callback: Callable[[int, int], None] | None = None,
                 on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> SamplerOutput:
        """Sample a video latent.

        Args:
            reference (`torch.Tensor`): uint8 ``[1,3,H,W]`` reference image, already at the working size.
            poses (`torch.Tensor`): uint8 ``[F,3,H,W]`` pose maps; frame 0 is the reference image's pose.
            num_inference_steps (`int`, defaults to 25): Euler steps; each runs every tile.
            min_guidance_scale / max_guidance_scale (`float`, defaults to 2.0): per-frame CFG ramps linearly from min
                (first frame) to max (last). Guidance runs when either is above 1 (frames at g <= 1 then get the
                conditional prediction plus g-1 times the guidance term); with both <= 1 the unconditional pass is
                skipped (pure conditional).
            fps (`int`, defaults to 7): conditioning fps; the UNet sees ``fps - 1``.
            motion_bucket_id (`int`, defaults to 127): SVD's motion amount.
            noise_aug_strength (`float`, defaults to 0.0): noise added to the reference before VAE encoding.
            tile_size / tile_overlap (`int`, defaults to 72 / 6): progressive fusion tiles (MimicMotion 1.1 was
                trained with 72; 1.0 with 16). Bigger tiles need more memory; fewer frames than a tile gives one
                shorter tile.
            seed (`int`): seeds the single generator (aug noise first, then the latent noise).
            guidance (`list[GuidanceModule]`, *optional*): more guidance besides the pose maps (geometry adapter,
                DisPose), added to the same UNet calls through :mod:`..guidance.hook`; PoseNet is always first.
            callback (`Callable[[int, int], None]`, *optional*): ``(tiles done, steps × tiles)``; may raise to cancel.
            on_step (`Callable[[int, int, torch.Tensor], None]`, *optional*): ``(steps done, steps, x0)`` after each
                step, with the fused prediction of the clean latents ``[F,4,h,w]`` (scaled latent space), for previews.
        """
        m = self.model
        options = options or SamplerOptions()
        # 1. check inputs
        tiles = self.check_inputs(reference, poses, num_inference_steps, tile_size, tile_overlap, options)
        num_frames = poses.shape[0]
        height, width = reference.shape[-2:]
        modules = [PoseGuidance(m, poses, options.pose_strength, options.pose_start, options.pose_end),
                   *(guidance or ())]
        for module in modules[1:]:
            module.check(num_frames, height, width)
        period = len(tiles[0])
        # the reference decides on max(linspace) > 1; guidance above 1 anywhere in the video needs both passes
        do_cfg = max(min_guidance_scale, max_guidance_scale) > 1.0
        work = m.dtype if options.arithmetic == "reference" else torch.float32
        try:
            # 2. the reference image: the reference's uint8 → [-1,1] → uint8 trip in the model's precision, then CLIP
            # and VAE
            reference = uint8_round_trip(reference, m.dtype)
            image_embeds = self._encode_image(reference) * options.reference_strength
            noise_device = torch.device("cpu") if options.noise_device == "cpu" else m.device
            generator = torch.Generator(device=noise_device).manual_seed(int(seed))
            aug_noise = torch.randn(reference.shape, generator=generator, dtype=torch.float32, device=noise_device)
            ref_latent = self._encode_vae_image(reference, aug_noise.cpu(), noise_aug_strength)  # [1,4,h,w]
            if callback is not None:  # a cancel point: on a CPU the encoders alone take a while at 576×1024
                callback(0, num_inference_steps * len(tiles))
            # 3. added time ids
            added_time_ids = self._get_add_time_ids(fps, motion_bucket_id, noise_aug_strength)
            # 4. sigmas and timesteps (the reference rounds timesteps to its default dtype)
            sigmas = sched.make_sigmas(num_inference_steps, options.sigma_schedule,
                                       float(m.scheduler_config.get("sigma_min", 0.002)),
                                       float(m.scheduler_config.get("sigma_max", 700.0)))
            timesteps = sched.sigma_to_timestep(sigmas).to(work)
            # 5. initial latents from the same generator stream
            latent_shape = (4, height // m.vae_scale_factor, width // m.vae_scale_factor)
            latents = self.prepare_latents(generator, num_frames, period, latent_shape,
                                           sched.initial_noise_scale(float(sigmas[0])), options.noise == "independent",
                                           dtype=work)
            latents = latents[0].to(m.device)  # [F,4,h,w]
            # 6. per-frame guidance and tile weights
            cfg_scale = self.guidance_per_frame(num_frames, min_guidance_scale, max_guidance_scale, work).to(m.device)
            weights = tile_weights_tensor(period, options.fusion_weights, work).to(m.device)
            # 7. guidance features (PoseNet and any other module), once per run
            place = self._pose_cache_place(options.pose_cache, len(tiles))
            for module in modules:
                module.prepare(m.device, m.dtype, place)
                if callback is not None:
                    callback(0, num_inference_steps * len(tiles))
            # 8. denoising loop
            latents, unet_calls = self._denoise(latents, ref_latent, image_embeds, added_time_ids, modules, tiles,
                                                weights, cfg_scale, sigmas, timesteps, do_cfg, options, callback,
                                                on_step)
            # the reference decodes 1/scaling_factor · latents, computed in the latents' dtype
            raw = (latents * (1.0 / m.scaling_factor)).float().cpu()
            return SamplerOutput(latents=raw, tiles=tiles, sigmas=sigmas, unet_calls=unet_calls)
        finally:
            for module in modules:
                module.release()
            m.end_run()

    def _pose_cache_place(self, place: str, num_tiles: int) -> torch.device:
        m = self.model
        if place == "device" or m.device.type == "cpu":
            return m.device
        if place == "cpu" or num_tiles > 1:
            return torch.device("cpu")
        return m.device

    def _denoise(self, latents, ref_latent, image_embeds, added_time_ids, modules, tiles, weights, cfg_scale,
                 sigmas, timesteps, do_cfg, options, callback, on_step=None):
        """The reference's loop, with its arithmetic in ``weights.dtype`` (the model dtype by default): per step, per
        tile, ``acc[tile] += out·w`` and ``count[tile] += w``; ``acc / count``; ``u + g·(c − u)``; one Euler step whose
        result is cast back to that dtype. Passes may be batched (``unet_batch``); the sums stay in tile order."""
        m = self.model
        work = weights.dtype
        steps = len(timesteps)
        num_frames = latents.shape[0]
        period = len(tiles[0])
        zeros_latent = torch.zeros_like(ref_latent)
        zeros_embeds = torch.zeros_like(image_embeds)
        tile_index = [torch.tensor(t, device=m.device) for t in tiles]
        passes = [_Pass(i, cond) for i in range(len(tiles)) for cond in ((False, True) if do_cfg else (True,))]
        groups = [passes[i:i + options.unet_batch] for i in range(0, len(passes), options.unet_batch)]
        total = steps * len(tiles)
        unet_calls = 0
        parts = dict.fromkeys(part for module in modules if any(module.active(i, steps) for i in range(steps))
                              for part in module.parts())
        done = [0]  # UNet passes' tiles reported so far: cancel points inside a UNet call repeat it
        blocks = [b for b in (*getattr(m.unet, "down_blocks", ()), getattr(m.unet, "mid_block", None),
                              *getattr(m.unet, "up_blocks", ())) if isinstance(b, torch.nn.Module)]
        # one UNet call at 576×1024 takes minutes on a CPU: Cancel is answered between its blocks, not after it
        cancel_points = [b.register_forward_pre_hook(lambda *_: callback(done[0], total)) for b in blocks
                         if callback is not None]
        with m.use("unet", *parts), UNetResidualHooks(m.unet) as hooks, _removed_at_exit(cancel_points):
            for i in range(steps):
                sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
                scaled = (latents / sched.input_divisor(sigma).to(m.device)).to(m.dtype)  # [F,4,h,w]
                acc = {True: torch.zeros(latents.shape, device=m.device, dtype=work)}
                if do_cfg:
                    acc[False] = torch.zeros_like(acc[True])
                count = torch.zeros(num_frames, device=m.device, dtype=work)
                tiles_done = 0
                for group in groups:
                    samples, embeds = [], []
                    for p in group:
                        idx = tile_index[p.tile]
                        cond_latent = (ref_latent if p.cond else zeros_latent).expand(period, -1, -1, -1)
                        samples.append(torch.cat([scaled[idx], cond_latent], dim=1))  # [T,8,h,w]: [noisy | ref]
                        embeds.append(image_embeds if p.cond else zeros_embeds)
                    batch = len(group)
                    call = UNetCall(i, steps, torch.stack(samples), timesteps[i].to(m.device), torch.cat(embeds),
                                    added_time_ids.expand(batch, -1), [tile_index[p.tile] for p in group],
                                    [p.cond for p in group])
                    hooks.residuals = sum_residuals(modules, call)  # [B·T,...] or None
                    out = m.unet(call.sample, call.timestep, encoder_hidden_states=call.encoder_hidden_states,
                                 added_time_ids=call.added_time_ids, return_dict=False)[0]  # [B,T,4,h,w]
                    unet_calls += 1
                    for j, p in enumerate(group):
                        idx = tile_index[p.tile]
                        acc[p.cond][idx] += out[j].to(work) * weights.view(-1, 1, 1, 1)
                        if p.cond:
                            count[idx] += weights
                            tiles_done += 1
                    hooks.residuals = None
                    if callback is not None:
                        done[0] = i * len(tiles) + tiles_done
                        callback(done[0], total)
                # fuse, guide, step
                norm = count.view(-1, 1, 1, 1)
                v_pred = acc[True].div_(norm)
                if do_cfg:
                    v_uncond = acc[False].div_(norm)
                    v_pred = v_uncond + cfg_scale.view(-1, 1, 1, 1) * (v_pred - v_uncond)
                if on_step is not None:
                    on_step(i + 1, steps, sched.predicted_x0(latents, v_pred, sigma))
                latents = sched.euler_v_step(latents, v_pred, sigma, sigma_next)
        return latents, unet_calls


@contextlib.contextmanager
def _removed_at_exit(handles):
    """Remove the given torch hook handles when the block ends, however it ends."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
