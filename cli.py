#!/usr/bin/env python3
"""MotionGuide command line: ``python cli.py {run,demo,doctor,batch} ...`` (``--help`` for each).

ComfyUI imports the pack folder as a package under its path; here it is loaded as ``motionguide`` so the
pack's relative imports work the same way without ComfyUI.
"""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = "motionguide"


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
    load_pack()
    from motionguide.headless.cli import main

    sys.exit(main())
