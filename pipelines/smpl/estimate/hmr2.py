"""HMR2.0 (4D-Humans) SMPL estimator: strict checkpoint loading and batched per-frame estimation.

The public checkpoint is a PyTorch-Lightning ``.ckpt`` whose ``state_dict`` holds ``backbone.*`` and
``smpl_head.*`` (what we run) next to training-only entries (the adversarial ``discriminator.*``, the SMPL
layer's ``smpl.*`` buffers, ``initialized``), which are dropped by name. Everything else must match exactly.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...weights import describe_load_error, load_pickle_weights_only, load_safetensors, unreadable_file
from ..body.rotations import matrix_to_axis_angle
from .estimator import ProgressCallback, assemble_sequence
from .hmr2_geometry import (
    box_center_and_size,
    cam_crop_to_full,
    crop_person,
    full_image_focal,
    intrinsics,
    normalize_crops,
    to_uint8_frames,
)
from .hmr2_vit import HMR2Config, HMR2Network

logger = logging.getLogger(__name__)

# Training-only entries of the Lightning checkpoint: dropped on purpose, never silently anything else.
IGNORED_PREFIXES = ("discriminator.", "smpl.")
IGNORED_KEYS = ("initialized",)
MODEL_PREFIXES = ("backbone.", "smpl_head.")
# Top-level entry our own (tiny / converted) checkpoints use to state network sizes explicitly.
CONFIG_ENTRY = "motionguide_hmr2_config"


# --------------------------------------------------------------------------------------------------------------
# Reading checkpoints


class InertObject(OrderedDict):
    """Stand-in for a class pickled in a checkpoint outside the tensors (a config object, a callback, …).

    It accepts any constructor arguments and state and keeps them as data; no code from the file runs.
    """

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.args = args

    def __setstate__(self, state):
        self.state = state


# Dict subclasses pickled by Lightning / yacs / omegaconf: rebuilt as plain OrderedDicts so their items stay
# readable (the weights-only unpickler fills only exact dict types).
DICT_LIKE_CLASSES = ("yacs.config.CfgNode", "lightning_fabric.utilities.data.AttributeDict",
                     "pytorch_lightning.utilities.parsing.AttributeDict", "lightning.fabric.utilities.data.AttributeDict")


def _safe_globals_for(path: Path) -> list:
    """Allow-list for ``torch.load(weights_only=True)`` of a Lightning checkpoint.

    Lightning pickles the training config (a yacs ``CfgNode``) and numpy scalars into ``hyper_parameters``.
    numpy scalars/dtypes are admitted as themselves, known dict subclasses become ``OrderedDict``, and any
    other class or function named in the file becomes an :class:`InertObject` — so nothing from the file runs.
    """
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    numpy_scalar = np._core.multiarray.scalar
    known = {"numpy.dtype": np.dtype, "numpy._core.multiarray.scalar": numpy_scalar,
             "numpy.core.multiarray.scalar": numpy_scalar}
    known.update({name: OrderedDict for name in DICT_LIKE_CLASSES})
    allowed: list = [(known.get(name, InertObject), name) for name in names]
    allowed += [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"]
    inert = sorted(n for n in names if n not in known)
    if inert:
        logger.info("HMR2 checkpoint %s: %d pickled objects read as inert data: %s", path.name, len(inert),
                    ", ".join(inert[:8]))
    return allowed


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Load the tensors and the config entries of an HMR2 checkpoint without executing code.

    Accepts the Lightning ``.ckpt`` (``{"state_dict": ..., "hyper_parameters": {"cfg": ...}}``), a plain
    ``.pth``/``.pt`` state dict, or a ``.safetensors`` conversion.

    Returns:
        `(state_dict, meta)` where meta holds ``hyper_parameters`` and :data:`CONFIG_ENTRY` when present.
    """
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        return load_safetensors(path, "HMR2 checkpoint", "hmr2"), {}
    try:
        allowed = _safe_globals_for(path)
    except Exception as exc:  # noqa: BLE001 - an empty or cut file fails already here
        raise unreadable_file(path, "HMR2 checkpoint", describe_load_error(exc)[0], "hmr2") from exc
    with torch.serialization.safe_globals(allowed):
        obj = load_pickle_weights_only(path, "HMR2 checkpoint", "hmr2")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = {k: obj[k] for k in ("hyper_parameters", CONFIG_ENTRY) if k in obj}
        return dict(obj["state_dict"]), meta
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj), {}
    raise unreadable_file(path, "HMR2 checkpoint", "it is not an HMR2 checkpoint (expected a dict with a "
                          f"'state_dict' entry (Lightning .ckpt) or a flat dict of tensors, got "
                          f"{type(obj).__name__})", "hmr2")


