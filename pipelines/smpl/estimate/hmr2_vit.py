"""The HMR2.0 network (4D-Humans): a ViT-H backbone and the SMPL transformer-decoder head.

Module and parameter names follow the public checkpoint's ``state_dict`` exactly (``backbone.blocks.0.attn.qkv``,
``smpl_head.transformer.transformer.layers.0.1.fn.to_kv``, the ``init_*`` mean-parameter buffers …), so it
loads with a strict key check. Inference only: no dropout, drop-path or training-time options.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .hmr2_geometry import rot6d_to_rotmat


@dataclass(frozen=True)
class HMR2Config:
    """Sizes of the network; the defaults are the public HMR2.0 checkpoint (ViT-H/16, 6-layer decoder)."""

    # Backbone (ViTPose-H): the ViT sees a 256×192 window of the 256×256 crop.
    image_size: int = 256
    backbone_height: int = 256
    backbone_width: int = 192
    patch_size: int = 16
    patch_padding: int = 2  # ViTPose's patch conv pads by 2 (kernel 16, stride 16)
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0
    # SMPL head: one query token cross-attending to the image tokens.
    head_dim: int = 1024  # width of the decoder token
    head_depth: int = 6
    head_heads: int = 8
    head_dim_head: int = 64
    head_mlp_dim: int = 1024
    num_body_joints: int = 23
    num_betas: int = 10
    ief_iters: int = 1
    transformer_input: str = "zero"  # 'zero' token (HMR2.0) or 'mean_shape' (the current estimate)
    # Camera / crop conventions of the training set.
    focal_length: float = 5000.0
    bbox_shape: tuple = (192, 256)
    image_mean: tuple = (0.485, 0.456, 0.406)
    image_std: tuple = (0.229, 0.224, 0.225)

    @property
    def npose(self) -> int:
        return 6 * (self.num_body_joints + 1)

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols) of the backbone window."""
        p, pad = self.patch_size, self.patch_padding
        return ((self.backbone_height + 2 * pad - p) // p + 1, (self.backbone_width + 2 * pad - p) // p + 1)

    @classmethod
    def from_dict(cls, values: dict) -> "HMR2Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown HMR2 config fields {unknown}; known: {sorted(known)}.")
        values = dict(values)
        for key in ("bbox_shape", "image_mean", "image_std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------------------------
# Backbone


class PatchEmbed(nn.Module):
    def __init__(self, cfg: HMR2Config):
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size,
                              padding=cfg.patch_padding)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)  # [B, C, Hp, Wp]
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid  # [B, Hp·Wp, C]


class ViTAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, heads, N, d]
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class ViTMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ViTMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTBackbone(nn.Module):
    """ViTPose-style ViT: patch tokens + learned absolute positions, no class token in the sequence."""

    def __init__(self, cfg: HMR2Config):
        super().__init__()
        rows, cols = cfg.grid
        self.patch_embed = PatchEmbed(cfg)
        # One extra slot for the pre-training class token; it is added to every patch (see forward).
        self.pos_embed = nn.Parameter(torch.zeros(1, rows * cols + 1, cfg.embed_dim))
        self.blocks = nn.ModuleList(ViTBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.last_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, 3, Hb, Wb]` → feature map `[B, C, Hp, Wp]`."""
        tokens, (rows, cols) = self.patch_embed(x)
        if rows * cols + 1 != self.pos_embed.shape[1]:
            raise ValueError(f"Backbone input {tuple(x.shape[2:])} gives a {rows}×{cols} patch grid, but the "
                             f"position table holds {self.pos_embed.shape[1] - 1} patches.")
        tokens = tokens + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.last_norm(tokens)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, rows, cols)


# --------------------------------------------------------------------------------------------------------------
# SMPL head


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, inner = t.shape
    return t.reshape(b, n, heads, inner // heads).transpose(1, 2)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, heads * dim_head * 2, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = _split_heads(self.to_q(x), self.heads)
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        # Indices 0 and 3 carry weights in the checkpoint (1 = GELU, 2 and 4 = dropouts there).
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Identity(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossAttentionStack(nn.Module):
    """``layers[i]`` = [self-attention, cross-attention, feed-forward], each pre-normed and residual."""

    def __init__(self, cfg: HMR2Config):
        super().__init__()
        dim = cfg.head_dim
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(dim, SelfAttention(dim, cfg.head_heads, cfg.head_dim_head)),
                PreNorm(dim, CrossAttention(dim, cfg.embed_dim, cfg.head_heads, cfg.head_dim_head)),
                PreNorm(dim, FeedForward(dim, cfg.head_mlp_dim)),
            ])
            for _ in range(cfg.head_depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for self_attn, cross_attn, feed_forward in self.layers:
            x = self_attn(x) + x
            x = cross_attn(x, context=context) + x
            x = feed_forward(x) + x
        return x


class TokenDecoder(nn.Module):
    def __init__(self, cfg: HMR2Config, token_dim: int):
        super().__init__()
        self.to_token_embedding = nn.Linear(token_dim, cfg.head_dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, cfg.head_dim))
        self.transformer = CrossAttentionStack(cfg)

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.to_token_embedding(token) + self.pos_embedding
        return self.transformer(x, context=context)


class SMPLTransformerHead(nn.Module):
    """Regresses SMPL pose (6D per joint), betas and the weak-perspective crop camera from image tokens,
    as residuals on the mean parameters (``init_body_pose``, ``init_betas``, ``init_cam`` buffers)."""

    def __init__(self, cfg: HMR2Config):
        super().__init__()
        if cfg.transformer_input not in ("zero", "mean_shape"):
            raise ValueError(f"transformer_input must be 'zero' or 'mean_shape', got {cfg.transformer_input!r}.")
        self.cfg = cfg
        token_dim = cfg.npose + cfg.num_betas + 3 if cfg.transformer_input == "mean_shape" else 1
        self.transformer = TokenDecoder(cfg, token_dim)
        self.decpose = nn.Linear(cfg.head_dim, cfg.npose)
        self.decshape = nn.Linear(cfg.head_dim, cfg.num_betas)
        self.deccam = nn.Linear(cfg.head_dim, 3)
        self.register_buffer("init_body_pose", torch.zeros(1, cfg.npose))
        self.register_buffer("init_betas", torch.zeros(1, cfg.num_betas))
        self.register_buffer("init_cam", torch.zeros(1, 3))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = features.shape[0]
        context = features.flatten(2).transpose(1, 2)  # [B, C, h, w] → [B, h·w, C]
        pose = self.init_body_pose.expand(batch, -1)
        betas = self.init_betas.expand(batch, -1)
        cam = self.init_cam.expand(batch, -1)
        for _ in range(self.cfg.ief_iters):
            if self.cfg.transformer_input == "mean_shape":
                token = torch.cat([pose, betas, cam], dim=1)[:, None, :]
            else:
                token = features.new_zeros(batch, 1, 1)
            out = self.transformer(token, context=context)[:, 0]
            pose = self.decpose(out) + pose
            betas = self.decshape(out) + betas
            cam = self.deccam(out) + cam
        rotmats = rot6d_to_rotmat(pose.float().reshape(batch, -1, 6))  # [B, 24, 3, 3], fp32 for accuracy
        return {"global_orient": rotmats[:, :1], "body_pose": rotmats[:, 1:], "betas": betas.float(),
                "cam": cam.float()}


class HMR2Network(nn.Module):
    """``backbone`` + ``smpl_head``; input the normalised 256×256 crops, output SMPL rotation matrices,
    betas and the crop camera (s, tx, ty)."""

    def __init__(self, cfg: HMR2Config | None = None):
        super().__init__()
        self.cfg = cfg or HMR2Config()
        self.backbone = ViTBackbone(self.cfg)
        self.smpl_head = SMPLTransformerHead(self.cfg)

    def forward(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        """crops `[B, 3, S, S]` → dict: global_orient `[B,1,3,3]`, body_pose `[B,23,3,3]`, betas `[B,10]`,
        cam `[B,3]` (all float32)."""
        cfg = self.cfg
        if crops.shape[2] != cfg.backbone_height or crops.shape[3] < cfg.backbone_width:
            raise ValueError(f"HMR2 expects {cfg.image_size}×{cfg.image_size} crops, got {tuple(crops.shape[2:])}.")
        left = (crops.shape[3] - cfg.backbone_width) // 2  # 32 px each side for 256 → 192
        window = crops[:, :, :, left:left + cfg.backbone_width]
        return self.smpl_head(self.backbone(window))
