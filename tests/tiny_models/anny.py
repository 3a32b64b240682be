"""The real built-in Anny body for tests, loaded once per session (its cache: ``$ANNY_CACHE_DIR``).

Not tiny, but small enough (3 s to load from the compact cache, ~440 MB). Tests using it are skipped when the
``anny`` package is not installed; CI installs it and builds the cache first (``scripts/setup_env.sh``).
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anny_body():
    """The default :class:`AnnyBody` (cache from ``$ANNY_CACHE_DIR``, else ``~/.cache/anny``)."""
    from motionguide.pipelines.smpl.body.anny_cache import anny_status, load_anny_body

    usable, reason = anny_status()
    if not usable:
        pytest.skip(f"built-in body unavailable: {reason}")
    return load_anny_body()
