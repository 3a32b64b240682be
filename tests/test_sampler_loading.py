"""Loading SVD + MimicMotion files strictly: tiny files in the real layouts, wrong keys, real-size configs."""
import json
import shutil

import pytest
import torch
from motionguide.headless.tiny_models.svd import TINY_UNET_CONFIG, build_tiny_mimicmotion
from motionguide.pipelines.mimicmotion import loading
from motionguide.pipelines.mimicmotion.pose_net import PoseNet


def _load(svd, ckpt, **kw):
    return loading.load_motion_model(svd, ckpt, dtype=torch.float32, device="cpu", **kw)


def test_tiny_model_loads_with_exact_weights(tiny_svd_dir, tiny_mimicmotion_path):
    model = _load(tiny_svd_dir, tiny_mimicmotion_path)
    raw = torch.load(tiny_mimicmotion_path, weights_only=True)
    torch.testing.assert_close(model.unet.conv_in.weight, raw["unet.conv_in.weight"].float(), rtol=0, atol=0)
    torch.testing.assert_close(model.pose_net.final_proj.bias, raw["pose_net.final_proj.bias"].float(), rtol=0, atol=0)
    assert float(model.pose_net.final_proj.weight.abs().sum()) > 0
    assert model.total_downsampling == 16 and model.vae_scale_factor == 8
    assert model.scaling_factor == pytest.approx(0.18215)
    assert not any(p.device.type == "meta" for p in model.unet.parameters())
    assert not any(b.device.type == "meta" for b in model.image_encoder.buffers())
    assert model.image_encoder.vision_model.embeddings.position_ids[0, :4].tolist() == [0, 1, 2, 3]
    assert model.unet.dtype == torch.float32 and model.vae.dtype == torch.float32


def test_fp16_precision_keeps_fp16(tiny_svd_dir, tiny_mimicmotion_path):
    model = loading.load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float16, device="cpu")
    assert model.unet.conv_in.weight.dtype == torch.float16 and model.image_encoder.dtype == torch.float16


def test_wrong_prefix_fails_naming_keys_and_file(tmp_path, tiny_svd_dir):
    bad = build_tiny_mimicmotion(tmp_path / "bad.pth", tiny_svd_dir, prefixes=("model.unet.", "model.pose_net."))
    with pytest.raises(ValueError) as err:
        _load(tiny_svd_dir, bad)
    text = str(err.value)
    assert "bad.pth" in text and "missing" in text and "unexpected" in text
    assert "Keys start with ['model.']; expected ['unet.', 'pose_net.']" in text


def test_wrong_shapes_and_missing_pose_net_fail(tmp_path, tiny_svd_dir):
    other = dict(TINY_UNET_CONFIG, cross_attention_dim=16)
    wrong = build_tiny_mimicmotion(tmp_path / "wrong.pth", other)
    with pytest.raises(ValueError, match="wrong shape"):
        _load(tiny_svd_dir, wrong)
    unet_only = tmp_path / "unet_only.pth"
    state = torch.load(build_tiny_mimicmotion(tmp_path / "x.pth", tiny_svd_dir), weights_only=True)
    torch.save({k: v for k, v in state.items() if k.startswith("unet.")}, unet_only)
    with pytest.raises(ValueError, match="no PoseNet weights"):
        _load(tiny_svd_dir, unet_only)


def test_unet_only_safetensors_plus_pose_net_file(tmp_path, tiny_svd_dir, tiny_mimicmotion_path):
    from safetensors.torch import save_file

    state = torch.load(tiny_mimicmotion_path, weights_only=True)
    save_file({k[5:]: v for k, v in state.items() if k.startswith("unet.")}, str(tmp_path / "unet.safetensors"))
    save_file({k[9:]: v for k, v in state.items() if k.startswith("pose_net.")}, str(tmp_path / "pose.safetensors"))
    model = _load(tiny_svd_dir, tmp_path / "unet.safetensors", pose_net_file=tmp_path / "pose.safetensors")
    torch.testing.assert_close(model.pose_net.scale, state["pose_net.scale"].float())
    torch.testing.assert_close(model.unet.conv_out.weight, state["unet.conv_out.weight"].float())
    with pytest.raises(ValueError, match="pick one"):
        _load(tiny_svd_dir, tiny_mimicmotion_path, pose_net_file=tmp_path / "pose.safetensors")


