"""``NLFPRED``: the 3D-joint interchange type of the Wan-based animators (SCAIL, MTVCrafter; research/animators.md).

kijai's ``NLFPredict`` returns ``{"joints3d_nonparam": [frames]}`` where ``frames`` is a list with one float32
tensor ``(persons, 24, 3)`` per video frame: SMPL's 24 joints in NLF's camera space, **millimetres, OpenCV axes**
(x right, y down, z forward). Consumers read ``nlf["joints3d_nonparam"][0]`` (the frame list) and render it with
NLF's default camera: a pinhole with a 55° field of view on the longer image side, principal point at the image
centre (:func:`fov_intrinsics`).

An ``SMPL_SEQUENCE`` already lives in OpenCV camera space (metres), so its joints export unchanged, ×1000. Two
cameras:

- ``"sequence"``: the joints stay where they are; the matching intrinsics are the sequence's (rescaled to the
  output size). Exact for consumers that take intrinsics.
- ``"nlf_fov55"``: for consumers that assume NLF's camera (kijai's ``RenderNLFPoses``). A rigid body cannot keep
  its exact image under a change of focal length, so the body is moved along its viewing ray (a dolly): each
  frame's pelvis goes to depth ``z·f₅₅/f`` and to the 3D point that projects to the pelvis's old pixel under the
  new camera. The pelvis lands on the same pixel and the body keeps its image size to first order (weak
  perspective); the perspective foreshortening changes slightly, as with a real dolly zoom.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ...options import NLF_CAMERAS as CAMERAS
from ...options import check_choice
from ...pinhole import output_size, scale_intrinsics
from ..motion.posing import pose_sequence
from ..motion.sequence import OPTIONAL_PER_FRAME, PER_FRAME, num_frames, validate_sequence

NLF_KEY = "joints3d_nonparam"
NLF_FOV_DEGREES = 55.0
NUM_JOINTS = 24
MM_PER_M = 1000.0


def fov_intrinsics(width: int, height: int, fov_degrees: float = NLF_FOV_DEGREES) -> np.ndarray:
    """NLF's default camera for a ``width`` × ``height`` image: f = max(W, H) / (2·tan(fov/2)), centre (W/2, H/2)."""
    focal = max(width, height) / (2.0 * math.tan(math.radians(fov_degrees) / 2.0))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64)


def dolly_to_camera(joints: np.ndarray, K_from: np.ndarray, K_to: np.ndarray, anchor: int = 0) -> np.ndarray:
    """Move each frame's joints `(T, J, 3)` along the anchor joint's viewing ray so that, seen through ``K_to``
    `(T, 3, 3)`, the anchor sits on the pixel it had through ``K_from`` and the body keeps its image size."""
    joints = np.asarray(joints, dtype=np.float64)
    root = joints[:, anchor]
    z = root[:, 2]
    u = K_from[:, 0, 0] * root[:, 0] / z + K_from[:, 0, 2]
    v = K_from[:, 1, 1] * root[:, 1] / z + K_from[:, 1, 2]
    scale = K_to[:, 0, 0] / K_from[:, 0, 0]
    z_new = z * scale
    new_root = np.stack([(u - K_to[:, 0, 2]) * z_new / K_to[:, 0, 0],
                         (v - K_to[:, 1, 2]) * z_new / K_to[:, 1, 1], z_new], -1)
    return joints + (new_root - root)[:, None]


JOINT_CHUNK = 256  # frames posed at once: only their joints are kept (a whole 10,000-frame mesh took 5.3 GB)


def sequence_joints(model, seq: dict, callback=None, chunk: int = JOINT_CHUNK) -> np.ndarray:
    """SMPL-layout 24 joints `(T, 24, 3)` in metres, camera space, of the sequence posed on ``model``.

    Posed ``chunk`` frames at a time and only the joints kept, so memory stays at one chunk's vertices
    (~256 × 14k × 12 B ≈ 42 MB for the built-in body) whatever the length; ``callback(done, total)`` after
    each chunk (progress and Cancel)."""
    seq = validate_sequence(seq)
    frames = num_frames(seq)
    out = np.empty((frames, NUM_JOINTS, 3))
    for start in range(0, frames, chunk):
        stop = min(start + chunk, frames)
        part = dict(seq)
        for key in PER_FRAME + OPTIONAL_PER_FRAME:
            if key in seq:
                part[key] = seq[key][start:stop]
        _, joints = pose_sequence(model, part)
        out[start:stop] = joints[:, :NUM_JOINTS].double().numpy()
        if callback is not None:
            callback(stop, frames)
    return out


