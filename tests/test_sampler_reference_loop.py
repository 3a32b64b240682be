"""The sampler against a literal loop written the way the MimicMotion reference computes a long video
(docs/architecture.md, *Reference algorithms*),
on the tiny UNet, in fp32 and fp16: several tiles with a tail tile, triangle weights, per-frame weight sums,
separate unconditional / conditional passes, per-frame CFG, diffusers' Euler scheduler, and the reference's
default-dtype arithmetic (it sets ``torch.set_default_dtype(torch.float16)``, which this loop does too).
Also: PoseNet runs once per run, and the tiles' weights really matter (flat weights give another video).

The loop below is written independently of ``pipelines/mimicmotion`` and shares nothing with it but the model.
"""
import math

import pytest
import torch
from torch import nn

from motionguide.pipelines.mimicmotion.loading import load_motion_model
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions

H, W = 32, 32  # the tiny models' smallest size (total downsampling 16): keeps the fp16 CPU runs short
FRAMES, TILE, OVERLAP = 7, 4, 2  # tiles [0,1,2,3] [0,3,4,5] + the tail tile [0,4,5,6]


@pytest.fixture(scope="module")
def models(tiny_svd_dir, tiny_mimicmotion_path):
    return {dtype: load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=dtype, device="cpu")
            for dtype in (torch.float32, torch.float16)}


def inputs(seed=11):
    g = torch.Generator().manual_seed(seed)
    reference = (torch.rand(1, 3, H, W, generator=g) * 255).to(torch.uint8)
    poses = (torch.rand(FRAMES, 3, H, W, generator=g) * 255).to(torch.uint8)
    return reference, poses


class PoseAfterConvIn(nn.Module):
    """``conv_in`` followed by ``+ pose_latents`` when set: what the reference's UNet copy does."""

    def __init__(self, conv):
        super().__init__()
        self.conv, self.pose = conv, None

    def forward(self, x):
        y = self.conv(x)
        return y if self.pose is None else y + self.pose


