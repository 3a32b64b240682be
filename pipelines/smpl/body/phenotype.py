"""The built-in Anny body's shape: six phenotype values in 0..1, named and checked in one place."""
from __future__ import annotations

import numpy as np

PHENOTYPE_LABELS = ("gender", "age", "muscle", "weight", "height", "proportions")


def check_phenotype(values, name: str = "phenotype") -> np.ndarray:
    """(6,) float32 Anny phenotype in 0..1 (a dict by label, or per-frame copies, are accepted).

    Raises:
        `ValueError` naming the values outside 0..1 or the wrong shape.
    """
    if isinstance(values, dict):
        unknown = set(values) - set(PHENOTYPE_LABELS)
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}; use {list(PHENOTYPE_LABELS)}.")
        missing = [k for k in PHENOTYPE_LABELS if k not in values]
        if missing:
            raise ValueError(f"{name}: missing {missing}.")
        values = [values[k] for k in PHENOTYPE_LABELS]
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] >= 1:
        arr = arr[0]
    if arr.shape != (len(PHENOTYPE_LABELS),):
        raise ValueError(f"{name} must hold {len(PHENOTYPE_LABELS)} values {list(PHENOTYPE_LABELS)}, "
                         f"got shape {arr.shape}.")
    bad = [f"{k}={float(v):g}" for k, v in zip(PHENOTYPE_LABELS, arr) if not 0.0 <= float(v) <= 1.0]
    if bad:
        raise ValueError(f"{name} values must lie in 0..1; got {', '.join(bad)}. Set them between 0 and 1.")
    return arr
