"""Face crops of the driving video, as Wan2.2-Animate's ``face_video`` input wants them.

Wan2.2-Animate reads the driving person's face from 512×512 crops of every driving frame (its preprocessing,
research/animators.md §2): the box of the 68 face landmarks is grown to 1.3× its area with its aspect ratio
kept, the extra height put three parts above the face for one below (forehead and hair), clipped to the frame,
truncated to whole pixels, and that region resized to 512×512 (bilinear). The face is not retargeted: it is the
driving person's expression, whatever body the motion is put on.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ..size_limits import check_memory
from . import skeleton as sk

logger = logging.getLogger(__name__)

CROP_SIZE = 512
AREA_SCALE = 1.3
MIN_FACE_PX = 1.0  # a landmark box narrower or lower than this is no face


def face_box(points: np.ndarray, width: int, height: int, scale: float = AREA_SCALE):
    """Wan's crop box ``(x1, x2, y1, y2)`` around face landmarks `(N, 2)` in pixels of a ``width`` × ``height``
    frame, or ``None`` for a degenerate landmark box. The box may be empty (x2 ≤ x1) when the face is outside."""
    points = np.asarray(points, np.float64)
    min_x, min_y = points.min(0)
    max_x, max_y = points.max(0)
    face_w, face_h = max_x - min_x, max_y - min_y
    if not (face_w >= MIN_FACE_PX and face_h >= MIN_FACE_PX):
        return None
    area = face_w * face_h * scale
    grow_w = (math.sqrt(area * (face_w / face_h)) - face_w) / 2  # each side
    grow_h = (math.sqrt(area * (face_h / face_w)) - face_h) / 4  # one part below, three above
    return (int(max(min_x - grow_w, 0)), int(min(max_x + grow_w, width)),
            int(max(min_y - 3 * grow_h, 0)), int(min(max_y + grow_h, height)))


def _landmarks(frame, width: int, height: int):
    """The first person's face landmarks of a PoseFrame in pixels of a ``width`` × ``height`` image, or None."""
    if frame.num_people == 0 or not frame.face_present[0]:
        return None
    present = frame.scores[0, sk.FACE] > 0
    if present.sum() < 2:
        return None
    # to the frame's pixels through normalised coordinates, as Wan's keypoints travel
    return frame.keypoints[0, sk.FACE][present] / (frame.width, frame.height) * (width, height)


def face_crops(frames: np.ndarray, poses: list, size: int = CROP_SIZE, callback=None) -> tuple[np.ndarray, int]:
    """512×512 face crops of uint8 frames `(F, H, W, 3)` from their poses (one PoseFrame per frame);
    ``callback(done, total)`` after each crop.

    A frame without a usable face (no person, no face landmarks, the face outside the frame) takes the box of
    the nearest frame that has one, the earlier one first.

    Returns:
        `(crops (F, size, size, 3) uint8, frames_without_face)`.
    """
    import cv2

    if len(frames) != len(poses):
        raise ValueError(f"Face Crops: {len(frames)} images but {len(poses)} pose frames; give it the driving video "
                         "and Detect Pose's keypoints of that same video.")
    if len(frames) == 0:
        raise ValueError("Face Crops: no images (0 frames): connect the driving video.")
    check_memory("Face Crops", len(frames), size, size, "crop fewer frames at a time (split the clip).")
    height, width = frames.shape[1:3]
    boxes = []
    for pose in poses:
        points = _landmarks(pose, width, height)
        box = None if points is None else face_box(points, width, height)
        boxes.append(box if box is not None and box[1] > box[0] and box[3] > box[2] else None)
    found = [i for i, box in enumerate(boxes) if box is not None]
    if not found:
        raise ValueError("Face Crops: no face in any frame. Run Detect Pose on the driving video with face on, and "
                         "check that the person's face is visible.")
    crops = np.empty((len(frames), size, size, 3), np.uint8)
    for i, frame in enumerate(frames):
        box = boxes[i] or boxes[min(found, key=lambda j: (abs(j - i), j > i))]
        x1, x2, y1, y2 = box
        crops[i] = cv2.resize(np.ascontiguousarray(frame[y1:y2, x1:x2, :3]), (size, size),
                              interpolation=cv2.INTER_LINEAR)
        if callback is not None:
            callback(i + 1, len(frames))
    missing = len(frames) - len(found)
    if missing:
        logger.warning("Face Crops: %d of %d frames have no usable face; they reuse the nearest frame's box.",
                       missing, len(frames))
    return crops, missing
