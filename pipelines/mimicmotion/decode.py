"""Temporal VAE decode of SVD latents in chunks, frames leaving the device as soon as they are decoded."""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)


def plan_decode_chunks(num_frames: int, chunk_size: int, overlap: int = 0) -> list[tuple[int, int]]:
    """``(start, end)`` of each decode chunk. ``overlap`` frames are decoded twice and cross-faded.

    With ``overlap=0`` this is the reference's consecutive chunks of ``chunk_size`` (the last one shorter).
    """
    if chunk_size < 1:
        raise ValueError(f"decode chunk size must be at least 1, got {chunk_size}.")
    if not 0 <= overlap < chunk_size:
        raise ValueError(f"decode overlap must be between 0 and chunk size - 1 = {chunk_size - 1}, got {overlap}.")
    chunks, start = [], 0
    while True:
        end = min(start + chunk_size, num_frames)
        chunks.append((start, end))
        if end >= num_frames:
            return chunks
        start = end - overlap


def chunk_blend_weights(length: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    """Per-frame weights of one chunk: linear ramps over the overlapped frames, 1 elsewhere."""
    w = torch.ones(length, dtype=torch.float32)
    if overlap > 0:
        ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
        n = min(overlap, length)
        if not first:
            w[:n] = ramp[:n]
        if not last:
            w[length - n:] = torch.minimum(w[length - n:], ramp.flip(0)[overlap - n:])
    return w


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor, *, device, dtype, chunk_size: int = 8, overlap: int = 0,
                   callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Raw-space SVD latents ``[F,4,h,w]`` → frames ``[F,H,W,3]`` float32 0..1 on the CPU, with a diffusers VAE.

    Args:
        vae (`AutoencoderKLTemporalDecoder`): already on ``device``.
        latents (`torch.Tensor`): ``[F,4,h,w]`` in raw VAE space (diffusers latents / scaling factor).
        chunk_size (`int`, *optional*, defaults to 8): frames per temporal decode (reference 8); lower saves memory.
        overlap (`int`, *optional*, defaults to 0): frames shared by neighbouring chunks, blended linearly so chunk
            seams don't show (0 = reference).
        callback (`Callable[[int, int], None]`, *optional*): ``(chunks done, chunks)`` after each chunk, and again
            (same count) before each decoder block inside a chunk; may raise to cancel. A chunk of 8 frames at
            576×1024 takes minutes on a CPU, so Cancel is answered between blocks, not only between chunks.
    """

    def decode(z: torch.Tensor) -> torch.Tensor:
        pixels = vae.decode(z.to(device=device, dtype=dtype), num_frames=z.shape[0]).sample  # [n,3,H,W] in [-1,1]
        return (pixels.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu()

    if callback is None:
        return decode_in_chunks(decode, latents, chunk_size=chunk_size, overlap=overlap)
    state = [0, len(plan_decode_chunks(latents.shape[0], chunk_size, overlap))]  # chunks done, chunks

    def after_chunk(done: int, total: int) -> None:
        state[:] = [done, total]
        callback(done, total)

    decoder = getattr(vae, "decoder", None)
    blocks = [getattr(decoder, "mid_block", None), *getattr(decoder, "up_blocks", [])]
    handles = [b.register_forward_pre_hook(lambda *_: callback(*state)) for b in blocks
               if isinstance(b, torch.nn.Module)]
    try:
        return decode_in_chunks(decode, latents, chunk_size=chunk_size, overlap=overlap, callback=after_chunk)
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def decode_in_chunks(decode: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor, *, chunk_size: int = 8,
                     overlap: int = 0, callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run ``decode(z) -> [n,H,W,3]`` (0..1, CPU) on consecutive chunks of ``latents`` ``[F,4,h,w]`` and cross-fade
    the ``overlap`` frames neighbouring chunks share. Frames leave the device chunk by chunk."""
    num_frames = latents.shape[0]
    chunks = plan_decode_chunks(num_frames, chunk_size, overlap)
    out: torch.Tensor | None = None
    weight_sum = torch.zeros(num_frames, dtype=torch.float32)
    for i, (start, end) in enumerate(chunks):
        frames = decode(latents[start:end]).float().cpu()
        if frames.ndim != 4 or frames.shape[0] != end - start or frames.shape[-1] != 3:
            raise ValueError(f"The VAE returned {list(frames.shape)} for {end - start} latent frames; expected "
                             f"[{end - start}, H, W, 3]. Is it SVD's VAE?")
        if out is None:
            out = torch.zeros((num_frames, *frames.shape[1:]), dtype=torch.float32)
        w = chunk_blend_weights(end - start, overlap, first=i == 0, last=i == len(chunks) - 1)
        out[start:end] += frames * w.view(-1, 1, 1, 1)
        weight_sum[start:end] += w
        if callback is not None:
            callback(i + 1, len(chunks))
    return out / weight_sum.view(-1, 1, 1, 1)
