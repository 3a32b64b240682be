"""Session fixtures for DisPose's tiny files (builders: ``headless/tiny_models/dispose.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from motionguide.headless.tiny_models.dispose import (
    CMP_NAME,
    DISPOSE_NAME,
    SD_FOLDER_NAME,
    build_tiny_cmp,
    build_tiny_dispose,
    build_tiny_sd,
)


@pytest.fixture(scope="session")
def tiny_dispose_path(models_dir, tiny_svd_dir) -> Path:
    return build_tiny_dispose(models_dir / "dispose" / DISPOSE_NAME, tiny_svd_dir)


@pytest.fixture(scope="session")
def tiny_cmp_path(models_dir) -> Path:
    return build_tiny_cmp(models_dir / "cmp" / CMP_NAME)


@pytest.fixture(scope="session")
def tiny_sd_dir(models_dir) -> Path:
    return build_tiny_sd(models_dir / "diffusers" / SD_FOLDER_NAME)
