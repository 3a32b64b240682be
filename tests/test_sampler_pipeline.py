"""The MimicMotion pipeline on the tiny SVD/MimicMotion files: end to end, against a plain diffusers-style loop,
tile fusion consistency, noise stream, per-frame CFG, options and bad input. ≤ 3 steps, ≤ 20 frames, 64×64 px.

Most runs share one geometry (6 frames, tiles of 4 overlapping by 2) so the CPU's kernel caches are reused.
"""
import math

import pytest
import torch
from torch import nn

from motionguide.pipelines.mimicmotion import schedule as sched
from motionguide.pipelines.mimicmotion.loading import MotionModel, load_motion_model
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions

H, W = 64, 64


@pytest.fixture(scope="module")
def model(tiny_svd_dir, tiny_mimicmotion_path):
    return load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu")


def make_inputs(frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    reference = (torch.rand(1, 3, H, W, generator=g) * 255).to(torch.uint8)
    poses = (torch.rand(frames, 3, H, W, generator=g) * 255).to(torch.uint8)
    return reference, poses


class Recorder:
    """Records every UNet call's inputs and outputs."""

    def __init__(self, unet):
        self.calls = []
        self.handle = unet.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        sample, timestep = args[0], args[1]
        self.calls.append({"sample": sample.clone(), "t": timestep.clone(), "ehs": kwargs["encoder_hidden_states"].clone(),
                           "ids": kwargs["added_time_ids"].clone(), "out": output[0].clone()})

    def close(self):
        self.handle.remove()


def test_end_to_end_sample_and_decode(model):
    reference, poses = make_inputs(6)
    progress = []
    out = MimicMotionPipeline(model)(reference, poses, num_inference_steps=3, tile_size=4, tile_overlap=2, seed=1,
                                     callback=lambda d, t: progress.append((d, t)))
    assert out.latents.shape == (6, 4, 8, 8) and out.latents.dtype == torch.float32
    assert torch.isfinite(out.latents).all()
    assert out.tiles == [[0, 1, 2, 3], [0, 3, 4, 5]]
    assert out.unet_calls == 3 * 2 * 2  # steps × tiles × (uncond, cond), like the reference
    assert progress[-1] == (6, 6) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    frames = MimicMotionPipeline(model).decode_latents(out.latents, chunk_size=4)
    assert frames.shape == (6, H, W, 3) and float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
    # chunked decode = decoding each chunk on its own
    with torch.no_grad():
        first = model.vae.decode(out.latents[:4], num_frames=4).sample
    torch.testing.assert_close(frames[:4], (first / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1), rtol=0, atol=1e-6)
    blended = MimicMotionPipeline(model).decode_latents(out.latents, chunk_size=4, overlap=2)
    torch.testing.assert_close(blended[:2], frames[:2], rtol=0, atol=1e-6)  # only one chunk covers frames 0-1
    assert not torch.allclose(blended[2:4], frames[2:4], atol=1e-4)


def _plain_loop(model, reference, poses, steps, g_min, g_max, seed, aug=0.0):
    """One tile over the whole video, written like diffusers' SVD pipeline + MimicMotion's pose injection."""
    from diffusers import EulerDiscreteScheduler
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    n = poses.shape[0]
    ref = ((reference.to(model.dtype) / 127.5 - 1 + 1) * 127.5).to(torch.uint8)  # the round trip in the model dtype
    x = ref.float() / 255 * 2 - 1
    clip = (_resize_with_antialiasing(x, (32, 32)) + 1) / 2
    clip = (clip - torch.tensor(model.image_mean).view(1, 3, 1, 1)) / torch.tensor(model.image_std).view(1, 3, 1, 1)
    embeds = model.image_encoder(pixel_values=clip).image_embeds.unsqueeze(1)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g)
    ref_latent = model.vae.encode(x + aug * noise).latent_dist.mode()
    scheduler = EulerDiscreteScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(steps)
    latents = torch.randn((1, n, 4, H // 8, W // 8), generator=g) * scheduler.init_noise_sigma
    ids = torch.tensor([[6.0, 127.0, aug]])
    pose_latents = model.pose_net(poses.float() / 127.5 - 1)
    guidance = torch.linspace(g_min, g_max, n).view(1, n, 1, 1, 1)
    conv_in = model.unet.conv_in

    class AddPose(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.add = conv_in, None

        def forward(self, h):
            out = self.conv(h)
            return out if self.add is None else out + self.add

    wrapper = AddPose()
    model.unet.conv_in = wrapper
    try:
        for t in scheduler.timesteps:
            inp = scheduler.scale_model_input(latents, t)
            wrapper.add = None
            u = model.unet(torch.cat([inp, torch.zeros_like(ref_latent).unsqueeze(1).expand(1, n, -1, -1, -1)], 2), t,
                           torch.zeros_like(embeds), ids, return_dict=False)[0]
            wrapper.add = pose_latents
            c = model.unet(torch.cat([inp, ref_latent.unsqueeze(1).expand(1, n, -1, -1, -1)], 2), t, embeds, ids,
                           return_dict=False)[0]
            latents = scheduler.step(u + guidance * (c - u), t, latents).prev_sample
    finally:
        model.unet.conv_in = conv_in
    return latents[0] / model.scaling_factor


@torch.no_grad()
def test_one_tile_equals_plain_diffusers_loop(model):
    reference, poses = make_inputs(4, seed=3)
    expected = _plain_loop(model, reference, poses, steps=3, g_min=1.5, g_max=2.5, seed=5, aug=0.02)
    pipe = MimicMotionPipeline(model)
    for tile_size in (4, 16):  # N == T, and N < T (one shorter tile)
        out = pipe(reference, poses, num_inference_steps=3, min_guidance_scale=1.5, max_guidance_scale=2.5,
                   noise_aug_strength=0.02, tile_size=tile_size, tile_overlap=2, seed=5)
        assert out.tiles == [list(range(4))]
        torch.testing.assert_close(out.latents, expected, rtol=1e-4, atol=1e-4)


class FrameLocalUNet(nn.Module):
    """A UNet stand-in whose output for a frame depends only on that frame: fusion must then be invisible."""

    class Config(dict):
        __getattr__ = dict.__getitem__

    def __init__(self, channels=32, embed=32):
        super().__init__()
        torch.manual_seed(0)
        self.config = self.Config(block_out_channels=[channels], addition_time_embed_dim=4,
                                  down_block_types=["a", "b"])
        self.conv_in = nn.Conv2d(8, channels, 3, padding=1)
        self.ehs = nn.Linear(embed, channels)
        self.add_embedding = nn.Module()
        self.add_embedding.linear_1 = nn.Linear(12, channels)
        self.conv_out = nn.Conv2d(channels, 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, added_time_ids, return_dict=True):
        b, f = sample.shape[:2]
        h = self.conv_in(sample.flatten(0, 1))
        h = h + self.ehs(encoder_hidden_states).repeat_interleave(f, 0).view(b * f, -1, 1, 1)
        out = self.conv_out(torch.tanh(h + timestep.float())) * 0.5
        return (out.view(b, f, *out.shape[1:]),)


@torch.no_grad()
def test_fused_tiles_consistent_when_frames_are_independent(model):
    local = MotionModel(unet=FrameLocalUNet(), pose_net=model.pose_net, vae=model.vae, image_encoder=model.image_encoder,
                        scheduler_config=model.scheduler_config, image_mean=model.image_mean, image_std=model.image_std,
                        dtype=torch.float32, device=torch.device("cpu"))
    reference, poses = make_inputs(20, seed=4)
    pipe = MimicMotionPipeline(local)
    whole = pipe(reference, poses, num_inference_steps=3, tile_size=20, tile_overlap=2, seed=2,
                 options=SamplerOptions(noise="independent"))
    for shape in ("triangle", "flat"):
        fused = pipe(reference, poses, num_inference_steps=3, tile_size=8, tile_overlap=3, seed=2,
                     options=SamplerOptions(noise="independent", fusion_weights=shape))
        assert len(fused.tiles) == 4
        # w·v/w rounds differently per tile; the last Euler step (x − (x − x0)) amplifies that to ~1e-5
        torch.testing.assert_close(fused.latents, whole.latents, rtol=1e-5, atol=3e-5)


@torch.no_grad()
def test_noise_stream_time_ids_and_timesteps_reach_the_unet(model):
    reference, poses = make_inputs(6)
    rec = Recorder(model.unet)
    try:
        MimicMotionPipeline(model)(reference, poses, num_inference_steps=1, tile_size=4, tile_overlap=2, seed=9,
                                   noise_aug_strength=0.02, fps=7, motion_bucket_id=100)
    finally:
        rec.close()
    assert len(rec.calls) == 4  # tile A uncond, cond, tile B uncond, cond
    g = torch.Generator().manual_seed(9)
    torch.randn((1, 3, H, W), generator=g)  # the augmentation noise comes first
    draw = torch.randn((1, 4, 4, H // 8, W // 8), generator=g)
    scale = sched.initial_noise_scale(700.0) / math.sqrt(700.0**2 + 1)
    for call, frames in ((rec.calls[0], range(4)), (rec.calls[3], [0, 3, 4, 5])):
        expected = torch.stack([draw[0, f % 4] for f in frames]) * scale  # frame 4 reuses draw 0, 5 draw 1
        torch.testing.assert_close(call["sample"][0, :, :4], expected, rtol=1e-5, atol=1e-5)
    for call in rec.calls:
        torch.testing.assert_close(call["ids"], torch.tensor([[6.0, 100.0, 0.02]]))
        assert float(call["t"]) == pytest.approx(0.25 * math.log(700.0), abs=1e-6)
    assert float(rec.calls[0]["ehs"].abs().max()) == 0.0 and float(rec.calls[1]["ehs"].abs().max()) > 0
    assert float(rec.calls[0]["sample"][0, :, 4:].abs().max()) == 0.0  # uncond: zero reference latent
    assert float(rec.calls[1]["sample"][0, :, 4:].abs().max()) > 0.0


@pytest.mark.parametrize("g_min,g_max", [(1.0, 2.5), (2.5, 1.0)])  # a falling ramp below 1 still guides
@torch.no_grad()
def test_cfg_is_applied_per_frame(model, g_min, g_max):
    reference, poses = make_inputs(4)
    rec = Recorder(model.unet)
    try:
        out = MimicMotionPipeline(model)(reference, poses, num_inference_steps=1, min_guidance_scale=g_min,
                                         max_guidance_scale=g_max, tile_size=4, tile_overlap=2, seed=0)
    finally:
        rec.close()
    assert out.unet_calls == 2  # the unconditional pass runs: cfg_min > 1 >= cfg_max is not dropped
    u, c = rec.calls[0]["out"][0], rec.calls[1]["out"][0]
    g = torch.linspace(g_min, g_max, 4).view(4, 1, 1, 1)
    v = u + g * (c - u)
    x = rec.calls[0]["sample"][0, :, :4] * math.sqrt(700.0**2 + 1)  # undo the input scaling
    x0 = v * (-700.0 / math.sqrt(700.0**2 + 1)) + x / (700.0**2 + 1)  # one step to sigma 0 lands on x0
    # x - (x - x0) cancels in float32 with |x| ~ 700·noise, as in diffusers: ~1e-4 absolute error is expected
    torch.testing.assert_close(out.latents * model.scaling_factor, x0, rtol=0, atol=1e-3)


@torch.no_grad()
def test_guidance_at_most_one_skips_uncond_and_batching_matches(model):
    reference, poses = make_inputs(6)
    pipe = MimicMotionPipeline(model)
    plain = pipe(reference, poses, num_inference_steps=2, min_guidance_scale=1.0, max_guidance_scale=1.0,
                 tile_size=4, tile_overlap=2, seed=0)
    assert plain.unet_calls == 2 * 2 and torch.isfinite(plain.latents).all()
    ref = pipe(reference, poses, num_inference_steps=2, tile_size=4, tile_overlap=2, seed=0)
    batched = pipe(reference, poses, num_inference_steps=2, tile_size=4, tile_overlap=2, seed=0,
                   options=SamplerOptions(unet_batch=4))
    assert ref.unet_calls == 8 and batched.unet_calls == 2
    # other kernels for batch 4; the last step (x - (x - x0)) amplifies float32 noise to ~1e-4 of latent values
    torch.testing.assert_close(batched.latents, ref.latents, rtol=1e-3, atol=2e-3)
    assert not torch.allclose(plain.latents, ref.latents, atol=1e-3)


@torch.no_grad()
def test_pose_options(model):
    reference, poses = make_inputs(4)
    pipe = MimicMotionPipeline(model)
    kw = dict(num_inference_steps=1, tile_size=4, tile_overlap=2, seed=0)
    base = pipe(reference, poses, **kw).latents
    no_strength = pipe(reference, poses, **kw, options=SamplerOptions(pose_strength=0.0)).latents
    no_window = pipe(reference, poses, **kw, options=SamplerOptions(pose_start=1.0, pose_end=1.0)).latents
    torch.testing.assert_close(no_strength, no_window, rtol=0, atol=0)
    assert not torch.allclose(base, no_strength, atol=1e-3)
    other_poses = pipe(reference, torch.flip(poses, dims=[0]), **kw).latents
    assert not torch.allclose(base, other_poses, atol=1e-3)


def test_cancel_leaves_the_model_clean(model):
    reference, poses = make_inputs(6)
    pipe = MimicMotionPipeline(model)

    def cancel(done, total):
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        pipe(reference, poses, num_inference_steps=2, tile_size=4, tile_overlap=2, seed=0, callback=cancel)
    assert len(model.unet.conv_in._forward_hooks) == 0
    assert torch.isfinite(pipe(reference, poses, num_inference_steps=1, tile_size=4, tile_overlap=2).latents).all()


def test_bad_inputs_are_clear(model):
    pipe = MimicMotionPipeline(model)
    reference, poses = make_inputs(6)
    with pytest.raises(ValueError, match="same size|reference size"):
        pipe(reference, poses[..., :48], num_inference_steps=1)
    with pytest.raises(ValueError, match="multiples of 16"):
        pipe(reference[..., :56], poses[..., :56], num_inference_steps=1)
    with pytest.raises(ValueError, match="at least 2 pose frames"):
        pipe(reference, poses[:1], num_inference_steps=1)
    with pytest.raises(ValueError, match="overlap"):
        pipe(reference, poses, num_inference_steps=1, tile_size=4, tile_overlap=4)
    with pytest.raises(ValueError, match="fusion_weights"):
        pipe(reference, poses, num_inference_steps=1, options=SamplerOptions(fusion_weights="gauss"))


@torch.no_grad()
def test_sequential_offload_streams_unet_blocks_with_the_same_result(model, tiny_svd_dir, tiny_mimicmotion_path):
    reference, poses = make_inputs(4)
    kw = dict(num_inference_steps=1, tile_size=4, tile_overlap=2, seed=0)
    expected = MimicMotionPipeline(model)(reference, poses, **kw).latents
    # "cpu:0" differs from "cpu" as a device name, so the streaming hooks run on a CPU-only machine too
    seq = load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu",
                            memory_mode="sequential_offload", offload_device="cpu:0")
    seen = []
    handle = seq.unet.register_forward_pre_hook(
        lambda m, a: seen.append(len(m.down_blocks[0]._forward_pre_hooks) + len(m.conv_out._forward_hooks)))
    try:
        got = MimicMotionPipeline(seq)(reference, poses, **kw).latents
    finally:
        handle.remove()
    assert seen and all(n == 2 for n in seen)  # one pre-hook (to device) and one hook (back) per block
    assert len(seq.unet.down_blocks[0]._forward_pre_hooks) == 0 and len(seq.unet.conv_out._forward_hooks) == 0
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@torch.no_grad()
def test_on_step_gets_the_fused_x0_prediction(model):
    reference, poses = make_inputs(6)
    seen = []
    out = MimicMotionPipeline(model)(reference, poses, num_inference_steps=2, tile_size=4, tile_overlap=2, seed=0,
                                     on_step=lambda i, n, x0: seen.append((i, n, x0.clone())))
    assert [(i, n) for i, n, _ in seen] == [(1, 2), (2, 2)] and seen[0][2].shape == (6, 4, 8, 8)
    # the last step goes to sigma 0, where the new latents are the x0 prediction itself
    torch.testing.assert_close(seen[-1][2] / model.scaling_factor, out.latents, rtol=0, atol=1e-4)
    assert not torch.allclose(seen[0][2], seen[1][2], atol=1e-3)
