"""Reading and writing frames: uint8 RGB arrays ``[F,H,W,3]`` in, files out (verified, atomic, never overwriting)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..output_paths import new_file

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif"}


def read_image(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 ``[H,W,3]``; alpha is dropped."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"Could not read image '{path}': not an image file cv2 understands (png, jpg, webp, bmp).")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_video(path: str | os.PathLike, *, frame_load_cap: int = 0, skip_first_frames: int = 0,
               select_every_nth: int = 1) -> tuple[np.ndarray, float]:
    """Frames as RGB uint8 ``[F,H,W,3]`` and the file's fps (of the frames returned: fps / select_every_nth)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"Could not open video '{path}': missing file or a codec OpenCV cannot read.")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    frames = []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index >= skip_first_frames and (index - skip_first_frames) % max(select_every_nth, 1) == 0:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if frame_load_cap and len(frames) >= frame_load_cap:
                    break
            index += 1
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"Video '{path}' has no frames after skipping {skip_first_frames}.")
    return np.stack(frames), (fps / max(select_every_nth, 1) if fps else 0.0)


def write_video(frames: np.ndarray, fps: float, path: str | os.PathLike, *, crf: int | None = None,
                pix_fmt: str = "yuv420p") -> Path:
    """Write RGB uint8 ``[F,H,W,3]`` as an H.264 ``.mp4`` (or ``.gif`` / ``.webp`` by extension): atomic, never
    overwriting, re-opened and checked before it appears under ``path`` (see ``encode.write_video_file``)."""
    from .encode import DEFAULT_CRF, write_video_file

    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"Expected frames [F,H,W,3] with F > 0, got shape {tuple(frames.shape)}.")
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    return write_video_file(frames, fps, path, crf=DEFAULT_CRF if crf is None else crf, pix_fmt=pix_fmt)


def write_image(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one RGB uint8 ``[H,W,3]`` image (png/jpg/webp by extension) atomically, never overwriting."""
    import cv2

    path = Path(path)
    ok, data = cv2.imencode(path.suffix or ".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"Could not encode an image as '{path.suffix}'.")
    with new_file(path) as tmp:
        tmp.write_bytes(data.tobytes())
    return path


def to_uint8(images, chunk: int = 16) -> np.ndarray:
    """ComfyUI IMAGE (float 0..1, torch or numpy) -> uint8 numpy, rounding; converted ``chunk`` frames at a time,
    so the float temporaries stay at a few frames (a whole-batch conversion held three float copies of it)."""
    if len(getattr(images, "shape", ())) < 1 or len(images) <= chunk:
        array = images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images, np.float32)
        return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    out = np.empty(tuple(images.shape), np.uint8)
    for start in range(0, len(images), chunk):
        out[start:start + chunk] = to_uint8(images[start:start + chunk], chunk)
    return out


def from_uint8(frames: np.ndarray):
    """uint8 ``[F,H,W,3]`` -> ComfyUI IMAGE (float32 torch tensor, 0..1)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)
