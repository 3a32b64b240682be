"""Loading SVD-XT 1.1 (VAE, CLIP vision, configs) and a MimicMotion checkpoint (UNet + PoseNet), strictly.

Weights are read without executing code (safetensors, or ``torch.load(weights_only=True)``). Modules are built on
the meta device and filled with ``load_state_dict(assign=True)``, so no random weights are ever allocated; a
missing, unexpected or mis-shaped key is an error naming a few keys and the file (never a silently random UNet).
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..options import MEMORY_MODES, check_choice
from ..weights import load_pickle_weights_only, load_safetensors
from .pose_net import POSE_NET_DOWNSAMPLING, PoseNet

logger = logging.getLogger(__name__)

BUNDLED_SVD_CONFIG = Path(__file__).resolve().parents[2] / "models_config" / "svd_xt_1_1"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

VAE_WEIGHT_NAMES = ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
                    "diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.bin")
CLIP_WEIGHT_NAMES = ("model.fp16.safetensors", "model.safetensors", "pytorch_model.fp16.bin", "pytorch_model.bin")


# --------------------------------------------------------------------------------------------------------------
# Reading and checking state dicts


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a weight file on the CPU: safetensors, or a pickle read with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weight file {path} does not exist.")
    # the registry entry by file name, else the model the folder belongs to
    model_id = "svd_xt_1_1" if {"vae", "image_encoder"} & set(path.parts) else "mimicmotion_1_1"
    if path.suffix == ".safetensors":
        return load_safetensors(path, "Weight file", model_id)
    data = load_pickle_weights_only(path, "Weight file", model_id)
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{path} is not a flat dictionary of tensors (a state dict); is it the right file?")
    return data


def _examples(keys, n: int = 4) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:n])
    return shown + (", …" if len(keys) > n else "")


def _common_prefix_hint(unexpected: set[str], expected_prefixes: tuple[str, ...]) -> str:
    heads = {k.split(".", 1)[0] + "." for k in unexpected}
    if len(heads) <= 2 and expected_prefixes:
        return f" Keys start with {sorted(heads)}; expected {list(expected_prefixes)}."
    return ""


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str, what: str,
                     expected_prefixes: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` unless ``state_dict`` has exactly the model's keys with the model's shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    wrong = {k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != expected[k]}
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_examples(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_examples(unexpected)})")
    if wrong:
        k = sorted(wrong)[0]
        parts.append(f"{len(wrong)} with a wrong shape (e.g. {k}: file {list(state_dict[k].shape)}, model {list(expected[k])})")
    hint = _common_prefix_hint(unexpected, expected_prefixes) if unexpected else ""
    raise ValueError(f"{source}: the {what} weights do not match the model: " + "; ".join(parts) + "." + hint
                     + " Is this the right file for this model?")


def _materialise_buffers(module: nn.Module) -> None:
    """Non-persistent buffers are not in state dicts; rebuild the known ones left on the meta device."""
    for name, sub in module.named_modules():
        for bname, buf in list(sub._buffers.items()):
            if buf is None or buf.device.type != "meta":
                continue
            if bname == "position_ids":
                sub._buffers[bname] = torch.arange(buf.shape[-1]).expand(buf.shape).clone()
            else:
                raise RuntimeError(f"Buffer {name}.{bname} has no stored value; cannot build {type(module).__name__}.")


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], dtype: torch.dtype, source: str, what: str,
              expected_prefixes: tuple[str, ...] = ()) -> nn.Module:
    """Strict-check ``state_dict`` against a meta-device ``model``, then assign its tensors (cast to ``dtype``)."""
    check_state_dict(model, state_dict, source, what, expected_prefixes)
    cast = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items()}
    model.load_state_dict(cast, strict=True, assign=True)
    _materialise_buffers(model)
    return model.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------------------
# Configs


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_component_config(folder: Path | None, component: str, file_name: str) -> dict:
    """``<folder>/<component>/<file_name>``, else the SVD-XT 1.1 config bundled in ``models_config/``."""
    if folder is not None and (folder / component / file_name).is_file():
        return _read_json(folder / component / file_name)
    return _read_json(BUNDLED_SVD_CONFIG / component / file_name)


# Fields of SVD's scheduler config the sampler does not read: it always samples Karras sigmas (or the schedule chosen
# on the node) with continuous timesteps and "leading" spacing.
SVD_SCHEDULER_FIXED = {"use_karras_sigmas": True, "timestep_type": "continuous", "timestep_spacing": "leading",
                       "interpolation_type": "linear"}


def check_scheduler_config(config: dict, source: str) -> dict:
    """The sampler implements SVD's Euler v-prediction schedule; refuse any other scheduler config, and warn about
    fields that differ from SVD's but are ignored (only ``sigma_min`` / ``sigma_max`` are read)."""
    cls = config.get("_class_name", "EulerDiscreteScheduler")
    prediction = config.get("prediction_type", "epsilon")
    if cls != "EulerDiscreteScheduler" or prediction != "v_prediction":
        raise ValueError(f"{source}: scheduler config is not SVD's (_class_name={cls!r}, prediction_type={prediction!r}); "
                         "expected EulerDiscreteScheduler with prediction_type 'v_prediction'. Use the "
                         "stable-video-diffusion-img2vid-xt-1-1 scheduler folder.")
    ignored = {k: config[k] for k, v in SVD_SCHEDULER_FIXED.items() if k in config and config[k] != v}
    if ignored:
        logger.warning("[MotionGuide] %s: scheduler fields %s differ from SVD's %s and are ignored: the sampler always "
                       "uses the node's sigma_schedule (karras = SVD) with continuous timesteps.", source, ignored,
                       {k: SVD_SCHEDULER_FIXED[k] for k in ignored})
    return config


