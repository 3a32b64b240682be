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
    with pytest.raises(TypeError, match="extra_guidance"):  # the stub is gone: no model uses geometry maps yet
        sampler.sample(node_model, images(1, 0), images(6, 1), seed=0, extra_guidance=images(6, 2), **SAMPLER_ARGS)
    with pytest.raises(ValueError, match="arithmetic"):
        sampler.sample(node_model, images(1, 0), images(6, 1), seed=0, arithmetic="fast", **SAMPLER_ARGS)
    with pytest.raises(ValueError, match="latent must hold"):
        MotionGuideDecode().decode(node_model, {"samples": torch.zeros(2, 3, 8, 8)}, 4, True)
    with pytest.raises(ValueError, match="connect model .* or vae"):
        MotionGuideDecode().decode(latent={"samples": torch.zeros(2, 4, 8, 8)}, chunk_size=4, drop_reference_frame=True)


class CoreVAE:
    """Stands in for comfy.sd.VAE: ``decode(raw latents [n,4,h,w]) -> [n,H,W,3]`` in 0..1 (SVD's VAE inside)."""

    latent_channels = 4

    def __init__(self, vae):
        self.vae, self.calls = vae, []

    def decode(self, samples):
        self.calls.append(samples.shape[0])
        with torch.no_grad():
            pixels = self.vae.decode(samples.float(), num_frames=samples.shape[0]).sample
        return (pixels / 2 + 0.5).clamp(0, 1).movedim(1, -1)


def test_decode_accepts_a_core_vae(node_model):
    (latent,) = MotionGuideSampler().sample(node_model, images(1, 0), images(7, 1), seed=3, **SAMPLER_ARGS)
    decoder = MotionGuideDecode()
    expected, fps = decoder.decode(node_model, latent, chunk_size=3, drop_reference_frame=True, chunk_overlap=1)
    core = CoreVAE(node_model.vae)
    got, fps2 = decoder.decode(latent=latent, chunk_size=3, drop_reference_frame=True, chunk_overlap=1, vae=core)
    assert core.calls == [3, 3, 3]  # chunks (0-3), (2-5), (4-7): one temporal decode per chunk, overlap cross-faded
    assert got.shape == expected.shape == (6, 64, 64, 3) and fps2 == fps
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    bad = CoreVAE(node_model.vae)
    bad.latent_channels = 16
    with pytest.raises(ValueError, match="16 latent channels"):
        decoder.decode(latent=latent, chunk_size=3, drop_reference_frame=True, vae=bad)


def test_sampler_defaults_and_tooltips_say_what_is_true():
    optional = MotionGuideSampler.INPUT_TYPES()["optional"]
    assert "extra_guidance" not in optional
    assert optional["noise_device"][1]["default"] == "cpu" and optional["arithmetic"][1]["default"] == "reference"
    required = MotionGuideSampler.INPUT_TYPES()["required"]
    assert required["tile_size"][1]["default"] == 72  # what MimicMotion 1.1 was trained with
    assert "up to float rounding" in optional["unet_batch"][1]["tooltip"]
    assert "precision" in required["seed"][1]["tooltip"] and "unet_batch" in required["seed"][1]["tooltip"]


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


def test_live_preview_goes_through_comfys_previewer_and_is_a_no_op_outside(monkeypatch):
    import sys
    import types

    from motionguide.nodes import comfy_adapter as adapter

    assert adapter.latent_preview_callback(adapter.Progress(4)) is None  # outside ComfyUI: nothing to do
    sent, seen = [], []

    class Bar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            sent.append((value, total, preview))

    class Previewer:
        def decode_latent_to_preview_image(self, fmt, x0):
            seen.append((fmt, tuple(x0.shape), float(x0.sum())))
            return ("JPEG", f"image{len(seen)}", 512)

    comfy = types.ModuleType("comfy")
    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = Bar
    formats = types.ModuleType("comfy.latent_formats")
    formats.SD15 = type("SD15", (), {"latent_channels": 4})
    preview_mod = types.ModuleType("latent_preview")
    preview_mod.get_previewer = lambda device, fmt: Previewer() if isinstance(fmt, formats.SD15) else None
    for name, mod in (("comfy", comfy), ("comfy.utils", utils), ("comfy.latent_formats", formats),
                      ("latent_preview", preview_mod)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delenv("MOTIONGUIDE_NO_COMFY", raising=False)
    progress = adapter.Progress(6)
    progress.set(2)
    on_step = adapter.latent_preview_callback(progress, torch.device("cpu"))
    x0 = torch.arange(5 * 4 * 2 * 3, dtype=torch.float32).view(5, 4, 2, 3)
    on_step(1, 3, x0)
    assert seen == [("JPEG", (1, 4, 2, 3), float(x0[2].sum()))]  # the middle frame, as a batch of one
    assert sent[-1] == (2, 6, ("JPEG", "image1", 512))  # same progress, with the preview attached
    preview_mod.get_previewer = lambda device, fmt: None  # --preview-method none
    assert adapter.latent_preview_callback(progress) is None
