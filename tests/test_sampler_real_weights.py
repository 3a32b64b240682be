"""The real SVD-XT 1.1 + MimicMotion 1.1 files on a GPU (skipped unless both are present)."""
import os
from pathlib import Path

import pytest
import torch

MODELS = Path(os.environ.get("MOTIONGUIDE_MODELS_DIR", "/nonexistent"))
SVD = MODELS / "diffusers" / "stable-video-diffusion-img2vid-xt-1-1"
CKPT = MODELS / "mimicmotion" / "MimicMotion_1-1.pth"
pytestmark = [
    pytest.mark.real_weights,
    pytest.mark.gpu,
    pytest.mark.skipif(not ((SVD / "vae" / "config.json").is_file() and CKPT.is_file()),
                       reason=f"real SVD folder {SVD} or {CKPT} not found"),
]


def test_real_model_loads_strictly_and_samples_a_short_clip():
    from motionguide.pipelines.mimicmotion.loading import load_motion_model
    from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline

    model = load_motion_model(SVD, CKPT, dtype=torch.float16, device="cuda")
    assert model.total_downsampling == 64
    assert model.unet.conv_in.weight.shape == (320, 8, 3, 3) and float(model.pose_net.final_proj.weight.abs().sum()) > 0
    g = torch.Generator().manual_seed(0)
    reference = (torch.rand(1, 3, 1024, 576, generator=g) * 255).to(torch.uint8)
    poses = torch.zeros(9, 3, 1024, 576, dtype=torch.uint8)
    pipe = MimicMotionPipeline(model)
    out = pipe(reference, poses, num_inference_steps=2, tile_size=9, tile_overlap=3, seed=42)
    assert out.latents.shape == (9, 4, 128, 72) and torch.isfinite(out.latents).all()
    frames = pipe.decode_latents(out.latents[:4], chunk_size=4)
    assert frames.shape == (4, 1024, 576, 3)