def test_scheduler_that_is_not_svd_fails(tmp_path, tiny_svd_dir, tiny_mimicmotion_path):
    copy = shutil.copytree(tiny_svd_dir, tmp_path / "svd")
    config_path = copy / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config["prediction_type"] = "epsilon"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="prediction_type"):
        _load(copy, tiny_mimicmotion_path)


def test_scheduler_fields_the_sampler_ignores_are_warned(caplog):
    svd = json.loads((loading.BUNDLED_SVD_CONFIG / "scheduler" / "scheduler_config.json").read_text())
    with caplog.at_level("WARNING"):
        loading.check_scheduler_config(svd, "bundled")
    assert not caplog.records  # SVD's own config: nothing to say
    with caplog.at_level("WARNING"):
        loading.check_scheduler_config({**svd, "use_karras_sigmas": False, "timestep_spacing": "trailing"}, "mine")
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "mine" in text and "use_karras_sigmas" in text and "timestep_spacing" in text and "ignored" in text


def test_missing_vae_weights_name_the_folder(tmp_path, tiny_svd_dir, tiny_mimicmotion_path):
    copy = shutil.copytree(tiny_svd_dir, tmp_path / "svd")
    (copy / "vae" / "diffusion_pytorch_model.fp16.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model"):
        _load(copy, tiny_mimicmotion_path)


def test_bundled_real_configs_build_svd_xt_sizes_on_meta():
    unet_config = json.loads((loading.BUNDLED_SVD_CONFIG / "unet" / "config.json").read_text())
    unet = loading.build_unet(unet_config)
    # only AlphaBlender's scalar mix factors (built with torch.Tensor) escape the meta device
    assert sum(p.numel() for p in unet.parameters() if p.device.type != "meta") < 100
    assert 1.52e9 < sum(p.numel() for p in unet.parameters()) < 1.53e9
    assert unet.conv_in.weight.shape == (320, 8, 3, 3)
    assert unet.add_embedding.linear_1.in_features == 768
    vae = loading.build_vae(json.loads((loading.BUNDLED_SVD_CONFIG / "vae" / "config.json").read_text()))
    assert loading.vae_downsampling(vae.config) * loading.unet_downsampling(unet_config) == 64
    clip = loading.build_image_encoder(json.loads((loading.BUNDLED_SVD_CONFIG / "image_encoder" / "config.json").read_text()))
    assert clip.visual_projection.weight.shape == (1024, 1280)
    scheduler = json.loads((loading.BUNDLED_SVD_CONFIG / "scheduler" / "scheduler_config.json").read_text())
    loading.check_scheduler_config(scheduler, "bundled")


def test_pose_net_layout_and_zero_init():
    net = PoseNet()
    keys = sorted(net.state_dict())
    assert keys == sorted([f"conv_layers.{i}.{p}" for i in range(0, 16, 2) for p in ("weight", "bias")] + \
        ["final_proj.weight", "final_proj.bias", "scale"])
    assert sum(p.numel() for p in net.parameters()) == 205557
    assert float(net.scale.detach()) == 2.0
    out = net(torch.rand(2, 3, 64, 48) * 2 - 1)
    assert out.shape == (2, 320, 8, 6) and float(out.abs().max()) == 0.0


