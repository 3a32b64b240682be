"""Smoothing along time (axis 0), shared by the 2D pose and SMPL stages."""
from __future__ import annotations

import numpy as np


def savgol(values: np.ndarray, window: int, order: int = 2) -> np.ndarray:
    """Savitzky–Golay along axis 0; the window shrinks (odd, > order) for short sequences, and a sequence too short
    for any window comes back unchanged (a copy)."""
    from scipy.signal import savgol_filter

    frames = values.shape[0]
    window = min(int(window), frames if frames % 2 else frames - 1)
    if window <= order or window < 3:
        return np.array(values, copy=True)
    return savgol_filter(values, window, order, axis=0, mode="interp")


def one_euro(values: np.ndarray, rate: float, min_cutoff: float = 1.0, beta: float = 0.05,
             d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) along axis 0 of values sampled at ``rate`` Hz: the cutoff rises with
    speed, so slow parts are smoothed hard and fast moves lag little. ``min_cutoff`` in Hz, ``beta`` per unit speed."""
    def alpha(cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * rate)

    out = np.empty_like(values, dtype=np.float64)
    out[0] = values[0]
    deriv = np.zeros_like(out[0])
    a_d = alpha(d_cutoff)
    for t in range(1, values.shape[0]):
        raw_deriv = (values[t] - out[t - 1]) * rate
        deriv = a_d * raw_deriv + (1 - a_d) * deriv
        a = alpha(min_cutoff + beta * np.abs(deriv))
        out[t] = a * values[t] + (1 - a) * out[t - 1]
    return out
