"""Shared test setup: the pack imported as ``motionguide``, a session models directory, fixture plugins."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
os.environ.setdefault("MOTIONGUIDE_NO_COMFY", "1")  # tests never talk to a ComfyUI that happens to be importable
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(ROOT))

import cli  # noqa: E402

cli.load_pack()
# pytest collects the pack root (it has an __init__.py, for ComfyUI) as a package named after its folder; point that
# name at the pack already loaded, so it is not imported a second time under another name.
sys.modules.setdefault(ROOT.name, sys.modules[cli.PACKAGE])

# Every tests/tiny_models/<area>.py is a fixture plugin, so each area adds its fixtures without touching this file.
pytest_plugins = sorted(
    f"tiny_models.{p.stem}" for p in (TESTS / "tiny_models").glob("*.py") if not p.stem.startswith("_")
)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """One models directory for the session, laid out like ComfyUI's ``models/``; area fixtures fill it."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture()
def use_models_dir(models_dir):
    """Point the pack's model lookup at the session models directory for one test."""
    from motionguide.nodes import comfy_adapter

    comfy_adapter.set_models_dir(models_dir)
    yield models_dir
    comfy_adapter.set_models_dir(None)


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none is present")
    for item in items:
        if "gpu" in item.keywords and not has_cuda():
            item.add_marker(skip_gpu)
