"""Session fixtures for the tiny svd models (builders: ``headless/tiny_models/svd.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from motionguide.headless.tiny_models.svd import (
    MIMICMOTION_NAME,
    SVD_FOLDER_NAME,
    build_tiny_mimicmotion,
    build_tiny_svd,
)


@pytest.fixture(scope="session")
def tiny_svd_dir(models_dir) -> Path:
    return build_tiny_svd(models_dir / "diffusers" / SVD_FOLDER_NAME)


@pytest.fixture(scope="session")
def tiny_mimicmotion_path(models_dir, tiny_svd_dir) -> Path:
    return build_tiny_mimicmotion(models_dir / "mimicmotion" / MIMICMOTION_NAME, tiny_svd_dir)


@pytest.fixture(scope="session")
def tiny_geometry_adapter_path(models_dir) -> Path:
    from motionguide.headless.tiny_models.svd import GEOMETRY_ADAPTER_NAME, build_tiny_geometry_adapter

    return build_tiny_geometry_adapter(models_dir / "motionguide_adapters" / GEOMETRY_ADAPTER_NAME)