def _lookup(tree, *keys):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def config_from_checkpoint_meta(meta: dict) -> HMR2Config:
    """Network sizes: the public HMR2.0 defaults, overridden by the Lightning training config where it says
    something (decoder sizes, IEF iterations, crop conventions), then by :data:`CONFIG_ENTRY`."""
    values: dict = {}
    cfg = _lookup(meta, "hyper_parameters", "cfg")
    if cfg is not None:
        head = _lookup(cfg, "MODEL", "SMPL_HEAD") or {}
        joint_rep = head.get("JOINT_REP", "6d")
        if joint_rep != "6d":
            raise ValueError(f"HMR2 checkpoint uses JOINT_REP={joint_rep!r}; only '6d' heads are supported.")
        decoder = head.get("TRANSFORMER_DECODER") or {}
        for src, dst in (("depth", "head_depth"), ("heads", "head_heads"), ("dim_head", "head_dim_head"),
                         ("mlp_dim", "head_mlp_dim")):
            if src in decoder:
                values[dst] = int(decoder[src])
        for src, dst, kind in (("IEF_ITERS", "ief_iters", int), ("TRANSFORMER_INPUT", "transformer_input", str)):
            if src in head:
                values[dst] = kind(head[src])
        for path, dst in ((("MODEL", "IMAGE_SIZE"), "image_size"), (("EXTRA", "FOCAL_LENGTH"), "focal_length"),
                          (("MODEL", "BBOX_SHAPE"), "bbox_shape"), (("MODEL", "IMAGE_MEAN"), "image_mean"),
                          (("MODEL", "IMAGE_STD"), "image_std")):
            value = _lookup(cfg, *path)
            if value is not None:
                values[dst] = value
        if "image_size" in values:
            values["image_size"] = int(values["image_size"])
            values.setdefault("backbone_height", values["image_size"])
    explicit = meta.get(CONFIG_ENTRY)
    if explicit:
        values.update(dict(explicit))
    return HMR2Config.from_dict(values)


