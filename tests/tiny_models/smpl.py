"""Session fixtures for the tiny smpl models (builders: ``headless/tiny_models/smpl.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest
from motionguide.headless.tiny_models.smpl import build_synthetic_smpl, build_synthetic_smplx


@pytest.fixture(scope="session")
def smpl_model_dir(models_dir) -> Path:
    """``models_dir/smpl/`` holding the synthetic SMPL model files."""
    return build_synthetic_smpl(models_dir / "smpl")


@pytest.fixture(scope="session")
def smplx_model_path(smpl_model_dir) -> Path:
    """``models_dir/smpl/smplx/SMPLX_NEUTRAL.npz``: the synthetic model in SMPL-X layout."""
    return build_synthetic_smplx(smpl_model_dir)
