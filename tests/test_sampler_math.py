"""Exact numbers of the sampler's pure parts: tiles, fusion weights, schedule, noise layout, preprocessing."""
import math

import numpy as np
import pytest
import torch
from motionguide.pipelines.mimicmotion import schedule as sched
from motionguide.pipelines.mimicmotion.decode import chunk_blend_weights, plan_decode_chunks
from motionguide.pipelines.mimicmotion.preprocess import (
    antialias_resize,
    cover_resize_crop,
    reference_size,
    uint8_round_trip,
)
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline
from motionguide.pipelines.mimicmotion.tiles import fusion_shares, plan_tiles, tile_weights


def test_tiles_worked_example_n40_t16_o6():
    tiles = plan_tiles(40, 16, 6)
    assert tiles == [
        [0] + list(range(1, 16)),
        [0] + list(range(11, 26)),
        [0] + list(range(21, 36)),
        [0] + list(range(25, 40)),  # tail tile: C ends at 35 < 39
    ]
    assert all(len(t) == 16 for t in tiles)


def test_tiles_without_tail_and_short_videos():
    assert plan_tiles(21, 6, 1) == [[0, 1, 2, 3, 4, 5], [0, 6, 7, 8, 9, 10], [0, 11, 12, 13, 14, 15], [0, 16, 17, 18, 19, 20]]
    assert plan_tiles(16, 16, 6) == [list(range(16))]
    assert plan_tiles(5, 16, 6) == [[0, 1, 2, 3, 4]]  # N < T: one shorter tile (the reference crashes)
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(40, 16, 0)
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(40, 16, 16)
    with pytest.raises(ValueError, match="at least 1 frame"):
        plan_tiles(0, 16, 6)


