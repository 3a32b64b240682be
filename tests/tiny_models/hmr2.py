"""Session fixtures for the tiny hmr2 models (builders: ``headless/tiny_models/hmr2.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from motionguide.headless.tiny_models.hmr2 import TINY_FILE, build_tiny_hmr2


@pytest.fixture(scope="session")
def hmr2_tiny_checkpoint(models_dir) -> Path:
    """``models_dir/hmr2/hmr2_tiny.ckpt``, built once per session."""
    return build_tiny_hmr2(Path(models_dir) / "hmr2" / TINY_FILE)
