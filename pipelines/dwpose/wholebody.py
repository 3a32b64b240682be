"""Whole-body DWPose: YOLOX boxes → RTMPose keypoints, one pair of onnxruntime sessions per video."""
from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .detector import YOLOXDetector
from .keypoints import PoseFrame
from .pose_model import RTMPoseWholebody
from .runtime import create_session

logger = logging.getLogger(__name__)


class Wholebody:
    """Detector + pose model.

    Args:
        detector_path, pose_path (`str` or `Path`): the ONNX files (``yolox_l.onnx``, ``dw-ll_ucoco_384.onnx``).
        device (`str`, *optional*, defaults to ``"auto"``): ``auto``/``cuda`` (CUDA when onnxruntime has it, else
            CPU) or ``cpu``.
    """

    def __init__(self, detector_path, pose_path, device: str = "auto"):
        for path in (detector_path, pose_path):
            if not Path(path).is_file():
                raise FileNotFoundError(f"DWPose model file '{path}' does not exist. Download it from "
                                        "https://huggingface.co/yzd-v/DWPose into models/dwpose/.")
        self.detector = YOLOXDetector(create_session(detector_path, device), Path(detector_path).name)
        self.pose = RTMPoseWholebody(create_session(pose_path, device), Path(pose_path).name)
        self.provider = self.pose.session.get_providers()[0]

    def __call__(self, image: np.ndarray, batched: bool | None = None) -> PoseFrame:
        """People of one RGB uint8 frame ``[H, W, 3]``, in pixels, with real scores.

        When the detector finds nobody, the whole image is one box (as in the reference) and the frame's
        ``extra["fallback_box"]`` is True.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"DWPose expects an RGB uint8 frame [H, W, 3], got {image.dtype} {list(image.shape)}.")
        boxes = self.detector.detect(image)
        keypoints, scores = self.pose.estimate(image, boxes, batched)
        h, w = image.shape[:2]
        frame = PoseFrame(keypoints, scores, w, h, boxes=boxes)
        frame.extra["fallback_box"] = bool(np.isnan(boxes[0, 4]))
        return frame

    def detect_video(self, frames: np.ndarray, callback=None, batched: bool | None = None) -> list[PoseFrame]:
        """Every frame of ``frames`` ``[F, H, W, 3]`` uint8; ``callback(done, total)`` after each frame."""
        out = []
        for i, image in enumerate(frames):
            out.append(self(image, batched))
            if callback is not None:
                callback(i + 1, len(frames))
        return out


# One Wholebody kept between runs (sessions are expensive to build: ~350 MB of weights).
_LOADED: OrderedDict = OrderedDict()


def _file_key(path) -> tuple:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def load_wholebody(detector_path, pose_path, device: str = "auto") -> Wholebody:
    """A cached :class:`Wholebody` for these files and device (rebuilt when a file changes)."""
    for path in (detector_path, pose_path):
        if not Path(path).is_file():
            raise FileNotFoundError(f"DWPose model file '{path}' does not exist. Download it from "
                                    "https://huggingface.co/yzd-v/DWPose into models/dwpose/.")
    key = (_file_key(detector_path), _file_key(pose_path), device)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = Wholebody(detector_path, pose_path, device)
    return _LOADED[key]


def frames_digest(frames: np.ndarray, *parts) -> str:
    """Content hash of uint8 frames plus settings, for the detection cache."""
    h = hashlib.blake2b(digest_size=20)
    h.update(str(frames.shape).encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    for part in parts:
        h.update(repr(part).encode())
    return h.hexdigest()


class DetectionCache:
    """Least-recently-used detections by content hash, so re-running a graph does not re-detect poses."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict = OrderedDict()

    def get(self, key: str):
        if key in self._items:
            self._items.move_to_end(key)
            return [f.copy() for f in self._items[key]]
        return None

    def put(self, key: str, frames) -> None:
        self._items[key] = [f.copy() for f in frames]
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


DETECTIONS = DetectionCache()


def detect_video_cached(frames: np.ndarray, detector_path, pose_path, device: str = "auto",
                        callback=None) -> list:
    """Every person's whole-body keypoints in uint8 ``frames`` `[F,H,W,3]`, as :class:`PoseFrame` per frame.

    Detections are kept by content (the frames, both model files, the device) in :data:`DETECTIONS`, so running a
    graph again does not detect again; ``callback(done, F)`` reports the frames done (at once on a cache hit).
    """
    key = frames_digest(frames, _file_key(detector_path), _file_key(pose_path), device)
    detected = DETECTIONS.get(key)
    if detected is None:
        detected = load_wholebody(detector_path, pose_path, device).detect_video(frames, callback=callback)
        DETECTIONS.put(key, detected)
    else:
        logger.info("Detect pose: %d frames taken from the cache", len(frames))
        if callback is not None:
            callback(len(frames), len(frames))
    return detected
