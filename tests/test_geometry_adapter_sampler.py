"""The geometry adapter inside the sampler (tiny SVD + MimicMotion, 2 steps, 6 frames in tiles of 4, 64×64):
a zero-initialised adapter changes nothing bit for bit; a random one equals PoseNet + adapter computed by hand;
the model's memory mode moves it; the nodes load it, check it against the maps and the model, and run under
``torch.inference_mode()``."""
import pytest
import torch
from torch import nn

from motionguide.nodes.geometry_adapter import MotionGuideLoadGeometryAdapter
from motionguide.nodes.sampling import MotionGuideLoadModel, MotionGuideSampler
from motionguide.pipelines.guidance.geometry_adapter import (ADAPTER_PART, AdapterConfig, GeometryAdapter,
                                                             GeometryGuidance, maps_to_input, save_adapter)
from motionguide.pipelines.guidance.maps_bundle import guidance_bundle
from motionguide.pipelines.mimicmotion.loading import load_motion_model
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions

F, H, W = 6, 64, 64
MAPS = ("depth", "normal", "semantic", "mask")
RUN = dict(num_inference_steps=2, tile_size=4, tile_overlap=2, seed=3)  # 2 tiles, CFG on (guidance 2.0)


@pytest.fixture(scope="module")
def model(tiny_svd_dir, tiny_mimicmotion_path):
    return load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu")


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    reference = (torch.rand(1, 3, H, W, generator=g) * 255).to(torch.uint8)
    poses = (torch.rand(F, 3, H, W, generator=g) * 255).to(torch.uint8)
    maps = {"depth": torch.rand(F, H, W, 1, generator=g), "normal": torch.rand(F, H, W, 3, generator=g),
            "semantic": torch.rand(F, H, W, 3, generator=g), "mask": (torch.rand(F, H, W, 1, generator=g) > 0.5).float()}
    return reference, poses, maps


def adapter(width=32, maps=MAPS, random=False, **config):
    torch.manual_seed(7)
    made = GeometryAdapter(AdapterConfig(maps=maps, out_channels=width, **config))
    if random:
        for p in made.parameters():
            nn.init.normal_(p, std=0.05)
    return made


@pytest.mark.parametrize("unet_batch", [1, 2])
def test_a_zero_initialised_adapter_gives_bit_identical_latents(model, unet_batch):
    reference, poses, maps = inputs()
    options = SamplerOptions(unet_batch=unet_batch)
    plain = MimicMotionPipeline(model)(reference, poses, options=options, **RUN)
    guided = MimicMotionPipeline(model)(reference, poses, options=options,
                                        guidance=[GeometryGuidance(adapter(), maps, model=model)], **RUN)
    assert len(plain.tiles) == 2 and plain.unet_calls == 2 * 2 * 2 // unet_batch
    assert torch.equal(guided.latents, plain.latents)


class PoseNetPlusAdapter(nn.Module):
    """The literal reference: PoseNet's output with the adapter's features of the same frames added."""

    def __init__(self, pose_net, features):
        super().__init__()
        self.pose_net, self.features = pose_net, features
        self.final_proj, self.feature_channels = pose_net.final_proj, pose_net.feature_channels

    def forward(self, x):
        assert x.shape[0] == self.features.shape[0]  # one chunk: every frame at once
        return self.pose_net(x) + self.features


@pytest.mark.parametrize("unet_batch", [2])
def test_a_random_adapter_equals_posenet_plus_adapter_by_hand(model, unet_batch):
    reference, poses, maps = inputs()
    random_adapter = adapter(random=True)
    options = SamplerOptions(unet_batch=unet_batch)
    guided = MimicMotionPipeline(model)(reference, poses, options=options,
                                        guidance=[GeometryGuidance(random_adapter, maps, model=model)], **RUN)
    plain = MimicMotionPipeline(model)(reference, poses, options=options, **RUN)
    assert float((guided.latents - plain.latents).abs().mean()) > 1e-3  # the maps reach the UNet
    with torch.no_grad():
        features = random_adapter(maps_to_input(maps, MAPS))
    assert float(features.abs().mean()) > 1e-3
    pose_net = model.pose_net
    model.pose_net = PoseNetPlusAdapter(pose_net, features)
    try:
        by_hand = MimicMotionPipeline(model)(reference, poses, options=options, **RUN)
    finally:
        model.pose_net = pose_net
    assert torch.equal(guided.latents, by_hand.latents)
    # strength scales the features; strength 0 and an empty step range are the plain sampler again
    for kwargs in ({"strength": 0.0, "start": 0.5},):
        off = MimicMotionPipeline(model)(reference, poses, options=options, guidance=[
            GeometryGuidance(random_adapter, maps, model=model, **kwargs)], **RUN)
        assert torch.equal(off.latents, plain.latents)