def sequence_in_camera(model, seq: dict, *, width: int = 0, height: int = 0, camera: str = "sequence") -> dict:
    """The sequence framed for a ``width`` × ``height`` image in ``camera``: intrinsics rescaled to that size and,
    for ``"nlf_fov55"``, NLF's camera with every frame's body dollied (:func:`dolly_to_camera` on the pelvis, the
    same shift added to ``transl``), so meshes, capsules and keypoints rendered from it all agree."""
    check_choice("camera", camera, CAMERAS)
    seq = validate_sequence(seq)
    size = output_size(seq, width, height)
    out = dict(seq, image_size=size)
    K_seq = scale_intrinsics(seq["K"], seq["image_size"], size).double().numpy()
    if camera == "sequence":
        out["K"] = K_seq.astype(np.float32)
        return out
    K = np.repeat(fov_intrinsics(*size)[None], len(K_seq), 0)
    pelvis = sequence_joints(model, seq)[:, :1]
    shift = dolly_to_camera(pelvis, K_seq, K)[:, 0] - pelvis[:, 0]
    out["transl"] = (seq["transl"].astype(np.float64) + shift).astype(np.float32)
    out["K"] = K.astype(np.float32)
    return out


def sequence_to_nlf(model, seq: dict, *, width: int = 0, height: int = 0, camera: str = "sequence"):
    """``(nlfpred, K (3, 3), (W, H))`` of an SMPL_SEQUENCE posed on ``model``.

    ``width``/``height`` 0 keep the sequence's ``image_size``. ``K`` is the first frame's intrinsics at that size
    (``"nlf_fov55"``: NLF's camera). Frames without a person (``valid`` False) keep their filled-in joints, so
    every consumer sees one person per frame.
    """
    framed = sequence_in_camera(model, seq, width=width, height=height, camera=camera)
    joints = sequence_joints(model, framed)
    frames = [torch.from_numpy((j * MM_PER_M).astype(np.float32))[None] for j in joints]
    return {NLF_KEY: [frames]}, framed["K"][0], tuple(framed["image_size"])


def nlf_frames(nlfpred, name: str = "nlf_poses") -> list[np.ndarray]:
    """Per-frame float64 arrays `(persons, 24, 3)` in millimetres from an NLFPRED (also a bare frame list)."""
    frames = nlfpred
    if isinstance(nlfpred, dict):
        if NLF_KEY not in nlfpred:
            raise ValueError(f"{name} has no {NLF_KEY!r} key (keys: {sorted(nlfpred)}); connect the NLFPRED output "
                             "of NLF Predict or of SMPL to NLF.")
        frames = nlfpred[NLF_KEY]
        if len(frames) == 1 and isinstance(frames[0], (list, tuple)):
            frames = frames[0]
    if not isinstance(frames, (list, tuple)) or not frames:
        raise ValueError(f"{name} holds no frames; it must be NLFPRED ({{'{NLF_KEY}': [[tensor(persons, 24, 3), "
                         "...]]}}).")
    out = []
    for i, frame in enumerate(frames):
        if frame is None:
            out.append(np.zeros((0, NUM_JOINTS, 3)))
            continue
        try:
            array = frame.detach().cpu().double().numpy() if torch.is_tensor(frame) else np.asarray(frame, np.float64)
        except (TypeError, ValueError, RecursionError):
            raise ValueError(f"{name} frame {i} holds {type(frame).__name__} that is not numbers; NLFPRED frames are "
                             f"(persons, {NUM_JOINTS}, 3) SMPL-24 joints in millimetres.") from None
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"{name} frame {i} has shape {tuple(array.shape)}; NLFPRED frames are "
                             f"(persons, {NUM_JOINTS}, 3) SMPL-24 joints in millimetres.")
        out.append(array)
    return out


def first_person_track(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The first person's joints `(T, 24, 3)` mm and a `(T,)` bool of frames that had one (gaps filled from the
    nearest frame with a person)."""
    valid = np.array([f.shape[0] > 0 and np.isfinite(f[0]).all() and np.abs(f[0]).sum() > 0 for f in frames])
    if not valid.any():
        raise ValueError("The NLFPRED holds no person in any frame; run NLF Predict on a video with a person.")
    joints = np.zeros((len(frames), NUM_JOINTS, 3))
    have = np.flatnonzero(valid)
    for t in range(len(frames)):
        source = t if valid[t] else have[np.argmin(np.abs(have - t))]
        joints[t] = frames[source][0]
    return joints, valid
