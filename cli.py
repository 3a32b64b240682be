#!/usr/bin/env python3
"""MotionGuide command line: ``python cli.py {run,demo,doctor,models,batch} ...`` (``--help`` for each).

ComfyUI imports the pack folder as a package under its path; here it is loaded as ``motionguide`` so the
pack's relative imports work the same way without ComfyUI.

Run with a Python that lacks torch (e.g. the system ``python``) while the project's virtual environment exists
(``.venv``, made by ``scripts/setup_env.sh``, or ``$MOTIONGUIDE_VENV``), the command re-runs itself with that
environment's Python, so the README's ``python cli.py ...`` works as written.
"""
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = "motionguide"
# Commands that work without torch (they report what is missing or fetch files).
TORCH_FREE_COMMANDS = ("doctor", "models", "batch", "-h", "--help")
PROJECT_MODULES = ("torch", "numpy", "cv2")  # what the bench scripts import first


def venv_python() -> Path:
    venv = Path(os.environ.get("MOTIONGUIDE_VENV") or ROOT / ".venv")
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def use_project_venv(argv: list[str], script: str | None = None, needs: tuple[str, ...] = ("torch",)) -> None:
    """Re-execute in the project's venv when this Python lacks one of ``needs``; or say how to get one (never
    returns then). Does nothing when they are importable here, so ComfyUI's own Python is always used as it is.
    ``script`` is the file to re-run (this one by default; the bench scripts pass their own)."""
    if all(importlib.util.find_spec(name) is not None for name in needs):
        return
    python = venv_python()
    inside = Path(sys.prefix).resolve() == python.parent.parent.resolve()
    if python.exists() and not inside:
        os.execv(str(python), [str(python), str(Path(script or __file__).resolve()), *argv])
    if script is not None:
        sys.exit(f"error: {', '.join(n for n in needs if importlib.util.find_spec(n) is None)} not installed for "
                 f"{sys.executable}. Run `bash scripts/setup_env.sh` once (it makes {python.parent.parent}; this "
                 "script then re-runs itself with it), or run it with .venv/bin/python.")
    command = next((a for a in argv if not a.startswith("-")), "")
    if command and command not in TORCH_FREE_COMMANDS:
        sys.exit(f"error: torch is not installed for {sys.executable}. Run `bash scripts/setup_env.sh` once (it makes "
                 f"{python.parent.parent} with everything MotionGuide needs; `python cli.py ...` then uses it), "
                 "or run this file with ComfyUI's Python.")


def load_pack(name: str = PACKAGE):
    """Import the pack root as package ``name`` (idempotent) and return it."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


if __name__ == "__main__":
    use_project_venv(sys.argv[1:])
    load_pack()
    from motionguide.headless.cli import main

    sys.exit(main())