def unet_downsampling(unet_config: dict) -> int:
    """Spatial downsampling inside the UNet: one halving per down block except the last."""
    return 2 ** (len(unet_config["down_block_types"]) - 1)


def vae_downsampling(vae_config: dict) -> int:
    return 2 ** (len(vae_config["block_out_channels"]) - 1)


# --------------------------------------------------------------------------------------------------------------
# Building modules


def build_unet(config: dict) -> nn.Module:
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.device("meta"):
        return UNetSpatioTemporalConditionModel.from_config(config)


def build_vae(config: dict) -> nn.Module:
    from diffusers import AutoencoderKLTemporalDecoder

    with torch.device("meta"):
        return AutoencoderKLTemporalDecoder.from_config(config)


def build_image_encoder(config: dict) -> nn.Module:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    fields = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "transformers_version")}
    with torch.device("meta"):
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**fields))
    with contextlib.suppress(Exception):  # faster attention when the installed transformers supports choosing it
        model.set_attn_implementation("sdpa")
    return model


def build_pose_net(unet_config: dict) -> PoseNet:
    with torch.device("meta"):
        return PoseNet(out_channels=unet_config["block_out_channels"][0])


# --------------------------------------------------------------------------------------------------------------
# SVD base and MimicMotion checkpoint


@dataclass
class SVDBase:
    vae: nn.Module
    image_encoder: nn.Module
    unet_config: dict
    scheduler_config: dict
    image_mean: tuple
    image_std: tuple
    source: str


def _first_existing(folder: Path, names: tuple[str, ...], component: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"No {component} weights in {folder}: expected one of {', '.join(names)}. "
                            "Download them from stabilityai/stable-video-diffusion-img2vid-xt-1-1.")


