"""``SMPL_SEQUENCE``: a body motion in a camera (docs/architecture.md, *Types between nodes*), its checks, ``.npz``
files, slicing and resampling.

A sequence is a dict:

| key | value |
|---|---|
| ``betas`` | float32 (T,10) shape coefficients |
| ``global_orient`` | float32 (T,3) root rotation, axis-angle, in OpenCV camera axes (x right, y down, z forward) |
| ``body_pose`` | float32 (T,69) 23 joint rotations, axis-angle |
| ``transl`` | float32 (T,3) translation in camera coordinates, metres (vertices = SMPL(...) + transl) |
| ``K`` | float32 (T,3,3) pinhole intrinsics in pixels |
| ``image_size`` | (W, H) ints |
| ``valid`` | bool (T,): False where no person was found (parameters there are filled in) |
| ``bbox`` | float32 (T,4) person box x0,y0,x1,y1 in pixels (zeros = unknown) |
| ``fps`` | float |
| ``model_type`` | ``"smpl"`` or ``"smplx"`` (the rotation layout; the built-in Anny body plays both) |
| ``phenotype`` | optional float32 (6,) Anny body shape in 0..1: gender, age, muscle, weight, height, proportions |
| ``keypoints`` | optional float32 (T,18,3) OpenPose-18 2D body keypoints the estimate came from (pixels, score) |
| ``hand_pose`` | optional float32 (T,90) SMPL-H/X finger rotations, axis-angle (left 15 joints, then right 15) |
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...output_paths import new_file
from ...pinhole import intrinsics
from ...size_limits import check_motion_entry
from ..body.phenotype import check_phenotype
from ..body.rotations import axis_angle_to_quaternion, continuous_quaternions, quaternion_to_axis_angle, slerp

logger = logging.getLogger(__name__)

NUM_BETAS = 10
PER_FRAME = ("betas", "global_orient", "body_pose", "transl", "K", "valid", "bbox")
OPTIONAL_PER_FRAME = ("keypoints", "hand_pose")
WIDTHS = {"betas": (NUM_BETAS,), "global_orient": (3,), "body_pose": (69,), "transl": (3,), "K": (3, 3),
          "bbox": (4,), "keypoints": (18, 3), "hand_pose": (90,)}
MAX_ABS_BETA = 20.0  # shape coefficients are in standard deviations; real people lie within about ±5
DEFAULT_FPS = 30.0
MAX_SEQUENCE_SIDE = 2 ** 20  # a frame size, not a render size (renders are bounded by size_limits.MAX_SIDE)


def default_intrinsics(width: int, height: int, frames: int | None = None) -> np.ndarray:
    """float32 intrinsics by HMR2's rule (:func:`.pinhole.intrinsics`): (3,3), or (T,3,3)."""
    return intrinsics((width, height), frames=frames, dtype=np.float32)


def _first_bad_frame(values: np.ndarray) -> int | None:
    bad = ~np.isfinite(values.reshape(values.shape[0], -1)).all(1)
    return int(np.argmax(bad)) if bad.any() else None


def numbers(value, key: str, name: str, dtype=np.float32) -> np.ndarray:
    """``value`` as a numeric array, or a ``ValueError`` naming ``key`` (strings, objects, ragged lists)."""
    try:
        out = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: '{key}' must hold numbers, got {type(value).__name__} "
                         f"{str(np.asarray(value, dtype=object).dtype) if not isinstance(value, str) else 'str'} "
                         f"({str(exc).splitlines()[0][:80]}).") from None
    return out


def scalar(value, key: str, name: str, kind=float):
    """One number (or one string with ``kind=str``), or a ``ValueError`` naming ``key``: array-valued ``fps``
    or ``model_type`` entries in a file used to surface as numpy's "can only convert an array of size 1"."""
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{name}: '{key}' must be one {'number' if kind is float else 'value'}, got an array of "
                         f"shape {array.shape}.")
    item = array.reshape(-1)[0]
    if kind is str:
        return str(item)
    try:
        return float(item)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: '{key}' must be a number, got {str(item)[:40]!r}.") from None


