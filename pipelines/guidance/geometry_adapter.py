"""The geometry adapter: lets MimicMotion read rendered body maps (depth, normal, semantic, mask, skeleton).

One small encoder per map, Champ's shape: a 3×3 conv to 16 channels, then per stage a 3×3 conv and a stride-2 3×3
conv (16 → 32 → 96 → 256, SiLU after each), and a **zero-initialised** 3×3 ``conv_out`` to the width of the UNet's
``conv_in`` output. The encoders' outputs are summed and added after ``conv_in`` together with PoseNet's, so a
fresh adapter leaves MimicMotion exactly as it was.

A file is one ``.safetensors`` whose metadata holds the JSON config (:class:`AdapterConfig`: maps in order, channel
widths, base model, map conventions, version); a ``.json`` with the same config is written beside it for people.
Loading is safe (no code runs) and strict (a missing or unexpected tensor is an error naming it).
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from ..render.maps import DEPTH_NORMALISATION, SEMANTIC_PALETTE_ID
from ..weights import open_safetensors, unreadable_file
from .hook import GuidanceModule, UNetCall, UNetResiduals, pinned_cache

ADAPTER_FORMAT = "motionguide-geometry-adapter"
ADAPTER_VERSION = 1
METADATA_KEY = "motionguide_adapter_config"
# Channels each map is read with (the first `n` channels of its IMAGE); all maps are scaled from 0..1 to -1..1.
MAP_CHANNELS = {"depth": 1, "normal": 3, "semantic": 3, "mask": 1, "skeleton": 3}
# Map conventions: fixed by name so training and inference read the same pixels (see pipelines/render/maps.py).
SEMANTIC_PALETTES = (SEMANTIC_PALETTE_ID,)  # "motionguide-lr-v1"
DEPTH_NORMALISATIONS = (DEPTH_NORMALISATION,)  # "per-clip"
BASE_MODELS = ("mimicmotion-1.1", "mimicmotion-1.0")
ENCODER_DOWNSAMPLING = 8


@dataclass(frozen=True)
class AdapterConfig:
    """Everything needed to rebuild an adapter and to check that its inputs match what it was trained on.

    Args:
        maps (`tuple[str]`): the maps it reads, in order (keys of ``MAP_CHANNELS``).
        out_channels (`int`, defaults to 320): the UNet's ``conv_in`` width (MimicMotion / SVD: 320).
        block_channels (`tuple[int]`, defaults to (16, 32, 96, 256)): Champ's encoder widths; one stride-2 stage
            between consecutive widths, so len−1 stages must give ×8 downsampling (the latent size).
        base_model (`str`, defaults to "mimicmotion-1.1"): the UNet + PoseNet it was trained with.
        semantic_palette / depth_normalisation (`str`): the map conventions it was trained with.
    """

    maps: tuple[str, ...]
    out_channels: int = 320
    block_channels: tuple[int, ...] = (16, 32, 96, 256)
    base_model: str = "mimicmotion-1.1"
    semantic_palette: str = SEMANTIC_PALETTES[0]
    depth_normalisation: str = DEPTH_NORMALISATIONS[0]
    format: str = ADAPTER_FORMAT
    version: int = ADAPTER_VERSION
    extra: dict = field(default_factory=dict)  # free-form notes (training run, dataset); never read by the code

    def __post_init__(self):
        object.__setattr__(self, "maps", tuple(self.maps))
        object.__setattr__(self, "block_channels", tuple(int(c) for c in self.block_channels))
        self.validate()

    def validate(self) -> None:
        problems = []
        if not self.maps:
            problems.append("maps is empty")
        unknown = [m for m in self.maps if m not in MAP_CHANNELS]
        if unknown:
            problems.append(f"unknown maps {unknown} (known: {list(MAP_CHANNELS)})")
        if len(set(self.maps)) != len(self.maps):
            problems.append(f"maps repeat: {list(self.maps)}")
        if 2 ** (len(self.block_channels) - 1) != ENCODER_DOWNSAMPLING:
            problems.append(f"block_channels {list(self.block_channels)} must be 4 widths (3 stride-2 stages: ×8)")
        if self.out_channels < 1 or min(self.block_channels, default=0) < 1:
            problems.append("channel widths must be positive")
        if self.semantic_palette not in SEMANTIC_PALETTES:
            problems.append(f"semantic_palette {self.semantic_palette!r} is not one of {SEMANTIC_PALETTES}")
        if self.depth_normalisation not in DEPTH_NORMALISATIONS:
            problems.append(f"depth_normalisation {self.depth_normalisation!r} is not one of {DEPTH_NORMALISATIONS}")
        if self.format != ADAPTER_FORMAT:
            problems.append(f"format {self.format!r} is not {ADAPTER_FORMAT!r}")
        if self.version > ADAPTER_VERSION:
            problems.append(f"version {self.version} is newer than this MotionGuide reads ({ADAPTER_VERSION}): update "
                            "MotionGuide")
        if problems:
            raise ValueError("Geometry adapter config: " + "; ".join(problems) + ".")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> AdapterConfig:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{source}: the adapter config must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown adapter config keys {unknown}; known keys: {sorted(known)}.")
        if "maps" not in data:
            raise ValueError(f"{source}: the adapter config has no 'maps'.")
        return cls(**data)


class MapEncoder(nn.Module):
    """One map ``[F,c,H,W]`` in -1..1 → ``[F,out,H/8,W/8]`` (Champ's guidance encoder)."""

    def __init__(self, in_channels: int, block_channels=(16, 32, 96, 256), out_channels: int = 320):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, block_channels[0], 3, padding=1)
        blocks = []
        for cin, cout in zip(block_channels[:-1], block_channels[1:]):
            blocks += [nn.Conv2d(cin, cin, 3, padding=1), nn.Conv2d(cin, cout, 3, padding=1, stride=2)]
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = nn.Conv2d(block_channels[-1], out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.silu(self.conv_in(x))
        for block in self.blocks:
            x = nn.functional.silu(block(x))
        return self.conv_out(x)


class GeometryAdapter(nn.Module):
    """Encoders for ``config.maps``; :meth:`forward` sums their outputs."""

    def __init__(self, config: AdapterConfig):
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({name: MapEncoder(MAP_CHANNELS[name], config.block_channels, config.out_channels)
                                       for name in config.maps})

    def forward(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        """``maps``: name → ``[F,c,H,W]`` in -1..1 (see :func:`maps_to_input`); returns ``[F,out,H/8,W/8]``."""
        missing = [name for name in self.config.maps if name not in maps]
        if missing:
            raise ValueError(f"The geometry adapter reads {list(self.config.maps)}; missing {missing}.")
        out = None
        for name in self.config.maps:
            y = self.encoders[name](maps[name])
            out = y if out is None else out + y
        return out


def maps_to_input(maps: dict[str, torch.Tensor], names, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Guidance maps as the adapter reads them: name → ``[F,c,H,W]`` in -1..1 from IMAGE-like ``[F,H,W,C]`` in
    0..1 (or uint8 0..255), keeping the first ``MAP_CHANNELS[name]`` channels (a MASK ``[F,H,W]`` is one channel)."""
    out = {}
    for name in names:
        x = maps[name]
        if x.ndim == 3:
            x = x[..., None]
        x = x[..., :MAP_CHANNELS[name]].permute(0, 3, 1, 2)
        x = x.to(dtype) / 255.0 if x.dtype == torch.uint8 else x.to(dtype)
        out[name] = x * 2.0 - 1.0
    return out


def save_adapter(adapter: GeometryAdapter, path: str | os.PathLike) -> Path:
    """Write ``path`` (``.safetensors``, config in its metadata) and ``path.json``, each through a temporary file
    renamed into place, so a crash never leaves a half-written adapter under the final name."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = adapter.config.to_json()
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in adapter.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: config})
    os.replace(tmp, path)
    side = path.with_suffix(".json")
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(config + "\n", encoding="utf-8")
    os.replace(tmp, side)
    return path


def load_adapter(path: str | os.PathLike, dtype: torch.dtype = torch.float32, device="cpu") -> GeometryAdapter:
    """A saved adapter, strictly: a wrong or damaged file is a ``ValueError`` naming it and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Geometry adapter '{path}' does not exist. Train one with `python cli.py train "
                                "CONFIG.yaml` or put the .safetensors file in models/motionguide_adapters/.")
    remedy = "Use a file saved by MotionGuide's trainer (python cli.py train) or Load Geometry Adapter's list."
    with open_safetensors(path, "Geometry adapter") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    text = metadata.get(METADATA_KEY)
    if text is None:
        side = path.with_suffix(".json")
        if not side.is_file():
            raise unreadable_file(path, "Geometry adapter", f"it has no '{METADATA_KEY}' metadata and no {side.name} "
                                  "beside it, so it is not a MotionGuide geometry adapter", remedy=remedy)
        text = side.read_text(encoding="utf-8")
    try:
        config = AdapterConfig.from_json(text, source=f"Geometry adapter '{path}'")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Geometry adapter '{path}': {exc}") from None
    adapter = GeometryAdapter(config)
    expected = adapter.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {missing[:4]}{' …' if len(missing) > 4 else ''}" if missing else "",
            f"unexpected {unexpected[:4]}{' …' if len(unexpected) > 4 else ''}" if unexpected else "",
            f"wrong shapes {wrong[:4]}" if wrong else "") if part)
        raise unreadable_file(path, "Geometry adapter", f"its tensors do not match its config ({detail})",
                              remedy=remedy)
    adapter.load_state_dict(tensors, strict=True)
    return adapter.to(device=device, dtype=dtype).eval().requires_grad_(False)


def check_compatible(config: AdapterConfig, maps: dict, base_model: str | None = None,
                     out_channels: int | None = None, source: str = "the geometry adapter") -> None:
    """A ``ValueError`` naming both sides when the connected maps, the base model or the UNet width differ from
    what the adapter was trained on."""
    missing = [name for name in config.maps if name not in maps]
    if missing:
        raise ValueError(f"{source} was trained on maps {list(config.maps)}, but {missing} are not connected "
                         f"(connected: {sorted(maps)}). Connect Render SMPL Maps' guidance output with those maps.")
    if base_model is not None and base_model != config.base_model:
        raise ValueError(f"{source} was trained for {config.base_model!r}, but the loaded motion model is "
                         f"{base_model!r}. Load the matching MimicMotion checkpoint or another adapter.")
    if out_channels is not None and out_channels != config.out_channels:
        raise ValueError(f"{source} outputs {config.out_channels} channels, but this UNet's conv_in gives "
                         f"{out_channels}; it was made for another UNet.")


ADAPTER_PART = "geometry_adapter"  # its name among the motion model's parts (MotionModel.attach_part)


def attach_adapter(model, adapter: GeometryAdapter) -> GeometryAdapter:
    """The adapter as a part of ``model`` (a ``MotionModel``), in the model's dtype, so the model's memory mode moves
    it like PoseNet. A copy is attached, made once per adapter and dtype: the loaded adapter itself stays as it was
    loaded (float32 on the CPU), whatever models use it."""
    current = model.extra_parts.get(ADAPTER_PART)
    if current is not None and current.__dict__.get("_motionguide_source") is adapter and \
            next(current.parameters()).dtype == model.dtype:
        return current
    clone = copy.deepcopy(adapter).to(dtype=model.dtype).eval().requires_grad_(False)
    clone.__dict__["_motionguide_source"] = adapter  # a plain attribute, not a submodule
    return model.attach_part(ADAPTER_PART, clone)


class GeometryGuidance(GuidanceModule):
    """The adapter as a sampler guidance module: its output for every frame, once per run, added after ``conv_in``
    in conditional passes (like PoseNet's).

    Args:
        adapter (`GeometryAdapter`): a loaded adapter.
        maps (`dict[str, torch.Tensor]`): name → ``[F,H,W,C]`` 0..1 (or uint8), already at the sampler's size and
            frame-aligned with the pose maps (frame 0 = the reference).
        model (`MotionModel`, *optional*): when given, the adapter becomes its part ``"geometry_adapter"``
            (:func:`attach_adapter`) and moves with the model's memory mode; without it the adapter is moved to
            the sampler's device and dtype itself.
    """

    name = "geometry adapter"

    def __init__(self, adapter: GeometryAdapter, maps: dict[str, torch.Tensor], strength: float = 1.0,
                 start: float = 0.0, end: float = 1.0, chunk: int = 16, model=None):
        super().__init__(strength, start, end)
        self.adapter, self.maps, self.chunk, self.model = adapter, maps, chunk, model
        self.module = attach_adapter(model, adapter) if model is not None else adapter
        self.features: torch.Tensor | None = None

    def check(self, num_frames: int, height: int, width: int) -> None:
        check_compatible(self.adapter.config, self.maps)
        for name in self.adapter.config.maps:
            shape = tuple(self.maps[name].shape)
            if shape[0] != num_frames or shape[1:3] != (height, width):
                raise ValueError(f"Guidance map '{name}' is {shape[0]} frames of {shape[2]}×{shape[1]}, but the pose "
                                 f"maps are {num_frames} frames of {width}×{height}; render the maps from the same "
                                 "sequence at the same size (frame 0 = the reference).")

    @torch.no_grad()
    def prepare(self, device: torch.device, dtype: torch.dtype, cache_device: torch.device) -> None:
        if self.model is not None:
            place = self.model.use(ADAPTER_PART)
        else:
            self.module = self.module.to(device=device, dtype=dtype)
            place = contextlib.nullcontext()
        frames = next(iter(self.maps.values())).shape[0]
        out = []
        with place:
            adapter = self.module
            for begin in range(0, frames, self.chunk):
                chunk = {k: v[begin:begin + self.chunk].to(device) for k, v in self.maps.items()}
                out.append(adapter(maps_to_input(chunk, adapter.config.maps, dtype)).to(cache_device))
        self.features = pinned_cache(torch.cat(out), device, "Geometry adapter")

    def release(self) -> None:
        self.features = None

    def pass_residuals(self, call: UNetCall, index: int) -> UNetResiduals:
        idx = call.frames[index]
        x = self.features[idx.to(self.features.device)].to(call.sample.device, non_blocking=True)
        return UNetResiduals(conv_in=x if self.strength == 1.0 else x * self.strength)
