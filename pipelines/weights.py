"""Reading pickled weight files without executing code."""
from __future__ import annotations

import os

import torch


def load_pickle_weights_only(path: str | os.PathLike):
    """``torch.load(weights_only=True)`` on the CPU, memory-mapped when the file allows it (zip format), so a
    multi-GB checkpoint is not read into memory twice. Extra allowed globals come from the caller's
    ``torch.serialization.safe_globals`` context."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:  # legacy (non-zip) pickles cannot be memory-mapped
        if "mmap" not in str(exc):
            raise
        return torch.load(str(path), map_location="cpu", weights_only=True)