def validate_sequence(seq: dict, name: str = "SMPL sequence") -> dict:
    """Check a sequence and return a normalised copy (float32 arrays, defaults filled in).

    Accepted leniencies: 1-D ``betas`` (broadcast), more than 10 betas (first 10 kept), ``body_pose`` as
    (T,23,3) or as SMPL-X's (T,63) (hand joints padded with zeros), missing ``valid``/``bbox``/``fps``/``K``
    (all valid, unknown boxes, 30 fps, HMR2 intrinsics from ``image_size``).

    Raises:
        `ValueError` naming the key and its shape, or the first frame holding NaN/inf.
    """
    if not isinstance(seq, dict):
        raise ValueError(f"{name} must be a dict of arrays (SMPL_SEQUENCE), got {type(seq).__name__}.")
    missing = [k for k in ("global_orient", "body_pose", "transl", "betas") if k not in seq]
    if missing:
        raise ValueError(f"{name} lacks {missing}; an SMPL_SEQUENCE needs betas, global_orient, body_pose, transl.")
    out = {}
    orient = numbers(seq["global_orient"], "global_orient", name)
    if orient.ndim != 2 or orient.shape[1] != 3:
        raise ValueError(f"{name}: global_orient must be (T,3) axis-angle, got shape {orient.shape}.")
    frames = orient.shape[0]
    if frames == 0:
        raise ValueError(f"{name} has no frames.")
    out["global_orient"] = orient
    pose = numbers(seq["body_pose"], "body_pose", name)
    if pose.ndim == 3 and pose.shape[1:] in ((23, 3), (21, 3)):
        pose = pose.reshape(pose.shape[0], -1)
    if pose.ndim == 2 and pose.shape[1] == 63:
        pose = np.concatenate([pose, np.zeros((pose.shape[0], 6), np.float32)], 1)
    if pose.shape != (frames, 69):
        raise ValueError(f"{name}: body_pose must be ({frames},69) axis-angle, got shape {pose.shape}.")
    out["body_pose"] = pose
    betas = numbers(seq["betas"], "betas", name)
    if betas.ndim == 1:
        betas = np.repeat(betas[None], frames, 0)
    if betas.ndim != 2 or betas.shape[0] != frames:
        raise ValueError(f"{name}: betas must be ({frames},10), got shape {betas.shape}.")
    if betas.shape[1] < NUM_BETAS:
        betas = np.pad(betas, ((0, 0), (0, NUM_BETAS - betas.shape[1])))
    out["betas"] = np.ascontiguousarray(betas[:, :NUM_BETAS])
    out["transl"] = numbers(seq["transl"], "transl", name)

    size = seq.get("image_size")
    k = seq.get("K")
    if size is None and k is None:
        raise ValueError(f"{name} has neither image_size nor K; give the frame size (W,H) of the sequence.")
    if size is not None:
        size = numbers(size, "image_size", name, np.float64).reshape(-1)
        if size.shape != (2,) or not np.all(np.isfinite(size)) or not np.all(size >= 0.5) \
                or not np.all(size <= MAX_SEQUENCE_SIDE):
            raise ValueError(f"{name}: image_size must be (W,H) pixels between 1 and {MAX_SEQUENCE_SIDE}, got "
                             f"{size.tolist()}; give the frame size of the video the motion belongs to.")
        width, height = int(round(float(size[0]))), int(round(float(size[1])))
    k = default_intrinsics(width, height, frames) if k is None else numbers(k, "K", name)
    if k.shape == (3, 3):
        k = np.repeat(k[None], frames, 0)
    out["K"] = k
    if size is None:
        width, height = int(round(2 * float(k[0, 0, 2]))), int(round(2 * float(k[0, 1, 2])))
    out["image_size"] = (width, height)
    out["valid"] = (np.ones(frames, bool) if seq.get("valid") is None
                    else numbers(seq["valid"], "valid", name, np.float64).astype(bool).reshape(-1))
    out["bbox"] = (np.zeros((frames, 4), np.float32) if seq.get("bbox") is None
                   else numbers(seq["bbox"], "bbox", name))
    fps = scalar(seq["fps"], "fps", name) if seq.get("fps") is not None else DEFAULT_FPS
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"{name}: fps must be > 0, got {fps}.")
    out["fps"] = fps
    model_type = scalar(seq.get("model_type", "smpl"), "model_type", name, str)
    if model_type not in ("smpl", "smplx"):
        raise ValueError(f"{name}: model_type must be 'smpl' or 'smplx', got {model_type!r}.")
    out["model_type"] = model_type

    if seq.get("phenotype") is not None:
        out["phenotype"] = check_phenotype(seq["phenotype"], f"{name}: phenotype")
    for key in OPTIONAL_PER_FRAME:
        if seq.get(key) is not None:
            value = numbers(seq[key], key, name)
            out[key] = value.reshape(value.shape[0], *WIDTHS[key]) if value.ndim >= 2 and \
                value.size == value.shape[0] * int(np.prod(WIDTHS[key])) else value
    for key in PER_FRAME + tuple(k for k in OPTIONAL_PER_FRAME if k in out):
        value = out[key]
        expected = (frames,) + WIDTHS.get(key, ())
        if value.shape != expected:
            raise ValueError(f"{name}: '{key}' must have shape {expected} (T={frames} frames), got {value.shape}.")
        if key != "valid":
            bad = _first_bad_frame(value)
            if bad is not None:
                raise ValueError(f"{name}: '{key}' holds NaN or inf at frame {bad}; fix or drop that frame "
                                 "(mark frames without a person with valid=False instead).")
    _check_intrinsics(out["K"], name)
    huge = np.abs(out["betas"]) > MAX_ABS_BETA
    if huge.any():
        frame = int(np.argmax(huge.any(1)))
        raise ValueError(f"{name}: 'betas' at frame {frame} holds {float(out['betas'][huge][0]):g}; body shape "
                         f"coefficients must lie within ±{MAX_ABS_BETA:g} (standard deviations of the body model's "
                         "shape space; real people lie within about ±5). Check the file or the estimator output.")
    for key, value in seq.items():  # extra entries (e.g. 'source') are kept
        if key not in out and key not in OPTIONAL_PER_FRAME + ("phenotype",):
            out[key] = value
    return out


