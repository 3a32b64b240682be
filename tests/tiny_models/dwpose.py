"""Session fixtures for the tiny dwpose models (builders: ``headless/tiny_models/dwpose.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from motionguide.headless.tiny_models.dwpose import build_tiny_dwpose


@pytest.fixture(scope="session")
def tiny_dwpose_dir(models_dir) -> Path:
    return build_tiny_dwpose(models_dir / "dwpose")
