"""The sampler's one guidance hook.

Everything that steers MimicMotion's UNet besides the reference image adds to a UNet call in one of two places:

* after ``conv_in``: a tensor the width of ``conv_in``'s output, added to it (it is also the UNet's first skip
  connection). PoseNet and the geometry adapter work here; their outputs are summed.
* as block residuals: one tensor per down-block skip connection and one for the mid block's output, as a
  ControlNet gives them (DisPose's hybrid ControlNet).

A :class:`GuidanceModule` computes its contribution for one UNet call; the sampler sums the contributions of every
attached module (:meth:`UNetResiduals.__add__`) and :class:`UNetResidualHooks` adds the sum inside the stock
diffusers UNet with forward hooks. No module changes the sampling loop, and with no module attached (or a module
whose contribution is ``None``) the UNet runs untouched, bit for bit.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
from torch import nn

logger = logging.getLogger(__name__)


@dataclass
class UNetResiduals:
    """Additions to one UNet call over ``N = B·T`` frames (``B`` passes of ``T`` tile frames, pass-major).

    Args:
        conv_in (`torch.Tensor` ``[N,C,h,w]``, *optional*): added to ``conv_in``'s output.
        down (`tuple[torch.Tensor]`, *optional*): one per down-block skip tensor, in the order diffusers collects
            them (``conv_in``'s output first, then each resnet/downsampler output), ``[N,C_i,h_i,w_i]`` each.
        mid (`torch.Tensor` ``[N,C,h',w']``, *optional*): added to the mid block's output.
    """

    conv_in: torch.Tensor | None = None
    down: tuple[torch.Tensor, ...] | None = None
    mid: torch.Tensor | None = None

    def __add__(self, other: UNetResiduals | None) -> UNetResiduals:
        if other is None:
            return self

        def add(a, b):
            return b if a is None else a if b is None else a + b

        if self.down is not None and other.down is not None and len(self.down) != len(other.down):
            raise ValueError(f"Two guidance modules give {len(self.down)} and {len(other.down)} down-block residuals; "
                             "they were made for different UNets.")
        down = other.down if self.down is None else self.down if other.down is None else tuple(
            a + b for a, b in zip(self.down, other.down))
        return UNetResiduals(add(self.conv_in, other.conv_in), down, add(self.mid, other.mid))

    @staticmethod
    def concat(parts: list[UNetResiduals | None]) -> UNetResiduals | None:
        """One residual set for a batched UNet call from per-pass sets; a pass without guidance (``None``, e.g. the
        unconditional CFG pass) gets zeros of the same shape. ``None`` when no pass has any."""
        present = [p for p in parts if p is not None]
        if not present:
            return None

        def join(get):
            like = next((get(p) for p in present if get(p) is not None), None)
            if like is None:
                return None
            return torch.cat([get(p) if p is not None and get(p) is not None else torch.zeros_like(like) for p in parts])

        down = None
        if any(p.down is not None for p in present):
            count = len(next(p.down for p in present if p.down is not None))
            down = tuple(join(lambda p, k=k: None if p.down is None else p.down[k]) for k in range(count))
        return UNetResiduals(join(lambda p: p.conv_in), down, join(lambda p: p.mid))


@dataclass
class UNetCall:
    """What a module may read to compute its contribution to one UNet call (``B`` passes of ``T`` frames).

    Args:
        step / steps (`int`): the sampling step (0-based) and how many there are.
        sample (`torch.Tensor` ``[B,T,8,h,w]``): the UNet's input, ``[noisy latents | reference latent]``.
        timestep (`torch.Tensor`): the UNet's timestep (``¼·ln σ``).
        encoder_hidden_states (`torch.Tensor` ``[B,1,D]``): CLIP image embeddings (zeros in unconditional passes).
        added_time_ids (`torch.Tensor` ``[B,3]``): ``[fps-1, motion_bucket, noise_aug]``.
        frames (`list[torch.Tensor]`): per pass, the tile's frame indices ``[T]`` into the video.
        conditional (`list[bool]`): per pass, whether it is the conditional CFG pass.
    """

    step: int
    steps: int
    sample: torch.Tensor
    timestep: torch.Tensor
    encoder_hidden_states: torch.Tensor
    added_time_ids: torch.Tensor
    frames: list[torch.Tensor]
    conditional: list[bool]


class GuidanceModule:
    """Base of everything the sampler can attach. Subclasses implement :meth:`pass_residuals` (or, to batch over
    passes, :meth:`residuals`), and usually :meth:`prepare` for once-per-run work (features of every frame).

    Attributes:
        name (`str`): shown in messages and logs.
        strength (`float`): the module scales its own output by it.
        start / end (`float`): fraction of the steps during which the module is active
            (step ``i`` when ``start·steps <= i < end·steps``).
        unconditional (`bool`): also guide the unconditional CFG pass (DisPose's own pipeline does; PoseNet and the
            geometry adapter do not, as MimicMotion).
    """

    name = "guidance"
    unconditional = False

    def __init__(self, strength: float = 1.0, start: float = 0.0, end: float = 1.0):
        if not 0.0 <= start <= end <= 1.0:
            raise ValueError(f"{self.name}: need 0 <= start <= end <= 1, got {start} and {end}.")
        self.strength, self.start, self.end = float(strength), float(start), float(end)

    def parts(self) -> tuple[str, ...]:
        """Names of the motion model's parts (``MotionModel.use``) this module needs on the device during the
        denoising loop; the model's memory mode moves them."""
        return ()

    def check(self, num_frames: int, height: int, width: int) -> None:
        """Raise a ``ValueError`` naming the input when this module cannot guide a video of this size."""

    def prepare(self, device: torch.device, dtype: torch.dtype, cache_device: torch.device) -> None:
        """Once per run, before the first step: compute what every step reuses (keep big caches on
        ``cache_device``)."""

    def release(self) -> None:
        """After the run: drop per-run caches."""

    def active(self, step: int, steps: int) -> bool:
        return self.start * steps <= step < self.end * steps

    def pass_residuals(self, call: UNetCall, index: int) -> UNetResiduals | None:
        """The contribution to pass ``index`` of ``call`` (``T`` frames), or ``None``."""
        raise NotImplementedError

    def residuals(self, call: UNetCall) -> UNetResiduals | None:
        """The contribution to the whole call, pass by pass; passes this module does not guide get zeros."""
        if not self.active(call.step, call.steps):
            return None
        parts = [self.pass_residuals(call, j) if (cond or self.unconditional) else None
                 for j, cond in enumerate(call.conditional)]
        return UNetResiduals.concat(parts)


def pinned_cache(cache: torch.Tensor, device: torch.device, what: str = "guidance") -> torch.Tensor:
    """A per-run feature cache kept on the CPU for a GPU run, pinned for fast copies to the device; pageable when no
    pinnable memory is left (copies still work, only slower)."""
    if cache.device.type != "cpu" or device.type != "cuda":
        return cache
    try:
        return cache.pin_memory()
    except RuntimeError as exc:
        logger.info("[MotionGuide] %s cache not pinned (%s); copies will be slower.", what, exc)
        return cache


def sum_residuals(modules: list[GuidanceModule], call: UNetCall) -> UNetResiduals | None:
    """Every module's contribution to one call, summed in the order the modules were attached."""
    total = None
    for module in modules:
        part = module.residuals(call)
        if part is not None:
            total = part if total is None else total + part
    return total


class UNetResidualHooks(contextlib.AbstractContextManager):
    """Adds :attr:`residuals` inside a stock diffusers UNet while active (forward hooks on ``conv_in`` and the mid
    block, pre-hooks on the up blocks). Set :attr:`residuals` before each UNet call; ``None`` leaves it untouched.

    Down-block residuals are added to the skip tensors where the up blocks receive them, which is exactly what a
    ControlNet's ``down_block_additional_residuals`` do (the hidden state flowing down is unchanged; ``conv_in``'s
    residual, by contrast, flows on as well, as MimicMotion's PoseNet does).
    """

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self.residuals: UNetResiduals | None = None
        self._handles: list = []
        self._consumed = 0
        self._skips = 0

    def _conv_in(self, module, args, output):
        self._consumed = 0
        extra = None if self.residuals is None else self.residuals.conv_in
        if extra is None:
            return None
        if extra.shape != output.shape:
            raise ValueError(f"Guidance features {tuple(extra.shape)} do not match conv_in output {tuple(output.shape)}.")
        return output + extra.to(dtype=output.dtype)

    def _mid(self, module, args, output):
        mid = None if self.residuals is None else self.residuals.mid
        if mid is None:
            return None
        if mid.shape != output.shape:
            raise ValueError(f"Guidance mid-block residual {tuple(mid.shape)} does not match {tuple(output.shape)}.")
        return output + mid.to(dtype=output.dtype)

    def _up(self, module, args, kwargs):
        skips = kwargs.get("res_hidden_states_tuple")
        down = None if self.residuals is None else self.residuals.down
        if skips is None:
            return None
        total = self._skips  # counted once in __enter__
        end = total - self._consumed
        self._consumed += len(skips)
        if down is None:
            return None
        if len(down) != total:
            raise ValueError(f"{len(down)} down-block residuals do not match this UNet's {total} skip connections.")
        added = tuple(s + r.to(dtype=s.dtype) for s, r in zip(skips, down[end - len(skips):end]))
        return args, dict(kwargs, res_hidden_states_tuple=added)

    def __enter__(self):
        # block hooks only where the UNet has blocks (test doubles may have just conv_in; then only conv_in residuals)
        self._handles = [self.unet.conv_in.register_forward_hook(self._conv_in)]
        if getattr(self.unet, "mid_block", None) is not None:
            self._handles.append(self.unet.mid_block.register_forward_hook(self._mid))
        self._handles += [block.register_forward_pre_hook(self._up, with_kwargs=True)
                          for block in getattr(self.unet, "up_blocks", ())]
        # skip tensors the up blocks receive: conv_in's output, then each down resnet and downsampler output
        self._skips = 1 + sum(len(b.resnets) + (1 if getattr(b, "downsamplers", None) else 0)
                              for b in getattr(self.unet, "down_blocks", ()))
        return self

    def __exit__(self, *exc):
        self.residuals = None
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False