def body_kwargs(seq: dict) -> dict:
    """What a body model's ``forward`` needs besides betas and rotations: ``phenotype`` and ``hand_pose``."""
    return {"phenotype": seq.get("phenotype"), "hand_pose": seq.get("hand_pose")}


def _check_intrinsics(k: np.ndarray, name: str) -> None:
    bad = (k[:, 0, 0] <= 0) | (k[:, 1, 1] <= 0)
    if bad.any():
        frame = int(np.argmax(bad))
        fx, fy = float(k[frame, 0, 0]), float(k[frame, 1, 1])
        raise ValueError(f"{name}: 'K' at frame {frame} has fx={fx:g}, fy={fy:g}; pinhole intrinsics need fx, fy > 0 "
                         "(focal lengths in pixels). Fix the camera in the file, or leave K out to use the default.")


def num_frames(seq: dict) -> int:
    return int(np.shape(seq["global_orient"])[0])


# --------------------------------------------------------------------------------------------------------------
# Files


def save_sequence(seq: dict, path, overwrite: bool = False) -> Path:
    """Write a validated sequence as ``.npz`` (plain arrays only), atomically. Refuses to overwrite by default."""
    seq = validate_sequence(seq)
    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_suffix(".npz")
    arrays = {key: seq[key] for key in PER_FRAME + OPTIONAL_PER_FRAME + ("phenotype",) if key in seq}
    arrays.update(image_size=np.asarray(seq["image_size"], np.int64), fps=np.float64(seq["fps"]),
                  model_type=np.str_(seq["model_type"]), format=np.str_("motionguide_smpl_sequence_v1"))
    with new_file(path, overwrite) as tmp:
        np.savez(tmp, **arrays)
    return path


def is_sequence_file(arrays) -> bool:
    files = set(arrays.files if hasattr(arrays, "files") else arrays)
    return {"global_orient", "body_pose", "transl", "betas"} <= files


SEQUENCE_KEYS = PER_FRAME + OPTIONAL_PER_FRAME + ("phenotype", "image_size", "fps", "model_type", "source")


def motion_entry_check(path, remedy: str):
    """The declared-size check for the entries of a motion file (``size_limits``)."""
    def check(key, shape, dtype):
        check_motion_entry(shape, dtype.itemsize, key, f"Motion file '{path}'", remedy)
    return check


def sequence_from_arrays(arrays: dict, name: str) -> dict:
    """A sequence from the arrays of a :func:`save_sequence` file (already read), checked."""
    seq = {key: arrays[key] for key in SEQUENCE_KEYS if key in arrays}
    for key in ("fps", "model_type", "source"):
        if key in seq:
            seq[key] = scalar(seq[key], key, name, float if key == "fps" else str)
    return validate_sequence(seq, name=name)


def load_sequence(path) -> dict:
    """Read a sequence written by :func:`save_sequence` (``allow_pickle=False``: no code runs); only its own
    keys are read, each once, after their declared sizes were checked (``size_limits``)."""
    from ...weights import read_npz_entries

    path = Path(path)
    remedy = "Export the motion again with Save SMPL Motion."
    arrays = read_npz_entries(path, "Motion file",
                              lambda files, shapes: SEQUENCE_KEYS if is_sequence_file(files) else None,
                              check=motion_entry_check(path, remedy), remedy=remedy)
    if arrays is None:
        raise ValueError(f"{path} is not an SMPL_SEQUENCE file; use an importer format (AMASS, 4D-Humans, "
                         "WHAM/GVHMR) instead.")
    return sequence_from_arrays(arrays, str(path))


