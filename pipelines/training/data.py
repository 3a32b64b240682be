"""Reading a dataset made by ``python cli.py dataset build``, and planning which windows each step trains on.

Layout (one folder per clip, see :mod:`.dataset_build`)::

    DATASET/manifest.jsonl                  one JSON line per finished clip
    DATASET/<clip>/clip.json                frames, fps, size, per-frame validity, map conventions
    DATASET/<clip>/frames/000000.png        the video frames (RGB)
    DATASET/<clip>/maps/<map>/000000.png    depth, normal, semantic, mask, skeleton, pose (1 or 3 channels)
    DATASET/<clip>/keypoints.json           DWPose POSE_KEYPOINT frames in pixels, with confidences

Which clip, window and reference frame a sample uses is a pure function of ``(seed, step, micro-step, index in
the global batch)``, so a resumed run and a run split over several processes see exactly the same data.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..mimicmotion.preprocess import cover_resize_crop

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
CLIP_INFO = "clip.json"
HAND_KEYS = ("hand_left_keypoints_2d", "hand_right_keypoints_2d")


@dataclass
class Clip:
    name: str
    path: Path
    frames: int
    width: int
    height: int
    fps: float
    valid: list = field(default_factory=list)
    maps: tuple = ()
    info: dict = field(default_factory=dict)

    def windows(self, num_frames: int, stride: int) -> list[int]:
        """Start frames of every window of ``num_frames`` frames (``stride`` apart) whose frames all have a person."""
        span = (num_frames - 1) * stride + 1
        valid = np.asarray(self.valid or [True] * self.frames, bool)
        return [s for s in range(0, self.frames - span + 1) if valid[s:s + span:stride].all()]


def read_dataset(root: str | Path) -> list[Clip]:
    """Every clip listed in ``root/manifest.jsonl`` (sorted by name); a listed clip whose folder is gone is an
    error naming it."""
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"Dataset '{root}' has no {MANIFEST}. Make one with `python cli.py dataset build "
                                f"VIDEOS_DIR {root}`.")
    clips = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            name = entry["name"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{manifest} line {number} is not a clip entry: {line[:80]!r}.") from None
        folder = root / name
        info_file = folder / CLIP_INFO
        if not info_file.is_file():
            raise FileNotFoundError(f"{manifest} lists clip '{name}' but {info_file} is missing; delete the line "
                                    "or rebuild the clip.")
        info = json.loads(info_file.read_text(encoding="utf-8"))
        clips[name] = Clip(name, folder, int(info["frames"]), int(info["width"]), int(info["height"]),
                           float(info.get("fps", 0.0)), list(info.get("valid", [])), tuple(info.get("maps", ())), info)
    if not clips:
        raise ValueError(f"Dataset '{root}' lists no clips in {MANIFEST}.")
    return [clips[k] for k in sorted(clips)]


def split_clips(clips: list[Clip], holdout: int) -> tuple[list[Clip], list[Clip]]:
    """(training clips, held-out clips): the last ``holdout`` clips by name are held out (never all of them)."""
    if holdout >= len(clips):
        raise ValueError(f"data.holdout is {holdout} but the dataset has only {len(clips)} clips; keep at least one "
                         "for training (set data.holdout to 0 to validate on nothing).")
    return (clips[:len(clips) - holdout], clips[len(clips) - holdout:]) if holdout else (clips, [])


def usable_clips(clips: list[Clip], num_frames: int, stride: int, maps) -> list[Clip]:
    """The clips with at least one full window; a ``ValueError`` naming each clip and why when none is usable.
    Clips without a needed map are an error (rebuild them)."""
    for clip in clips:
        missing = [m for m in maps if m not in clip.maps]
        if missing:
            raise ValueError(f"Clip '{clip.name}' has no {missing} maps (it has {list(clip.maps)}); rebuild the "
                             "dataset or remove those maps from adapter.maps.")
    span = (num_frames - 1) * stride + 1
    good, reasons = [], []
    for clip in clips:
        if clip.windows(num_frames, stride):
            good.append(clip)
        elif clip.frames < span:
            reasons.append(f"'{clip.name}' has {clip.frames} frames, shorter than the training length {span} "
                           f"(num_frames {num_frames}, stride {stride})")
        else:
            bad = [i for i, v in enumerate(clip.valid) if not v][:5]
            reasons.append(f"'{clip.name}' has no {span} consecutive frames with a person (frames without a person, "
                           f"e.g. {bad})")
    for reason in reasons:
        logger.warning("[MotionGuide] training skips clip %s.", reason)
    if not good:
        raise ValueError("No clip can be trained on: " + "; ".join(reasons) + ". Lower data.num_frames or "
                         "data.frame_stride, or add longer clips.")
    return good


@dataclass(frozen=True)
class SampleRef:
    clip: int
    start: int
    reference: int


def sample_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SeedSequence mixing: nearby inputs give unrelated seeds)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def plan_batch(clips: list[Clip], seed: int, step: int, micro: int, count: int, num_frames: int, stride: int,
               reference: str) -> list[SampleRef]:
    """The ``count`` samples of one global (micro-)batch: clip uniformly, then a window uniformly among its valid
    windows, then the reference frame (a random valid frame of the clip, or the window's first)."""
    rng = np.random.default_rng(sample_seed(seed, step, micro, 7))
    out = []
    for _ in range(count):
        c = int(rng.integers(len(clips)))
        starts = clips[c].windows(num_frames, stride)
        start = starts[int(rng.integers(len(starts)))]
        if reference == "first":
            ref = start
        else:
            valid = np.flatnonzero(np.asarray(clips[c].valid or [True] * clips[c].frames, bool))
            ref = int(valid[int(rng.integers(len(valid)))])
        out.append(SampleRef(c, start, ref))
    return out


def cover_transform(width: int, height: int, out_w: int, out_h: int) -> tuple[float, float, float, float]:
    """``(sx, sy, left, top)`` such that a pixel ``(x, y)`` of a ``width×height`` image lands at
    ``(x·sx − left, y·sy − top)`` after :func:`~..mimicmotion.preprocess.cover_resize_crop`."""
    ratio = height / width
    if ratio < out_h / out_w:
        new_h, new_w = out_h, math.ceil(out_h / ratio)
    else:
        new_h, new_w = math.ceil(out_w * ratio), out_w
    left, top = int(round((new_w - out_w) / 2.0)), int(round((new_h - out_h) / 2.0))
    return new_w / width, new_h / height, float(left), float(top)


def _read_png(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"Could not read '{path}'; the dataset clip is damaged: rebuild it.")
    if image.ndim == 2:
        return image[..., None]
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def _resized(images: np.ndarray, width: int, height: int) -> torch.Tensor:
    """``[F,H,W,C]`` uint8 → ``[F,C,height,width]`` uint8 (cover resize + centre crop)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if x.shape[-2:] == (height, width):
        return x.contiguous()
    return cover_resize_crop(x, width, height)


def clip_hands(clip: Clip) -> np.ndarray:
    """``[F,2,21,3]`` left/right hand keypoints of the clip's person (pixels, confidence 0 when absent)."""
    cached = clip.info.get("_hands")
    if cached is not None:
        return cached
    path = clip.path / "keypoints.json"
    hands = np.zeros((clip.frames, 2, 21, 3), np.float32)
    if path.is_file():
        frames = json.loads(path.read_text(encoding="utf-8"))
        for f, frame in enumerate(frames[:clip.frames]):
            people = (frame or {}).get("people") or []
            if not people:
                continue
            for h, key in enumerate(HAND_KEYS):
                flat = people[0].get(key)
                if flat:
                    hands[f, h] = np.asarray(flat, np.float32).reshape(21, 3)
    clip.info["_hands"] = hands
    return hands


def load_sample(clip: Clip, ref: SampleRef, *, num_frames: int, stride: int, width: int, height: int,
                maps, pose_map: str) -> dict:
    """One training sample at the training size.

    Returns a dict: ``frames`` uint8 ``[F,3,H,W]``, ``reference`` uint8 ``[1,3,H,W]``, ``pose`` uint8 ``[F,3,H,W]``
    (PoseNet's input; frame 0 of the sample is the reference's pose, as at inference), ``maps`` name → uint8
    ``[F,H,W,C]``, ``hands`` float ``[F,2,21,3]`` in training pixels. Frame 0 is the reference frame; frames
    1… are the window's frames after its start.
    """
    # frame 0 of a MimicMotion video is the reference (image, pose and maps), as at inference; then the window
    index = [ref.reference] + [ref.start + k * stride for k in range(1, num_frames)]
    frames = _resized(np.stack([_read_png(clip.path / "frames" / f"{i:06d}.png") for i in index]), width, height)
    reference = frames[:1].clone()
    out_maps = {}
    for name in dict.fromkeys([*maps, pose_map]):
        stack = np.stack([_read_png(clip.path / "maps" / name / f"{i:06d}.png") for i in index])
        out_maps[name] = _resized(stack, width, height).permute(0, 2, 3, 1).contiguous()
    hands = clip_hands(clip)[index].copy()
    sx, sy, left, top = cover_transform(clip.width, clip.height, width, height)
    hands[..., 0] = hands[..., 0] * sx - left
    hands[..., 1] = hands[..., 1] * sy - top
    pose = out_maps[pose_map].permute(0, 3, 1, 2)
    if pose.shape[1] == 1:
        pose = pose.expand(-1, 3, -1, -1)
    return {"frames": frames, "reference": reference, "pose": pose.contiguous(),
            "maps": {k: out_maps[k] for k in maps}, "hands": hands}