def literal_reference_loop(model, reference_u8, poses_u8, *, steps, g_min, g_max, seed, tile, overlap, device="cpu"):
    """Returns the final latents ``[F,4,h,w]`` divided by the scaling factor, in the default dtype's arithmetic
    (on CPU, float32 on the CPU; the generator lives on ``device``, as the reference's does)."""
    from diffusers import EulerDiscreteScheduler
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
    from PIL import Image

    dtype = model.dtype
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # as the reference's main() does
    conv_in = model.unet.conv_in
    hook = PoseAfterConvIn(conv_in)
    model.unet.conv_in = hook
    try:
        n = poses_u8.shape[0]
        # inference.py: pixels / 127.5 - 1 in the default dtype, then back to uint8 (truncating) for the PIL image
        image_pixels = reference_u8 / 127.5 - 1
        image_u8 = ((image_pixels + 1.0) * 127.5).to(torch.uint8)
        pose_pixels = (poses_u8 / 127.5 - 1).to(device)
        # CLIP: float32 resize of the [-1,1] image, CLIP normalisation, encoder in the model dtype
        x = image_u8.to(torch.float32) / 255.0
        small = (_resize_with_antialiasing(x * 2.0 - 1.0, (32, 32)) + 1.0) / 2.0
        mean = torch.tensor(model.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(model.image_std, dtype=torch.float32).view(1, 3, 1, 1)
        embeds = model.image_encoder(pixel_values=((small - mean) / std).to(device, dtype)).image_embeds.unsqueeze(1)
        negative_embeds = torch.zeros_like(embeds)
        # one generator: augmentation noise (float32, like the processed image), then the latent noise
        generator = torch.Generator(device=device).manual_seed(seed)
        # the VAE's input comes from diffusers' image processor (PIL → HWC numpy → tensor), so it has channels-last
        # strides, and the VAE's convolutions round differently on such a tensor (one fp16 ulp in the latent)
        pil = Image.fromarray(image_u8[0].permute(1, 2, 0).cpu().numpy())
        processed = VaeImageProcessor(vae_scale_factor=8).preprocess(pil, height=H, width=W).to(device)
        assert torch.equal(processed.cpu(), x * 2.0 - 1.0) and processed.is_contiguous(memory_format=torch.channels_last)
        aug = torch.randn(processed.shape, generator=generator, dtype=processed.dtype, device=device)
        image_latent = model.vae.encode((processed + 0.0 * aug).to(dtype)).latent_dist.mode().to(dtype)
        image_latents = torch.cat([torch.zeros_like(image_latent), image_latent]).unsqueeze(1).repeat(1, n, 1, 1, 1)
        time_ids = torch.tensor([[6, 127, 0.0]], dtype=dtype, device=device).repeat(2, 1)
        scheduler = EulerDiscreteScheduler.from_config(model.scheduler_config)
        scheduler.set_timesteps(steps, device=device)
        latents = torch.randn((1, tile, 4, H // 8, W // 8), generator=generator, dtype=dtype, device=device)
        latents = latents * scheduler.init_noise_sigma
        latents = latents.repeat(1, n // tile + 1, 1, 1, 1)[:, :n]
        guidance = torch.linspace(g_min, g_max, n).unsqueeze(0).to(device, dtype).view(1, n, 1, 1, 1)
        # the tile plan, written out: every tile starts with frame 0; a tail tile covers the end
        plan = []
        for start in range(0, n - tile + 1, tile - overlap):
            plan.append([0] + list(range(start + 1, min(start + tile, n))))
        if plan[-1][-1] < n - 1:
            plan.append([0] + list(range(n - tile + 1, n)))
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
            model_in = torch.cat([model_in, image_latents], dim=2)
            pred = torch.zeros_like(image_latents)
            counts = image_latents.new_zeros((n,))
            weight = (torch.arange(tile, device=device) + 0.5) * 2.0 / tile
            weight = torch.minimum(weight, 2 - weight)
            for frames in plan:
                pose = model.pose_net(pose_pixels[frames])
                hook.pose = None
                out = model.unet(model_in[:1, frames], t, encoder_hidden_states=negative_embeds,
                                 added_time_ids=time_ids[:1], return_dict=False)[0]
                pred[:1, frames] += out * weight[:, None, None, None]
                hook.pose = pose
                out = model.unet(model_in[1:, frames], t, encoder_hidden_states=embeds,
                                 added_time_ids=time_ids[1:], return_dict=False)[0]
                pred[1:, frames] += out * weight[:, None, None, None]
                hook.pose = None
                counts[frames] += weight
            pred.div_(counts[:, None, None, None])
            uncond, cond = pred.chunk(2)
            latents = scheduler.step(uncond + guidance * (cond - uncond), t, latents).prev_sample
        return (1 / model.scaling_factor * latents)[0].float().cpu(), plan
    finally:
        model.unet.conv_in = conv_in
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@torch.no_grad()
def test_multi_tile_run_equals_the_literal_reference_loop(models, dtype):
    model = models[dtype]
    reference, poses = inputs()
    steps = 2 if dtype == torch.float16 else 1  # fp16: the latents between steps are fp16 too
    kw = dict(steps=steps, g_min=1.5, g_max=3.0, seed=7)
    expected, plan = literal_reference_loop(model, reference, poses, tile=TILE, overlap=OVERLAP, **kw)
    assert plan == [[0, 1, 2, 3], [0, 3, 4, 5], [0, 4, 5, 6]]
    timesteps = []
    handle = model.unet.register_forward_pre_hook(lambda m, a: timesteps.append(a[1].dtype))
    pipe = MimicMotionPipeline(model)
    try:
        out = pipe(reference, poses, num_inference_steps=steps, min_guidance_scale=1.5, max_guidance_scale=3.0, seed=7,
                   tile_size=TILE, tile_overlap=OVERLAP)
    finally:
        handle.remove()
    assert out.tiles == plan and out.unet_calls == steps * 3 * 2
    assert set(timesteps) == {dtype}  # fp16: the reference's rounded timesteps reach the UNet
    assert torch.isfinite(out.latents).all()
    # same operations in the same order and dtype: equal to the last bit (fp16 and fp32 alike)
    torch.testing.assert_close(out.latents, expected, rtol=0, atol=0)
    if dtype == torch.float32:  # the fusion weights matter: flat weights move the frames several tiles share
        flat = pipe(reference, poses, num_inference_steps=steps, min_guidance_scale=1.5, max_guidance_scale=3.0, seed=7,
                    tile_size=TILE, tile_overlap=OVERLAP, options=SamplerOptions(fusion_weights="flat"))
        shared = [0, 3, 4, 5]
        assert float((flat.latents[shared] - expected[shared]).abs().max()) > 1e-2


@torch.no_grad()
def test_precise_arithmetic_stays_close_to_fp32(models):
    """fp16 model, precise arithmetic: fusion/guidance/latents in fp32 give another video that stays as close to the
    fp32 run as the reference arithmetic does. On the tiny models the fp16 UNet's rounding dominates both errors, so
    which one is closer is a coin flip (12 runs, input seeds 11–13, 2 and 4 steps, 1 and 2 threads: precise closer
    in 7, error ratio precise/reference 0.79–1.15); a broken precise mode would be far off."""
    reference, poses = inputs()
    reference, poses = reference, poses[:TILE]  # one tile: what changes is the arithmetic between steps
    kw = dict(num_inference_steps=2, seed=7, tile_size=TILE, tile_overlap=OVERLAP)
    fp32 = MimicMotionPipeline(models[torch.float32])(reference, poses, **kw).latents
    pipe16 = MimicMotionPipeline(models[torch.float16])
    reference16 = pipe16(reference, poses, **kw).latents
    precise16 = pipe16(reference, poses, **kw, options=SamplerOptions(arithmetic="precise")).latents
    err_ref = float((reference16 - fp32).abs().mean())
    err_precise = float((precise16 - fp32).abs().mean())
    assert torch.isfinite(precise16).all() and err_precise > 0
    assert not torch.equal(precise16, reference16)
    assert err_precise < 1.5 * err_ref, (err_precise, err_ref)


@torch.no_grad()
def test_posenet_runs_once_per_run(models):
    model = models[torch.float32]
    reference, poses = inputs()
    conv_frames, proj_frames = [], []
    h1 = model.pose_net.conv_layers.register_forward_hook(lambda m, a, o: conv_frames.append(a[0].shape[0]))
    h2 = model.pose_net.final_proj.register_forward_hook(lambda m, a, o: proj_frames.append(a[0].shape[0]))
    try:
        for steps in (1, 2):
            conv_frames.clear(), proj_frames.clear()
            MimicMotionPipeline(model)(reference, poses, num_inference_steps=steps, seed=1, tile_size=TILE,
                                       tile_overlap=OVERLAP, min_guidance_scale=1.0, max_guidance_scale=1.0)
            assert sum(conv_frames) == FRAMES and len(conv_frames) == math.ceil(FRAMES / 16)  # once per run
            # the tiny UNet is 32 wide (< 128): the projected output is the narrower cache, projected once too
            assert sum(proj_frames) == FRAMES
    finally:
        h1.remove(), h2.remove()


@torch.no_grad()
def test_posenet_cache_holds_128_channels_for_a_320_wide_unet(models):
    """MimicMotion's PoseNet (128 → 320): the cache keeps the 128 channels before final_proj; each tile is then
    projected on the device, equal to PoseNet's own output."""
    from motionguide.pipelines.mimicmotion.loading import MotionModel
    from motionguide.pipelines.mimicmotion.pose_net import PoseNet

    tiny = models[torch.float32]
    torch.manual_seed(0)
    pose_net = PoseNet(320).eval()
    torch.nn.init.normal_(pose_net.final_proj.weight, std=0.05)
    model = MotionModel(unet=tiny.unet, pose_net=pose_net, vae=tiny.vae, image_encoder=tiny.image_encoder,
                        scheduler_config=tiny.scheduler_config, image_mean=tiny.image_mean, image_std=tiny.image_std,
                        dtype=torch.float32, device=torch.device("cpu"))
    from motionguide.pipelines.guidance.hook import UNetCall
    from motionguide.pipelines.mimicmotion.pose_guidance import PoseGuidance

    _, poses = inputs()
    cpu = torch.device("cpu")
    idx = torch.tensor([0, 4, 5, 6])
    expected = pose_net(poses[idx].float() / 127.5 - 1.0)
    call = UNetCall(0, 1, torch.empty(0), torch.empty(0), torch.empty(0), torch.empty(0), [idx], [True])
    for strength in (1.0, 0.5):
        guide = PoseGuidance(model, poses, strength=strength)
        guide.prepare(cpu, torch.float32, cpu)
        assert guide.features.shape == (FRAMES, 128, H // 8, W // 8)  # 2.5× less than the 320-channel output
        assert guide.parts() == ("pose_net",)  # the projection runs per UNet call
        torch.testing.assert_close(guide.residuals(call).conv_in, expected * strength, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
@torch.no_grad()
def test_cuda_fp16_run_with_device_noise_follows_the_reference_loop(tiny_svd_dir, tiny_mimicmotion_path):
    """On a GPU: fp16, the generator on the device (noise_device="model"), pinned PoseNet cache; the reference loop
    with a CUDA generator draws the same noise. Kernels may differ with batch shapes, hence a tolerance."""
    model = load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float16, device="cuda")
    reference, poses = inputs()
    out = MimicMotionPipeline(model)(reference, poses, num_inference_steps=2, min_guidance_scale=1.5,
                                     max_guidance_scale=3.0, seed=7, tile_size=TILE, tile_overlap=OVERLAP,
                                     options=SamplerOptions(noise_device="model", pose_cache="cpu"))
    with model.use(*model.PARTS):
        expected, _ = literal_reference_loop(model, reference, poses, steps=2, g_min=1.5, g_max=3.0, seed=7,
                                             tile=TILE, overlap=OVERLAP, device="cuda")
    assert torch.isfinite(out.latents).all()
    assert float((out.latents - expected).abs().mean()) < 5e-3
    torch.testing.assert_close(out.latents, expected, rtol=0, atol=5e-2)
    cpu_noise = MimicMotionPipeline(model)(reference, poses, num_inference_steps=2, seed=7, tile_size=TILE,
                                           tile_overlap=OVERLAP).latents
    assert not torch.allclose(cpu_noise, out.latents, atol=1e-2)  # the CPU stream is another draw