class Handle:
    def __init__(self, module, events):
        self.module, self.events = module, events

    def load(self):
        self.events.append("load")

    def offload(self):
        self.events.append("offload")


@pytest.mark.parametrize("mode,expected", [("keep_loaded", ["load"]),
                                           ("offload_after_run", ["load", "offload"]),
                                           ("sequential_offload", None)])
def test_the_memory_mode_moves_the_adapter_like_the_model_s_parts(model, mode, expected):
    reference, poses, maps = inputs()
    events, unet_seen = [], []
    model.memory_mode = mode
    try:
        module = GeometryGuidance(adapter(), maps, model=model)
        part = model.extra_parts[ADAPTER_PART]
        assert part is module.module and part is not module.adapter  # a copy in the model's dtype
        model.part_handles[ADAPTER_PART] = Handle(part, events)
        hook = model.unet.register_forward_pre_hook(lambda m, a: unet_seen.append(list(events)))
        try:
            MimicMotionPipeline(model)(reference, poses, guidance=[module], **dict(RUN, num_inference_steps=1))
        finally:
            hook.remove()
        if expected is not None:
            assert events == expected
        else:  # only the part in use is on the device: loaded once, gone again before the first UNet call
            assert events.count("load") == 1 and unet_seen[0][-1] == "offload" and events[-1] == "offload"
        # the same adapter again: the same attached copy; detaching offloads it and drops its handle
        assert GeometryGuidance(module.adapter, maps, model=model).module is part
        model.detach_part(ADAPTER_PART)
        assert ADAPTER_PART not in model.extra_parts and ADAPTER_PART not in model.part_handles
        assert events[-1] == "offload"
    finally:
        model.memory_mode = "keep_loaded"
        model.part_handles.pop(ADAPTER_PART, None)
        model.extra_parts.pop(ADAPTER_PART, None)


def test_an_fp16_model_gets_an_fp16_copy_and_the_loaded_adapter_stays_float32(model):
    loaded = adapter(random=True)
    model.dtype = torch.float16
    try:
        part = GeometryGuidance(loaded, {}, model=model).module
        assert {p.dtype for p in part.parameters()} == {torch.float16}
        assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    finally:
        model.dtype = torch.float32
        model.extra_parts.pop(ADAPTER_PART, None)


# -- the nodes ---------------------------------------------------------------------------------------------------

SAMPLER_ARGS = dict(steps=1, cfg_min=2.0, cfg_max=2.0, fps=7, motion_bucket=127, noise_aug=0.0, tile_size=4,
                    tile_overlap=2, seed=3)


@pytest.fixture()
def node_model(use_models_dir, tiny_svd_dir, tiny_mimicmotion_path):
    (loaded,) = MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                            mimicmotion_checkpoint="MimicMotion_1-1.pth", precision="fp32",
                                            memory_mode="offload_after_run", device="cpu")
    return loaded


def images(frames, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(frames, H, W, 3, generator=g) * 255).round() / 255


def node_bundle(frames=F, seed=2, **kw):
    _, _, maps = inputs(seed)
    return guidance_bundle({k: v[:frames] for k, v in maps.items()}, reference_frame=True, **kw)


