"""The sampler against numbers made offline by Tencent/MimicMotion's own ``MimicMotionPipeline`` (@62f91e1), fp32 on
the CPU, on this pack's tiny models (``build_tiny_svd`` and ``build_tiny_mimicmotion``, seed 0: the session fixtures).

``tests/data/mimicmotion_reference.npz`` holds the pipeline's final latents (``output_type="latent"``, i.e. before
``1/scaling_factor``) of one run (``latents``) and its settings (``case``). Their code ran unchanged but for no-op ``torch.cuda.device``/``empty_cache``, import
stubs for torchvision/av/matplotlib, and CLIP's input resized to the tiny encoder's 32 px instead of 224. Inputs, all
drawn from ``torch.Generator().manual_seed(input_seed)`` in this order: the reference ``rand(1,3,H,W)·255`` rounded to
uint8, then the pose maps ``rand(F,3,H,W)·255`` rounded; the poses reach the pipeline as ``u8/127.5 − 1`` and the
reference the way the reference's ``inference.py`` hands it over, ``uint8((u8/127.5 − 1 + 1)·127.5)`` (a truncating
round trip that lowers values 1–63 by one in fp32), with the generator ``torch.Generator().manual_seed(seed)``, fps 7.

The run: 64×32 px (H×W), 7 frames, 3 steps, tiles of 4 with overlap 2 (tiles [0,1,2,3], [0,3,4,5] and the tail
tile [0,4,5,6]), CFG ramping 1.0 → 3.0 over the frames, noise augmentation 0.02, input seed 23, seed 9.

The sampler matches to 2.4e-6 relative (max 5.7e-6): CLIP and the VAE latent are bit-identical, the conditional
UNet calls agree to ~1e-6 relative (PoseNet's features are computed once per run, not per tile). Runs that start at
σ=700 can differ by one float32 ulp of the noisy latents after the first Euler step (|x| ~ 2500, ulp 2.4e-4), hence
the tolerance. Without the round trip of the reference image the gap is 0.46% (max 9.8e-3), which this test catches.
(The VAE input's channels-last layout, which makes the fp16 path bit-identical to the reference, is checked against
the literal loop in ``test_sampler_reference_loop.py``: in fp32 it moves these numbers by only ~3e-6.)
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from motionguide.pipelines.mimicmotion.loading import load_motion_model
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline

REF = np.load(Path(__file__).parent / "data" / "mimicmotion_reference.npz")


@pytest.fixture(scope="module")
def model(tiny_svd_dir, tiny_mimicmotion_path):
    return load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu")


def run_case(model):
    h, w, frames, steps, tile, overlap, g_min, g_max, aug, input_seed, seed = REF["case"].tolist()
    g = torch.Generator().manual_seed(int(input_seed))
    reference = (torch.rand(1, 3, int(h), int(w), generator=g) * 255).round().to(torch.uint8)
    poses = (torch.rand(int(frames), 3, int(h), int(w), generator=g) * 255).round().to(torch.uint8)
    out = MimicMotionPipeline(model)(reference, poses, num_inference_steps=int(steps), min_guidance_scale=g_min,
                                     max_guidance_scale=g_max, noise_aug_strength=aug, tile_size=int(tile),
                                     tile_overlap=int(overlap), seed=int(seed))
    assert out.tiles == [[0, 1, 2, 3], [0, 3, 4, 5], [0, 4, 5, 6]]
    return out.latents * model.scaling_factor, torch.from_numpy(REF["latents"])


def test_sampler_matches_mimicmotion_pipeline(model):
    ours, theirs = run_case(model)
    assert ours.shape == theirs.shape
    assert float(theirs.abs().max()) > 1.0  # a real video latent, not zeros
    rel = float((ours - theirs).norm() / theirs.norm())
    assert rel < 2e-4, rel
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-3)
