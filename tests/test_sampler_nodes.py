"""Node level: load the tiny model through MotionGuideLoadModel, sample, decode; determinism; errors; OOM advice."""
import pytest
import torch

from motionguide.nodes.sampling import MotionGuideLoadModel, MotionGuideSampler
from motionguide.nodes.video import MotionGuideDecode, MotionGuideFitReference
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline

SAMPLER_ARGS = dict(steps=2, cfg_min=2.0, cfg_max=2.0, fps=7, motion_bucket=127, noise_aug=0.0, tile_size=4,
                    tile_overlap=2)


@pytest.fixture()
def node_model(use_models_dir, tiny_svd_dir, tiny_mimicmotion_path):
    inputs = MotionGuideLoadModel.INPUT_TYPES()
    assert "stable-video-diffusion-img2vid-xt-1-1" in inputs["required"]["svd_base"][0]
    assert "MimicMotion_1-1.pth" in inputs["required"]["mimicmotion_checkpoint"][0]
    (model,) = MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                           mimicmotion_checkpoint="MimicMotion_1-1.pth", precision="fp32",
                                           memory_mode="offload_after_run", device="cpu")
    return model


def images(frames, seed, h=64, w=64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(frames, h, w, 3, generator=g) * 255).round() / 255


def test_load_sample_decode_and_determinism(node_model):
    reference, poses = images(1, 0), images(6, 1)
    sampler, decoder = MotionGuideSampler(), MotionGuideDecode()
    (latent,) = sampler.sample(node_model, reference, poses, seed=3, video_fps=12.0, **SAMPLER_ARGS)
    assert latent["samples"].shape == (6, 4, 8, 8) and latent["has_reference_frame"] is True
    assert latent["fps"] == 12.0 and latent["condition_fps"] == 7
    frames, fps = decoder.decode(node_model, latent, chunk_size=4, drop_reference_frame=True)
    assert frames.shape == (5, 64, 64, 3) and fps == 12.0
    assert frames.dtype == torch.float32 and 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    all_frames, _ = decoder.decode(node_model, latent, chunk_size=4, drop_reference_frame=False)
    assert all_frames.shape[0] == 6
    torch.testing.assert_close(all_frames[1:], frames, rtol=0, atol=0)

    (again,) = sampler.sample(node_model, reference, poses, seed=3, video_fps=12.0, **SAMPLER_ARGS)
    frames_again, _ = decoder.decode(node_model, again, chunk_size=4, drop_reference_frame=True)
    torch.testing.assert_close(frames_again, frames, rtol=0, atol=0)  # same seed ⇒ same frames
    (other,) = sampler.sample(node_model, reference, poses, seed=4, video_fps=12.0, **SAMPLER_ARGS)
    frames_other, _ = decoder.decode(node_model, other, chunk_size=4, drop_reference_frame=True)
    assert float((frames_other - frames).abs().mean()) > 1e-3  # different seed ⇒ different frames
    # offload_after_run: everything is back on the offload device after each node
    assert all(p.device.type == "cpu" for p in node_model.unet.parameters())


def test_sampler_node_rejects_bad_input(node_model):
    sampler = MotionGuideSampler()
    with pytest.raises(ValueError, match="pose_images are 48×64 but reference_image is 64×64"):
        sampler.sample(node_model, images(1, 0), images(6, 1, w=48), seed=0, **SAMPLER_ARGS)
    with pytest.raises(ValueError, match="pose_images must be a non-empty IMAGE batch"):
        sampler.sample(node_model, images(1, 0), images(6, 1)[:0], seed=0, **SAMPLER_ARGS)
    with pytest.raises(ValueError, match="multiples of 16"):
        sampler.sample(node_model, images(1, 0, w=72), images(6, 1, w=72), seed=0, **SAMPLER_ARGS)
    with pytest.raises(ValueError, match="extra_guidance must match"):
        sampler.sample(node_model, images(1, 0), images(6, 1), seed=0, extra_guidance=images(3, 2), **SAMPLER_ARGS)
    with pytest.raises(ValueError, match="latent must hold"):
        MotionGuideDecode().decode(node_model, {"samples": torch.zeros(2, 3, 8, 8)}, 4, True)


def test_out_of_memory_gives_advice_and_next_run_works(node_model, monkeypatch):
    original = MimicMotionPipeline._denoise
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MimicMotionPipeline, "_denoise", failing)
    sampler = MotionGuideSampler()
    with pytest.raises(RuntimeError, match="Lower unet_batch to 1 first, then tile_size"):
        sampler.sample(node_model, images(1, 0), images(6, 1), seed=0, **SAMPLER_ARGS)
    (latent,) = sampler.sample(node_model, images(1, 0), images(6, 1), seed=0, **SAMPLER_ARGS)
    assert torch.isfinite(latent["samples"]).all()


def test_missing_checkpoint_names_file_and_folder(use_models_dir, tiny_svd_dir):
    with pytest.raises(FileNotFoundError, match="MimicMotion_9.pth.*mimicmotion"):
        MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                    mimicmotion_checkpoint="MimicMotion_9.pth", precision="fp32",
                                    memory_mode="keep_loaded", device="cpu")


def test_fit_reference_size_rule():
    image = torch.zeros(1, 100, 60, 3)
    image[:, :, 30:] = 1.0  # right half white
    out, width, height = MotionGuideFitReference().fit(image, 128)
    assert (width, height) == (128, 192) and out.shape == (1, 192, 128, 3)  # portrait: 128 × floor(227.5/64)·64
    # cover: 60→128 wide (×2.133), 100→214 high, centre-cropped to 192; the edge sits at column 64
    assert float(out[0, 0, 62, 0]) == 0.0 and float(out[0, 0, 66, 0]) == 1.0
    land, w2, h2 = MotionGuideFitReference().fit(torch.zeros(2, 60, 100, 3), 576)
    assert (w2, h2) == (1024, 576) and land.shape == (2, 576, 1024, 3)
    with pytest.raises(ValueError, match="multiple of 64"):
        MotionGuideFitReference().fit(image, 100)


def test_node_metadata_is_complete():
    for cls in (MotionGuideLoadModel, MotionGuideSampler, MotionGuideDecode, MotionGuideFitReference):
        spec = cls.INPUT_TYPES()
        for group in spec.values():
            for name, (kind, opts) in group.items():
                assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
                if kind in ("INT", "FLOAT"):
                    assert {"default", "min", "max", "step"} <= set(opts), f"{cls.__name__}.{name}"
        assert cls.CATEGORY.startswith("MotionGuide/") and cls.DESCRIPTION.endswith(".")
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
    assert MotionGuideSampler.INPUT_TYPES()["required"]["seed"][1]["control_after_generate"] is True
