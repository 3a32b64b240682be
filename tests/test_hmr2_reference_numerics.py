"""HMR2 numerics on tiny weights against an independent, functional transcription of 4D-Humans' forward pass.

The transcription below reads the raw state dict and follows 4D-Humans (``hmr2/models/backbones/vit.py``:
ViTPose patch conv with padding 2, positions ``pos[1:] + pos[:1]``, pre-norm blocks with LayerNorm eps 1e-6 and
explicit ``softmax(q·scale @ kᵀ) @ v`` attention, GELU MLP, ``last_norm``; ``hmr2.py``: the ViT sees columns
32..224 of the 256² crop; ``heads/smpl_head.py`` + ``components/pose_transformer.py``: a zero token embedded by
``to_token_embedding`` plus ``pos_embedding``, per layer pre-norm (eps 1e-5) self-attention, cross-attention to the
image tokens and a GELU feed-forward, each residual; readouts added to the ``init_*`` mean parameters; Zhou et
al.'s 6D → rotation matrix). It uses none of ``pipelines/smpl``'s modules, only their weights.
"""
import pytest
import torch
import torch.nn.functional as F
from motionguide.headless.tiny_models.hmr2 import TINY_CONFIG, tiny_hmr2_state_dict
from motionguide.pipelines.smpl.estimate.hmr2_vit import HMR2Config, HMR2Network


def _layer_norm(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], eps)


def _linear(x, sd, prefix, bias=True):
    return F.linear(x, sd[prefix + ".weight"], sd.get(prefix + ".bias") if bias else None)


def _attend(q, k, v, heads):
    """Multi-head attention written out: [B,N,h·d] tensors, softmax((q·d^-½) kᵀ) v."""
    b, n, inner = q.shape
    d = inner // heads

    def split(t):
        return t.reshape(t.shape[0], t.shape[1], heads, d).permute(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    weights = torch.softmax(torch.matmul(q * d**-0.5, k.transpose(-1, -2)), dim=-1)
    return torch.matmul(weights, v).permute(0, 2, 1, 3).reshape(b, n, inner)


def transcribed_vit(sd, image, depth, heads):
    """4D-Humans ViT.forward_features on ``image`` [B,3,256,192] → [B,C,16,12]."""
    x = F.conv2d(image, sd["backbone.patch_embed.proj.weight"], sd["backbone.patch_embed.proj.bias"], stride=16,
                 padding=2)
    b, c, hp, wp = x.shape
    x = x.flatten(2).transpose(1, 2)
    pos = sd["backbone.pos_embed"]
    x = x + pos[:, 1:] + pos[:, :1]
    for i in range(depth):
        p = f"backbone.blocks.{i}"
        h = _layer_norm(x, sd, p + ".norm1", 1e-6)
        qkv = _linear(h, sd, p + ".attn.qkv").reshape(b, -1, 3, c)
        x = x + _linear(_attend(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], heads), sd, p + ".attn.proj")
        h = _layer_norm(x, sd, p + ".norm2", 1e-6)
        x = x + _linear(F.gelu(_linear(h, sd, p + ".mlp.fc1")), sd, p + ".mlp.fc2")
    x = _layer_norm(x, sd, "backbone.last_norm", 1e-6)
    return x.permute(0, 2, 1).reshape(b, c, hp, wp)


def transcribed_rot6d(x):
    """Zhou et al.: the 6 numbers are the first two columns; Gram–Schmidt, third column by the cross product."""
    m = x.reshape(-1, 2, 3).permute(0, 2, 1)
    a1, a2 = m[:, :, 0], m[:, :, 1]
    b1 = a1 / a1.norm(dim=1, keepdim=True).clamp_min(1e-12)
    u = a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1
    b2 = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b3 = torch.linalg.cross(b1, b2, dim=1)
    return torch.stack((b1, b2, b3), dim=-1)


