"""``POSE_KEYPOINT`` files: our JSON list of frames, comfyui_controlnet_aux's, and OpenPose's one file per frame.

The SMPL equivalent is :mod:`..smpl.motion.importers`. Writers publish atomically: a new file appears complete or not
at all, and a folder of per-frame files appears with all of them or not at all.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..json_input import parse_json
from ..output_paths import file_set, new_file, save_new
from .keypoints import frames_to_pose_keypoint, pose_keypoint_to_frames

OPENPOSE_FRAME_GLOB = "*_keypoints.json"


def _write_text(path: Path, text: str) -> Path:
    with new_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _write_frame_files(folder: Path, data: list[dict], check_cancel: Callable[[], None] | None) -> Path:
    """One OpenPose JSON per frame in the new ``folder``: all of them, or (on an error) no folder at all."""
    folder.mkdir()  # FileExistsError when another run took the name: save_new picks the next one
    with file_set() as written:
        written.append(folder)
        for i, frame in enumerate(data):
            people = [{k: (v if v is not None else []) for k, v in p.items()} for p in frame["people"]]
            openpose = {"version": 1.3, "people": people, "canvas_width": frame["canvas_width"],
                        "canvas_height": frame["canvas_height"]}
            text = json.dumps(openpose, allow_nan=False)
            written.append(_write_text(folder / f"{folder.name}_{i:012d}_keypoints.json", text))
            if check_cancel is not None:
                check_cancel()
    return folder


def save_pose_file(pose_keypoint, directory: Path, prefix: str, *, per_frame: bool = False,
                   check_cancel: Callable[[], None] | None = None) -> tuple[Path, int]:
    """Write ``pose_keypoint`` under ``directory`` as ``<prefix>_<counter>.json`` (one JSON list of frames), or as
    a folder ``<prefix>_<counter>/`` of OpenPose ``*_keypoints.json`` files (``per_frame``). Never overwrites.

    Returns:
        the path written and the number of frames.
    """
    data = frames_to_pose_keypoint(pose_keypoint_to_frames(pose_keypoint, "pose_keypoint"))
    if per_frame:
        path = save_new(directory, prefix, "", lambda p: _write_frame_files(p, data, check_cancel),
                        check_cancel=check_cancel)
    else:
        path = save_new(directory, prefix, ".json", lambda p: _write_text(p, json.dumps(data, allow_nan=False)),
                        check_cancel=check_cancel)
    return path, len(data)


def _read_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"Pose file '{path}' is not readable JSON ({exc}).") from exc
    return parse_json(text, f"Pose file '{path}'", "Save the poses again with Save Pose (JSON) or OpenPose.")


def load_pose_file(path: Path, name: str, check_path: Callable[[Path], Path] = lambda p: p) -> list[dict]:
    """``POSE_KEYPOINT`` from a JSON file (a list of frames or one frame) or a folder of OpenPose per-frame files
    (read in name order). ``name`` is how messages call it; ``check_path`` vets each file of a folder (the node
    keeps reads inside ComfyUI's input folder)."""
    if path.is_dir():
        files = [check_path(p) for p in sorted(path.glob(OPENPOSE_FRAME_GLOB))]
        if not files:
            raise ValueError(f"Folder '{name}' holds no OpenPose {OPENPOSE_FRAME_GLOB} files.")
        raw = [_read_json(p) for p in files]
    else:
        raw = _read_json(path)
    return frames_to_pose_keypoint(pose_keypoint_to_frames(raw, f"file {name!r}"))
