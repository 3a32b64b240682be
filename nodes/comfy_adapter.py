"""The one place that touches ComfyUI (`comfy.*`, `folder_paths`).

Inside ComfyUI every function here defers to ComfyUI's own machinery (model folders, devices, progress bar,
interrupt flag, memory manager). Outside it (tests, the command line) the same functions work with plain
fallbacks: model files are looked up under ``MOTIONGUIDE_MODELS_DIR`` (or the directory given to
:func:`set_models_dir`), the device is CUDA when present, and progress goes to a callback.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable

from ..pipelines.options import check_choice

logger = logging.getLogger(__name__)

PACK_ROOT = Path(__file__).resolve().parents[1]
MODELS_CONFIG = PACK_ROOT / "models_config"

# Model-folder keys the pack registers, with the file extensions each accepts.
MODEL_FOLDERS: dict[str, set[str]] = {
    "dwpose": {".onnx"},
    "mimicmotion": {".pth", ".pt", ".safetensors"},
    "smpl": {".pkl", ".npz"},
    "hmr2": {".ckpt", ".pth", ".pt", ".safetensors"},
    "anny": {".safetensors"},  # the built-in body's derived cache (built here on first use)
    "motionguide_adapters": {".safetensors"},  # geometry adapters made by `cli.py train` (config in each file)
    "dispose": {".pth", ".safetensors"},  # DisPose.pth (hybrid ControlNet)
    "cmp": {".tar", ".pth", ".safetensors"},  # CMP checkpoint for DisPose (ckpt_iter_42000.pth.tar)
}
# Core keys the pack reads but does not own.
SHARED_FOLDERS = ("diffusers", "checkpoints")


class Interrupted(Exception):
    """Raised outside ComfyUI when :func:`request_interrupt` was called (ComfyUI raises its own)."""


# --------------------------------------------------------------------------------------------------------------
# ComfyUI detection


def _comfy_module(name: str):
    """Import a ComfyUI module, or return None when ComfyUI is not importable (tests, command line)."""
    if os.environ.get("MOTIONGUIDE_NO_COMFY") == "1":
        return None
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


def in_comfyui() -> bool:
    return _comfy_module("folder_paths") is not None


# --------------------------------------------------------------------------------------------------------------
# Model folders

_models_dir_override: Path | None = None


def set_models_dir(path: str | os.PathLike | None) -> None:
    """Use ``path`` as the models directory outside ComfyUI (the command line's ``--models-dir``)."""
    global _models_dir_override
    _models_dir_override = Path(path).expanduser().resolve() if path else None


def fallback_models_dir() -> Path:
    """Models directory used outside ComfyUI: ``--models-dir``, else $MOTIONGUIDE_MODELS_DIR, else
    ``ComfyUI/models`` when the pack sits in ``ComfyUI/custom_nodes/``, else ``./models``."""
    if _models_dir_override is not None:
        return _models_dir_override
    env = os.environ.get("MOTIONGUIDE_MODELS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if PACK_ROOT.parent.name == "custom_nodes":
        return PACK_ROOT.parent.parent / "models"
    return Path.cwd() / "models"


def register_model_folders() -> None:
    """Add the pack's folders to ComfyUI's table, appending to (never replacing) user-configured entries."""
    folder_paths = _comfy_module("folder_paths")
    if folder_paths is None:
        return
    for key, extensions in MODEL_FOLDERS.items():
        user_configured = key in folder_paths.folder_names_and_paths
        folder_paths.add_model_folder_path(key, os.path.join(folder_paths.models_dir, key))
        known = folder_paths.folder_names_and_paths[key][1]
        # extra_model_paths.yaml creates unknown keys with an empty set (= any file): keep a user's permissive entry,
        # but give the keys we create our extensions so the file lists show model files only.
        if not user_configured or known:
            known.update(extensions)
    for key in SHARED_FOLDERS:
        if key not in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(key, os.path.join(folder_paths.models_dir, key))


def model_folder_paths(key: str) -> list[Path]:
    """Every directory searched for ``key``, in ComfyUI's order."""
    folder_paths = _comfy_module("folder_paths")
    if folder_paths is not None:
        try:
            return [Path(p) for p in folder_paths.get_folder_paths(key)]
        except KeyError:
            return [Path(folder_paths.models_dir) / key]
    return [fallback_models_dir() / key]


def anny_cache_folder() -> Path:
    """Where the built-in body's cache lives ($ANNY_CACHE_DIR still wins, see ``anny_cache.cache_dir``): ComfyUI's
    ``models/anny`` inside ComfyUI or when the pack sits in ``ComfyUI/custom_nodes/`` (so the command line builds
    it where ComfyUI looks), else one cache per machine (``~/.cache/anny``) shared by the command line, the demo and
    the tests, whatever ``--models-dir`` says (the demo's tiny-models folder included)."""
    if in_comfyui():
        return model_folder_paths("anny")[0]
    if PACK_ROOT.parent.name == "custom_nodes":
        return PACK_ROOT.parent.parent / "models" / "anny"
    from ..pipelines.smpl.body.anny_cache import MACHINE_CACHE

    return MACHINE_CACHE


def body_folder(key: str) -> Path:
    """Where a built-in body keeps its files: the Anny cache where :func:`anny_cache_folder` says, any other body
    in its model folder."""
    return anny_cache_folder() if key == "anny" else model_folder_paths(key)[0]


def list_model_files(key: str, extensions: Iterable[str] | None = None) -> list[str]:
    """Relative file names (with sub-folders, '/' separated) under every directory of ``key``, sorted."""
    exts = {e.lower() for e in (extensions or MODEL_FOLDERS.get(key, ()))}
    found: set[str] = set()
    for base in model_folder_paths(key):
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.is_file() and (not exts or path.suffix.lower() in exts):
                found.add(path.relative_to(base).as_posix())
    return sorted(found)


def list_model_dirs(key: str, marker: str) -> list[str]:
    """Model folders under ``key`` that contain ``marker`` (e.g. ``vae/config.json``), relative, sorted."""
    depth = len(Path(marker).parts)
    found: set[str] = set()
    for base in model_folder_paths(key):
        if base.is_dir():
            for path in base.glob("**/" + marker):
                found.add(path.parents[depth - 1].relative_to(base).as_posix())
    return sorted(found)


def model_registry() -> dict:
    """The model registry (`models_config/models.json`): file names, folders, sizes, sources, licences."""
    with open(MODELS_CONFIG / "models.json", encoding="utf-8") as f:
        return json.load(f)


def _remedy(key: str, name: str) -> str:
    try:
        entries = [e for e in model_registry()["models"] if e["folder"] == key]
    except (OSError, KeyError, json.JSONDecodeError):
        entries = []
    for entry in entries:
        if entry["name"] == name or Path(name).name == entry["name"]:
            return f"Download it from {entry['source']} ({entry.get('licence', 'see source')})."
    if entries:
        return "Expected files here: " + ", ".join(e["name"] for e in entries) + "."
    return "Place the file there, or pick another one."


def resolve_model_path(key: str, name: str) -> Path:
    """Full path of model file or folder ``name`` in folder ``key``.

    Raises ``FileNotFoundError`` naming the file, every folder searched, and where to get it.
    """
    if not name:
        raise FileNotFoundError(f"No {key} model selected: place a file in {model_folder_paths(key)[0]} and pick it.")
    candidate = Path(name)
    if candidate.is_absolute() and candidate.exists():
        return candidate
    searched = model_folder_paths(key)
    for base in searched:
        path = base / name
        if path.exists():
            return path
    folders = ", ".join(str(p) for p in searched)
    raise FileNotFoundError(f"Model file '{name}' was not found in the '{key}' folder ({folders}). {_remedy(key, name)}")


def check_model_file(key: str, name) -> bool | str:
    """A ``VALIDATE_INPUTS`` verdict for a model-file combo: True when ``name`` is found in folder ``key``, else the
    message naming the folders searched and where to download it (instead of ComfyUI's bare "not in list")."""
    if name is None:  # linked from another node
        return True
    try:
        resolve_model_path(key, str(name))
    except FileNotFoundError as exc:
        return str(exc)
    return True


# --------------------------------------------------------------------------------------------------------------
# Devices, dtypes, memory

def get_torch_device():
    import torch

    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        return mm.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def onnx_device(choice: str) -> str:
    """The DWPose device for a node's ``device`` choice: ``auto`` follows ComfyUI's torch device, so ComfyUI on
    the CPU (``--cpu``, or no CUDA GPU) never asks onnxruntime for CUDA. Outside ComfyUI ``auto`` is passed on
    (the pipeline asks torch whether a CUDA device is present)."""
    if choice != "auto":
        return choice
    mm = _comfy_module("comfy.model_management")
    if mm is None:
        return "auto"
    return "cuda" if mm.get_torch_device().type == "cuda" else "cpu"


def offload_device():
    import torch

    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        return mm.unet_offload_device()
    return torch.device("cpu")


def intermediate_device():
    import torch

    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        return mm.intermediate_device()
    return torch.device("cpu")


PRECISIONS = ["auto", "fp16", "bf16", "fp32"]


def choose_dtype(precision: str, device):
    """Map a precision choice to a torch dtype. ``auto``: fp16 on CUDA, fp32 on CPU."""
    import torch

    check_choice("precision", precision, PRECISIONS)
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32":
        return torch.float32
    if getattr(device, "type", str(device)) == "cuda":
        return torch.float16
    return torch.float32


def free_memory(required_bytes: int, device) -> None:
    """Ask ComfyUI to evict other models until ``required_bytes`` are free on ``device``."""
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        mm.free_memory(required_bytes, device)


def soft_empty_cache() -> None:
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        mm.soft_empty_cache()
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


# --------------------------------------------------------------------------------------------------------------
# Models registered with ComfyUI's memory manager

_patcher_class = None


def _whole_module_patcher(model_patcher):
    """A ``ModelPatcher`` that never unloads part of a module.

    ComfyUI may free memory by moving single layers of a loaded model back to RAM; its own layers cope (they cast
    weights on the fly), plain torch layers would fail with mixed devices. Refusing partial unloads makes ComfyUI
    unload our module whole instead.
    """
    global _patcher_class
    if _patcher_class is None or _patcher_class.__bases__[0] is not model_patcher.ModelPatcher:
        class WholeModulePatcher(model_patcher.ModelPatcher):
            def partially_unload(self, device_to, memory_to_free=0):
                return 0

        _patcher_class = WholeModulePatcher
    return _patcher_class


_holder_classes: dict = {}


def _holder(module, label: str):
    """A bare container for ``module``: ComfyUI writes bookkeeping attributes (``device``, …) on the module it
    manages, and diffusers/transformers models have a read-only ``device`` property. Its class is named after
    ``label`` because ComfyUI's log lines ("Requested to load …") print the class name."""
    import torch

    cls = _holder_classes.get(label)
    if cls is None:
        cls = _holder_classes[label] = type(label, (torch.nn.Module,), {"__doc__": "Holds one MotionGuide model."})
    holder = cls()
    holder.add_module("module", module)
    holder.label = label
    return holder


def _all_on(module, device) -> bool:
    """Every parameter and buffer of ``module`` on ``device`` ("cuda" matches any CUDA index)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.device.type != device.type or (device.index is not None and tensor.device.index != device.index):
            return False
    return True


class ManagedModel:
    """One of the pack's modules, moved between the compute and offload devices through ComfyUI's memory manager.

    Inside ComfyUI :meth:`load` registers the module (wrapped once in a ``ModelPatcher``) with
    ``comfy.model_management.load_models_gpu``, which first unloads other models to make room and then tracks ours,
    so ComfyUI can unload it (move its weights to ``offload_device``) when another node needs the memory. Callers
    must therefore call :meth:`load` before every use and read devices from the module's parameters, never cache
    them. Outside ComfyUI both methods are plain ``module.to(device)``.

    Args:
        module (`torch.nn.Module`): the model; its parameters are moved, the object stays the same.
        load_device (`torch.device`): where it runs.
        offload_device (`torch.device`): where it waits (ComfyUI's offload device, usually the CPU).
        size_bytes (`int`, *optional*): weight bytes; measured from the module when not given.
        label (`str`, *optional*): name in ComfyUI's "Requested to load" log lines.
    """

    def __init__(self, module, load_device, offload_device, size_bytes: int | None = None, label: str = ""):
        import torch

        self.module = module
        self.load_device = torch.device(load_device)
        self.offload_device = torch.device(offload_device)
        if size_bytes is None:
            size_bytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
        self.size_bytes = int(size_bytes)
        self.label = label or type(module).__name__
        self.patcher = None  # created on first load inside ComfyUI

    def _patcher(self, model_patcher):
        if self.patcher is None:
            cls = _whole_module_patcher(model_patcher)
            self.patcher = cls(_holder(self.module, self.label), self.load_device, self.offload_device,
                               size=self.size_bytes)
        return self.patcher

    def load(self) -> None:
        """Put the module on ``load_device``; inside ComfyUI let its manager free room first and track the module.
        Cheap when it is already loaded (ComfyUI only marks it as recently used)."""
        mm = _comfy_module("comfy.model_management")
        model_patcher = _comfy_module("comfy.model_patcher")
        if mm is None or model_patcher is None:
            self.module.to(self.load_device)
            return
        # force_full_load: ComfyUI's partial (low-VRAM) loading only works with its own layer types.
        mm.load_models_gpu([self._patcher(model_patcher)], force_full_load=True)
        if not _all_on(self.module, self.load_device):  # --novram loads partially even so: finish the move
            logger.debug("[MotionGuide] %s was loaded partially by ComfyUI; moving the rest", self.label)
            self.module.to(self.load_device)

    def offload(self) -> None:
        """Move the module to ``offload_device``; inside ComfyUI through its manager, so its books stay right."""
        mm = _comfy_module("comfy.model_management")
        if mm is not None and self.patcher is not None:
            loaded = getattr(mm, "current_loaded_models", [])
            for i in range(len(loaded) - 1, -1, -1):
                if loaded[i].model is self.patcher:
                    loaded.pop(i).model_unload()
        self.module.to(self.offload_device)

    def release(self) -> None:
        """End of a run for a model without its own memory policy: inside ComfyUI leave it loaded (ComfyUI unloads
        it when another model needs the room, like its own models); outside, offload it."""
        if self.is_managed():
            return
        self.offload()

    def is_managed(self) -> bool:
        """True when ComfyUI's memory manager currently tracks this module."""
        mm = _comfy_module("comfy.model_management")
        if mm is None or self.patcher is None:
            return False
        return any(entry.model is self.patcher for entry in getattr(mm, "current_loaded_models", []))


def managed_model(module, load_device, offload_device, size_bytes: int | None = None, label: str = "") -> ManagedModel:
    """A :class:`ManagedModel` handle for ``module`` (see there): ``.load()`` before use, ``.offload()`` to let go."""
    return ManagedModel(module, load_device, offload_device, size_bytes, label)


# --------------------------------------------------------------------------------------------------------------
# Progress and interrupt

_interrupt = threading.Event()


def request_interrupt() -> None:
    """Outside ComfyUI: make the next :func:`check_interrupt` raise (the command line's Ctrl-C)."""
    _interrupt.set()


def clear_interrupt() -> None:
    _interrupt.clear()


def check_interrupt() -> None:
    """Raise if the user cancelled: ComfyUI's exception inside ComfyUI, :class:`Interrupted` outside."""
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()
        return
    if _interrupt.is_set():
        _interrupt.clear()
        raise Interrupted("Interrupted by the user.")


# Outside ComfyUI, progress is also sent here (the command line prints it); signature (done, total, node_label).
progress_listener: Callable[[int, int, str], None] | None = None


class Progress:
    """A progress bar for one node run; every update also checks for Cancel.

    Pipelines receive ``progress.callback`` (``callback(done, total)``) so they never import ComfyUI.
    """

    def __init__(self, total: int, label: str = ""):
        self.total = max(int(total), 1)
        self.done = 0
        self.label = label
        utils = _comfy_module("comfy.utils")
        self._bar = utils.ProgressBar(self.total) if utils is not None else None

    def update(self, n: int = 1, preview=None) -> None:
        self.set(self.done + n, preview)

    def set(self, done: int, preview=None) -> None:
        self.done = min(int(done), self.total)
        self._shown = True
        if self._bar is not None:
            self._bar.update_absolute(self.done, self.total, preview)
        elif progress_listener is not None:
            progress_listener(self.done, self.total, self.label)
        check_interrupt()

    def callback(self, done: int, total: int | None = None) -> None:
        if total is not None and total != self.total:
            self.total = max(int(total), 1)
        elif min(int(done), self.total) == self.done and getattr(self, "_shown", False):
            check_interrupt()  # a repeated count (a cancel point inside a UNet call or a decode chunk): no UI update
            return
        self.set(done)


# --------------------------------------------------------------------------------------------------------------
# Live latent previews (ComfyUI's previewer: latent → RGB projection, or TAESD when the user enabled it)

PREVIEW_EVERY_STEPS = 1


def latent_previewer(device=None):
    """ComfyUI's previewer for SVD's 4-channel latents (the SD1.x latent space), as ``preview(x0) -> preview
    bytes``; ``None`` outside ComfyUI or when previews are off (``--preview-method none``)."""
    latent_preview = _comfy_module("latent_preview")
    formats = _comfy_module("comfy.latent_formats")
    if latent_preview is None or formats is None:
        return None
    try:
        previewer = latent_preview.get_previewer(device if device is not None else get_torch_device(), formats.SD15())
    except Exception as exc:  # a preview must never break sampling
        logger.info("[MotionGuide] no live preview: %s", exc)
        return None
    if previewer is None:
        return None

    def preview(x0):
        """``x0``: ``[4,h,w]`` or ``[1,4,h,w]`` scaled latents of one frame."""
        return previewer.decode_latent_to_preview_image("JPEG", x0 if x0.ndim == 4 else x0[None])

    return preview


def latent_preview_callback(progress: Progress, device=None, every: int = PREVIEW_EVERY_STEPS):
    """An ``on_step(step, steps, x0)`` for the sampler that shows the middle frame of the fused x0 prediction on the
    node's progress bar every ``every`` steps, the way KSampler sends its previews; ``None`` (nothing to do) outside
    ComfyUI or with previews off."""
    preview = latent_previewer(device)
    if preview is None:
        return None

    def on_step(step: int, steps: int, x0) -> None:
        if step % every and step != steps:
            return
        try:
            image = preview(x0[x0.shape[0] // 2])
        except Exception as exc:  # e.g. a TAESD decoder that does not fit: keep sampling
            logger.info("[MotionGuide] live preview failed: %s", exc)
            return
        progress.set(progress.done, image)

    return on_step


# --------------------------------------------------------------------------------------------------------------
# Core VAE objects (Load VAE / Load Checkpoint) for Decode Video


def core_vae_decoder(vae):
    """``decode(z)`` for a core ``VAE`` (``comfy.sd.VAE``): raw latents ``[n,4,h,w]`` → frames ``[n,H,W,3]`` float32
    0..1 on the CPU. ComfyUI's own ``VAE.decode`` loads the model through its memory manager; with SVD's temporal
    VAE it decodes the ``n`` frames of a call as one clip."""
    if not callable(getattr(vae, "decode", None)):
        raise ValueError(f"vae must be a VAE from a core loader (Load VAE or an SVD checkpoint loader), got "
                         f"{type(vae).__name__}.")
    channels = getattr(vae, "latent_channels", 4)
    if channels != 4:
        raise ValueError(f"This VAE has {channels} latent channels; MotionGuide latents need SVD's 4-channel VAE "
                         "(load svd_xt_1_1.safetensors or its VAE).")
    decoder = getattr(getattr(vae, "first_stage_model", None), "decoder", None)
    if decoder is not None and type(decoder).__name__ != "VideoDecoder":
        logger.warning("[MotionGuide] the VAE on Decode Video has no temporal decoder (%s); frames are decoded one by "
                       "one and may flicker. SVD's VAE (from svd_xt_1_1.safetensors) decodes them as a clip.",
                       type(decoder).__name__)

    def decode(z):
        return vae.decode(z).float().cpu()

    return decode


# --------------------------------------------------------------------------------------------------------------
# Output folders (for Save nodes)

def output_directory() -> Path:
    folder_paths = _comfy_module("folder_paths")
    if folder_paths is not None:
        return Path(folder_paths.get_output_directory())
    return Path(os.environ.get("MOTIONGUIDE_OUTPUT_DIR", Path.cwd() / "output"))


def default_temp_directory() -> Path:
    """Where previews go outside ComfyUI unless MOTIONGUIDE_TEMP_DIR says otherwise (the CLI empties it per run)."""
    return Path(tempfile.gettempdir()) / "motionguide"


def temp_directory() -> Path:
    folder_paths = _comfy_module("folder_paths")
    if folder_paths is not None:
        return Path(folder_paths.get_temp_directory())
    return Path(os.environ.get("MOTIONGUIDE_TEMP_DIR", default_temp_directory()))


def directory_of_type(kind: str) -> Path:
    """The folder behind a UI file entry's ``type`` ("output", "temp" or "input"), as ComfyUI's /view reads it."""
    folders = {"output": output_directory, "temp": temp_directory, "input": input_directory}
    if kind not in folders:
        raise ValueError(f"Unknown file type {kind!r}; expected one of {sorted(folders)}.")
    return folders[kind]()


def input_directory() -> Path:
    folder_paths = _comfy_module("folder_paths")
    if folder_paths is not None:
        return Path(folder_paths.get_input_directory())
    return Path(os.environ.get("MOTIONGUIDE_INPUT_DIR", Path.cwd() / "input"))


def input_path(name: str | os.PathLike, what: str) -> Path:
    """``name`` (relative to ComfyUI's input folder, or absolute inside it) with symbolic links resolved; a path
    that leads outside the input folder (``../``, an absolute path elsewhere, a link out) is a ``ValueError``."""
    root = input_directory().resolve()
    path = (root / Path(name).expanduser()).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"{what} {str(name)!r} is outside ComfyUI's input folder {root}; nodes only read files "
                         "there. Copy the file into that folder.")
    return path