def transcribed_head(sd, features, depth, heads):
    """4D-Humans SMPLTransformerDecoderHead.forward (zero token, one IEF iteration)."""
    b = features.shape[0]
    context = features.flatten(2).permute(0, 2, 1)
    t = "smpl_head.transformer"
    x = _linear(torch.zeros(b, 1, 1), sd, t + ".to_token_embedding") + sd[t + ".pos_embedding"][:, :1]
    for i in range(depth):
        p = f"{t}.transformer.layers.{i}"
        h = _layer_norm(x, sd, p + ".0.norm", 1e-5)
        q, k, v = _linear(h, sd, p + ".0.fn.to_qkv", bias=False).chunk(3, dim=-1)
        x = _linear(_attend(q, k, v, heads), sd, p + ".0.fn.to_out.0") + x
        h = _layer_norm(x, sd, p + ".1.norm", 1e-5)
        k, v = _linear(context, sd, p + ".1.fn.to_kv", bias=False).chunk(2, dim=-1)
        q = _linear(h, sd, p + ".1.fn.to_q", bias=False)
        x = _linear(_attend(q, k, v, heads), sd, p + ".1.fn.to_out.0") + x
        h = _layer_norm(x, sd, p + ".2.norm", 1e-5)
        x = _linear(F.gelu(_linear(h, sd, p + ".2.fn.net.0")), sd, p + ".2.fn.net.3") + x
    token = x[:, 0]
    pose = _linear(token, sd, "smpl_head.decpose") + sd["smpl_head.init_body_pose"]
    betas = _linear(token, sd, "smpl_head.decshape") + sd["smpl_head.init_betas"]
    cam = _linear(token, sd, "smpl_head.deccam") + sd["smpl_head.init_cam"]
    rotmats = transcribed_rot6d(pose).reshape(b, -1, 3, 3)
    return {"global_orient": rotmats[:, :1], "body_pose": rotmats[:, 1:], "betas": betas, "cam": cam}


@torch.no_grad()
def test_hmr2_forward_matches_the_4d_humans_transcription():
    sd, _ = tiny_hmr2_state_dict(seed=3)
    network = HMR2Network(HMR2Config.from_dict(TINY_CONFIG)).eval()
    network.load_state_dict(sd, strict=True)
    crops = torch.randn(3, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    features = transcribed_vit(sd, crops[:, :, :, 32:-32], TINY_CONFIG["depth"], TINY_CONFIG["num_heads"])
    torch.testing.assert_close(network.backbone(crops[:, :, :, 32:224]), features, rtol=1e-5, atol=1e-5)
    expected = transcribed_head(sd, features, TINY_CONFIG["head_depth"], TINY_CONFIG["head_heads"])
    got = network(crops)
    for key in ("global_orient", "body_pose", "betas", "cam"):
        assert got[key].shape == expected[key].shape, key
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-5, msg=key)
    # the outputs are not trivially the mean parameters: the network's weights move them
    assert float((got["betas"] - sd["smpl_head.init_betas"]).abs().max()) > 1e-3
    assert float((got["cam"] - sd["smpl_head.init_cam"]).abs().max()) > 1e-3
    rot = got["body_pose"]
    eye = torch.eye(3).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye, rtol=0, atol=1e-5)  # proper rotations
    assert torch.allclose(torch.linalg.det(rot), torch.ones(()), atol=1e-5)
    # a different crop changes every output (no input is ignored)
    other = network(crops.flip(-1))
    assert float((other["cam"] - got["cam"]).abs().max()) > 1e-4


@pytest.mark.parametrize("batch", [1, 4])
@torch.no_grad()
def test_hmr2_crops_are_independent_of_the_batch(batch):
    sd, _ = tiny_hmr2_state_dict(seed=5)
    network = HMR2Network(HMR2Config.from_dict(TINY_CONFIG)).eval()
    network.load_state_dict(sd, strict=True)
    crops = torch.randn(batch, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    together = network(crops)["betas"]
    alone = torch.cat([network(crops[i:i + 1])["betas"] for i in range(batch)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