def test_single_file_svd_matches_the_diffusers_folder(tmp_path, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.headless.tiny_models.svd import build_tiny_svd_single_file

    folder = loading.load_svd_base(tiny_svd_dir, torch.float32)
    single = build_tiny_svd_single_file(tmp_path / "svd_xt_1_1.safetensors", tiny_svd_dir)
    from_file = loading.load_svd_base(single, torch.float32, config_dir=tiny_svd_dir)
    for part in ("vae", "image_encoder"):
        a, b = getattr(folder, part).state_dict(), getattr(from_file, part).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    # Stability's file has no quant_conv: the identity is used
    bare = build_tiny_svd_single_file(tmp_path / "bare.safetensors", tiny_svd_dir, with_quant_conv=False)
    vae = loading.load_svd_base(bare, torch.float32, config_dir=tiny_svd_dir).vae
    torch.testing.assert_close(vae.quant_conv.weight[:, :, 0, 0], torch.eye(8))
    model = loading.load_motion_model(single, tiny_mimicmotion_path, dtype=torch.float32, device="cpu",
                                      config_dir=tiny_svd_dir)
    assert model.total_downsampling == 16


def test_single_file_that_is_not_svd_fails(tmp_path):
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.x": torch.zeros(1)}, str(tmp_path / "sd15.safetensors"))
    with pytest.raises(ValueError, match="not an SVD checkpoint"):
        loading.load_svd_base(tmp_path / "sd15.safetensors", torch.float32)


def test_real_svd_key_names_convert():
    from motionguide.pipelines.mimicmotion.single_file import vae_key

    assert vae_key("decoder.up.3.block.0.time_stack.in_layers.2.weight", 4) == \
        "decoder.up_blocks.0.resnets.0.temporal_res_block.conv1.weight"
    assert vae_key("decoder.mid.block_1.mix_factor", 4) == "decoder.mid_block.resnets.0.time_mixer.mix_factor"
    assert vae_key("decoder.up.1.block.0.nin_shortcut.weight", 4) == \
        "decoder.up_blocks.2.resnets.0.spatial_res_block.conv_shortcut.weight"
    assert vae_key("encoder.down.1.block.0.nin_shortcut.bias", 4) == "encoder.down_blocks.1.resnets.0.conv_shortcut.bias"
    assert vae_key("decoder.conv_out.time_mix_conv.weight", 4) == "decoder.time_conv_out.weight"
    assert vae_key("encoder.mid.attn_1.proj_out.weight", 4) == "encoder.mid_block.attentions.0.to_out.0.weight"
    # every key of the real-size temporal VAE survives LDM naming and back
    from motionguide.headless.tiny_models.svd import _ldm_vae_name

    vae = loading.build_vae(json.loads((loading.BUNDLED_SVD_CONFIG / "vae" / "config.json").read_text()))
    keys = list(vae.state_dict())
    assert any("conv_shortcut" in k for k in keys) and any("temporal_res_block" in k for k in keys)
    assert [vae_key(_ldm_vae_name(k, 4), 4) for k in keys] == keys


def test_memory_modes_move_parts(tiny_svd_dir, tiny_mimicmotion_path):
    def where(model):
        return {n: next(getattr(model, n).parameters()).device.type for n in model.PARTS}

    # the meta device stands in for "RAM" so moves are visible on a CPU-only machine
    model = _load(tiny_svd_dir, tiny_mimicmotion_path, memory_mode="sequential_offload", offload_device="meta")
    with model.use("vae"):
        assert where(model) == {"image_encoder": "meta", "vae": "cpu", "pose_net": "meta", "unet": "meta"}
    assert where(model)["vae"] == "meta"
    model = _load(tiny_svd_dir, tiny_mimicmotion_path, memory_mode="keep_loaded", offload_device="meta")
    with model.use("unet"):
        pass
    model.end_run()
    assert set(where(model).values()) == {"cpu"}
    model = _load(tiny_svd_dir, tiny_mimicmotion_path, memory_mode="offload_after_run", offload_device="meta")
    model.end_run()
    assert set(where(model).values()) == {"meta"}
    with pytest.raises(ValueError, match="memory_mode"):
        _load(tiny_svd_dir, tiny_mimicmotion_path, memory_mode="swap")
