"""Geometry adapter: Champ-shaped encoders, zero-initialised output, strict and safe files."""
import json

import pytest
import torch

from motionguide.pipelines.guidance.geometry_adapter import (AdapterConfig, GeometryAdapter, GeometryGuidance,
                                                             check_compatible, load_adapter, maps_to_input,
                                                             save_adapter)
from motionguide.pipelines.guidance.hook import UNetCall

F, H, W = 3, 64, 48


def image_maps(names=("depth", "normal"), seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.rand(F, H, W, 3, generator=g) for name in names}


def randomised(config):
    torch.manual_seed(1)
    adapter = GeometryAdapter(config)
    for p in adapter.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return adapter


def test_encoders_downsample_by_8_and_a_fresh_adapter_adds_nothing():
    adapter = GeometryAdapter(AdapterConfig(maps=("depth", "normal", "semantic", "mask"), out_channels=32))
    maps = maps_to_input(image_maps(("depth", "normal", "semantic", "mask")), adapter.config.maps)
    assert maps["depth"].shape == (F, 1, H, W) and maps["normal"].shape == (F, 3, H, W)
    assert float(maps["normal"].min()) >= -1.0 and float(maps["normal"].max()) <= 1.0
    out = adapter(maps)
    assert out.shape == (F, 32, H // 8, W // 8)
    assert torch.count_nonzero(out) == 0
    convs = [m for m in adapter.encoders["depth"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (1, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 96, 2), (96, 96, 1), (96, 256, 2), (256, 32, 1)]


def test_round_trip_is_exact_and_strict(tmp_path):
    adapter = randomised(AdapterConfig(maps=("semantic", "depth"), out_channels=8, extra={"run": "t"}))
    path = save_adapter(adapter, tmp_path / "a.safetensors")
    assert json.loads(path.with_suffix(".json").read_text())["maps"] == ["semantic", "depth"]
    loaded = load_adapter(path)
    assert loaded.config == adapter.config
    maps = maps_to_input(image_maps(("semantic", "depth")), ("semantic", "depth"))
    assert torch.equal(loaded(maps), adapter(maps))
    # a tensor removed: the error names it
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    del tensors["encoders.depth.conv_out.bias"]
    save_file(tensors, str(tmp_path / "b.safetensors"), metadata={"motionguide_adapter_config": adapter.config.to_json()})
    with pytest.raises(ValueError, match=r"missing \['encoders.depth.conv_out.bias'\]"):
        load_adapter(tmp_path / "b.safetensors")
    # another file without the config
    save_file({"x": torch.zeros(1)}, str(tmp_path / "c.safetensors"))
    with pytest.raises(ValueError, match="not a MotionGuide geometry adapter"):
        load_adapter(tmp_path / "c.safetensors")
    (tmp_path / "d.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        load_adapter(tmp_path / "d.safetensors")


def test_config_rejects_unknown_keys_maps_and_conventions():
    with pytest.raises(ValueError, match=r"unknown adapter config keys \['colour'\]"):
        AdapterConfig.from_json(json.dumps({"maps": ["depth"], "colour": 1}))
    with pytest.raises(ValueError, match="unknown maps"):
        AdapterConfig(maps=("heat",))
    with pytest.raises(ValueError, match="semantic_palette"):
        AdapterConfig(maps=("semantic",), semantic_palette="champ")
    config = AdapterConfig(maps=("depth", "normal"))
    with pytest.raises(ValueError, match=r"trained on maps \['depth', 'normal'\].*\['normal'\] are not connected"):
        check_compatible(config, {"depth": 1})
    with pytest.raises(ValueError, match="trained for 'mimicmotion-1.1'.*'mimicmotion-1.0'"):
        check_compatible(config, {"depth": 1, "normal": 1}, base_model="mimicmotion-1.0")


def test_guidance_module_caches_every_frame_and_scales_by_strength():
    adapter = randomised(AdapterConfig(maps=("depth", "normal"), out_channels=8))
    maps = image_maps()
    cpu = torch.device("cpu")
    guide = GeometryGuidance(adapter, maps, strength=0.5, chunk=2)
    guide.check(F, H, W)
    guide.prepare(cpu, torch.float32, cpu)
    full = adapter(maps_to_input(maps, ("depth", "normal")))
    torch.testing.assert_close(guide.features, full)
    idx = torch.tensor([0, 2])
    call = UNetCall(0, 1, torch.zeros(1), torch.zeros(1), None, None, [idx, idx], [False, True])
    out = guide.residuals(call).conv_in
    assert torch.equal(out[:2], torch.zeros_like(out[:2]))  # the unconditional pass gets nothing
    torch.testing.assert_close(out[2:], full[idx] * 0.5)
    with pytest.raises(ValueError, match="Guidance map 'depth' is 3 frames of 48×64, but the pose maps are 4 frames"):
        guide.check(4, H, W)
