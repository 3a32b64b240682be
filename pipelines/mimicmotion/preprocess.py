"""Image preprocessing of the MimicMotion reference (docs/architecture.md, *Reference algorithms*): size rule, cover
resize, the uint8 round trip,
and CLIP's input (squash to the encoder size with SVD's antialiasing resize, then CLIP mean/std)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ASPECT_RATIO = 9 / 16


def reference_size(width: int, height: int, resolution: int = 576) -> tuple[int, int]:
    """Target ``(width, height)``: portrait → ``(res, floor(res/(9/16)/64)·64)``; landscape and square → swapped."""
    if resolution < 64:
        raise ValueError(f"resolution must be at least 64, got {resolution}.")
    long_side = int(resolution / ASPECT_RATIO // 64) * 64
    if height > width:
        return resolution, long_side
    return long_side, resolution


def cover_resize_crop(image_u8: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize ``[B,3,H,W]`` uint8 to cover ``width×height`` (bilinear, no antialias, ceil) then centre-crop.

    Matches torchvision's ``resize(antialias=None)`` + ``center_crop`` on uint8 tensors as the reference uses them.
    """
    h, w = image_u8.shape[-2:]
    ratio = h / w
    if ratio < height / width:
        new_h, new_w = height, math.ceil(height / ratio)
    else:
        new_h, new_w = math.ceil(width * ratio), width
    resized = F.interpolate(image_u8.float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False)
    resized = resized.round().clamp(0, 255).to(torch.uint8)
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    return resized[..., top:top + height, left:left + width]


def uint8_round_trip(image_u8: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The reference's uint8 → [-1,1] → uint8 trip before CLIP and VAE, in ``dtype`` (the precision the model runs in;
    the reference does it in its default dtype). Truncation lowers some values by 1: 20 of 256 in fp16 (1–8, 18–21,
    36–43), 1–63 in fp32."""
    x = image_u8.to(dtype) / 127.5 - 1.0
    return ((x + 1.0) * 127.5).to(torch.uint8)


def to_unit_range(image_u8: torch.Tensor) -> torch.Tensor:
    """uint8 → float32 in [-1, 1], as diffusers' image processor does (``x/255·2 − 1``)."""
    return image_u8.float() / 255.0 * 2.0 - 1.0


def _gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    if size % 2 == 0:
        x = x + 0.5
    kernel = torch.exp(-x.pow(2.0) / (2 * sigma**2))
    return kernel / kernel.sum()


def _blur_axis(image: torch.Tensor, kernel: torch.Tensor, axis: int) -> torch.Tensor:
    size = kernel.numel()
    front = (size - 1) // 2
    rear = size - 1 - front
    channels = image.shape[1]
    if axis == 3:  # along width
        padded = F.pad(image, (front, rear, 0, 0), mode="reflect")
        weight = kernel.view(1, 1, 1, size)
    else:
        padded = F.pad(image, (0, 0, front, rear), mode="reflect")
        weight = kernel.view(1, 1, size, 1)
    return F.conv2d(padded, weight.expand(channels, 1, *weight.shape[-2:]).to(image.dtype), groups=channels)


def antialias_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """SVD's CLIP resize: Gaussian blur (σ = max((scale−1)/2, 0.001) per axis, odd kernel ≥ 3) then bicubic
    with ``align_corners=True``. ``image`` is float ``[B,C,H,W]``; ``size`` is ``(height, width)``."""
    h, w = image.shape[-2:]
    factors = (h / size[0], w / size[1])
    sigmas = (max((factors[0] - 1.0) / 2.0, 0.001), max((factors[1] - 1.0) / 2.0, 0.001))
    ks = [int(max(2.0 * 2 * s, 3)) for s in sigmas]
    ks = [k + 1 if k % 2 == 0 else k for k in ks]
    blurred = _blur_axis(image, _gaussian_kernel(ks[1], sigmas[1]), axis=3)
    blurred = _blur_axis(blurred, _gaussian_kernel(ks[0], sigmas[0]), axis=2)
    return F.interpolate(blurred, size=size, mode="bicubic", align_corners=True)


def clip_input(image_u8: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """uint8 ``[1,3,H,W]`` → CLIP pixel values ``[1,3,size,size]`` float32 (squashed, not cropped; fp32 on CPU)."""
    x = to_unit_range(image_u8.cpu())
    x = antialias_resize(x, (size, size))
    x = (x + 1.0) / 2.0
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def image_to_uint8(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE ``[B,H,W,3]`` float 0..1 → ``[B,3,H,W]`` uint8 (exact for images loaded from 8-bit files)."""
    return (image.detach().cpu().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 3, 1, 2).contiguous()


def uint8_to_image(image_u8: torch.Tensor) -> torch.Tensor:
    """``[B,3,H,W]`` uint8 → ComfyUI IMAGE ``[B,H,W,3]`` float32 0..1."""
    return image_u8.permute(0, 2, 3, 1).float() / 255.0