def test_triangle_weights_t16():
    w = tile_weights(16)
    expected = [0.0625, 0.1875, 0.3125, 0.4375, 0.5625, 0.6875, 0.8125, 0.9375]
    np.testing.assert_allclose(w, expected + expected[::-1], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(tile_weights(4, "flat"), [1, 1, 1, 1])
    np.testing.assert_allclose(tile_weights(5), [0.2, 0.6, 1.0, 0.6, 0.2])
    with pytest.raises(ValueError):
        tile_weights(4, "gaussian")


def test_fusion_shares_worked_example():
    s = fusion_shares(40, plan_tiles(40, 16, 6))
    np.testing.assert_allclose(s[:, 0], [0.25, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(s.sum(axis=0), np.ones(40))
    np.testing.assert_array_equal(s[0, 1:11], np.ones(10))  # 1-10: A only
    np.testing.assert_allclose(s[0, 11:16], [0.75, 7 / 12, 5 / 12, 0.25, 1 / 12])
    np.testing.assert_array_equal(s[1, 16:21], np.ones(5))  # 16-20: B only
    np.testing.assert_allclose(s[1, 21:25], [0.75, 7 / 12, 5 / 12, 0.25])
    np.testing.assert_allclose(s[:, 25], [0, 1 / 15, 11 / 15, 0.2])  # B .067, C .733, D .2
    np.testing.assert_allclose(s[2, 26:36], [0.722, 0.682, 0.625, 0.542, 0.458, 0.375, 0.318, 0.278, 0.214, 0.1], atol=5e-4)
    np.testing.assert_array_equal(s[3, 36:40], np.ones(4))  # 36-39: D only


def test_karras_sigmas_and_timesteps_25_steps():
    sigmas = sched.karras_sigmas(25)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (26,)
    expected = [700, 545.73, 421.57, 322.45, 244.02, 182.55, 134.85, 98.27, 70.54, 49.81, 34.54, 23.47, 15.59, 10.10,
                6.35, 3.87, 2.27, 1.27, 0.678, 0.339, 0.157, 0.066, 0.025, 0.0079, 0.002, 0]
    np.testing.assert_allclose(sigmas.numpy(), expected, rtol=5e-3, atol=1e-4)
    t = sched.sigma_to_timestep(sigmas)
    assert t.shape == (25,)
    assert float(t[0]) == pytest.approx(1.6378, abs=1e-4) and float(t[-1]) == pytest.approx(-1.5537, abs=1e-4)
    assert sched.initial_noise_scale(700.0) == pytest.approx(700.0007143, abs=3e-5)  # float32, like diffusers
    assert sched.input_scale(1.0) == pytest.approx(1 / math.sqrt(2))


def test_schedule_matches_diffusers_svd_scheduler():
    from diffusers import EulerDiscreteScheduler
    from motionguide.headless.tiny_models.svd import SCHEDULER_CONFIG

    scheduler = EulerDiscreteScheduler.from_config(SCHEDULER_CONFIG)
    for steps in (3, 25):
        scheduler.set_timesteps(steps)
        ours = sched.karras_sigmas(steps)
        torch.testing.assert_close(scheduler.sigmas, ours, rtol=0, atol=0)
        torch.testing.assert_close(scheduler.timesteps.float(), sched.sigma_to_timestep(ours), rtol=0, atol=0)
        assert float(scheduler.init_noise_sigma) == sched.initial_noise_scale(float(ours[0]))
    # one Euler v step equals diffusers' step bit for bit, in float32 and (the reference's fp16 path) float16
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(2, 4, 3, 3, generator=g) * 30, torch.randn(2, 4, 3, 3, generator=g)
    for dtype in (torch.float32, torch.float16):
        scheduler.set_timesteps(3)
        scaled = scheduler.scale_model_input(x.to(dtype), scheduler.timesteps[0])
        torch.testing.assert_close(x.to(dtype) / sched.input_divisor(float(scheduler.sigmas[0])), scaled, rtol=0, atol=0)
        scheduler.step(v.to(dtype), scheduler.timesteps[0], x.to(dtype))  # step index 0 → 1
        expected = scheduler.step(v.to(dtype), scheduler.timesteps[1], x.to(dtype)).prev_sample
        got = sched.euler_v_step(x.to(dtype), v.to(dtype), float(scheduler.sigmas[1]), float(scheduler.sigmas[2]))
        assert got.dtype == expected.dtype == dtype
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_euler_step_to_zero_gives_x0():
    x, v, sigma = torch.tensor([2.0]), torch.tensor([0.5]), 3.0
    x0 = v * (-sigma / math.sqrt(sigma**2 + 1)) + x / (sigma**2 + 1)
    torch.testing.assert_close(sched.euler_v_step(x, v, sigma, 0.0), x0)


def test_other_sigma_schedules():
    e = sched.make_sigmas(5, "exponential")
    np.testing.assert_allclose(e[:-1].numpy(), np.exp(np.linspace(np.log(700), np.log(0.002), 5)), rtol=1e-6)
    a = sched.make_sigmas(11, "align_your_steps")
    np.testing.assert_allclose(a[:-1].numpy(), sched.AYS_SVD_SIGMAS, rtol=1e-6)
    assert float(a[-1]) == 0.0
    with pytest.raises(ValueError):
        sched.make_sigmas(5, "ddim")


def test_noise_layout_is_periodic_from_one_stream():
    g = torch.Generator().manual_seed(7)
    latents = MimicMotionPipeline.prepare_latents(g, 11, 4, (4, 2, 3), 2.0)
    g2 = torch.Generator().manual_seed(7)
    draw = torch.randn((1, 4, 4, 2, 3), generator=g2)
    assert latents.shape == (1, 11, 4, 2, 3)
    for f in range(11):
        torch.testing.assert_close(latents[0, f], draw[0, f % 4] * 2.0, rtol=0, atol=0)
    independent = MimicMotionPipeline.prepare_latents(torch.Generator().manual_seed(7), 11, 4, (4, 2, 3), 1.0, True)
    assert not torch.equal(independent[0, 4], independent[0, 0])


def test_guidance_per_frame_is_linear_over_the_whole_video():
    g = MimicMotionPipeline.guidance_per_frame(5, 1.0, 3.0)
    torch.testing.assert_close(g, torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))


def test_reference_size_rule():
    assert reference_size(600, 900) == (576, 1024)
    assert reference_size(900, 600) == (1024, 576)
    assert reference_size(512, 512) == (1024, 576)  # square counts as landscape
    assert reference_size(300, 400, 768) == (768, 1344)


def test_cover_resize_crop_exact_pixels():
    img = torch.arange(2 * 4, dtype=torch.uint8).view(1, 1, 2, 4).expand(1, 3, 2, 4).contiguous() * 10
    out = cover_resize_crop(img, 2, 2)  # already covers: centre crop of columns 1..2
    assert out[0, 0].tolist() == [[10, 20], [50, 60]]
    up = cover_resize_crop(torch.tensor([[[[0, 100]]]], dtype=torch.uint8).expand(1, 3, 1, 2), 4, 2)
    assert up.shape == (1, 3, 2, 4) and up[0, 0, 0].tolist() == [0, 25, 75, 100]


def test_round_trip_in_the_model_precision():
    values = torch.arange(256, dtype=torch.uint8)
    fp16 = uint8_round_trip(values, torch.float16)
    changed = torch.nonzero(fp16 != values).flatten().tolist()
    assert changed == [1, 2, 3, 4, 5, 6, 7, 8, 18, 19, 20, 21, 36, 37, 38, 39, 40, 41, 42, 43]
    assert (values.int() - fp16.int()).max() == 1 and (values.int() - fp16.int()).min() == 0
    fp32 = uint8_round_trip(values, torch.float32)  # the reference's --no_use_float16 path: 1..63 drop by one
    assert torch.nonzero(fp32 != values).flatten().tolist() == list(range(1, 64))
    assert (values.int() - fp32.int()).max() == 1 and (values.int() - fp32.int()).min() == 0


def test_antialias_resize_matches_svd():
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    x = torch.rand(1, 3, 200, 120, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.testing.assert_close(antialias_resize(x, (224, 224)), _resize_with_antialiasing(x, (224, 224)), rtol=0, atol=1e-6)
    torch.testing.assert_close(antialias_resize(x, (32, 32)), _resize_with_antialiasing(x, (32, 32)), rtol=0, atol=1e-6)


def test_decode_chunk_plan_and_blend():
    assert plan_decode_chunks(20, 8) == [(0, 8), (8, 16), (16, 20)]
    assert plan_decode_chunks(20, 8, 2) == [(0, 8), (6, 14), (12, 20)]
    assert plan_decode_chunks(3, 8) == [(0, 3)]
    torch.testing.assert_close(chunk_blend_weights(8, 2, first=False, last=False),
                               torch.tensor([1 / 3, 2 / 3, 1, 1, 1, 1, 2 / 3, 1 / 3]))
    torch.testing.assert_close(chunk_blend_weights(4, 0, first=False, last=False), torch.ones(4))
    with pytest.raises(ValueError):
        plan_decode_chunks(20, 8, 8)
