"""DisPose's keypoint correspondence: the reference image's DIFT feature at each of its keypoints, scattered to that
keypoint's position in every frame and turned into one residual per ControlNet down block by the point adapter.

Behaviour kept from DisPose's inference path (its weights were trained and run with it):

* the reference feature map is resized (bilinear, no corner alignment) to ``(W, H)`` rows × columns, i.e. with
  width and height swapped, and then read at row ``int(y_n·W)``, column ``int(x_n·H)`` (``x_n, y_n`` the keypoint's
  position in 0..1), so the lookup lands at the right place of a transposed-aspect resize;
* features are scattered at 1/16 of the frame (the first down block's scale); keypoints landing on one cell are
  averaged; the MLP of each level runs on that one map, is masked, resized to its level (bilinear) and masked again
  (nearest);
* a keypoint whose reference feature is missing (the reference did not see it) still adds its zero feature in frames
  where it is seen.
"""
from __future__ import annotations

import torch
from torch import nn

from .motion import SCORE_THRESHOLD


class PointMLP(nn.Module):
    """``Linear → SiLU → Linear``, keys ``mlp.0`` / ``mlp.2`` as in ``DisPose.pth``."""

    def __init__(self, in_dim: int, out_dim: int, mid_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, mid_dim), nn.SiLU(), nn.Linear(mid_dim, out_dim))

    def forward(self, x):
        return self.mlp(x)


class PointAdapter(nn.Module):
    """Per-level MLPs from the DIFT width to each down block's width.

    Args:
        embedding_channels (`int`): DIFT feature width (1280 for SD-1.5's second up block).
        channels (`tuple[int]`): the ControlNet's down-block widths (``block_out_channels``).
        rates (`tuple[int]`): pixel downsampling of each down block's output (16, 32, 64, 64 for SVD at /8 latents).
        mid_dim (`int`): hidden width (128 in DisPose.pth).
    """

    def __init__(self, embedding_channels: int, channels: tuple[int, ...], rates: tuple[int, ...], mid_dim: int = 128):
        super().__init__()
        self.model_list = nn.ModuleList(PointMLP(embedding_channels, c, mid_dim) for c in channels)
        self.rates = tuple(rates)
        self.embedding_channels = embedding_channels

    def scatter(self, keypoints: torch.Tensor, features: torch.Tensor, width: int, height: int):
        """Features at each frame's keypoints on the 1/``rates[0]`` grid.

        Args:
            keypoints (`torch.Tensor` ``[F,18,3]``): pixels and scores of the frames.
            features (`torch.Tensor` ``[18,C]``): the reference's feature per keypoint.

        Returns:
            state ``[F,C,h,w]`` (averaged where keypoints collide) and mask ``[F,h,w]``.
        """
        rate = self.rates[0]
        level_w, level_h = width // rate, height // rate
        frames = keypoints.shape[0]
        state = torch.zeros(frames, self.embedding_channels, level_h, level_w, dtype=features.dtype)
        mask = torch.zeros(frames, level_h, level_w, dtype=features.dtype)
        count = torch.ones(frames, level_h, level_w, dtype=features.dtype)
        kp = keypoints.double().cpu()
        for f in range(frames):
            for k in range(18):
                x, y, score = kp[f, k].tolist()
                if score <= SCORE_THRESHOLD or min(x, y) < 0:
                    continue
                px = max(min(int(x / width * level_w), level_w - 1), 0)
                py = max(min(int(y / height * level_h), level_h - 1), 0)
                if mask[f, py, px] != 0:
                    count[f, py, px] += 1
                state[f, :, py, px] += features[k].cpu()
                mask[f, py, px] = 1.0
        return state / count.unsqueeze(1), mask

    def forward(self, state: torch.Tensor, mask: torch.Tensor, width: int, height: int) -> list[torch.Tensor]:
        """One residual per level ``[F,C_l,H/r_l,W/r_l]`` from :meth:`scatter`'s output."""
        hidden = state.permute(0, 2, 3, 1)  # [F,h,w,C]
        out = []
        for rate, module in zip(self.rates, self.model_list):
            size = (height // rate, width // rate)
            feat = (module(hidden) * mask.unsqueeze(-1)).permute(0, 3, 1, 2)
            feat = nn.functional.interpolate(feat, size=size, mode="bilinear")
            level_mask = nn.functional.interpolate(mask.unsqueeze(1), size=size, mode="nearest")
            out.append(feat * level_mask)
        return out


def reference_point_features(feature_map: torch.Tensor, keypoints: torch.Tensor, width: int,
                             height: int) -> torch.Tensor:
    """The reference's DIFT feature at each of its keypoints, ``[18,C]`` (zeros where the keypoint is missing).

    Args:
        feature_map (`torch.Tensor` ``[1,C,h,w]``): DIFT features of the reference.
        keypoints (`torch.Tensor` ``[18,3]``): the reference keypoints in pixels of a ``width``×``height`` image.
    """
    # DisPose resizes to (W, H) rows × columns: the transposed aspect, then indexes with the same swap
    resized = nn.functional.interpolate(feature_map, size=(width, height), mode="bilinear")  # in its own dtype
    out = torch.zeros(18, feature_map.shape[1])
    kp = keypoints.double().cpu()
    for k in range(18):
        x, y, score = kp[k].tolist()
        if score <= SCORE_THRESHOLD:
            continue
        col = max(min(int(x / width * height), height - 1), 0)
        row = max(min(int(y / height * width), width - 1), 0)
        out[k] = resized[0, :, row, col].float().cpu()
    return out
