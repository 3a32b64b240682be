"""Loading DisPose's files strictly and without executing code.

* ``DisPose.pth`` (huggingface.co/lihxxx/DisPose): a flat state dict of the hybrid ControlNet, no prefix.
* ``ckpt_iter_42000.pth.tar`` (huggingface.co/MyNiuuu/MOFA-Video-Hybrid): CMP, ``{"step", "state_dict"}`` with
  ``module.``-prefixed keys (see :mod:`.cmp`).

A file that does not fit (a MimicMotion checkpoint given as DisPose, a missing tensor) is an error naming the keys;
nothing is ever left with random weights.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..mimicmotion.loading import _materialise_buffers, check_state_dict
from ..weights import load_pickle_weights_only, load_safetensors
from .cmp import CMP, build_cmp
from .controlnet import DisPoseControlNet, build_controlnet

DISPOSE_SOURCE = "https://huggingface.co/lihxxx/DisPose (DisPose.pth)"
CMP_SOURCE = ("https://huggingface.co/MyNiuuu/MOFA-Video-Hybrid (models/cmp/experiments/semiauto_annot/"
              "resnet50_vip+mpii_liteflow/checkpoints/ckpt_iter_42000.pth.tar)")


def read_flat_state(path: str | Path, model_id: str, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.safetensors`` file (a ``state_dict`` entry is unwrapped), CPU, no code run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist.")
    if path.suffix == ".safetensors":
        return load_safetensors(path, what, model_id)
    data = load_pickle_weights_only(path, what, model_id)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{path} is not a dictionary of tensors; is it the {what} file?")
    return data


def load_dispose(path: str | Path, unet_config: dict, dtype: torch.dtype, vae_factor: int = 8) -> DisPoseControlNet:
    """The hybrid ControlNet from ``DisPose.pth``, shaped by MimicMotion's UNet config, strictly."""
    state = read_flat_state(path, "dispose", "DisPose ControlNet")
    if any(k.startswith(("unet.", "pose_net.")) for k in state):
        raise ValueError(f"{path} holds 'unet.*' / 'pose_net.*' keys: it is a MimicMotion checkpoint, not DisPose.pth. "
                         f"Choose DisPose.pth from {DISPOSE_SOURCE} as the DisPose file.")
    model = build_controlnet(unet_config, state, str(path), vae_factor)
    check_state_dict(model, state, str(path), "DisPose ControlNet")
    cast = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(cast, strict=True, assign=True)
    _materialise_buffers(model)
    return model.eval().requires_grad_(False)


def load_cmp(path: str | Path, dtype: torch.dtype) -> CMP:
    """CMP from ``ckpt_iter_42000.pth.tar`` (``module.``-prefixed keys under ``state_dict``), strictly. BatchNorm's
    ``num_batches_tracked`` counters, unused at inference, may be absent from older files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CMP checkpoint {path} does not exist. Download it from {CMP_SOURCE}; DisPose never "
                                "runs with a random CMP.")
    raw = read_flat_state(path, "cmp", "CMP checkpoint")
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    model = build_cmp(state, str(path))
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    check_state_dict(model, state, str(path), "CMP", ("module.",))
    cast = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(cast, strict=True, assign=True)
    return model.eval().requires_grad_(False)
