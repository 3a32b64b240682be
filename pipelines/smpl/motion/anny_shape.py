"""Set Body Shape (docs/architecture.md, *Reference algorithms*): the Anny phenotype of a sequence, from sliders or
fitted to its 2D keypoints.

The fit estimates what joints can tell (age, height, proportions) by gradient descent through the Anny body and
its COCO keypoint regressor, started from the best points of a coarse grid (mode ``fit``; ``fit_from_sliders``
descends from the sliders): the sequence's estimated pose is kept, each frame's translation may slide sideways
(x, y) while its depth stays as estimated, and the projected OpenPose-18 points are pulled onto the stored
2D keypoints (``seq["keypoints"]``, weighted by their scores). Gender, muscle and weight are not identifiable
from joints: they come from the sliders. With the depth unknown the image gives proportions, not absolute size.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ...options import BODY_SHAPE_MODES, check_choice
from ..body.phenotype import PHENOTYPE_LABELS, check_phenotype
from .sequence import validate_sequence

logger = logging.getLogger(__name__)

MODES = BODY_SHAPE_MODES
FIT_LABELS = ("age", "height", "proportions")
MIN_SCORE = 0.3
MIN_POINTS = 6


def _fit_frames(seq: dict, count: int) -> np.ndarray:
    kp = seq.get("keypoints")
    if kp is None:
        raise ValueError("The sequence has no 2D keypoints to fit the body shape to: use the output of Estimate "
                         "SMPL (it stores the keypoints it used) or choose mode 'sliders'.")
    good = np.flatnonzero(seq["valid"] & ((kp[:, :, 2] > MIN_SCORE).sum(1) >= MIN_POINTS))
    if len(good) == 0:
        raise ValueError(f"No frame has {MIN_POINTS}+ body keypoints with a score above {MIN_SCORE}: the shape "
                         "cannot be fitted; choose mode 'sliders'.")
    return good[np.unique(np.linspace(0, len(good) - 1, min(count, len(good))).round().astype(int))]


# The fit's first stage: a coarse grid over age × height × proportions, scored without gradients. The error
# surface has wrong local minima (e.g. a child read as a short old adult), so descent alone from the default body
# can end far from the truth; starting from the best few grid points finds the right basin.
GRID = {"age": np.linspace(0.05, 0.95, 7), "height": (0.2, 0.5, 0.8), "proportions": (0.25, 0.75)}


def _grid(start: np.ndarray, fit_idx: list[int]) -> np.ndarray:
    mesh = np.stack(np.meshgrid(*(GRID[name] for name in FIT_LABELS), indexing="ij"), -1).reshape(-1, 3)
    return np.concatenate([start[fit_idx][None], mesh]).astype(np.float32)  # the start is a candidate too


# ComfyUI runs nodes under torch.inference_mode(), where no graph is recorded even with enable_grad(): the fits
# leave it for their own work (the body's buffers are normal tensors, see anny_cache.load_anny_body).
@torch.inference_mode(False)
def fit_phenotype(body, seq: dict, start=None, *, frames: int = 8, iterations: int = 100, prior: float = 0.0,
                  starts: int = 2, device="cpu", callback=None) -> tuple[np.ndarray, dict]:
    """Fit ``age``, ``height`` and ``proportions`` of the Anny phenotype to the sequence's 2D keypoints.

    A coarse grid (:data:`GRID`, plus ``start``) is scored first; the best ``starts`` points each take a fifth
    of the ``iterations`` Adam steps, and the one with the lowest loss continues for the rest.

    Args:
        body (`AnnyBody`): the built-in body.
        seq (`dict`): SMPL_SEQUENCE with ``keypoints`` `(T,18,3)` (pixels, score).
        start (`array (6,)`, *optional*): starting phenotype (the body's default when None); gender, muscle and
            weight are kept from it.
        frames (`int`, defaults to 8): frames used (evenly spread over the usable ones).
        iterations (`int`, defaults to 100): Adam steps in all.
        prior (`float`, defaults to 0): weight pulling the fitted values back to ``start`` (0 = free fit).
        starts (`int`, defaults to 2): grid points refined (1 with no grid search: descent from ``start``).
        callback (`callable`, *optional*): ``callback(done, total)``.

    Returns:
        `(phenotype (6,) float32, info)` with ``info["error_px"]`` the final mean keypoint error in pixels,
        ``info["frames"]`` the frames used and ``info["starts"]`` the phenotypes the refinement started from.
    """
    seq = validate_sequence(seq)
    start = check_phenotype(body.phenotype if start is None else start, "start phenotype")
    if starts < 1:
        raise ValueError(f"starts must be 1 or more, got {starts}.")
    chosen = _fit_frames(seq, frames)
    device = torch.device(device)

    def tensor(x):
        return torch.as_tensor(np.asarray(x, np.float32), device=device)

    orient, pose = tensor(seq["global_orient"][chosen]), tensor(seq["body_pose"][chosen])
    transl0 = tensor(seq["transl"][chosen])
    k = tensor(seq["K"][chosen])
    target = tensor(seq["keypoints"][chosen])
    weight = torch.where(target[..., 2] > MIN_SCORE, target[..., 2], torch.zeros_like(target[..., 2]))
    size = (target[..., 1].amax(1) - target[..., 1].amin(1)).clamp_min(10.0)  # person height in pixels
    fit_idx = [PHENOTYPE_LABELS.index(name) for name in FIT_LABELS]
    start_t = tensor(start)
    index = torch.tensor(fit_idx, device=device)
    zeros = torch.zeros(len(chosen), 1, device=device)

    def loss_of(values, shift):
        """(loss, mean error in px) of the fitted ``values`` `(3,)` with sideways ``shift`` `(F,2)`."""
        points = body.openpose_keypoints(orient, pose, transl0 + torch.cat([shift, zeros], 1),
                                         phenotype=start_t.index_put((index,), values)[None])
        z = points[..., 2].clamp_min(1e-3)
        uv = torch.stack([k[:, None, 0, 0] * points[..., 0] / z + k[:, None, 0, 2],
                          k[:, None, 1, 1] * points[..., 1] / z + k[:, None, 1, 2]], -1)
        dist = (uv - target[..., :2]).norm(dim=-1)
        loss = ((weight * (dist / size[:, None]) ** 2).sum(1) / weight.sum(1).clamp_min(1e-6)).mean()
        if prior > 0:
            loss = loss + prior * ((values - start_t[fit_idx]) ** 2).sum()
        return loss, float((weight * dist.detach()).sum() / weight.sum().clamp_min(1e-6))

    candidates = _grid(start, fit_idx) if starts > 1 else start[fit_idx][None].astype(np.float32)
    if len(candidates) > 1:
        with torch.no_grad():
            scores = [float(loss_of(tensor(c), zeros.expand(-1, 2))[0]) for c in candidates]
        candidates = candidates[np.argsort(scores)[:starts]]
    trial = min(iterations // len(candidates), max(1, iterations // 5)) if len(candidates) > 1 else 0
    total, done = max(iterations, trial * len(candidates)), 0

    def descend(state, steps):
        nonlocal done
        logits, shift, optimiser = state
        loss, error = None, float("nan")
        with torch.enable_grad():
            for _ in range(steps):
                optimiser.zero_grad()
                loss, error = loss_of(torch.sigmoid(logits), shift)
                loss.backward()
                optimiser.step()
                done += 1
                if callback is not None:
                    callback(done, total)
        return float("inf") if loss is None else float(loss.detach()), error

    def new_state(values):
        logits = torch.logit(tensor(values).clamp(0.02, 0.98)).requires_grad_(True)
        shift = torch.zeros(len(chosen), 2, device=device, requires_grad=True)
        return logits, shift, torch.optim.Adam([{"params": [logits], "lr": 0.05}, {"params": [shift], "lr": 0.01}])

    states, error = [new_state(c) for c in candidates], float("nan")
    if trial:
        results = [descend(state, trial) for state in states]
        best = int(np.argmin([loss for loss, _ in results]))
        states, error = [states[best]], results[best][1]
    if total > done:
        _, error = descend(states[0], total - done)
    phenotype = start_t.index_put((index,), torch.sigmoid(states[0][0].detach()))
    phenotype = phenotype.cpu().numpy().astype(np.float32)
    logger.info("Set Body Shape: fitted %s over %d frames (mean keypoint error %.1f px).",
                ", ".join(f"{n}={phenotype[i]:.2f}" for n, i in zip(FIT_LABELS, fit_idx)), len(chosen), error)
    warnings = shape_fit_warnings(phenotype, fit_idx, error, float(size.median()))
    for warning in warnings:
        logger.warning("Set Body Shape: %s", warning)
    return phenotype, {"error_px": error, "frames": chosen, "starts": candidates, "warnings": warnings}


PLAUSIBLE_ERROR_SHARE = 0.1  # a body fitted to one real person's keypoints stays within ~3% of their height
EDGE = 0.02  # the fit starts inside [0.02, 0.98]: ending beyond means it was pushed to the end of the range


def shape_fit_warnings(phenotype, fit_idx, error_px: float, height_px: float) -> list[str]:
    """Why a shape fit that ran to the end should not be trusted: a keypoint error above
    :data:`PLAUSIBLE_ERROR_SHARE` of the person's height, or a fitted value at the end of its range."""
    warnings = []
    share = error_px / max(height_px, 1.0)
    if not np.isfinite(share) or share > PLAUSIBLE_ERROR_SHARE:
        warnings.append(f"the fitted body is {error_px:.0f} px from the keypoints on average, {share:.0%} of the "
                        f"person's height ({height_px:.0f} px): the keypoints do not look like one whole person "
                        "seen in the sequence's camera. Check them (Draw Pose), or use the sliders.")
    edges = [f"{PHENOTYPE_LABELS[i]}={float(phenotype[i]):.3f}" for i in fit_idx
             if not EDGE <= float(phenotype[i]) <= 1 - EDGE]
    if edges:
        warnings.append(f"the fit ended at the end of the range ({', '.join(edges)}), which real people rarely "
                        "are: check the keypoints, or set these values with the sliders (mode 'sliders').")
    return warnings


def set_body_shape(seq: dict, body, mode: str = "sliders", sliders=None, warnings: list | None = None,
                   **fit_options) -> dict:
    """The sequence with ``phenotype`` set from the sliders, or fitted (``"fit"``: age, height and proportions
    from the keypoints, the rest from the sliders; ``"fit_from_sliders"``: the same, starting from the sliders
    and held near them).

    Raises:
        `ValueError` for an unknown mode, slider values outside 0..1, a body without a phenotype (SMPL) in a fit
        mode, or a sequence without usable keypoints.
    """
    check_choice("mode", mode, MODES)
    seq = validate_sequence(seq)
    values = check_phenotype(body.phenotype if sliders is None else sliders, "body shape sliders")
    if mode != "sliders":
        if body.shape_kind != "phenotype":
            raise ValueError("Fitting the body shape needs the built-in Anny body (Load Body Model → "
                             "'anny (built-in)'); SMPL bodies take their shape from betas.")
        start = values.copy()
        if mode == "fit":
            for name in FIT_LABELS:
                start[PHENOTYPE_LABELS.index(name)] = body.phenotype[PHENOTYPE_LABELS.index(name)]
        prior = 0.0 if mode == "fit" else fit_options.pop("prior", 0.05)
        if mode == "fit_from_sliders":
            fit_options.setdefault("starts", 1)  # the user's sliders are the start, not a grid point
        values, info = fit_phenotype(body, seq, start, prior=prior, **fit_options)
        if warnings is not None:  # the node shows them too
            warnings.extend(info["warnings"])
    out = dict(seq)
    out["phenotype"] = values
    return out
