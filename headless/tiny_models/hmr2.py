"""A tiny, randomly initialised HMR2.0 of the real architecture, saved as a Lightning-style ``.ckpt``.

Same module tree and key names as the public checkpoint (``backbone.*``, ``smpl_head.*`` with the ``init_*``
mean-parameter buffers, plus the training-only ``discriminator.*``, ``smpl.*`` and ``initialized`` entries the
loader must drop), with small sizes: embed 32, depth 2; the crop and patch grid are the real ones.
"""
from __future__ import annotations

from pathlib import Path

import torch

TINY_CONFIG = {
    "embed_dim": 32, "depth": 2, "num_heads": 2,
    "head_dim": 32, "head_depth": 2, "head_heads": 2, "head_dim_head": 16, "head_mlp_dim": 64,
}
TINY_FILE = "hmr2_tiny.ckpt"


def tiny_hmr2_state_dict(seed: int = 0) -> tuple[dict, dict]:
    """(model state_dict, lightning cfg) of a tiny network; deterministic for a seed."""
    from motionguide.pipelines.smpl.estimate.hmr2_vit import HMR2Config, HMR2Network

    config = HMR2Config.from_dict(TINY_CONFIG)
    torch.manual_seed(seed)
    network = HMR2Network(config)
    with torch.no_grad():
        network.backbone.pos_embed.normal_(0.0, 0.02)
        network.smpl_head.transformer.pos_embedding.normal_(0.0, 1.0)
        head = network.smpl_head
        for layer in (head.decpose, head.decshape, head.deccam):
            layer.weight.mul_(0.1)
            layer.bias.mul_(0.1)
        # Mean parameters like SPIN's: root turned 180° about x (camera space), other joints at rest.
        pose = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(config.num_body_joints + 1)
        pose[:6] = torch.tensor([1.0, 0.0, 0.0, 0.0, -1.0, 0.0])
        head.init_body_pose.copy_(pose[None])
        head.init_betas.zero_()
        head.init_cam.copy_(torch.tensor([[0.9, 0.0, 0.0]]))
    cfg = {
        "MODEL": {
            "IMAGE_SIZE": 256, "IMAGE_MEAN": [0.485, 0.456, 0.406], "IMAGE_STD": [0.229, 0.224, 0.225],
            "BACKBONE": {"TYPE": "vit"},
            "SMPL_HEAD": {"TYPE": "transformer_decoder", "TRANSFORMER_DECODER": {
                "depth": TINY_CONFIG["head_depth"], "heads": TINY_CONFIG["head_heads"],
                "mlp_dim": TINY_CONFIG["head_mlp_dim"], "dim_head": TINY_CONFIG["head_dim_head"],
                "dropout": 0.0, "emb_dropout": 0.0, "norm": "layer", "context_dim": TINY_CONFIG["embed_dim"]}},
        },
        "EXTRA": {"FOCAL_LENGTH": 5000},
    }
    return network.state_dict(), cfg


def build_tiny_hmr2(path, seed: int = 0) -> Path:
    """Write the tiny network as a Lightning-style checkpoint at ``path`` and return it."""
    from motionguide.pipelines.smpl.estimate.hmr2 import CONFIG_ENTRY

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict, cfg = tiny_hmr2_state_dict(seed)
    state_dict = dict(state_dict)
    # Training-only entries of the real file (shapes shortened): the loader must drop them by name.
    state_dict["discriminator.D_conv1.weight"] = torch.zeros(32, 9, 1, 1)
    state_dict["discriminator.betas_out.bias"] = torch.zeros(1)
    state_dict["smpl.v_template"] = torch.zeros(6890, 3)
    state_dict["smpl.joint_map"] = torch.arange(25)
    state_dict["initialized"] = torch.tensor(True)
    checkpoint = {
        "epoch": 0, "global_step": 0, "pytorch-lightning_version": "2.0.0",
        "state_dict": state_dict,
        "hyper_parameters": {"cfg": cfg},
        # Backbone sizes are hard-coded in the reference code (ViT-H), so a tiny file states them.
        CONFIG_ENTRY: {k: v for k, v in TINY_CONFIG.items()},
    }
    torch.save(checkpoint, path)
    return path
