"""SMPL estimation from images: the estimator interface, a registry of backends, and the shared
bookkeeping that turns per-frame results into an ``SMPL_SEQUENCE`` (DESIGN §3).

A backend implements :class:`SMPLEstimator`; it is registered by name so nodes and scripts pick it by a
string (``create_estimator("hmr2", path=..., device=..., dtype=...)``). Built-in backends are imported lazily.
"""
from __future__ import annotations

import importlib
import logging
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@runtime_checkable
class SMPLEstimator(Protocol):
    """Estimates one person's SMPL parameters per frame.

    ``estimate(images, boxes, callback=None, fps=30.0)``:

    Args:
        images (`np.ndarray` or `torch.Tensor` `[F, H, W, 3]`): RGB frames, uint8 or float in 0..1.
        boxes (`Sequence` of `[4]` arrays or `None`, length F): the person's box per frame (x0, y0, x1, y1
            pixels), or ``None`` where there is no person.
        callback (`callable`, *optional*): ``callback(done_frames, total_frames)``; may raise to cancel.
        fps (`float`, *optional*, defaults to 30.0): frame rate stored in the sequence.

    Returns:
        an ``SMPL_SEQUENCE`` dict (see :func:`assemble_sequence`).
    """

    name: str

    def estimate(self, images, boxes: Sequence, callback: ProgressCallback | None = None,
                 fps: float = 30.0) -> dict: ...


# name -> factory(**kwargs) -> SMPLEstimator. Built-ins are "module:attribute" strings resolved on first use.
_BACKENDS: dict[str, Callable[..., SMPLEstimator] | str] = {
    "hmr2": "hmr2:HMR2Estimator.from_checkpoint",
}


def register_estimator(name: str, factory: Callable[..., SMPLEstimator]) -> None:
    """Add (or replace) a backend; ``factory(**kwargs)`` returns an :class:`SMPLEstimator`."""
    _BACKENDS[name] = factory


def available_estimators() -> list[str]:
    return sorted(_BACKENDS)


def estimator_factory(name: str) -> Callable[..., SMPLEstimator]:
    if name not in _BACKENDS:
        raise ValueError(f"Unknown SMPL estimator {name!r}; available: {available_estimators()}.")
    factory = _BACKENDS[name]
    if isinstance(factory, str):
        module_name, attribute = factory.split(":")
        target = importlib.import_module(f".{module_name}", __package__)
        for part in attribute.split("."):
            target = getattr(target, part)
        factory = _BACKENDS[name] = target
    return factory


def create_estimator(name: str, **kwargs) -> SMPLEstimator:
    return estimator_factory(name)(**kwargs)


# --------------------------------------------------------------------------------------------------------------
# Person boxes from POSE_KEYPOINT (a minimal stand-in until pipelines/dwpose/keypoints.py lands)


def _points(values) -> np.ndarray:
    if values is None:
        return np.zeros((0, 3))
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    return arr[: len(arr) // 3 * 3].reshape(-1, 3)


def person_box_from_keypoints(person: dict, min_score: float = 0.3) -> np.ndarray | None:
    """Tight box (x0, y0, x1, y1) around one person's body, face and hand keypoints scoring above
    ``min_score``; ``None`` with fewer than two such points."""
    parts = [_points(person.get(key)) for key in
             ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")]
    points = np.concatenate(parts, axis=0)
    points = points[points[:, 2] > min_score, :2]
    if len(points) < 2:
        return None
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def person_boxes_from_pose(frames: Sequence[dict], person_index: int = 0, image_size: tuple[int, int] | None = None,
                           min_score: float = 0.3) -> list[np.ndarray | None]:
    """Per-frame box of person ``person_index`` from a POSE_KEYPOINT list (``None`` where that person is
    missing). Keypoints of a canvas of another size are scaled to ``image_size`` (W, H)."""
    boxes: list[np.ndarray | None] = []
    for frame in frames:
        people = frame.get("people") or []
        box = person_box_from_keypoints(people[person_index], min_score) if person_index < len(people) else None
        if box is not None and image_size is not None:
            canvas = (frame.get("canvas_width"), frame.get("canvas_height"))
            if canvas[0] and canvas[1] and tuple(canvas) != tuple(image_size):
                scale = np.array([image_size[0] / canvas[0], image_size[1] / canvas[1]] * 2)
                box = box * scale
        boxes.append(box)
    return boxes


# --------------------------------------------------------------------------------------------------------------
# Sequence assembly


def nearest_valid_index(valid: np.ndarray) -> np.ndarray:
    """For every frame, the index of the nearest valid frame (the earlier one on ties)."""
    valid = np.asarray(valid, bool)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise ValueError("nearest_valid_index needs at least one valid frame.")
    frames = np.arange(len(valid))
    pos = np.searchsorted(idx, frames)  # first valid frame at or after each frame
    right = idx[np.minimum(pos, len(idx) - 1)]
    left = idx[np.maximum(pos - 1, 0)]
    return np.where(np.abs(frames - left) <= np.abs(right - frames), left, right)


def assemble_sequence(*, betas, global_orient, body_pose, transl, K, valid, bbox, image_size: tuple[int, int],
                      fps: float, model_type: str = "smpl") -> dict:
    """Build an ``SMPL_SEQUENCE``: float32 arrays, ``valid`` bool. Frames with ``valid=False`` take the
    parameters of the nearest valid frame (so an unsmoothed sequence holds still instead of jumping to the
    camera) and keep ``valid=False`` so smoothing can fill them properly; their ``bbox`` stays zeros.

    Shapes: betas `[T,10]`, global_orient `[T,3]`, body_pose `[T,69]`, transl `[T,3]`, K `[T,3,3]`,
    valid `[T]`, bbox `[T,4]`.
    """
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("No frame has a person: cannot build an SMPL sequence.")
    source = nearest_valid_index(valid)
    seq = {}
    for key, value in (("betas", betas), ("global_orient", global_orient), ("body_pose", body_pose),
                       ("transl", transl)):
        seq[key] = np.asarray(value, np.float32)[source]
    seq["K"] = np.asarray(K, np.float32)
    seq["valid"] = valid
    seq["bbox"] = np.where(valid[:, None], np.asarray(bbox, np.float32), 0.0).astype(np.float32)
    seq["image_size"] = (int(image_size[0]), int(image_size[1]))
    seq["fps"] = float(fps)
    seq["model_type"] = model_type
    for key in ("betas", "global_orient", "body_pose", "transl", "K"):
        bad = ~np.isfinite(seq[key].reshape(len(valid), -1)).all(axis=1)
        if bad.any():
            raise ValueError(f"Estimated {key} is not finite at frame(s) {np.flatnonzero(bad)[:10].tolist()}.")
    return seq
