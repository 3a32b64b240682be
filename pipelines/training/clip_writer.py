"""Writing one dataset clip folder atomically (temp folder + rename) and its manifest line.

The layout is the one :mod:`.data` reads. A clip folder appears under its final name only once every file is
written; the manifest line is appended after that, so an interrupted build never lists a half-written clip, and
the next build skips every clip already listed.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..guidance.geometry_adapter import DEPTH_NORMALISATIONS, SEMANTIC_PALETTES
from .data import CLIP_INFO, MANIFEST

DATASET_FORMAT = "motionguide-dataset"
DATASET_VERSION = 1


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"Could not write {path} (disk full or not writable?).")


def to_uint8_frames(images) -> np.ndarray:
    """``[F,H,W,C]`` float 0..1 (tensor or array) or uint8 → uint8 numpy."""
    array = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return array


def finished_clips(out_dir: Path) -> set[str]:
    manifest = Path(out_dir) / MANIFEST
    if not manifest.is_file():
        return set()
    names = set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        try:
            names.add(json.loads(line)["name"])
        except (ValueError, KeyError, TypeError):
            continue
    return names


def write_clip(out_dir: str | Path, name: str, frames: np.ndarray, maps: dict[str, np.ndarray], *, fps: float,
               keypoints: list | None = None, valid=None, info: dict | None = None) -> Path:
    """Write ``out_dir/name/`` and append its manifest line.

    Args:
        frames (`np.ndarray`): uint8 ``[F,H,W,3]`` RGB video frames.
        maps (`dict`): name → uint8 ``[F,H,W,C]`` (C = 1 or 3), same size as the frames.
        keypoints (`list`, *optional*): POSE_KEYPOINT frames (pixels, with confidences).
        valid (*optional*): per frame, whether it has a person (default all).
        info (`dict`, *optional*): more fields for ``clip.json`` (source video, motion source, …).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count, height, width = frames.shape[:3]
    for key, value in maps.items():
        if value.shape[0] != count or value.shape[1:3] != (height, width):
            raise ValueError(f"Map '{key}' is {list(value.shape)} but the frames are {list(frames.shape)}.")
    final = out_dir / name
    tmp = out_dir / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "frames").mkdir(parents=True)
    for i, frame in enumerate(frames):
        _write_png(tmp / "frames" / f"{i:06d}.png", frame)
    for key, value in maps.items():
        (tmp / "maps" / key).mkdir(parents=True)
        for i, image in enumerate(value):
            _write_png(tmp / "maps" / key / f"{i:06d}.png", image)
    if keypoints is not None:
        (tmp / "keypoints.json").write_text(json.dumps(keypoints), encoding="utf-8")
    valid = [True] * count if valid is None else [bool(v) for v in valid]
    meta = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "name": name, "frames": int(count),
            "width": int(width), "height": int(height), "fps": float(fps), "maps": sorted(maps), "valid": valid,
            "semantic_palette": SEMANTIC_PALETTES[0], "depth_normalisation": DEPTH_NORMALISATIONS[0], **(info or {})}
    (tmp / CLIP_INFO).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    line = {"name": name, "frames": int(count), "width": int(width), "height": int(height), "fps": float(fps),
            "valid_frames": int(sum(valid)), "maps": sorted(maps)}
    with open(out_dir / MANIFEST, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return final