def load_svd_base(path: str | Path, dtype: torch.dtype, config_dir: str | Path | None = None) -> SVDBase:
    """VAE + CLIP vision encoder + configs from a diffusers folder or a single ``svd_xt_1_1.safetensors`` file
    (whose configs come from ``config_dir``, default the bundled SVD-XT 1.1 ones)."""
    path = Path(path)
    if path.is_file():
        return load_svd_single_file(path, dtype, config_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"SVD base {path} is neither a diffusers folder nor a .safetensors file.")
    unet_config = read_component_config(path, "unet", "config.json")
    scheduler_config = check_scheduler_config(read_component_config(path, "scheduler", "scheduler_config.json"),
                                              str(path / "scheduler"))
    extractor = read_component_config(path, "feature_extractor", "preprocessor_config.json")
    vae_file = _first_existing(path / "vae", VAE_WEIGHT_NAMES, "VAE")
    vae = load_into(build_vae(read_component_config(path, "vae", "config.json")), read_state_dict(vae_file),
                    dtype, str(vae_file), "VAE")
    clip_file = _first_existing(path / "image_encoder", CLIP_WEIGHT_NAMES, "CLIP image encoder")
    image_encoder = load_into(build_image_encoder(read_component_config(path, "image_encoder", "config.json")),
                              read_state_dict(clip_file), dtype, str(clip_file), "CLIP image encoder")
    return SVDBase(vae, image_encoder, unet_config, scheduler_config, tuple(extractor.get("image_mean", CLIP_MEAN)),
                   tuple(extractor.get("image_std", CLIP_STD)), str(path))


def load_svd_single_file(path: str | Path, dtype: torch.dtype, config_dir: str | Path | None = None) -> SVDBase:
    """VAE + CLIP image encoder from a single SVD checkpoint; configs from ``config_dir`` or the bundled SVD-XT 1.1."""
    from .single_file import read_svd_single_file

    folder = Path(config_dir) if config_dir else None
    vae_config = read_component_config(folder, "vae", "config.json")
    vae_state, clip_state = read_svd_single_file(path, len(vae_config["block_out_channels"]))
    vae = load_into(build_vae(vae_config), vae_state, dtype, str(path), "VAE")
    clip_config = read_component_config(folder, "image_encoder", "config.json")
    image_encoder = load_into(build_image_encoder(clip_config), clip_state, dtype, str(path), "CLIP image encoder")
    extractor = read_component_config(folder, "feature_extractor", "preprocessor_config.json")
    scheduler = check_scheduler_config(read_component_config(folder, "scheduler", "scheduler_config.json"),
                                       "scheduler config")
    return SVDBase(vae, image_encoder, read_component_config(folder, "unet", "config.json"), scheduler,
                   tuple(extractor.get("image_mean", CLIP_MEAN)), tuple(extractor.get("image_std", CLIP_STD)), str(path))


def split_mimicmotion_state_dict(state_dict: dict[str, torch.Tensor]):
    """``(unet, pose_net)`` state dicts from a flat MimicMotion dict (``unet.*`` + ``pose_net.*``).

    A file without those prefixes is taken as a UNet-only conversion (plain diffusers keys); the strict check that
    follows reports anything that does not fit. Other prefixed keys stay in the UNet part so they are reported.
    """
    if not any(k.startswith(("unet.", "pose_net.")) for k in state_dict):
        return dict(state_dict), {}
    unet, pose = {}, {}
    for key, value in state_dict.items():
        if key.startswith("pose_net."):
            pose[key[len("pose_net."):]] = value
        elif key.startswith("unet."):
            unet[key[len("unet."):]] = value
        else:
            unet[key] = value  # reported as unexpected by the strict check
    return unet, pose


def load_mimicmotion(checkpoint: str | Path, unet_config: dict, dtype: torch.dtype, pose_net_file: str | Path | None = None):
    """UNet and PoseNet from ``MimicMotion_1-1.pth`` (or a safetensors conversion; optionally a separate PoseNet file)."""
    checkpoint = Path(checkpoint)
    unet_sd, pose_sd = split_mimicmotion_state_dict(read_state_dict(checkpoint))
    prefixes = ("unet.", "pose_net.")
    unet = load_into(build_unet(unet_config), unet_sd, dtype, str(checkpoint), "UNet", prefixes)
    if pose_net_file:
        if pose_sd:
            raise ValueError(f"{checkpoint} already holds PoseNet weights (pose_net.*) and a separate PoseNet file "
                             f"{pose_net_file} was chosen too; pick one of them.")
        pose_sd = read_state_dict(pose_net_file)
        if any(k.startswith("pose_net.") for k in pose_sd):
            pose_sd = {k.removeprefix("pose_net."): v for k, v in pose_sd.items()}
        pose_source = str(pose_net_file)
    else:
        pose_source = str(checkpoint)
        if not pose_sd:
            raise ValueError(f"{checkpoint} has no PoseNet weights (keys 'pose_net.*'); choose the PoseNet file in "
                             "'pose_net_file', or use the full MimicMotion_1-1.pth.")
    pose_net = load_into(build_pose_net(unet_config), pose_sd, dtype, pose_source, "PoseNet", prefixes)
    return unet, pose_net


