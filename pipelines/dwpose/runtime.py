"""onnxruntime sessions: provider choice from one table, and signature checks with readable errors.

onnxruntime is imported inside the functions so that importing the pack stays light.

CUDA is requested only when it is wanted (``cuda``, or ``auto`` with a CUDA torch device; the node layer resolves
``auto`` from ComfyUI's device, so ``--cpu`` means CPU) *and* the installed onnxruntime can use it: its CUDA
provider library and cuDNN must load. Asking onnxruntime for a provider it cannot load makes it print red errors
(``Failed to load library libonnxruntime_providers_cuda.so``) and fall back to the CPU anyway; probing first keeps
CPU runs quiet and turns a GPU machine's mismatch into one warning that says what to install.
"""
from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from ..options import check_choice

logger = logging.getLogger(__name__)

# device choice → providers tried in order; the first one onnxruntime has is used, CPU is always the last resort.
PROVIDERS = {
    "auto": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "cpu": ("CPUExecutionProvider",),
}
DEVICES = tuple(PROVIDERS)
CUDA_DOCS = "https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements"
_cuda_problem: dict[str, str | None] = {}  # cached probe result, keyed by onnxruntime's package directory
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def cuda_wanted(device: str) -> bool:
    """``cuda``, or ``auto`` when torch sees a CUDA device (the node layer passes ComfyUI's choice instead)."""
    if device == "cuda":
        return True
    if device != "auto":
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def cuda_provider_problem(ort=None) -> str | None:
    """None when onnxruntime's CUDA provider can load here, else why not and what to install (probed once).

    Loads the provider library and cuDNN with ``ctypes`` the way onnxruntime would, which fails silently with the
    missing library's name instead of onnxruntime's red log lines. Libraries torch already loaded (its CUDA and
    cuDNN wheels) count, as they do for onnxruntime.
    """
    if ort is None:
        import onnxruntime as ort
    capi = Path(ort.__file__).parent / "capi"
    if str(capi) in _cuda_problem:
        return _cuda_problem[str(capi)]
    try:
        from onnxruntime.capi import build_and_package_info as info

        built_for = getattr(info, "cuda_version", "") or "?"
    except ImportError:
        built_for = "?"
    problem = None
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        problem = (f"the installed onnxruntime {ort.__version__} has no CUDA provider: install the GPU build "
                   "(`pip uninstall -y onnxruntime && pip install onnxruntime-gpu`)")
    else:
        version = tuple(int(p) for p in ort.__version__.split(".")[:2] if p.isdigit())
        cudnn = "libcudnn.so.9" if version >= (1, 19) else "libcudnn.so.8"
        try:
            ctypes.CDLL(str(capi / "libonnxruntime_providers_cuda.so"))
            ctypes.CDLL(cudnn)
        except OSError as exc:
            problem = (f"onnxruntime-gpu {ort.__version__} is built for CUDA {built_for} and cannot load its CUDA "
                       f"provider here ({exc}); install the CUDA {built_for} and cuDNN libraries, or the "
                       f"onnxruntime-gpu build matching your CUDA (torch's CUDA: {_torch_cuda()}; see {CUDA_DOCS})")
    _cuda_problem[str(capi)] = problem
    return problem


def _torch_cuda() -> str:
    try:
        import torch

        return str(torch.version.cuda)
    except ImportError:
        return "no torch"


def choose_providers(device: str = "auto", available=None, *, cuda_problem=None) -> list[str]:
    """Providers to request for ``device`` among those onnxruntime offers (``available``).

    Args:
        device (`str`): ``auto`` (CUDA when a CUDA device is present and usable), ``cuda`` or ``cpu``.
        available (`list[str]`, *optional*): onnxruntime's providers (default: asked from onnxruntime).
        cuda_problem (`callable`, *optional*): returns None when CUDA can load, else why not
            (default: :func:`cuda_provider_problem`); only called when CUDA is wanted.
    """
    check_choice("DWPose device", device, DEVICES)
    if not cuda_wanted(device):
        return ["CPUExecutionProvider"]
    if available is None or cuda_problem is None:
        import onnxruntime as ort

        available = ort.get_available_providers() if available is None else available
        cuda_problem = cuda_problem or (lambda: cuda_provider_problem(ort))
    problem = ("onnxruntime offers only " + ", ".join(available) + " (install onnxruntime-gpu)"
               if "CUDAExecutionProvider" not in available else cuda_problem())
    if problem:
        _warn_once(f"DWPose runs on the CPU although a CUDA GPU is in use: {problem}.")
        return ["CPUExecutionProvider"]
    return [p for p in PROVIDERS[device] if p in available]


def create_session(path, device: str = "auto"):
    """One onnxruntime session for ``path``; logs the provider actually in use."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DWPose model file '{path}' does not exist.")
    providers = choose_providers(device)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for unreadable files
        from ..weights import unreadable_file

        raise unreadable_file(path, "DWPose model file", onnx_load_reason(exc)) from exc
    logger.info("DWPose running on %s (%s)", session.get_providers()[0], path.name)
    return session


def onnx_load_reason(exc: BaseException) -> str:
    """A short reason for onnxruntime refusing a model file, without its status codes and path."""
    text = str(exc)
    for code, reason in (("INVALID_PROTOBUF", "it is not a readable ONNX model (cut short, or another kind of file)"),
                         ("No graph was found", "it holds no model graph (empty, or another kind of file)"),
                         ("NOT_IMPLEMENTED", "it uses an operator or opset this onnxruntime does not support "
                                             "(upgrade onnxruntime)")):
        if code in text:
            return reason
    detail = text.split(" failed:", 1)[-1].strip().rstrip(".") or "no reason given"
    return f"onnxruntime cannot load it ({detail.splitlines()[0][:200]})"


def describe_signature(session) -> str:
    """'inputs: images [1, 3, 640, 640]; outputs: output [1, 8400, 85]' for error messages."""
    def fmt(items):
        return ", ".join(f"{i.name} {list(i.shape)}" for i in items)

    return f"inputs: {fmt(session.get_inputs())}; outputs: {fmt(session.get_outputs())}"


def is_dynamic(dim) -> bool:
    return not isinstance(dim, int) or dim <= 0
