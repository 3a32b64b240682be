"""DisPose's hybrid ControlNet: MimicMotion's UNet encoder (``conv_in``, time embeddings, down blocks, mid block) plus
zero-initialised 1×1 convolutions on every skip tensor and on the mid block's output, a motion-field embedding added
after ``conv_in`` and point-adapter features added after each down block.

Architecture from the MimicMotion UNet's config; every width of the extra parts comes from ``DisPose.pth`` itself,
so tiny test files of the same layout load. Loading is strict (``DisPose.pth`` holds every tensor, including
``add_embedding``, which DisPose never copies from the UNet).
"""
from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from .points import PointAdapter


class MotionFieldEmbedding(nn.Module):
    """Two conv towers (dense CMP flow, blurred trajectory flow), each ``conv_in`` then pairs of (3×3, 3×3 stride 2)
    convolutions with SiLU and a zero-initialised ``conv_out``; summed and passed through ``conv_final``.

    Args:
        widths (`tuple[int]`): tower widths (16, 32, 96, 256 in DisPose.pth), ``len - 1`` halvings.
        out_channels (`int`): the ControlNet's ``conv_in`` width.
    """

    def __init__(self, widths: tuple[int, ...], out_channels: int, flow_channels: int = 2):
        super().__init__()
        for name in ("flow", "traj"):
            blocks = nn.ModuleList()
            for a, b in zip(widths[:-1], widths[1:]):
                blocks.append(nn.Conv2d(a, a, 3, padding=1))
                blocks.append(nn.Conv2d(a, b, 3, padding=1, stride=2))
            setattr(self, f"conv_in_{name}", nn.Conv2d(flow_channels, widths[0], 3, padding=1))
            setattr(self, f"blocks_{name}", blocks)
            setattr(self, f"conv_out_{name}", nn.Conv2d(widths[-1], out_channels, 3, padding=1))
        self.conv_final = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def _tower(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(getattr(self, f"conv_in_{name}")(x))
        for block in getattr(self, f"blocks_{name}"):
            x = F.silu(block(x))
        return getattr(self, f"conv_out_{name}")(x)

    def forward(self, flow: torch.Tensor, traj: torch.Tensor) -> torch.Tensor:
        """``[N,2,H,W]`` each → ``[N,C,H/2^k,W/2^k]``."""
        return self.conv_final(self._tower("flow", flow) + self._tower("traj", traj))


def skip_counts(unet_config: dict) -> list[int]:
    """Skip tensors each down block adds (the first block also has ``conv_in``'s output)."""
    n = len(unet_config["down_block_types"])
    layers = unet_config["layers_per_block"]
    layers = [layers] * n if isinstance(layers, int) else list(layers)
    return [layers[i] + (1 if i < n - 1 else 0) + (1 if i == 0 else 0) for i in range(n)]


def reference_skip_repeats(unet_config: dict) -> list[int]:
    """How many times DisPose's own UNet adds each down residual.

    Its UNet adds the residuals inside the down-block loop, to every skip tensor collected so far, so a skip made in
    block ``b`` of ``n`` receives its residual ``n - b`` times (``conv_in``'s ``n`` times). The released weights were
    trained and run that way.
    """
    counts = skip_counts(unet_config)
    n = len(counts)
    return [n - b for b, c in enumerate(counts) for _ in range(c)]


class DisPoseControlNet(nn.Module):
    """The hybrid ControlNet. Build with :func:`build_controlnet` (meta device), fill with :func:`load_controlnet`."""

    def __init__(self, unet: nn.Module, embedding_widths: tuple[int, ...], point_channels: int, point_mid: int,
                 vae_factor: int = 8):
        super().__init__()
        for name in ("conv_in", "time_proj", "time_embedding", "add_time_proj", "add_embedding", "down_blocks",
                     "mid_block"):
            setattr(self, name, getattr(unet, name))
        widths = list(unet.config.block_out_channels)
        total = sum(skip_counts(unet.config))
        skip_widths = [widths[0]] + [w for i, w in enumerate(widths) for _ in range(skip_counts(unet.config)[i]
                                                                                       - (1 if i == 0 else 0))]
        assert len(skip_widths) == total
        self.controlnet_down_blocks = nn.ModuleList(nn.Conv2d(w, w, 1) for w in skip_widths)
        self.controlnet_mid_block = nn.Conv2d(widths[-1], widths[-1], 1)
        self.controlnet_cond_embedding = MotionFieldEmbedding(tuple(embedding_widths), widths[0])
        n = len(widths)
        rates = tuple(vae_factor * 2 ** min(i + 1, n - 1) for i in range(n))
        self.point_adapter = PointAdapter(point_channels, tuple(widths), rates, point_mid)
        self.skip_repeats = reference_skip_repeats(unet.config)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                added_time_ids: torch.Tensor, motion: torch.Tensor | None,
                points: list[torch.Tensor] | None) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Residuals for one UNet call.

        Args:
            sample (`torch.Tensor` ``[B,T,C,h,w]``): the UNet's input.
            motion (`torch.Tensor` ``[B·T,C0,h,w]``, *optional*): :class:`MotionFieldEmbedding` output per frame.
            points (`list[torch.Tensor]`, *optional*): the point adapter's residual per down block, ``[B·T,C_l,...]``.

        Returns:
            the skip residuals (diffusers' order) and the mid residual, not yet scaled.
        """
        batch, frames = sample.shape[:2]
        t = timestep if torch.is_tensor(timestep) else torch.tensor([timestep], device=sample.device)
        t = (t[None] if t.ndim == 0 else t).to(sample.device).expand(batch)
        emb = self.time_embedding(self.time_proj(t).to(dtype=sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)
        emb = (emb + self.add_embedding(time_embeds)).repeat_interleave(frames, dim=0)
        hidden = encoder_hidden_states.repeat_interleave(frames, dim=0)
        x = self.conv_in(sample.flatten(0, 1))
        if motion is not None:
            x = x + motion.to(x.dtype)
        indicator = torch.zeros(batch, frames, dtype=x.dtype, device=x.device)
        skips = [x]
        for k, block in enumerate(self.down_blocks):
            if getattr(block, "has_cross_attention", False):
                x, res = block(hidden_states=x, temb=emb, encoder_hidden_states=hidden, image_only_indicator=indicator)
            else:
                x, res = block(hidden_states=x, temb=emb, image_only_indicator=indicator)
            if points is not None:  # after the block's skips were taken, as DisPose
                x = x + points[k].to(x.dtype)
            skips.extend(res)
        x = self.mid_block(hidden_states=x, temb=emb, encoder_hidden_states=hidden, image_only_indicator=indicator)
        down = tuple(conv(s) for conv, s in zip(self.controlnet_down_blocks, skips))
        return down, self.controlnet_mid_block(x)


def _widths_from_state(state: dict[str, torch.Tensor], source: str) -> tuple[tuple[int, ...], int, int]:
    """(motion tower widths, point feature width, point MLP hidden width) read from ``DisPose.pth``."""
    try:
        first = state["controlnet_cond_embedding.conv_in_flow.weight"].shape[0]
        strided = sorted((int(m[1]), v.shape[0]) for k, v in state.items()
                         if (m := re.fullmatch(r"controlnet_cond_embedding\.blocks_flow\.(\d+)\.weight", k))
                         and int(m[1]) % 2 == 1)
        mlp = state["point_adapter.model_list.0.mlp.0.weight"]
    except KeyError as exc:
        raise ValueError(f"{source} is not a DisPose ControlNet: it has no {exc.args[0]!r}. Expected DisPose.pth "
                         "from huggingface.co/lihxxx/DisPose (models/dispose/).") from None
    return (first, *(w for _, w in strided)), mlp.shape[1], mlp.shape[0]


def build_controlnet(unet_config: dict, state: dict[str, torch.Tensor], source: str,
                     vae_factor: int = 8) -> DisPoseControlNet:
    """A meta-device ControlNet shaped by the UNet config and the checkpoint's own widths."""
    from diffusers import UNetSpatioTemporalConditionModel

    widths, point_channels, point_mid = _widths_from_state(state, source)
    config = {k: v for k, v in dict(unet_config).items() if not k.startswith("_")}
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel.from_config(config)
        return DisPoseControlNet(unet, widths, point_channels, point_mid, vae_factor)