# --------------------------------------------------------------------------------------------------------------
# The loaded model (MOTIONGUIDE_MODEL payload)


@dataclass
class MotionModel:
    """Everything the sampler and decoder need, plus where each part lives.

    ``memory_mode``: ``keep_loaded`` keeps every part on ``device`` after a run; ``offload_after_run`` moves them
    to ``offload_device`` when a run ends; ``sequential_offload`` keeps only the part in use on ``device`` and streams
    the UNet's blocks through it one at a time.
    ``before_load(bytes)`` is called before parts move to ``device`` without a handle (ComfyUI frees other models
    there), and before the UNet's blocks stream through it.
    ``part_handles`` optionally maps part names to handles with ``load()`` / ``offload()`` that replace the plain
    ``.to()`` moves (the node layer registers the parts with ComfyUI's memory manager this way). A handled part may
    be moved away between runs by its owner, so :meth:`use` loads it every time and nothing caches its device.
    ``extra_parts``: modules attached besides the four fixed parts (a geometry adapter, :meth:`attach_part`); the
    memory mode moves them exactly like the fixed parts.
    """

    unet: nn.Module
    pose_net: PoseNet
    vae: nn.Module
    image_encoder: nn.Module
    scheduler_config: dict
    image_mean: tuple
    image_std: tuple
    dtype: torch.dtype
    device: torch.device
    offload_device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    memory_mode: str = "keep_loaded"
    sources: dict = field(default_factory=dict)
    before_load: Callable[[int], None] | None = None
    part_handles: dict = field(default_factory=dict)
    # parts attached by guidance modules (geometry adapter, DisPose's ControlNet), moved by the memory mode
    extra_parts: dict = field(default_factory=dict)
    streamed_parts: set = field(default_factory=set)

    PARTS = ("image_encoder", "vae", "pose_net", "unet")
    STREAMED = ("unet",)

    @property
    def part_names(self) -> tuple[str, ...]:
        """The fixed parts, then the attached ones."""
        return self.PARTS + tuple(self.extra_parts)

    def attach_part(self, name: str, module: nn.Module, streamed: bool = False) -> nn.Module:
        """Let the memory mode manage ``module`` under ``name`` (a part :meth:`use` can ask for); ``streamed``: in
        ``sequential_offload`` its blocks pass through the device one at a time, like the UNet's. Attaching another
        module under the same name first detaches the old one (offloaded, its handle dropped)."""
        if name in self.PARTS:
            raise ValueError(f"{name!r} is one of the model's own parts; attach extra modules under another name.")
        if self.extra_parts.get(name) is not module:
            self.detach_part(name)
            self.extra_parts[name] = module
        if streamed:
            self.streamed_parts.add(name)
        return module

    def detach_part(self, name: str) -> None:
        """Forget an attached part, moving it to the offload device first (through its handle when it has one)."""
        module = self.extra_parts.get(name)
        if module is None:
            return
        self._offload([name])
        self.part_handles.pop(name, None)
        self.streamed_parts.discard(name)
        del self.extra_parts[name]

    @property
    def vae_scale_factor(self) -> int:
        return vae_downsampling(self.vae.config)

    @property
    def total_downsampling(self) -> int:
        """Width and height must be multiples of this (64 for SVD): VAE × UNet downsampling, and PoseNet's /8."""
        factor = self.vae_scale_factor * unet_downsampling(self.unet.config)
        return max(factor, POSE_NET_DOWNSAMPLING)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    def _module(self, name: str) -> nn.Module:
        if name in self.extra_parts:
            return self.extra_parts[name]
        if name not in self.PARTS:
            raise KeyError(name)
        return getattr(self, name)

    def _move(self, names, device) -> None:
        target = torch.device(device)

        def there(module):  # "cuda" means the current CUDA device, parameters say "cuda:0"
            current = next(module.parameters()).device
            return current.type == target.type and (target.index is None or current.index == target.index)

        todo = [m for m in (self._module(n) for n in names) if not there(m)]
        if not todo:
            return
        if target.type != "cpu" and self.before_load is not None:
            self.before_load(sum(p.numel() * p.element_size() for m in todo for p in m.parameters()))
        for module in todo:
            module.to(target)

    def _load(self, names) -> None:
        """Put the named parts on ``device``; handled parts always ask their handle (it may have been moved away,
        even partly, since the last run; a load of a loaded part is cheap)."""
        for name in names:
            if name in self.part_handles:
                self.part_handles[name].load()
        self._move([n for n in names if n not in self.part_handles], self.device)

    def _offload(self, names) -> None:
        for name in names:
            if name in self.part_handles:
                self.part_handles[name].offload()
        self._move([n for n in names if n not in self.part_handles], self.offload_device)

    @contextlib.contextmanager
    def use(self, *names: str):
        """Have the named parts on ``device`` inside the block. In ``sequential_offload`` mode only they are there,
        and the UNet is not moved whole: its blocks pass through the device one at a time (see :meth:`_stream`)."""
        sequential = self.memory_mode == "sequential_offload"
        if sequential:
            self._offload([n for n in self.part_names if n not in names])
        streamed = [n for n in names if sequential and self.device != self.offload_device
                    and (n in self.STREAMED or n in self.streamed_parts)]
        self._load([n for n in names if n not in streamed])
        try:
            with contextlib.ExitStack() as stack:
                for name in streamed:
                    stack.enter_context(self._stream(self._module(name)))
                yield
        finally:
            if sequential:
                self._offload(names)

    @contextlib.contextmanager
    def _stream(self, module: nn.Module):
        """Move each top-level block of ``module`` to the device just before it runs and back right after, so only
        the largest block's weights (not the whole UNet's) sit on the device."""
        blocks = []
        for child in module.children():
            parts = list(child) if isinstance(child, nn.ModuleList) else [child]
            blocks += [b for b in parts if next(b.parameters(), None) is not None]
        if self.before_load is not None and blocks and self.device.type != "cpu":
            # room for the largest block: inside ComfyUI this unloads other models if needed
            self.before_load(max(sum(p.numel() * p.element_size() for p in b.parameters()) for b in blocks))

        def to_device(block, args):
            block.to(self.device)

        def to_offload(block, args, output):
            block.to(self.offload_device)

        handles = [h for b in blocks for h in (b.register_forward_pre_hook(to_device), b.register_forward_hook(to_offload))]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            module.to(self.offload_device)

    def end_run(self) -> None:
        """Called after every sampler/decoder run, also after errors: apply the memory mode."""
        if self.memory_mode != "keep_loaded":
            self.offload_all()

    def offload_all(self) -> None:
        self._offload(self.part_names)


def load_motion_model(svd_path: str | Path, checkpoint: str | Path, *, dtype: torch.dtype, device,
                      pose_net_file: str | Path | None = None, memory_mode: str = "keep_loaded",
                      offload_device=None, config_dir: str | Path | None = None) -> MotionModel:
    """Load SVD base + MimicMotion checkpoint into a :class:`MotionModel` (on the CPU until first use)."""
    check_choice("memory_mode", memory_mode, MEMORY_MODES)
    base = load_svd_base(svd_path, dtype, config_dir)
    unet, pose_net = load_mimicmotion(checkpoint, base.unet_config, dtype, pose_net_file)
    return MotionModel(unet=unet, pose_net=pose_net, vae=base.vae, image_encoder=base.image_encoder,
                       scheduler_config=base.scheduler_config, image_mean=base.image_mean, image_std=base.image_std,
                       dtype=dtype, device=torch.device(device),
                       offload_device=torch.device(offload_device or "cpu"), memory_mode=memory_mode,
                       sources={"svd": str(svd_path), "checkpoint": str(checkpoint),
                                "pose_net": str(pose_net_file) if pose_net_file else None})
