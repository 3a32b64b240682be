"""Motion files users already have, to and from ``SMPL_SEQUENCE``.

Formats (all read without running code from the file):

- ``motionguide``: our ``.npz`` (:func:`.sequence.save_sequence`).
- ``hmr2``: 4D-Humans / HMR2.0 per-frame outputs (Champ's ``generate_smpls`` ``.npy`` dicts, or one ``.npz`` of
  stacked arrays): rotation matrices ``global_orient`` (1,3,3), ``body_pose`` (23,3,3), ``betas`` (10,), camera
  translation ``cam_t`` (= ``pred_cam_t_full``), ``scaled_focal_length`` f = 5000/256·max(W,H) and
  ``render_res`` (W,H). The vertices in camera space are SMPL(...) + cam_t, so ``transl = cam_t``.
- ``amass``: ``poses`` (T,72|156|165), ``trans`` (T,3), ``betas``, ``mocap_framerate`` in a z-up world. A default
  camera at the root's height looks horizontally at the first frame's front, far enough for the body to fill
  80% of the frame height with HMR2 intrinsics.
- ``camera_space`` (WHAM / GVHMR): SMPL parameters already in camera coordinates. WHAM: ``pose`` (T,72),
  ``trans`` (T,3), ``betas``; GVHMR ``hmr4d_results.pt``: ``smpl_params_incam`` = {``global_orient`` (T,3),
  ``body_pose`` (T,63), ``betas``, ``transl``} (SMPL-X) with ``K_fullimg`` (T,3,3). ``.pt`` files are read with
  ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ...options import MOTION_EXPORT_FORMATS as EXPORT_FORMATS
from ...options import MOTION_FORMATS as FORMATS
from ...options import check_choice
from ...output_paths import new_file
from ...size_limits import MAX_MOTION_FRAMES
from ...weights import load_pickle_weights_only, read_npz_entries
from ..body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from ..body.safe_pickle import RestrictedUnpickler
from .sequence import (
    DEFAULT_FPS,
    SEQUENCE_KEYS,
    default_intrinsics,
    is_sequence_file,
    motion_entry_check,
    num_frames,
    numbers,
    scalar,
    sequence_from_arrays,
    validate_sequence,
)

logger = logging.getLogger(__name__)

# Pelvis of the SMPL neutral rest pose, used for AMASS world↔camera when no body model is given (only shifts the
# whole motion by a constant: the camera placement is arbitrary anyway).
APPROX_ROOT = np.array([0.0, -0.22, 0.03])
AMASS_FILL = 0.8


def _np(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _entry(arrays, key: str, layout: str, width: int | None = None, frames: int | None = None) -> np.ndarray:
    """``arrays[key]`` as float64 numbers, (T, width) when ``width`` is given (T = ``frames`` when known), or a
    ``ValueError`` naming the key and the layout (missing, not numbers, wrong shape)."""
    if not isinstance(arrays, dict) or key not in arrays:
        raise ValueError(f"{layout} lacks '{key}'.")
    value = numbers(_np(arrays[key]), key, layout, np.float64)
    if width is not None:
        if value.ndim != 2 or value.shape[1] < width or (frames is not None and value.shape[0] != frames) \
                or value.shape[0] == 0:
            want = f"({frames if frames is not None else 'T'},{width})"
            raise ValueError(f"{layout}: '{key}' must have shape {want}, got {value.shape}.")
    return value


# --------------------------------------------------------------------------------------------------------------
# 4D-Humans / HMR2


def _pick(frame: dict, *names):
    for source in (frame, frame.get("smpls") or {}, frame.get("pred_smpl_params") or {}):
        for name in names:
            if isinstance(source, dict) and name in source:
                return source[name]
    return None


def from_hmr2_frames(frames: list, image_size=None, fps: float = DEFAULT_FPS, person: int = 0) -> dict:
    """Build a sequence from per-frame HMR2 output dicts (``None`` or no person → an invalid frame).

    Each dict holds rotation matrices (``global_orient``, ``body_pose``), ``betas``, ``cam_t`` or
    ``pred_cam_t_full``, and optionally ``scaled_focal_length``/``focal_length``, ``render_res``/``img_size``
    (W,H) and ``box``; arrays may carry a leading person axis (``person`` picks one).
    """
    count = len(frames)
    if count == 0:
        raise ValueError("No HMR2 frames given.")
    orient = np.zeros((count, 3), np.float32)
    pose = np.zeros((count, 69), np.float32)
    betas = np.zeros((count, 10), np.float32)
    transl = np.zeros((count, 3), np.float32)
    focal = np.full(count, np.nan)
    valid = np.zeros(count, bool)
    bbox = np.zeros((count, 4), np.float32)
    size = None if image_size is None else tuple(int(v) for v in image_size)
    for t, frame in enumerate(frames):
        try:
            _read_hmr2_frame(frame, t, person, orient, pose, betas, transl, focal, bbox, valid)
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith("HMR2 frame"):
                raise
            raise ValueError(f"HMR2 frame {t}: {exc}") from None
        if size is None and isinstance(frame, dict) and valid[t]:
            res = _pick(frame, "render_res", "img_size")
            if res is not None:
                res = numbers(_np(res), "render_res", f"HMR2 frame {t}", np.float64).reshape(-1)
                if res.shape[0] < 2 or not np.isfinite(res[:2]).all():
                    raise ValueError(f"HMR2 frame {t}: 'render_res' must be (W,H), got {res.tolist()[:4]}.")
                size = tuple(int(round(float(v))) for v in res[:2])
    if size is None:
        raise ValueError("HMR2 frames carry no 'render_res'/'img_size'; give image_size=(W,H).")
    k = default_intrinsics(*size, frames=count)
    known = np.isfinite(focal)
    k[known, 0, 0] = k[known, 1, 1] = focal[known]
    return validate_sequence(dict(betas=betas, global_orient=orient, body_pose=pose, transl=transl, K=k,
                                  image_size=size, valid=valid, bbox=bbox, fps=fps, model_type="smpl",
                                  source="hmr2"), "HMR2 frames")


def _shaped(value, key: str, t: int, shape: tuple) -> np.ndarray:
    """``value`` reshaped to ``shape`` (-1 allowed), or a ``ValueError`` naming the frame and the key."""
    array = numbers(_np(value), key, f"HMR2 frame {t}", np.float64)
    try:
        return array.reshape(shape)
    except ValueError:
        raise ValueError(f"HMR2 frame {t}: '{key}' has {array.size} values in shape {array.shape}, which does not "
                         f"fit {shape} (persons × the layout's size).") from None


def _read_hmr2_frame(frame, t, person, orient, pose, betas, transl, focal, bbox, valid) -> None:
    """Fill row ``t`` from one HMR2 output dict (``None`` or no ``person`` → the row stays invalid)."""
    if frame is None:
        return
    if not isinstance(frame, dict):
        raise ValueError(f"HMR2 frame {t} must be a dict of arrays, got {type(frame).__name__}.")
    go = _pick(frame, "global_orient")
    if go is None:
        return
    go = _shaped(go, "global_orient", t, (-1, 3, 3))
    people = go.shape[0]
    if person >= people:
        return
    if _pick(frame, "body_pose") is None or _pick(frame, "betas") is None:
        raise ValueError(f"HMR2 frame {t} lacks 'body_pose' or 'betas'.")
    bp = _shaped(_pick(frame, "body_pose"), "body_pose", t, (people, 23, 3, 3))[person]
    cam = _pick(frame, "cam_t", "pred_cam_t_full")
    if cam is None:
        raise ValueError(f"HMR2 frame {t} has no 'cam_t' (or 'pred_cam_t_full'): the full-image camera "
                         "translation is needed.")
    shape = _shaped(_pick(frame, "betas"), "betas", t, (people, -1))[person, :10]
    if shape.shape[0] < 10:
        raise ValueError(f"HMR2 frame {t}: 'betas' must hold 10 values per person, got {shape.shape[0]}.")
    orient[t] = matrix_to_axis_angle(go[person])
    pose[t] = matrix_to_axis_angle(bp).reshape(69)
    betas[t] = shape
    transl[t] = _shaped(cam, "cam_t", t, (people, 3))[person]
    f = _pick(frame, "scaled_focal_length", "focal_length")
    if f is not None:
        focal[t] = float(numbers(_np(f), "scaled_focal_length", f"HMR2 frame {t}", np.float64).reshape(-1)[0])
    box = _pick(frame, "box", "bbox")
    if box is not None:
        boxes = _shaped(box, "box", t, (-1, 4))
        bbox[t] = boxes[min(person, boxes.shape[0] - 1)]
    valid[t] = True


def to_hmr2_frames(seq: dict) -> list:
    """Per-frame dicts in the 4D-Humans/Champ layout (invalid frames → ``None``)."""
    seq = validate_sequence(seq)
    width, height = seq["image_size"]
    out = []
    for t in range(num_frames(seq)):
        if not seq["valid"][t]:
            out.append(None)
            continue
        out.append({"smpls": {"global_orient": axis_angle_to_matrix(seq["global_orient"][t])[None, None].astype(np.float32),
                              "body_pose": axis_angle_to_matrix(seq["body_pose"][t].reshape(23, 3))[None].astype(np.float32),
                              "betas": seq["betas"][t][None].copy()},
                    "cam_t": seq["transl"][t][None].copy(), "scaled_focal_length": float(seq["K"][t, 0, 0]),
                    "render_res": np.array([width, height], np.float32), "box": seq["bbox"][t][None].copy()})
    return out


def _stack_hmr2(frames: list) -> dict:
    """Stacked-array form of HMR2 frames (one ``.npz``): invalid frames hold identities and valid=False."""
    count = len(frames)
    arrays = {"global_orient": np.tile(np.eye(3, dtype=np.float32), (count, 1, 1, 1)),
              "body_pose": np.tile(np.eye(3, dtype=np.float32), (count, 23, 1, 1)),
              "betas": np.zeros((count, 10), np.float32), "cam_t": np.zeros((count, 3), np.float32),
              "scaled_focal_length": np.zeros(count, np.float32), "box": np.zeros((count, 4), np.float32),
              "valid": np.zeros(count, bool)}
    for t, frame in enumerate(frames):
        if frame is None:
            continue
        arrays["global_orient"][t] = frame["smpls"]["global_orient"][0]
        arrays["body_pose"][t] = frame["smpls"]["body_pose"][0]
        arrays["betas"][t] = frame["smpls"]["betas"][0]
        arrays["cam_t"][t] = frame["cam_t"][0]
        arrays["scaled_focal_length"][t] = frame["scaled_focal_length"]
        arrays["box"][t] = frame["box"][0]
        arrays["render_res"] = frame["render_res"]
        arrays["valid"][t] = True
    return arrays


HMR2_PER_FRAME = ("global_orient", "body_pose", "betas", "cam_t", "pred_cam_t_full", "scaled_focal_length",
                  "focal_length", "box", "bbox", "valid")


def _unstack_hmr2(arrays: dict) -> list:
    layout = "HMR2 motion"
    for key in ("global_orient", "body_pose", "betas"):
        if key not in arrays:
            raise ValueError(f"{layout} lacks '{key}'.")
    count = _np(arrays["global_orient"]).shape[0]
    for key in HMR2_PER_FRAME:
        if key in arrays:
            value = numbers(_np(arrays[key]), key, layout, np.float64)
            if value.ndim == 0 or value.shape[0] != count:
                raise ValueError(f"{layout}: '{key}' must hold one entry per frame ({count}), got shape "
                                 f"{value.shape}.")
    valid = _np(arrays["valid"]).astype(bool) if "valid" in arrays else np.ones(count, bool)
    frames = []
    for t in range(count):
        if not valid[t]:
            frames.append(None)
            continue
        frame = {key: _np(arrays[key])[t] for key in ("global_orient", "body_pose", "betas") if key in arrays}
        for key in ("cam_t", "pred_cam_t_full", "scaled_focal_length", "focal_length", "box", "bbox"):
            if key in arrays:
                frame[key] = _np(arrays[key])[t]
        for key in ("render_res", "img_size"):
            if key in arrays:
                res = _np(arrays[key])
                frame[key] = res[t] if res.ndim == 2 else res
        frames.append(frame)
    return frames


def read_npy_dict(path) -> dict:
    """A ``.npy`` holding one pickled dict (Champ/4D-Humans per-frame files), read with the restricted unpickler."""
    import numpy.lib.format as npformat

    with open(path, "rb") as f:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f"{path}: unsupported .npy format version {version}.")
        if dtype != np.dtype(object):
            raise ValueError(f"{path} holds a plain {dtype} array, not an HMR2 output dict.")
        value = RestrictedUnpickler(f, encoding="latin1").load()
    value = np.asarray(value, dtype=object).reshape(shape)
    item = value.item() if value.size == 1 else None
    if not isinstance(item, dict):
        raise ValueError(f"{path} does not hold a dict of HMR2 outputs.")
    return item


# --------------------------------------------------------------------------------------------------------------
# AMASS (z-up world)


def _root_offset(model, betas, phenotype=None) -> np.ndarray:
    return APPROX_ROOT[None] if model is None else model.rest_joints(np.atleast_2d(betas), phenotype=phenotype)[:, 0]


def default_amass_camera(orient0, root0, height: float, image_size) -> tuple[np.ndarray, np.ndarray]:
    """World→camera rotation (rows: camera right, down, forward in world axes) and camera centre, for a
    level camera in front of the body at frame 0."""
    facing = axis_angle_to_matrix(orient0) @ np.array([0.0, 0.0, 1.0])
    facing[2] = 0.0
    norm = np.linalg.norm(facing)
    facing = facing / norm if norm > 1e-6 else np.array([0.0, -1.0, 0.0])
    forward, down = -facing, np.array([0.0, 0.0, -1.0])
    right = np.cross(down, forward)
    rotation = np.stack([right, down, forward])
    width, height_px = image_size
    k = default_intrinsics(width, height_px)
    distance = k[1, 1] * height / (AMASS_FILL * height_px)
    return rotation, np.asarray(root0, np.float64) + facing * distance


def from_amass(arrays: dict, image_size=(576, 1024), fps: float | None = None, model=None) -> dict:
    """AMASS-style arrays (z-up world) → sequence seen by a default camera (or the stored ``camera_rotation``/
    ``camera_position`` written by :func:`to_amass`)."""
    poses = _entry(arrays, "poses", "AMASS motion")
    trans = _entry(arrays, "trans", "AMASS motion")
    count = poses.shape[0] if poses.ndim else 0
    if poses.ndim != 2 or poses.shape[1] not in (72, 156, 165) or trans.shape != (count, 3):
        raise ValueError(f"AMASS 'poses' must be (T,72|156|165) and 'trans' (T,3); got {poses.shape}, {trans.shape}.")
    body = poses[:, 3:72] if poses.shape[1] == 72 else np.concatenate([poses[:, 3:66], np.zeros((count, 6))], 1)
    hands = None if poses.shape[1] == 72 else poses[:, -90:]  # SMPL-H (66:156) / SMPL-X (75:165) fingers
    betas = np.zeros(10)
    if "betas" in arrays:
        raw = _entry(arrays, "betas", "AMASS motion")
        betas = (raw[0] if raw.ndim == 2 else raw.reshape(-1))[:10]
        betas = np.pad(betas, (0, 10 - len(betas)))
    if fps is None:
        key = next((k for k in ("mocap_framerate", "mocap_frame_rate", "fps") if k in arrays), None)
        fps = scalar(_np(arrays[key]), key, "AMASS motion") if key else DEFAULT_FPS
    j0 = _root_offset(model, betas)[0]
    root_world = trans + j0
    if "camera_rotation" in arrays:
        rotation, centre = _entry(arrays, "camera_rotation", "AMASS motion"), _entry(arrays, "camera_position",
                                                                                       "AMASS motion")
        if rotation.shape != (3, 3) or centre.shape != (3,):
            raise ValueError(f"AMASS motion: 'camera_rotation' must be (3,3) and 'camera_position' (3,), got "
                             f"{rotation.shape}, {centre.shape}.")
    else:
        height = 1.7
        if model is not None:
            from .transfer import rest_height

            height = float(rest_height(model, betas[None])[0])
        rotation, centre = default_amass_camera(poses[0, :3], root_world[0], height, image_size)
    orient = matrix_to_axis_angle(rotation[None] @ axis_angle_to_matrix(poses[:, :3]))
    transl = (root_world - centre) @ rotation.T - j0
    seq = validate_sequence(dict(betas=betas, global_orient=orient, body_pose=body, transl=transl,
                                 image_size=tuple(int(v) for v in image_size), fps=fps, model_type="smpl",
                                 source="amass", hand_pose=hands), "AMASS motion")
    seq["camera_rotation"], seq["camera_position"] = rotation, centre
    return seq


def to_amass(seq: dict, model=None) -> dict:
    """Sequence → AMASS-style arrays (``poses`` (T,72), ``trans``, ``betas``, ``mocap_framerate``) in a z-up world
    whose camera pose is stored too (``camera_rotation``, ``camera_position``), so importing gives it back."""
    rotation = np.asarray(seq.get("camera_rotation", np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])), np.float64)
    centre = np.asarray(seq.get("camera_position", np.zeros(3)), np.float64)
    seq = validate_sequence(seq)
    betas = np.median(seq["betas"], 0)
    j0 = _root_offset(model, seq["betas"], seq.get("phenotype"))
    root_world = (seq["transl"] + j0) @ rotation + centre  # rotation is orthonormal: inverse = transpose
    orient = matrix_to_axis_angle(rotation.T[None] @ axis_angle_to_matrix(seq["global_orient"]))
    j0_world = _root_offset(model, betas, seq.get("phenotype"))[0]
    return {"poses": np.concatenate([orient, seq["body_pose"]], 1).astype(np.float32),
            "trans": (root_world - j0_world).astype(np.float32), "betas": betas.astype(np.float32),
            "mocap_framerate": np.float64(seq["fps"]), "gender": np.str_("neutral"),
            "camera_rotation": rotation, "camera_position": centre}


# --------------------------------------------------------------------------------------------------------------
# WHAM / GVHMR (camera space)


def from_camera_space(data: dict, image_size=None, fps: float | None = None) -> dict:
    """WHAM-style (``pose`` (T,72), ``trans``, ``betas``) or GVHMR-style (``smpl_params_incam``, ``K_fullimg``)."""
    if "smpl_params_incam" in data:
        params = data["smpl_params_incam"]
        layout = "GVHMR motion (smpl_params_incam)"
        missing = [k for k in ("global_orient", "body_pose", "betas", "transl")
                   if not isinstance(params, dict) or k not in params]
        if missing:
            raise ValueError(f"{layout} lacks {missing}.")
        seq = dict(global_orient=_entry(params, "global_orient", layout, 3),
                   body_pose=_entry(params, "body_pose", layout), betas=_entry(params, "betas", layout),
                   transl=_entry(params, "transl", layout, 3), model_type="smplx", source="gvhmr")
        if "K_fullimg" in data:
            k = _entry(data, "K_fullimg", "GVHMR motion").astype(np.float32)
            if k.shape[-2:] != (3, 3) or k.ndim not in (2, 3):
                raise ValueError(f"GVHMR motion: 'K_fullimg' must be (T,3,3) or (3,3), got {k.shape}.")
            seq["K"] = k if k.ndim == 3 else np.repeat(k[None], len(seq["transl"]), 0)
    elif "pose" in data and "trans" in data:
        pose = _entry(data, "pose", "WHAM motion", 72)
        seq = dict(global_orient=pose[:, :3], body_pose=pose[:, 3:72], betas=_entry(data, "betas", "WHAM motion"),
                   transl=_entry(data, "trans", "WHAM motion", 3, len(pose)), model_type="smpl", source="wham")
    else:
        raise ValueError(f"not a WHAM/GVHMR camera-space result (keys {sorted(data)[:10]}).")
    seq["image_size"] = image_size
    if fps is not None:
        seq["fps"] = fps
    if image_size is None and "K" not in seq:
        raise ValueError("camera-space motion without intrinsics: give the video size (W,H).")
    return validate_sequence(seq, "camera-space motion")


# --------------------------------------------------------------------------------------------------------------
# Files


MOTION_REMEDY = "Export the motion again (Save SMPL Motion, 4D-Humans, AMASS, WHAM/GVHMR) or download it again."


# the entries each layout reads (nothing else in a file is read)
LAYOUT_KEYS = {
    "motionguide": SEQUENCE_KEYS,
    "amass": ("poses", "trans", "betas", "mocap_framerate", "mocap_frame_rate", "fps", "camera_rotation",
              "camera_position"),
    "hmr2": HMR2_PER_FRAME + ("render_res", "img_size", "fps"),
    "camera_space": ("pose", "trans", "betas", "K_fullimg"),
}


def _read_npz(path: Path, fmt: str) -> tuple[str, dict]:
    """(layout, the entries it uses), read once each after their declared sizes were checked."""
    found = {}

    def choose(files, shapes):
        found["kind"] = detect_format(files, shapes) if fmt == "auto" else fmt
        return LAYOUT_KEYS[found["kind"]]

    arrays = read_npz_entries(path, "Motion file", choose, check=motion_entry_check(path, MOTION_REMEDY),
                              remedy=MOTION_REMEDY)
    return found["kind"], arrays


def detect_format(arrays, shapes: dict | None = None) -> str:
    """The layout from the entry names (and, for HMR2's rotation matrices, the declared shape)."""
    if is_sequence_file(arrays):
        return "motionguide"
    if "poses" in arrays and "trans" in arrays:
        return "amass"
    shape = (shapes or {}).get("global_orient")
    if shape is None and "global_orient" in arrays and isinstance(arrays, dict):
        shape = np.shape(arrays["global_orient"])
    if "global_orient" in arrays and tuple(shape or ())[-2:] == (3, 3):
        return "hmr2"
    if "smpl_params_incam" in arrays or ("pose" in arrays and "trans" in arrays):
        return "camera_space"
    raise ValueError(f"unknown motion layout (keys {sorted(arrays)[:12]}); expected MotionGuide, AMASS, "
                     "4D-Humans/HMR2 or WHAM/GVHMR arrays.")


def load_motion_file(path, fmt: str = "auto", image_size=None, fps: float | None = None, model=None) -> dict:
    """Read any supported motion file (a folder of HMR2 ``.npy`` files too) as an SMPL_SEQUENCE.

    Args:
        fmt (`str`, defaults to ``"auto"``): one of ``FORMATS``; ``auto`` decides from the keys.
        image_size (`(W,H)`, *optional*): frame size for formats without one (AMASS, WHAM).
        fps (`float`, *optional*): overrides the file's frame rate.
        model (`BodyModel`, *optional*): for exact AMASS world↔camera root maths.
    """

    path = Path(path)
    check_choice("format", fmt, FORMATS)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise FileNotFoundError(f"{path} holds no per-frame HMR2 .npy files.")
        if len(files) > MAX_MOTION_FRAMES:
            raise ValueError(f"Motion folder '{path}' holds {len(files)} .npy files; at most {MAX_MOTION_FRAMES} "
                             "frames (about 55 min at 30 fps) are read. Split the clip.")
        frames = [read_npy_dict(f) for f in files]
        return _converted(path, "hmr2", lambda: from_hmr2_frames(frames, image_size, fps or DEFAULT_FPS))
    if not path.is_file():
        raise FileNotFoundError(f"motion file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        frames = [read_npy_dict(path)]
        return _converted(path, "hmr2", lambda: from_hmr2_frames(frames, image_size, fps or DEFAULT_FPS))
    if suffix in (".pt", ".pth"):
        data = load_pickle_weights_only(path, "Motion file", remedy=MOTION_REMEDY)
        if not isinstance(data, dict):
            raise ValueError(f"Motion file '{path}' holds a {type(data).__name__}, not a dict of arrays. "
                             f"{MOTION_REMEDY}")
        kind = _converted(path, fmt, lambda: detect_format(data)) if fmt == "auto" else fmt
    elif suffix == ".npz":
        kind, data = _read_npz(path, fmt)
    else:
        raise ValueError(f"motion file {path.name}: expected .npz, .npy, .pt or a folder of .npy files.")
    if kind == "motionguide":
        seq = _converted(path, kind, lambda: sequence_from_arrays(data, str(path)))
        return dict(seq, fps=fps) if fps else seq
    if kind == "amass":
        return _converted(path, kind, lambda: from_amass(data, image_size or (576, 1024), fps, model))
    if kind == "hmr2":
        def hmr2():
            stored = scalar(data["fps"], "fps", "HMR2 motion") if "fps" in data else DEFAULT_FPS
            return from_hmr2_frames(_unstack_hmr2(data), image_size, fps or stored)
        return _converted(path, kind, hmr2)
    return _converted(path, kind, lambda: from_camera_space(data, image_size, fps))


def _converted(path: Path, kind: str, convert):
    """``convert()``, with any error about the content re-raised as one ``ValueError`` naming the file."""
    try:
        return convert()
    except ValueError as exc:
        text = str(exc)
        if str(path) in text:
            raise
        raise ValueError(f"Motion file '{path}' ({kind} layout): {text} {MOTION_REMEDY}") from None
    except (KeyError, IndexError, TypeError, AttributeError, OverflowError) as exc:
        raise ValueError(f"Motion file '{path}' ({kind} layout): its arrays do not fit the layout "
                         f"({type(exc).__name__}: {str(exc)[:120]}). {MOTION_REMEDY}") from None


def save_motion_file(seq: dict, path, fmt: str = "motionguide", model=None, overwrite: bool = False) -> Path:
    """Write ``seq`` as MotionGuide ``.npz``, stacked-HMR2 ``.npz`` or AMASS ``.npz``; never overwrites by default."""
    from .sequence import save_sequence

    if fmt == "motionguide":
        return save_sequence(seq, path, overwrite)
    check_choice("export format", fmt, EXPORT_FORMATS)
    path = Path(path).with_suffix(".npz")
    if os.path.lexists(path) and not overwrite:  # before the conversion work; new_file checks again when publishing
        raise FileExistsError(f"{path} already exists; choose another name (motion files are never overwritten).")
    if fmt == "hmr2":
        arrays = dict(_stack_hmr2(to_hmr2_frames(seq)), fps=np.float64(validate_sequence(seq)["fps"]))
    else:
        arrays = to_amass(seq, model)
    with new_file(path, overwrite) as tmp:
        np.savez(tmp, **arrays)
    return path
