"""Building a training dataset from a folder of videos with the pack's own chain, one clip folder per video.

Per video: read the frames → DWPose (whole body, the largest person followed) → the body's motion (a motion file
given for the clip, else HMR2 on the DWPose boxes when its checkpoint is present) → smoothing → the body's maps
(depth, normal, semantic, mask) and its projected skeleton (hands and face grafted from DWPose) drawn like
MimicMotion's pose maps, plus the DWPose drawing of the video → :func:`.clip_writer.write_clip`.

Resumable (clips listed in the manifest are skipped), and a video that cannot be read or processed is skipped and
listed in ``report.json`` with the reason; the run goes on.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..video.io import VIDEO_EXTENSIONS, read_video
from .clip_writer import finished_clips, to_uint8_frames, write_clip

logger = logging.getLogger(__name__)

BODY_MAPS = ("depth", "normal", "semantic", "mask")
MOTION_SUFFIXES = (".npz", ".pkl", ".pt", ".npy", "")  # "" = a folder of per-frame HMR2 .npy files
REPORT = "report.json"


class SkipClip(Exception):
    """A clip that cannot be built; the message says why and what to do."""


@dataclass
class BuildOptions:
    """Args:
        detector / pose_model (`Path`): DWPose's ONNX files (``yolox_l.onnx``, ``dw-ll_ucoco_384.onnx``).
        motion_dir (`Path`, *optional*): motion files named after the videos (``<video stem>.npz`` …), used
            instead of estimating the motion.
        hmr2 (`Path`, *optional*): an HMR2 checkpoint, used for clips without a motion file.
        width / height (`int`): cover-resize + centre-crop the frames to this size first (0 = keep the video's).
        max_frames (`int`): read at most this many frames per video (0 = all).
        device (`str`): DWPose / HMR2 / renderer device.
    """

    detector: Path
    pose_model: Path
    motion_dir: Path | None = None
    hmr2: Path | None = None
    width: int = 0
    height: int = 0
    max_frames: int = 0
    every_nth: int = 1
    device: str = "cpu"
    renderer: str = "auto"
    extra: dict = field(default_factory=dict)


def clip_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._") or "clip"


def find_videos(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Videos folder '{folder}' does not exist.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def motion_file_for(video: Path, motion_dir: Path | None) -> Path | None:
    if motion_dir is None:
        return None
    for suffix in MOTION_SUFFIXES:
        candidate = motion_dir / (video.stem + suffix)
        if (candidate.is_file() and suffix) or (candidate.is_dir() and not suffix):
            return candidate
    return None


class ClipBuilder:
    """Holds the loaded models (DWPose sessions, HMR2, the body) for a whole build."""

    def __init__(self, options: BuildOptions, body):
        from ..dwpose.wholebody import load_wholebody

        self.options, self.body = options, body
        device = "cpu" if options.device == "cpu" else "auto"
        self.wholebody = load_wholebody(options.detector, options.pose_model, device)
        self._hmr2 = None

    def _estimator(self):
        if self._hmr2 is None:
            from ..smpl.estimate.hmr2 import HMR2Estimator, load_hmr2_network

            self._hmr2 = HMR2Estimator(load_hmr2_network(self.options.hmr2, device=self.options.device))
        return self._hmr2

    def read(self, video: Path) -> tuple[np.ndarray, float]:
        from ..mimicmotion.preprocess import cover_resize_crop

        o = self.options
        try:
            frames, fps = read_video(video, frame_load_cap=o.max_frames, select_every_nth=o.every_nth)
        except ValueError as exc:
            raise SkipClip(f"the video cannot be read ({exc})") from None
        if o.width and o.height and frames.shape[1:3] != (o.height, o.width):
            frames = cover_resize_crop(torch.from_numpy(frames).permute(0, 3, 1, 2), o.width, o.height)
            frames = frames.permute(0, 2, 3, 1).contiguous().numpy()
        return frames, fps or 30.0

    def motion(self, video: Path, frames: np.ndarray, fps: float, pose_keypoint: list,
               found: list[bool]) -> tuple[dict, str]:
        from ..smpl.motion.importers import load_motion_file

        o = self.options
        height, width = frames.shape[1:3]
        motion_file = motion_file_for(video, o.motion_dir)
        if motion_file is not None:
            from ..smpl.motion.sequence import slice_sequence

            try:
                # the file's own camera and frame size; the renderer scales its intrinsics to the video's size
                seq = load_motion_file(motion_file, model=self.body)
            except (ValueError, OSError, KeyError) as exc:
                raise SkipClip(f"its motion file {motion_file} cannot be read ({exc})") from None
            # one motion frame per video frame, from the start (the same frames the video read kept)
            step = max(o.every_nth, 1)
            have = len(seq["global_orient"])
            if have < (len(frames) - 1) * step + 1:
                raise SkipClip(f"its motion file {motion_file} has {have} frames but the video has "
                               f"{(len(frames) - 1) * step + 1}: give one motion frame per video frame")
            seq = slice_sequence(seq, 0, (len(frames) - 1) * step + 1, step)
            seq["fps"] = float(fps)
            return seq, f"motion file {motion_file.name}"
        if o.hmr2 is not None and Path(o.hmr2).is_file():
            from ..smpl.estimate.estimator import body_keypoints_for_sequence, person_boxes_for_estimation

            if not any(found):
                raise SkipClip("DWPose found no person in any frame")
            boxes, padding = person_boxes_for_estimation(pose_keypoint, 0, (width, height), 1.2)
            seq = self._estimator().estimate(frames, boxes, fps=fps, box_rescale=padding)
            seq["keypoints"] = body_keypoints_for_sequence(pose_keypoint, 0, (width, height))
            return seq, f"HMR2 {Path(o.hmr2).name}"
        where = (f"no {video.stem}.npz (or .pkl/.pt/.npy/folder) in {o.motion_dir}" if o.motion_dir
                 else "no --motion-dir")
        raise SkipClip(f"no body motion for it: {where}, and no HMR2 checkpoint (put one in models/hmr2/ or "
                       "pass --hmr2; or give a motion file per clip with --motion-dir, e.g. from NLF or a "
                       "capture)")

    def build(self, video: Path, out_dir: Path, name: str, callback: Callable[[str], None] | None = None) -> Path:
        from ..dwpose.draw import draw_pose_maps
        from ..dwpose.keypoints import frames_to_pose_keypoint
        from ..dwpose.tracking import select_people
        from ..render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints
        from ..smpl.motion.smoothing import smooth_sequence

        frames, fps = self.read(video)
        height, width = frames.shape[1:3]
        detections = self.wholebody.detect_video(frames)
        people, found = select_people(detections, "largest")
        found = [bool(f) and not d.extra.get("fallback_box", False) for f, d in zip(found, detections)]
        pose_keypoint = frames_to_pose_keypoint(people)
        seq, source = self.motion(video, frames, fps, pose_keypoint, found)
        seq = smooth_sequence(seq, model=self.body)
        try:
            rendered = render_sequence_maps(self.body, seq, width=width, height=height, maps=BODY_MAPS,
                                            backend=self.options.renderer, device=self.options.device)
            skeleton_kp = sequence_to_pose_keypoints(self.body, seq, width=width, height=height,
                                                     driving=pose_keypoint, backend=self.options.renderer,
                                                     device=self.options.device)
        except ValueError as exc:
            raise SkipClip(f"its body cannot be rendered ({exc})") from None
        maps = {
            "depth": to_uint8_frames(rendered["depth"])[..., None],
            "normal": to_uint8_frames(rendered["normal"]),
            "semantic": to_uint8_frames(rendered["semantic"]),
            "mask": to_uint8_frames(rendered["mask"])[..., None],
            "skeleton": draw_pose_maps(skeleton_kp, width, height),
            "pose": draw_pose_maps(pose_keypoint, width, height),
        }
        seq_valid = np.asarray(seq.get("valid", np.ones(len(frames), bool)), bool)
        valid = [bool(a and b) for a, b in zip(found, seq_valid)]
        info = {"source": str(video), "motion": source, "people_found": int(sum(found)),
                "body": type(self.body).__name__, "frames_without_person": [i for i, v in enumerate(found) if not v]}
        return write_clip(out_dir, name, frames, maps, fps=fps, keypoints=pose_keypoint, valid=valid, info=info)


def write_report(out_dir: Path, report: dict) -> Path:
    path = out_dir / REPORT
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def build_dataset(videos_dir: str | Path, out_dir: str | Path, options: BuildOptions, body,
                  callback: Callable[[int, int, str], None] | None = None) -> dict:
    """Build every video of ``videos_dir`` not yet in ``out_dir``'s manifest; returns (and writes) the report:
    ``{"built": [...], "skipped_existing": [...], "failed": [{"video", "reason"}], "seconds"}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    videos = find_videos(videos_dir)
    if not videos:
        raise FileNotFoundError(f"No videos ({', '.join(sorted(VIDEO_EXTENSIONS))}) in '{videos_dir}'.")
    done = finished_clips(out_dir)
    report = {"videos_dir": str(videos_dir), "built": [], "skipped_existing": [], "failed": []}
    started = time.perf_counter()
    builder = None
    names: dict[str, Path] = {}
    for i, video in enumerate(videos):
        name = clip_name(video)
        if name in names:  # two videos with one stem (a.mp4, a.mov): keep both
            name = f"{name}_{video.suffix.lstrip('.').lower()}"
        names[name] = video
        if callback is not None:
            callback(i, len(videos), name)
        if name in done:
            report["skipped_existing"].append(name)
            continue
        try:
            if builder is None:
                builder = ClipBuilder(options, body)
            builder.build(video, out_dir, name)
            report["built"].append(name)
        except SkipClip as exc:
            logger.warning("[MotionGuide] skipped %s: %s", video.name, exc)
            report["failed"].append({"video": str(video), "reason": str(exc)})
        except (ValueError, RuntimeError, OSError) as exc:  # a bad clip never stops the run
            logger.warning("[MotionGuide] skipped %s: %s: %s", video.name, type(exc).__name__, exc)
            report["failed"].append({"video": str(video), "reason": f"{type(exc).__name__}: {exc}"})
    if callback is not None:
        callback(len(videos), len(videos), "")
    report["seconds"] = round(time.perf_counter() - started, 2)
    write_report(out_dir, report)
    return report
