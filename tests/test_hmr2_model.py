"""HMR2 network layout (key names of the public checkpoint), output shapes, and strict loading."""
import sys
import types

import numpy as np
import pytest
import torch
from motionguide.headless.tiny_models.hmr2 import TINY_CONFIG, build_tiny_hmr2, tiny_hmr2_state_dict
from motionguide.pipelines.smpl.estimate.hmr2 import (
    CONFIG_ENTRY,
    config_from_checkpoint_meta,
    load_hmr2_network,
    load_state_dict_strict,
    read_checkpoint,
)
from motionguide.pipelines.smpl.estimate.hmr2_vit import HMR2Config, HMR2Network

# Names and shapes of the public HMR2.0 checkpoint's state_dict (from the 4D-Humans module tree).
PUBLIC_KEYS = {
    "backbone.pos_embed": (1, 193, 1280),
    "backbone.patch_embed.proj.weight": (1280, 3, 16, 16),
    "backbone.patch_embed.proj.bias": (1280,),
    "backbone.blocks.0.norm1.weight": (1280,),
    "backbone.blocks.0.attn.qkv.weight": (3840, 1280),
    "backbone.blocks.0.attn.qkv.bias": (3840,),
    "backbone.blocks.0.attn.proj.weight": (1280, 1280),
    "backbone.blocks.31.mlp.fc1.weight": (5120, 1280),
    "backbone.blocks.31.mlp.fc2.weight": (1280, 5120),
    "backbone.blocks.31.norm2.bias": (1280,),
    "backbone.last_norm.weight": (1280,),
    "smpl_head.transformer.to_token_embedding.weight": (1024, 1),
    "smpl_head.transformer.pos_embedding": (1, 1, 1024),
    "smpl_head.transformer.transformer.layers.0.0.norm.weight": (1024,),
    "smpl_head.transformer.transformer.layers.0.0.fn.to_qkv.weight": (1536, 1024),
    "smpl_head.transformer.transformer.layers.0.0.fn.to_out.0.weight": (1024, 512),
    "smpl_head.transformer.transformer.layers.5.1.fn.to_kv.weight": (1024, 1280),
    "smpl_head.transformer.transformer.layers.5.1.fn.to_q.weight": (512, 1024),
    "smpl_head.transformer.transformer.layers.5.2.fn.net.0.weight": (1024, 1024),
    "smpl_head.transformer.transformer.layers.5.2.fn.net.3.bias": (1024,),
    "smpl_head.decpose.weight": (144, 1024),
    "smpl_head.decshape.weight": (10, 1024),
    "smpl_head.deccam.bias": (3,),
    "smpl_head.init_body_pose": (1, 144),
    "smpl_head.init_betas": (1, 10),
    "smpl_head.init_cam": (1, 3),
}


def test_full_size_network_has_the_public_checkpoint_layout():
    with torch.device("meta"):
        network = HMR2Network(HMR2Config())
    shapes = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    for key, shape in PUBLIC_KEYS.items():
        assert shapes.get(key) == shape, key
    assert all(k.startswith(("backbone.", "smpl_head.")) for k in shapes)
    # 32 blocks × 12 tensors + patch conv (2) + pos_embed + last_norm (2) = 389 backbone entries; 6 decoder
    # layers × (5 self-attn + 6 cross-attn + 6 feed-forward) + token embedding (2) + pos + 3 readouts (6)
    # + 3 mean buffers = 114 head entries.
    assert sum(k.startswith("backbone.") for k in shapes) == 389
    assert sum(k.startswith("smpl_head.") for k in shapes) == 114
    n_params = sum(p.numel() for p in network.parameters())
    assert 660e6 < n_params < 680e6  # ViT-H (≈631M) + decoder (≈39M)


