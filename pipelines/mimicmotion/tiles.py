"""Progressive latent fusion: which frames each tile covers and how much each tile's prediction counts.

Pure functions (docs/architecture.md, *Reference algorithms*). A video of ``N`` frames (frame 0 is the reference-pose
frame) is denoised in tiles
of ``T`` frames that overlap by ``O``; frame 0 sits at position 0 of every tile, so every tile sees the
reference. Each step, the v-predictions of all tiles are averaged per frame with the tile's position weights.
"""
from __future__ import annotations

import numpy as np
import torch

from ..options import FUSION_WEIGHT_SHAPES as WEIGHT_SHAPES
from ..options import check_choice


def plan_tiles(num_frames: int, tile_size: int, overlap: int) -> list[list[int]]:
    """Frame indices of every tile, exactly as the MimicMotion reference plans them.

    For ``s`` in ``range(0, N - T + 1, T - O)`` a tile is ``[0] + [s+1 … min(s+T, N) - 1]``; when the last one
    ends before frame ``N - 1`` a tail tile ``[0] + [N-T+1 … N-1]`` is appended. When ``N < T`` (the reference
    crashes there) the tile shrinks to one tile of all ``N`` frames.

    Args:
        num_frames (`int`): frames in the video including frame 0 (the reference-pose frame).
        tile_size (`int`): frames per tile (16 for MimicMotion 1.0, 72 for 1.1).
        overlap (`int`): frames shared by neighbouring tiles, counting frame 0; ``1 <= overlap < tile_size``.

    Example: ``plan_tiles(40, 16, 6)`` → ``[0,1..15], [0,11..25], [0,21..35], [0,25..39]``.
    """
    if num_frames < 1:
        raise ValueError(f"The video needs at least 1 frame, got {num_frames}.")
    if tile_size < 2:
        raise ValueError(f"tile_size must be at least 2 (frame 0 plus one video frame), got {tile_size}.")
    if not 1 <= overlap < tile_size:
        # overlap 0 would leave frame s+T of every tile uncovered: frame 0 takes one slot of each tile.
        raise ValueError(f"overlap must be between 1 and tile_size - 1 = {tile_size - 1}, got {overlap}.")
    if num_frames <= tile_size:
        return [list(range(num_frames))]
    stride = tile_size - overlap
    tiles = [[0] + list(range(s + 1, min(s + tile_size, num_frames))) for s in range(0, num_frames - tile_size + 1, stride)]
    if tiles[-1][-1] < num_frames - 1:
        tiles.append([0] + list(range(num_frames - tile_size + 1, num_frames)))
    return tiles


def tile_weights(tile_size: int, shape: str = "triangle") -> np.ndarray:
    """Weight of each position ``k`` of a tile, float64 ``[T]``.

    ``triangle`` (reference): ``w_k = min((2k+1)/T, 2 - (2k+1)/T)``, a symmetric triangle, so frames near a tile's
    edge count little and seams fade. ``flat``: every position weighs 1 (a plain average).
    """
    check_choice("Fusion weight shape", shape, WEIGHT_SHAPES)
    if shape == "flat":
        return np.ones(tile_size, dtype=np.float64)
    ramp = (2.0 * np.arange(tile_size) + 1.0) / tile_size
    return np.minimum(ramp, 2.0 - ramp)


def tile_weights_tensor(tile_size: int, shape: str = "triangle", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:func:`tile_weights` computed in ``dtype`` with the reference's operations (``(k + 0.5)·2/T``, then
    ``min(w, 2 − w)``, each rounded to ``dtype``), so the fp16 weights are the reference's fp16 weights."""
    check_choice("Fusion weight shape", shape, WEIGHT_SHAPES)
    if shape == "flat":
        return torch.ones(tile_size, dtype=dtype)
    ramp = (torch.arange(tile_size, dtype=dtype) + 0.5) * 2.0 / tile_size
    return torch.minimum(ramp, 2 - ramp)


def fusion_shares(num_frames: int, tiles: list[list[int]], shape: str = "triangle") -> np.ndarray:
    """Normalised share of each tile in each frame's fused prediction, float64 ``[len(tiles), N]``.

    Column ``f`` sums to 1 for every frame covered by a tile; the sampler applies the same sums step by step.
    """
    shares = np.zeros((len(tiles), num_frames), dtype=np.float64)
    for i, tile in enumerate(tiles):
        shares[i, tile] += tile_weights(len(tile), shape)
    total = shares.sum(axis=0)
    if np.any(total == 0):
        missing = np.flatnonzero(total == 0)[:5].tolist()
        raise ValueError(f"Frames {missing} are in no tile; the tile plan does not cover the video.")
    return shares / total