# --------------------------------------------------------------------------------------------------------------
# Time


def slice_sequence(seq: dict, start: int = 0, stop: int | None = None, step: int = 1) -> dict:
    """Frames ``start:stop:step`` (fps divided by ``step``)."""
    seq = validate_sequence(seq)
    sl = slice(start, stop, step)
    out = dict(seq)
    for key in PER_FRAME + tuple(k for k in OPTIONAL_PER_FRAME if k in seq):
        out[key] = seq[key][sl].copy()
    if len(out["valid"]) == 0:
        raise ValueError(f"slice {start}:{stop}:{step} of a {num_frames(seq)}-frame sequence is empty.")
    out["fps"] = seq["fps"] / step
    return out


def resample_sequence(seq: dict, fps: float | None = None, frames: int | None = None) -> dict:
    """Resample to ``fps`` (same duration) or to exactly ``frames`` frames spanning the same time.

    Rotations are slerped joint by joint, everything else interpolated linearly; a new frame is valid only if
    both source frames around it are.
    """
    seq = validate_sequence(seq)
    count = num_frames(seq)
    if frames is None:
        if fps is None or fps <= 0:
            raise ValueError(f"resample needs fps > 0 or a frame count, got fps={fps}.")
        frames = int(round((count - 1) * fps / seq["fps"])) + 1
        new_fps = float(fps)
    else:
        new_fps = seq["fps"] * (frames - 1) / (count - 1) if count > 1 and frames > 1 else seq["fps"]
    if frames < 1:
        raise ValueError(f"resampling to {frames} frames is impossible.")
    pos = np.linspace(0, count - 1, frames) if frames > 1 else np.zeros(1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, count - 1)
    frac = (pos - lo)[:, None]
    out = dict(seq)
    for key in ("betas", "transl", "bbox"):
        out[key] = ((1 - frac) * seq[key][lo] + frac * seq[key][hi]).astype(np.float32)
    if "keypoints" in seq:
        f3 = frac[:, :, None]
        out["keypoints"] = ((1 - f3) * seq["keypoints"][lo] + f3 * seq["keypoints"][hi]).astype(np.float32)
    if "hand_pose" in seq:
        hq = continuous_quaternions(axis_angle_to_quaternion(seq["hand_pose"].reshape(count, 30, 3)))
        out["hand_pose"] = quaternion_to_axis_angle(slerp(hq[lo], hq[hi], frac[:, :, None])).reshape(
            frames, 90).astype(np.float32)
    out["K"] = ((1 - frac[:, :, None]) * seq["K"][lo] + frac[:, :, None] * seq["K"][hi]).astype(np.float32)
    rot = np.concatenate([seq["global_orient"], seq["body_pose"]], 1).reshape(count, 24, 3)
    quat = continuous_quaternions(axis_angle_to_quaternion(rot))
    aa = quaternion_to_axis_angle(slerp(quat[lo], quat[hi], frac[:, :, None])).reshape(frames, 72)
    out["global_orient"], out["body_pose"] = aa[:, :3].astype(np.float32), aa[:, 3:].astype(np.float32)
    exact = frac[:, 0] < 1e-9
    out["valid"] = np.where(exact, seq["valid"][lo], seq["valid"][lo] & seq["valid"][hi])
    out["fps"] = new_fps
    return out


def match_timing(seq: dict, frames: int, fps: float, name: str = "SMPL sequence") -> dict:
    """Bring ``seq`` to ``frames`` frames at ``fps``: resampled when the frame rate differs or the count is off by
    one (rounding); a clear error when the clips have different durations."""
    seq = validate_sequence(seq, name)
    if abs(seq["fps"] - fps) > 1e-6:
        seq = resample_sequence(seq, fps=fps)
    count = num_frames(seq)
    if count == frames:
        return seq
    if abs(count - frames) <= 1:
        return dict(resample_sequence(seq, frames=frames), fps=float(fps))
    raise ValueError(f"{name} has {count} frames at {fps:g} fps ({count / fps:.2f} s) but {frames} frames "
                     f"({frames / fps:.2f} s) are needed; trim or pad the clips to the same length first.")
