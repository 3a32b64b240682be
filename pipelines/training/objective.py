"""SVD's EDM training objective and MimicMotion's hand-region loss weight, as pure functions.

SVD is an EDM model with σ_data = 1 and v-prediction, sampled by diffusers' ``EulerDiscreteScheduler``
(``prediction_type="v_prediction"``), which turns the UNet output ``v`` into a clean estimate as
``x0 = v·(−σ/√(σ²+1)) + x_noisy/(σ²+1)`` (see ``mimicmotion/schedule.predicted_x0``). Training uses the same
preconditioning, so a trained model samples with the unchanged sampler:

=============  ===========================
``c_in``       ``1/√(σ²+1)``   (UNet input scale)
``c_noise``    ``¼·ln σ``      (UNet timestep)
``c_skip``     ``1/(σ²+1)``
``c_out``      ``−σ/√(σ²+1)``
``λ(σ)``       ``(σ²+1)/σ²``   (loss weight)
=============  ===========================

``D(x_noisy) = c_skip·x_noisy + c_out·v``, loss ``λ(σ)·mean(w·(D − x)²)``, ``w`` the hand-region weight map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class EDMScalings:
    """Per-sample preconditioning factors, each shaped like ``sigma``."""

    c_in: torch.Tensor
    c_noise: torch.Tensor
    c_skip: torch.Tensor
    c_out: torch.Tensor
    weight: torch.Tensor


def edm_scalings(sigma: torch.Tensor) -> EDMScalings:
    """The SVD (σ_data = 1, v-prediction) factors for ``sigma`` (any shape, float)."""
    s2 = sigma * sigma
    root = torch.sqrt(s2 + 1.0)
    return EDMScalings(c_in=1.0 / root, c_noise=0.25 * torch.log(sigma), c_skip=1.0 / (s2 + 1.0),
                       c_out=-sigma / root, weight=(s2 + 1.0) / s2)


def sample_sigmas(count: int, p_mean: float, p_std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` training sigmas, ``ln σ ~ N(p_mean, p_std²)``, float32 ``[count]`` on the CPU."""
    return torch.exp(p_mean + p_std * torch.randn(count, generator=generator, dtype=torch.float32))


def denoised(noisy: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``D = c_skip·x_noisy + c_out·v``; ``sigma`` broadcasts from the batch axis (``[B]`` against ``[B,...]``)."""
    s = edm_scalings(sigma.reshape(sigma.shape + (1,) * (noisy.ndim - sigma.ndim)))
    return s.c_skip * noisy + s.c_out * v


def edm_loss(denoised_x: torch.Tensor, clean: torch.Tensor, sigma: torch.Tensor,
             pixel_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample loss ``λ(σ)·mean(w·(D − x)²)`` ``[B]`` for ``[B,...]`` tensors; ``pixel_weight`` broadcasts
    against them (e.g. ``[B,F,1,h,w]`` for latents ``[B,F,4,h,w]``)."""
    err = (denoised_x.float() - clean.float()) ** 2
    if pixel_weight is not None:
        err = err * pixel_weight
    per_sample = err.reshape(err.shape[0], -1).mean(dim=1)
    return edm_scalings(sigma.float()).weight * per_sample


# --------------------------------------------------------------------------------------------------------------
# Hand-region weight (MimicMotion): 1 + w inside boxes around confident hand keypoints


def hand_box(points: np.ndarray, box_size: float, threshold: float, min_points: int = 3):
    """``(x0, y0, x1, y1)`` in pixels around one hand's keypoints ``[21,3]`` (x, y, confidence), or ``None`` when
    fewer than ``min_points`` have confidence above ``threshold``.

    The box is the bounding box of the confident points, grown about its centre to at least ``box_size`` on each
    side (a hand seen edge-on still gets a hand-sized box)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    good = points[(points[:, 2] > threshold) & np.isfinite(points[:, :2]).all(axis=1)]
    if len(good) < min_points:
        return None
    lo, hi = good[:, :2].min(axis=0), good[:, :2].max(axis=0)
    centre = (lo + hi) / 2.0
    half = np.maximum((hi - lo) / 2.0, box_size / 2.0)
    return (float(centre[0] - half[0]), float(centre[1] - half[1]), float(centre[0] + half[0]),
            float(centre[1] + half[1]))


def hand_weight_map(hands: np.ndarray, height: int, width: int, *, weight: float, box_size: float,
                    threshold: float, downsample: int = 1, min_points: int = 3) -> torch.Tensor:
    """Loss weight per cell ``[F, height//downsample, width//downsample]`` float32: 1 everywhere, ``1 + weight``
    in every cell that overlaps a hand box.

    Args:
        hands (`np.ndarray` ``[F,H,21,3]``): per frame, ``H`` hands (left, right) of pixel keypoints + confidence
            (confidence 0 for a missing hand).
        height / width (`int`): the image size in pixels.
        weight (`float`): ``w``; 0 switches the hand weighting off.
        box_size (`float`): the smallest box side in pixels (see :func:`hand_box`).
        threshold (`float`): keypoint confidence above which a keypoint counts.
        downsample (`int`, defaults to 1): cell size in pixels (8 for SVD's latents). A cell ``[j·d, (j+1)·d)``
            is weighted when it overlaps the box ``[x0, x1)`` (same for rows).
    """
    hands = np.asarray(hands, dtype=np.float64)
    rows, cols = height // downsample, width // downsample
    out = torch.ones((hands.shape[0], rows, cols), dtype=torch.float32)
    if weight == 0:
        return out
    for f in range(hands.shape[0]):
        for hand in hands[f]:
            box = hand_box(hand, box_size, threshold, min_points)
            if box is None:
                continue
            x0, y0, x1, y1 = (v / downsample for v in box)
            c0, c1 = max(int(math.floor(x0)), 0), min(int(math.ceil(x1)), cols)
            r0, r1 = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)), rows)
            if c0 < c1 and r0 < r1:
                out[f, r0:r1, c0:c1] = 1.0 + weight
    return out