def _few(keys, n: int = 5) -> str:
    keys = sorted(keys)
    more = f" … ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_state_dict_strict(network: HMR2Network, state_dict: dict[str, torch.Tensor], source: str | Path) -> None:
    """Copy ``state_dict`` into ``network``: the known training-only entries are dropped; any other missing
    or unexpected key, or any shape mismatch, is a ``ValueError`` naming a few keys and the file."""
    expected = network.state_dict()
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"'{source}' holds non-tensor entries in its state_dict: {_few(not_tensors)}.")
    dropped = [k for k in state_dict if k.startswith(IGNORED_PREFIXES) or k in IGNORED_KEYS]
    provided = {k: v for k, v in state_dict.items() if k not in set(dropped)}
    missing = set(expected) - set(provided)
    unexpected = set(provided) - set(expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_few(unexpected)}")
        hint = ""
        if not any(k.startswith(MODEL_PREFIXES) for k in provided):
            sample = _few(list(provided)[:3], 3) if provided else "none"
            hint = f" No key starts with {MODEL_PREFIXES} (the file's keys look like: {sample})."
        raise ValueError(f"'{source}' does not match the HMR2.0 network ({'; '.join(parts)}).{hint} Use the "
                         "public HMR2.0 checkpoint or a state_dict with the same key names.")
    wrong = [f"{k}: file {tuple(v.shape)} vs network {tuple(expected[k].shape)}"
             for k, v in provided.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise ValueError(f"'{source}' has tensors of the wrong shape for the HMR2.0 network: "
                         f"{'; '.join(wrong[:4])}{' …' if len(wrong) > 4 else ''}.")
    network.load_state_dict(provided, strict=True)
    if dropped:
        logger.debug("HMR2: dropped %d training-only entries from %s", len(dropped), source)


def load_hmr2_network(path: str | Path, device="cpu", dtype=torch.float32) -> HMR2Network:
    """Build the network at the checkpoint's sizes, load it strictly, and move it to ``device``/``dtype``."""
    state_dict, meta = read_checkpoint(path)
    config = config_from_checkpoint_meta(meta)
    with torch.device("meta"):
        network = HMR2Network(config)
    network = network.to_empty(device="cpu")
    load_state_dict_strict(network, state_dict, path)
    return network.to(device=device, dtype=dtype).eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------------------
# Estimation


class HMR2Estimator:
    """Per-frame HMR2.0 estimation of one person, batched over frames (see :class:`SMPLEstimator`).

    Args:
        network (`HMR2Network`): loaded, on ``device`` in ``dtype``.
        batch_size (`int`, *optional*, defaults to 8): crops per forward pass.
        box_rescale (`float`, *optional*, defaults to 1.2): padding of the person box before the square crop
            (HMR2 uses 1.2 for boxes made from keypoints, 1.0 for detector boxes).
    """

    name = "hmr2"

    def __init__(self, network: HMR2Network, batch_size: int = 8, box_rescale: float = 1.2):
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}.")
        if not box_rescale > 0:
            raise ValueError(f"box_rescale must be > 0, got {box_rescale}.")
        self.network = network
        self.batch_size = int(batch_size)
        self.box_rescale = float(box_rescale)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device="cpu", dtype=torch.float32, batch_size: int = 8,
                        box_rescale: float = 1.2) -> "HMR2Estimator":
        return cls(load_hmr2_network(path, device, dtype), batch_size, box_rescale)

    @property
    def config(self) -> HMR2Config:
        return self.network.cfg

    def _device_dtype(self):
        param = next(self.network.parameters())
        return param.device, param.dtype

    @torch.inference_mode()
    def predict_crops(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Crops float `[B, S, S, 3]` in 0..255 → rotation matrices, betas and crop cameras (numpy float32)."""
        device, dtype = self._device_dtype()
        x = normalize_crops(crops, self.config.image_mean, self.config.image_std).to(device=device, dtype=dtype)
        out = self.network(x)
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def estimate(self, images, boxes: Sequence, callback: ProgressCallback | None = None, fps: float = 30.0,
                 box_rescale=None) -> dict:
        """Frames + per-frame person boxes → ``SMPL_SEQUENCE`` (see :class:`SMPLEstimator`).

        ``box_rescale`` (`float` or `[F]` floats, *optional*) overrides the estimator's box padding, per frame
        when a sequence (e.g. 1.0 for detector boxes, 1.2 for keypoint boxes).
        """
        frames = to_uint8_frames(images)
        if frames.ndim != 4 or frames.shape[-1] < 3 or frames.shape[0] == 0:
            raise ValueError(f"images must be a non-empty [F,H,W,3] batch, got shape {tuple(frames.shape)}.")
        frames = frames[..., :3]
        count, height, width = frames.shape[:3]
        if len(boxes) != count:
            raise ValueError(f"Got {len(boxes)} person boxes for {count} frames; give one box (or None) per frame.")
        cfg = self.config
        rescale = np.broadcast_to(np.asarray(self.box_rescale if box_rescale is None else box_rescale, float), (count,))
        if not (rescale > 0).all():
            raise ValueError(f"box_rescale must be > 0, got {np.unique(rescale).tolist()}.")

        # 1. Square crops from the boxes (frames without a usable box are skipped).
        centers = np.zeros((count, 2))
        sizes = np.zeros(count)
        valid = np.zeros(count, bool)
        bbox = np.zeros((count, 4))
        for i, box in enumerate(boxes):
            if box is None:
                continue
            box = np.asarray(box, np.float64).reshape(4)
            if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:  # empty in x or in y
                continue
            centers[i], sizes[i] = box_center_and_size(box, rescale[i], cfg.bbox_shape)
            valid[i] = sizes[i] >= 1.0
            bbox[i] = box
        todo = np.flatnonzero(valid)
        if len(todo) == 0:
            raise ValueError(f"None of the {count} frames has a person box: nothing to estimate.")

        # 2. Network in batches.
        global_orient = np.zeros((count, 3))
        body_pose = np.zeros((count, cfg.num_body_joints * 3))
        betas = np.zeros((count, cfg.num_betas))
        cams = np.zeros((count, 3))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            crops = np.stack([crop_person(frames[i], centers[i], sizes[i], cfg.image_size) for i in batch])
            out = self.predict_crops(crops)
            global_orient[batch] = matrix_to_axis_angle(out["global_orient"]).reshape(len(batch), 3)
            body_pose[batch] = matrix_to_axis_angle(out["body_pose"]).reshape(len(batch), -1)
            betas[batch] = out["betas"]
            cams[batch] = out["cam"]
            if callback is not None:
                callback(min(start + self.batch_size, len(todo)), len(todo))

        # 3. Crop cameras → full-image translation with HMR2's full-image focal length.
        focal = full_image_focal((width, height), cfg.focal_length, cfg.image_size)
        transl = np.zeros((count, 3))
        transl[todo] = cam_crop_to_full(cams[todo], centers[todo], sizes[todo], (width, height), focal)
        if len(todo) < count:
            logger.info("HMR2: %d of %d frames have no person; marked invalid (filled from neighbours).",
                        count - len(todo), count)
        return assemble_sequence(
            betas=betas, global_orient=global_orient, body_pose=body_pose, transl=transl,
            K=np.broadcast_to(intrinsics((width, height), focal), (count, 3, 3)), valid=valid, bbox=bbox,
            image_size=(width, height), fps=fps, model_type="smpl",
        )