def test_tiny_network_outputs(hmr2_tiny_checkpoint):
    network = load_hmr2_network(hmr2_tiny_checkpoint)
    assert network.cfg.embed_dim == 32 and network.cfg.depth == 2 and network.cfg.head_heads == 2
    crops = torch.randn(3, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    out = network(crops)
    assert out["global_orient"].shape == (3, 1, 3, 3)
    assert out["body_pose"].shape == (3, 23, 3, 3)
    assert out["betas"].shape == (3, 10) and out["cam"].shape == (3, 3)
    rot = torch.cat([out["global_orient"], out["body_pose"]], 1).double()
    np.testing.assert_allclose(torch.linalg.det(rot).numpy(), 1.0, atol=1e-5)
    # The columns left of 32 and right of 224 are outside the ViT window: changing them changes nothing.
    edited = crops.clone()
    edited[..., :32] = 5.0
    edited[..., 224:] = -5.0
    torch.testing.assert_close(network(edited)["cam"], out["cam"])
    edited[..., 100] += 1.0
    assert not torch.allclose(network(edited)["cam"], out["cam"])


def test_zero_head_readout_returns_the_mean_parameters(hmr2_tiny_checkpoint):
    network = load_hmr2_network(hmr2_tiny_checkpoint)
    head = network.smpl_head
    with torch.no_grad():
        for layer in (head.decpose, head.decshape, head.deccam):
            layer.weight.zero_()
            layer.bias.zero_()
    out = network(torch.zeros(1, 3, 256, 256))
    np.testing.assert_allclose(out["global_orient"][0, 0].numpy(), np.diag([1.0, -1.0, -1.0]), atol=1e-6)
    np.testing.assert_allclose(out["body_pose"][0].numpy(), np.broadcast_to(np.eye(3), (23, 3, 3)), atol=1e-6)
    np.testing.assert_allclose(out["cam"][0].numpy(), [0.9, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(out["betas"][0].numpy(), 0.0)


def test_ief_iterations_and_mean_shape_token():
    cfg = HMR2Config.from_dict({**TINY_CONFIG, "ief_iters": 3, "transformer_input": "mean_shape"})
    network = HMR2Network(cfg).eval()
    assert network.smpl_head.transformer.to_token_embedding.weight.shape == (32, 144 + 10 + 3)
    out = network(torch.zeros(2, 3, 256, 256))
    assert out["cam"].shape == (2, 3)


# ---------------------------------------------------------------------------------------------------- loading


def _save(tmp_path, name, state_dict, **extra):
    path = tmp_path / name
    torch.save({"state_dict": state_dict, CONFIG_ENTRY: dict(TINY_CONFIG), **extra}, path)
    return path


def test_loading_reads_the_lightning_config_and_drops_training_entries(hmr2_tiny_checkpoint):
    state_dict, meta = read_checkpoint(hmr2_tiny_checkpoint)
    assert "discriminator.D_conv1.weight" in state_dict and "initialized" in state_dict
    config = config_from_checkpoint_meta({"hyper_parameters": meta["hyper_parameters"]})
    assert (config.head_depth, config.head_heads, config.head_dim_head, config.head_mlp_dim) == (2, 2, 16, 64)
    assert config.embed_dim == 1280  # not in the Lightning config: the public default
    network = load_hmr2_network(hmr2_tiny_checkpoint)
    expected, _ = tiny_hmr2_state_dict()
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, expected[key])


def test_renamed_key_fails_naming_it(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    state_dict["backbone.blocks.1.attn.qkv.weights"] = state_dict.pop("backbone.blocks.1.attn.qkv.weight")
    path = _save(tmp_path, "renamed.ckpt", state_dict)
    with pytest.raises(ValueError) as info:
        load_hmr2_network(path)
    message = str(info.value)
    assert "missing keys: backbone.blocks.1.attn.qkv.weight" in message
    assert "unexpected keys: backbone.blocks.1.attn.qkv.weights" in message
    assert "renamed.ckpt" in message


def test_missing_key_fails_naming_it(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    del state_dict["smpl_head.init_cam"]
    with pytest.raises(ValueError, match=r"missing\.ckpt.*missing keys: smpl_head\.init_cam\)"):
        load_hmr2_network(_save(tmp_path, "missing.ckpt", state_dict))


def test_unknown_extra_key_fails(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    state_dict["smpl_head.extra_head.weight"] = torch.zeros(2)
    with pytest.raises(ValueError, match=r"unexpected keys: smpl_head\.extra_head\.weight"):
        load_hmr2_network(_save(tmp_path, "extra.ckpt", state_dict))


def test_wrong_prefix_fails_with_a_hint(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    state_dict = {"model." + k: v for k, v in state_dict.items()}
    with pytest.raises(ValueError, match=r"No key starts with \('backbone\.', 'smpl_head\.'\).*model\."):
        load_hmr2_network(_save(tmp_path, "prefixed.ckpt", state_dict))


def test_wrong_shape_fails_naming_key_and_shapes(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    state_dict["smpl_head.decshape.weight"] = torch.zeros(11, 32)
    with pytest.raises(ValueError, match=r"smpl_head\.decshape\.weight: file \(11, 32\) vs network \(10, 32\)"):
        load_hmr2_network(_save(tmp_path, "shape.ckpt", state_dict))


def test_tiny_file_without_sizes_fails_against_the_full_architecture(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    path = tmp_path / "nosizes.ckpt"
    torch.save({"state_dict": state_dict}, path)
    with pytest.raises(ValueError, match="missing keys: backbone.blocks.10"):
        load_hmr2_network(path)


def test_lightning_pickled_config_class_and_numpy_scalars_load_without_the_class(tmp_path, monkeypatch):
    # The public file pickles a yacs CfgNode (dict subclass with attributes) and numpy scalars; neither
    # yacs nor any code from the file may be needed to read it.
    package, module = types.ModuleType("yacs"), types.ModuleType("yacs.config")
    package.config = module
    monkeypatch.setitem(sys.modules, "yacs", package)

    class CfgNode(dict):
        def __init__(self, *args):
            super().__init__(*args)
            self.__dict__["__immutable__"] = True

    CfgNode.__module__ = module.__name__
    CfgNode.__qualname__ = "CfgNode"
    module.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, module.__name__, module)
    state_dict, cfg = tiny_hmr2_state_dict()
    head = CfgNode({"TYPE": "transformer_decoder", "IEF_ITERS": 1,
                    "TRANSFORMER_DECODER": CfgNode(cfg["MODEL"]["SMPL_HEAD"]["TRANSFORMER_DECODER"])})
    hyper = {"cfg": CfgNode({"MODEL": CfgNode({"SMPL_HEAD": head, "IMAGE_SIZE": 256})})}
    path = _save(tmp_path, "lightning.ckpt", state_dict, hyper_parameters=hyper, best_score=np.float64(0.5))
    monkeypatch.delitem(sys.modules, module.__name__)
    monkeypatch.delitem(sys.modules, "yacs")
    network = load_hmr2_network(path)
    assert network.cfg.head_heads == 2 and network.cfg.ief_iters == 1


class Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > " + str(self.target),))


class SlotState:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a, self.b = 1, [2, 3]


def test_code_in_the_pickle_is_never_run(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    path = _save(tmp_path, "evil.ckpt", state_dict, payload=Exploit(tmp_path / "pwned"))
    with pytest.raises(ValueError, match="HMR2 checkpoint .*evil.ckpt. was refused"):
        load_hmr2_network(path)
    assert not (tmp_path / "pwned").exists()


def test_other_pickled_objects_are_read_as_inert_data(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    path = _save(tmp_path, "odd.ckpt", state_dict, callbacks={"c": SlotState()}, where=tmp_path)
    network = load_hmr2_network(path)
    assert network.cfg.embed_dim == 32


def test_non_tensor_in_the_state_dict_is_an_error(tmp_path):
    state_dict, _ = tiny_hmr2_state_dict()
    state_dict["smpl_head.init_cam"] = SlotState()
    with pytest.raises(ValueError, match=r"non-tensor entries in its state_dict: smpl_head\.init_cam"):
        load_hmr2_network(_save(tmp_path, "odd.ckpt", state_dict))


def test_safetensors_state_dict_loads(tmp_path):
    from safetensors.torch import save_file

    state_dict, _ = tiny_hmr2_state_dict()
    path = tmp_path / "hmr2.safetensors"
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    loaded, meta = read_checkpoint(path)
    assert meta == {} and set(loaded) == set(state_dict)
    network = HMR2Network(HMR2Config.from_dict(TINY_CONFIG))
    load_state_dict_strict(network, loaded, path)
    torch.testing.assert_close(network.smpl_head.init_cam, state_dict["smpl_head.init_cam"])


def test_unknown_config_field_is_an_error():
    with pytest.raises(ValueError, match="Unknown HMR2 config fields"):
        HMR2Config.from_dict({"embed_dims": 3})


def test_builder_is_deterministic(tmp_path):
    a = torch.load(build_tiny_hmr2(tmp_path / "a.ckpt"), weights_only=True)["state_dict"]
    b = torch.load(build_tiny_hmr2(tmp_path / "b.ckpt"), weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
