"""Where the opt-in tests against a real ComfyUI checkout find it: ``MOTIONGUIDE_COMFYUI=/path/to/ComfyUI`` and,
optionally, ``MOTIONGUIDE_COMFYUI_PYTHON`` (its interpreter; default: ``venv/bin/python`` beside the checkout, else
this interpreter)."""
import os
import sys
from pathlib import Path

COMFY = os.environ.get("MOTIONGUIDE_COMFYUI")
SKIP_REASON = "set MOTIONGUIDE_COMFYUI to a ComfyUI checkout to run against a real ComfyUI"


def is_checkout(*marker: str) -> bool:
    return bool(COMFY) and (Path(COMFY).joinpath(*marker)).is_file()


def comfy_python() -> str:
    explicit = os.environ.get("MOTIONGUIDE_COMFYUI_PYTHON")
    if explicit:
        return explicit
    beside = Path(COMFY).resolve().parent / "venv" / "bin" / "python"
    return str(beside) if beside.is_file() else sys.executable


def comfy_env() -> dict:
    """This environment without MOTIONGUIDE_NO_COMFY (set by conftest), so the pack sees ComfyUI there."""
    return {k: v for k, v in os.environ.items() if k != "MOTIONGUIDE_NO_COMFY"}
