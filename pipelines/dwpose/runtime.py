"""onnxruntime sessions: provider choice from one table, and signature checks with readable errors.

onnxruntime is imported inside the functions so that importing the pack stays light.
"""
from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# device choice → providers tried in order; the first one onnxruntime has is used, CPU is always the last resort.
PROVIDERS = {
    "auto": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "cpu": ("CPUExecutionProvider",),
}
DEVICES = tuple(PROVIDERS)


def choose_providers(device: str = "auto", available=None) -> list[str]:
    """Providers to request for ``device`` among those onnxruntime offers (``available``)."""
    if device not in PROVIDERS:
        raise ValueError(f"DWPose device must be one of {DEVICES}, got {device!r}.")
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    chosen = [p for p in PROVIDERS[device] if p in available]
    if device == "cuda" and "CUDAExecutionProvider" not in chosen:
        logger.warning("DWPose: CUDA was asked for but onnxruntime offers only %s (install onnxruntime-gpu); "
                       "using the CPU.", ", ".join(available))
    return chosen or ["CPUExecutionProvider"]


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
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise ValueError(f"DWPose model file '{path}' could not be loaded by onnxruntime ({exc}). "
                         "Replace it with the original ONNX file.") from exc
    logger.info("DWPose running on %s (%s)", session.get_providers()[0], path.name)
    return session


def describe_signature(session) -> str:
    """'inputs: images [1, 3, 640, 640]; outputs: output [1, 8400, 85]' for error messages."""
    def fmt(items):
        return ", ".join(f"{i.name} {list(i.shape)}" for i in items)

    return f"inputs: {fmt(session.get_inputs())}; outputs: {fmt(session.get_outputs())}"


def is_dynamic(dim) -> bool:
    return not isinstance(dim, int) or dim <= 0
