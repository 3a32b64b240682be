"""SVD's sampling schedule: Karras sigmas, continuous timesteps, input scaling and the Euler v-prediction step.

Pure functions matching diffusers' ``EulerDiscreteScheduler`` with the SVD-XT config (v_prediction,
``timestep_type="continuous"``, ``use_karras_sigmas=True``, sigma 700 → 0.002, rho 7, spacing "leading"),
which is what the MimicMotion reference samples with (docs/architecture.md, *Reference algorithms*).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..options import SIGMA_SCHEDULES, check_choice

# NVIDIA "Align Your Steps" sigmas published for SVD (11 values); resampled log-linearly to the step count.
AYS_SVD_SIGMAS = (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002)


def karras_sigmas(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 700.0, rho: float = 7.0) -> torch.Tensor:
    """``num_steps`` Karras sigmas from ``sigma_max`` down to ``sigma_min`` plus a final 0, float32 ``[num_steps+1]``.

    ``σ_i = (σ_max^(1/ρ) + i/(n-1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ``, computed in float64 then stored as float32 the
    way diffusers does.
    """
    if num_steps < 1:
        raise ValueError(f"steps must be at least 1, got {num_steps}.")
    ramp = np.linspace(0.0, 1.0, num_steps)
    max_inv, min_inv = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho
    return torch.cat([torch.from_numpy(sigmas).float(), torch.zeros(1)])


def exponential_sigmas(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 700.0) -> torch.Tensor:
    """Log-linear sigmas from ``sigma_max`` to ``sigma_min`` plus a final 0, float32 ``[num_steps+1]``."""
    if num_steps < 1:
        raise ValueError(f"steps must be at least 1, got {num_steps}.")
    sigmas = np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), num_steps))
    return torch.cat([torch.from_numpy(sigmas).float(), torch.zeros(1)])


def align_your_steps_sigmas(num_steps: int) -> torch.Tensor:
    """The AYS SVD sigmas resampled log-linearly to ``num_steps`` values, plus a final 0."""
    if num_steps < 1:
        raise ValueError(f"steps must be at least 1, got {num_steps}.")
    base = np.log(np.asarray(AYS_SVD_SIGMAS))
    xs = np.linspace(0.0, 1.0, len(base))
    sigmas = np.exp(np.interp(np.linspace(0.0, 1.0, num_steps), xs, base))
    return torch.cat([torch.from_numpy(sigmas).float(), torch.zeros(1)])


def make_sigmas(num_steps: int, schedule: str = "karras", sigma_min: float = 0.002, sigma_max: float = 700.0) -> torch.Tensor:
    """Sigmas (with the final 0) for a named schedule; ``karras`` is the reference."""
    check_choice("sigma schedule", schedule, SIGMA_SCHEDULES)
    if schedule == "karras":
        return karras_sigmas(num_steps, sigma_min, sigma_max)
    if schedule == "exponential":
        return exponential_sigmas(num_steps, sigma_min, sigma_max)
    return align_your_steps_sigmas(num_steps)


def sigma_to_timestep(sigmas: torch.Tensor) -> torch.Tensor:
    """UNet timestep for each sigma: ``0.25·ln σ`` (SVD's continuous timesteps). Excludes the final 0."""
    return 0.25 * torch.log(sigmas[:-1])


def initial_noise_scale(sigma_max: float) -> float:
    """``sqrt(σ_max² + 1)``: what unit noise is multiplied by (diffusers' ``init_noise_sigma`` for "leading"),
    computed on a float32 σ the way diffusers does."""
    return float((torch.tensor(float(sigma_max), dtype=torch.float32) ** 2 + 1) ** 0.5)


def input_scale(sigma: float) -> float:
    """Factor the latent is multiplied by before the UNet: ``1 / sqrt(σ² + 1)``."""
    return 1.0 / math.sqrt(float(sigma) ** 2 + 1.0)


def input_divisor(sigma: float) -> torch.Tensor:
    """``sqrt(σ² + 1)`` as a float32 scalar tensor: diffusers' ``scale_model_input`` divides by it, and a 0-dim
    float32 tensor keeps a float16 sample in float16 (one rounding), as in the reference."""
    return (torch.tensor(float(sigma), dtype=torch.float32) ** 2 + 1) ** 0.5


def predicted_x0(sample: torch.Tensor, v_pred: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x0 = v·(−σ/sqrt(σ²+1)) + x/(σ²+1)`` with diffusers' dtypes: the ``v`` term in ``v_pred``'s dtype (a 0-dim
    float32 factor does not promote it), the sum in float32."""
    s = torch.tensor(float(sigma), dtype=torch.float32)
    return v_pred * (-s / (s**2 + 1) ** 0.5).to(v_pred.device) + sample.float() / (s**2 + 1).to(sample.device)


def euler_v_step(sample: torch.Tensor, v_pred: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """One Euler step from a v-prediction exactly as diffusers' ``EulerDiscreteScheduler.step`` computes it.

    ``x0 = v·(−σ/sqrt(σ²+1)) + x/(σ²+1)`` (see :func:`predicted_x0`); ``x_next = x + (x − x0)/σ · (σ_next − σ)`` in
    float32; the result is cast to ``v_pred``'s dtype (float16 latents between steps on the reference's fp16 path).
    """
    s = torch.tensor(float(sigma), dtype=torch.float32).to(sample.device)
    s_next = torch.tensor(float(sigma_next), dtype=torch.float32).to(sample.device)
    x = sample.float()
    x0 = predicted_x0(x, v_pred, sigma)
    derivative = (x - x0) / s
    return (x + derivative * (s_next - s)).to(v_pred.dtype)