def test_the_nodes_load_check_and_apply_an_adapter_under_inference_mode(node_model, models_dir):
    folder = models_dir / "motionguide_adapters"
    save_adapter(adapter(), folder / "zero.safetensors")
    save_adapter(adapter(random=True), folder / "random.safetensors")
    save_adapter(adapter(base_model="mimicmotion-1.0"), folder / "v10.safetensors")
    save_adapter(adapter(width=320), folder / "wide.safetensors")
    choices = MotionGuideLoadGeometryAdapter.INPUT_TYPES()["required"]["adapter_file"][0]
    assert {"zero.safetensors", "random.safetensors"} <= set(choices)
    reference, poses, sampler = images(1, 0), images(F, 1), MotionGuideSampler()
    with torch.inference_mode():  # as ComfyUI runs nodes
        (zero,) = MotionGuideLoadGeometryAdapter().load("zero.safetensors")
        (random_adapter,) = MotionGuideLoadGeometryAdapter().load("random.safetensors")
        (plain,) = sampler.sample(node_model, reference, poses, **SAMPLER_ARGS)
        (with_zero,) = sampler.sample(node_model, reference, poses, guidance_maps=node_bundle(),
                                      geometry_adapter=zero, **SAMPLER_ARGS)
        (with_random,) = sampler.sample(node_model, reference, poses, guidance_maps=node_bundle(),
                                        geometry_adapter=random_adapter, adapter_strength=0.5, **SAMPLER_ARGS)
    assert torch.equal(with_zero["samples"], plain["samples"])
    assert float((with_random["samples"] - plain["samples"]).abs().mean()) > 1e-4
    # offload_after_run: the attached adapter is back on the offload device, like the UNet
    part = node_model.extra_parts[ADAPTER_PART]
    assert part.__dict__["_motionguide_source"] is random_adapter
    assert all(p.device.type == "cpu" for p in part.parameters())
    # a run without an adapter lets the last one go
    sampler.sample(node_model, reference, poses, **SAMPLER_ARGS)
    assert ADAPTER_PART not in node_model.extra_parts

    # mismatches name both sides
    with pytest.raises(ValueError, match=r"guidance maps have 5 frames but the pose maps have 6"):
        sampler.sample(node_model, reference, poses, guidance_maps=node_bundle(frames=5), geometry_adapter=zero,
                       **SAMPLER_ARGS)
    with pytest.raises(ValueError, match=r"'v10.safetensors' was trained for 'mimicmotion-1.0'.*'mimicmotion-1.1'"):
        sampler.sample(node_model, reference, poses, guidance_maps=node_bundle(),
                       geometry_adapter=MotionGuideLoadGeometryAdapter().load("v10.safetensors")[0], **SAMPLER_ARGS)
    with pytest.raises(ValueError, match=r"outputs 320 channels, but this UNet's conv_in gives 32"):
        sampler.sample(node_model, reference, poses, guidance_maps=node_bundle(),
                       geometry_adapter=MotionGuideLoadGeometryAdapter().load("wide.safetensors")[0], **SAMPLER_ARGS)
    with pytest.raises(ValueError, match=r"trained on semantic palette 'motionguide-lr-v1', but the connected "
                                         r"guidance maps use 'champ-viridis'"):
        sampler.sample(node_model, reference, poses, guidance_maps=node_bundle(semantic_palette="champ-viridis"),
                       geometry_adapter=zero, **SAMPLER_ARGS)
    with pytest.raises(ValueError, match=r"connect Render SMPL Maps' guidance_maps output"):
        sampler.sample(node_model, reference, poses, geometry_adapter=zero, **SAMPLER_ARGS)
    partial = node_bundle()
    del partial["maps"]["normal"]
    with pytest.raises(ValueError, match=r"\['normal'\] are not in the connected guidance maps"):
        sampler.sample(node_model, reference, poses, guidance_maps=partial, geometry_adapter=zero, **SAMPLER_ARGS)
    with pytest.raises(FileNotFoundError, match=r"'missing.safetensors' was not found.*python cli.py train"):
        MotionGuideLoadGeometryAdapter().load("missing.safetensors")
    assert "python cli.py train" in MotionGuideLoadGeometryAdapter.VALIDATE_INPUTS("missing.safetensors")


def test_a_skeleton_only_adapter_reads_the_pose_maps(node_model, models_dir):
    save_adapter(adapter(maps=("skeleton",), random=True), models_dir / "motionguide_adapters" / "skel.safetensors")
    (skeleton,) = MotionGuideLoadGeometryAdapter().load("skel.safetensors")
    reference, poses, sampler = images(1, 0), images(F, 1), MotionGuideSampler()
    (guided,) = sampler.sample(node_model, reference, poses, geometry_adapter=skeleton, **SAMPLER_ARGS)
    (plain,) = sampler.sample(node_model, reference, poses, **SAMPLER_ARGS)
    assert float((guided["samples"] - plain["samples"]).abs().mean()) > 1e-4


@pytest.mark.gpu  # half precision on a CPU takes minutes even on the tiny model
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_zero_adapter_bit_identical_and_random_adapter_runs(tiny_svd_dir, tiny_mimicmotion_path,
                                                                            dtype):
    """fp16 / bf16 on the GPU: the attached copy runs in the model's dtype and a zero adapter changes nothing."""
    model = load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=dtype, device="cuda")
    reference, poses, maps = inputs()
    poses, maps = poses[:3], {k: v[:3] for k, v in maps.items()}  # one short tile: bf16 is slow on CPUs
    run = dict(RUN, num_inference_steps=1, tile_size=3)
    plain = MimicMotionPipeline(model)(reference, poses, **run)
    zero = MimicMotionPipeline(model)(reference, poses, guidance=[GeometryGuidance(adapter(), maps, model=model)],
                                      **run)
    assert torch.equal(zero.latents, plain.latents)
    guided = MimicMotionPipeline(model)(reference, poses, **run, guidance=[
        GeometryGuidance(adapter(random=True), maps, model=model)])
    assert torch.isfinite(guided.latents).all() and not torch.equal(guided.latents, plain.latents)
    assert {(p.dtype, p.device.type) for p in model.extra_parts[ADAPTER_PART].parameters()} == {(dtype, "cuda")}
