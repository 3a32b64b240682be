"""SMPL estimation from images: the estimator interface and the shared bookkeeping that turns per-frame results
into an ``SMPL_SEQUENCE`` (docs/architecture.md, *Types between nodes*).

A backend implements :class:`SMPLEstimator` (HMR2: :class:`.hmr2.HMR2Estimator`). Each estimator has its own node,
since each reads its own checkpoint folder; there is no registry of backends by name.
"""
from __future__ import annotations

import logging
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..motion.sequence import validate_sequence

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


# --------------------------------------------------------------------------------------------------------------
# Person boxes from POSE_KEYPOINT


def person_boxes_for_estimation(pose_keypoint, person_index: int, image_size: tuple[int, int],
                                keypoint_padding: float = 1.2) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Per-frame box of person ``person_index`` and the padding its crop should use.

    Detect Pose's detector box (``person_box_xyxy``) is preferred and used as it is (padding 1.0, as HMR2 does
    with its detector's boxes); without it, the tight box of the confident keypoints gets ``keypoint_padding``
    (HMR2's 1.2 for keypoint boxes, which miss the top of the head and the feet). Boxes are scaled from each
    frame's canvas to ``image_size`` (W, H).

    Returns:
        `(boxes, padding)`: a list with a `[4]` array or ``None`` (no such person) per frame, and `[F]` floats.
    """
    from ...dwpose.keypoints import person_boxes, pose_keypoint_to_frames

    frames = pose_keypoint_to_frames(pose_keypoint)
    rows = person_boxes(frames, person_index)
    boxes: list[np.ndarray | None] = []
    padding = np.full(len(frames), float(keypoint_padding))
    for i, (frame, row) in enumerate(zip(frames, rows)):
        if not np.isfinite(row).all():
            boxes.append(None)
            continue
        if person_index < frame.num_people and np.isfinite(frame.boxes[person_index, :4]).all():
            padding[i] = 1.0
        scale = np.array([image_size[0] / frame.width, image_size[1] / frame.height] * 2)
        boxes.append(row * scale)
    return boxes, padding


def body_keypoints_for_sequence(pose_keypoint, person_index: int, image_size: tuple[int, int]) -> np.ndarray:
    """(T,18,3) OpenPose-18 body keypoints (pixels of ``image_size``, score) of person ``person_index``; zeros in
    frames without that person. Stored in the sequence so Set Body Shape can fit the body to them."""
    from ...dwpose.keypoints import pose_keypoint_to_frames

    frames = pose_keypoint_to_frames(pose_keypoint)
    out = np.zeros((len(frames), 18, 3), np.float32)
    for t, frame in enumerate(frames):
        if person_index >= frame.num_people:
            continue
        scale = np.array([image_size[0] / frame.width, image_size[1] / frame.height])
        out[t, :, :2] = frame.keypoints[person_index, :18] * scale
        out[t, :, 2] = frame.scores[person_index, :18]
    return out


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
    return validate_sequence(seq, name="estimated SMPL sequence")
