"""SMPL / SMPL-X body models loaded through smplx with arrays passed as ``data_struct`` (no chumpy).

:func:`load_body_model` finds ``SMPL_{GENDER}.npz``/``.pkl`` (or ``SMPLX_{GENDER}.npz``) in a folder or takes a
file, reads it without executing anything (``.npz`` with ``allow_pickle=False``, ``.pkl`` through
:mod:`.safe_pickle`), checks the arrays and returns a :class:`BodyModel`, the ``SMPL_MODEL`` payload.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from ...weights import npz_array, open_npz
from .joints import OPENPOSE18_FROM_SMPL45, openpose18_from_smpl  # noqa: F401  (the map is re-exported)
from .safe_pickle import load_smpl_pickle

logger = logging.getLogger(__name__)

# SMPL-X joints giving the same 45-joint layout: 22 body joints, the middle-finger bases standing in for SMPL's
# hand joints, then the 21 vertex landmarks (nose ... right pinky tip).
SMPLX_TO_SMPL45 = list(range(22)) + [28, 43] + list(range(55, 76))
NUM_JOINTS = {"smpl": 24, "smplx": 55}
NUM_VERTICES = {"smpl": 6890, "smplx": 10475}
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
SMPL_SOURCE = ("SMPL files come from https://smpl.is.tue.mpg.de (free registration, MPI non-commercial licence; "
               "never redistributed)")
NUM_BETAS = 10


def _as_tensor(value, name: str, device, width: int | None = None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value, dtype=np.float32) if not torch.is_tensor(value) else value)
    t = t.to(device=device, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or (width is not None and t.shape[1] != width):
        raise ValueError(f"{name} must have shape (T,{width}); got {tuple(t.shape)}.")
    return t


class BodyModel:
    """A loaded SMPL or SMPL-X body model (the ``SMPL_MODEL`` socket payload).

    Attributes:
        model_type (`str`): ``"smpl"`` or ``"smplx"``.
        gender (`str`): ``"neutral"``, ``"male"`` or ``"female"``.
        faces (`np.ndarray`): (F,3) int64 triangle indices.
        part_labels (`np.ndarray`): (V,) int64 in 0..23, the argmax skinning weight over the first 24 joints
            (SMPL-X: jaw and eyes count as the head, finger joints as SMPL's hand parts).
        part_weights (`np.ndarray`): (V, 24) float32, the skinning weights summed per part (its argmax is
            ``part_labels``); the semantic map interpolates them across triangles for smooth part borders.
        num_vertices (`int`): V.
        parents (`np.ndarray`): (J,) kinematic parents, -1 for the root.
    """

    has_hands = False  # SMPL-X: True (set in __init__)
    shape_kind = "betas"  # see .interface.SMPLModel

    def __init__(self, arrays: dict, model_type: str = "smpl", gender: str = "neutral", source: str = "arrays"):
        self.model_type = model_type
        self.motion_types = (model_type,)
        self.has_hands = model_type == "smplx"
        self.gender = gender
        self.source = source
        self.arrays = check_model_arrays(arrays, model_type, source)
        self.faces = self.arrays["f"].astype(np.int64)
        self.num_vertices = int(self.arrays["v_template"].shape[0])
        weights = self.arrays["weights"]
        if model_type == "smplx":  # jaw/eyes → head, finger joints → SMPL's hand parts
            part_of = np.array(list(range(22)) + [15, 15, 15] + [22] * 15 + [23] * 15)
            self.part_labels = part_of[np.argmax(weights, axis=1)].astype(np.int64)
            summed = np.zeros((weights.shape[0], 24))
            np.add.at(summed.T, part_of, np.asarray(weights, np.float64).T)
        else:
            self.part_labels = np.argmax(weights[:, :24], axis=1).astype(np.int64)
            summed = np.asarray(weights[:, :24], np.float64)
        # (V, 24) soft part weights: the semantic map interpolates them, so part borders follow the skinning
        self.part_weights = summed.astype(np.float32)
        self.parents = self.arrays["kintree_table"][0].astype(np.int64)
        self.parents[0] = -1
        # Rest joints are linear in betas: J(β) = J_template + J_shapedirs·β (float64, for exact root maths).
        regressor = self.arrays["J_regressor"].astype(np.float64)
        shapedirs = self.arrays["shapedirs"][:, :, :NUM_BETAS].astype(np.float64)
        self.num_betas = shapedirs.shape[-1]
        self._joint_template = regressor @ self.arrays["v_template"].astype(np.float64)
        self._joint_shapedirs = np.einsum("jv,vcb->jcb", regressor, shapedirs)
        self._modules: dict[str, torch.nn.Module] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BodyModel({self.model_type}, {self.gender}, {self.num_vertices} vertices, from {self.source})"

    # ----------------------------------------------------------------------------------------------------------
    def _smplx_module(self, device) -> torch.nn.Module:
        key = str(device)
        with self._lock:
            if key not in self._modules:
                self._modules[key] = self._build_module().to(device).eval()
            return self._modules[key]

    def _build_module(self) -> torch.nn.Module:
        import smplx
        from smplx.utils import Struct

        quiet = io.StringIO()  # smplx prints a warning for 10-component shape spaces
        if self.model_type == "smpl":
            with contextlib.redirect_stdout(quiet):
                return smplx.SMPL("", data_struct=Struct(**self.arrays), num_betas=self.num_betas,
                                  gender=self.gender, create_betas=False, create_global_orient=False,
                                  create_body_pose=False, create_transl=False)
        # SMPLX reads its file itself (with allow_pickle=True); hand it a copy holding only the checked arrays.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"SMPLX_{self.gender.upper()}.npz")
            np.savez(path, **self.arrays)
            with contextlib.redirect_stdout(quiet):
                return smplx.SMPLX(path, ext="npz", gender=self.gender, num_betas=self.num_betas, use_pca=False,
                                   flat_hand_mean=True, num_expression_coeffs=10, create_betas=False,
                                   create_global_orient=False, create_body_pose=False, create_transl=False,
                                   create_left_hand_pose=False, create_right_hand_pose=False,
                                   create_jaw_pose=False, create_leye_pose=False, create_reye_pose=False,
                                   create_expression=False)

    # ----------------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, betas, global_orient, body_pose, transl=None, *, phenotype=None, hand_pose=None, device=None,
                batch_size: int = 64):
        """Posed vertices and joints.

        Args:
            betas (`array (T,10)` or `(10,)`): shape coefficients (broadcast over frames when 1-D).
            global_orient (`array (T,3)`): root rotation, axis-angle.
            body_pose (`array (T,69)`): 23 joint rotations, axis-angle (SMPL-X uses the first 21).
            transl (`array (T,3)`, *optional*): added to every vertex/joint (camera coordinates when it is the
                camera translation of an SMPL_SEQUENCE).
            device (`torch.device`, *optional*, defaults to CPU): where to compute and return.
            batch_size (`int`, defaults to 64): frames per smplx call.

        Returns:
            `(vertices (T,V,3), joints (T,45,3))` float32 tensors on ``device``.
        """
        device = torch.device(device or "cpu")
        orient = _as_tensor(global_orient, "global_orient", device, 3)
        pose = _as_tensor(body_pose, "body_pose", device, 69)
        frames = orient.shape[0]
        shape = _as_tensor(betas, "betas", device)
        if shape.shape[1] < self.num_betas:
            shape = torch.nn.functional.pad(shape, (0, self.num_betas - shape.shape[1]))
        shape = shape[:, : self.num_betas].expand(frames, -1) if shape.shape[0] == 1 else shape[:, : self.num_betas]
        trans = torch.zeros(frames, 3, device=device) if transl is None else _as_tensor(transl, "transl", device, 3)
        if pose.shape[0] != frames or shape.shape[0] != frames or trans.shape[0] != frames:
            raise ValueError(f"frame counts differ: betas {shape.shape[0]}, global_orient {frames}, "
                             f"body_pose {pose.shape[0]}, transl {trans.shape[0]}.")
        hands = None
        if hand_pose is not None and self.model_type == "smplx":
            hands = _as_tensor(hand_pose, "hand_pose", device, 90)
        elif hand_pose is not None:
            logger.info("The sequence carries SMPL-H/X finger poses but the %s body has no finger joints: hands "
                        "dropped (load an SMPL-X file or the built-in Anny body to use them).", self.model_type)
        module = self._smplx_module(device)
        verts, joints = [], []
        for start in range(0, frames, max(int(batch_size), 1)):
            sl = slice(start, start + batch_size)
            if self.model_type == "smpl":
                out = module(betas=shape[sl], global_orient=orient[sl], body_pose=pose[sl], transl=trans[sl])
                joints.append(out.joints)
            else:
                n = orient[sl].shape[0]
                zeros3, zeros45 = torch.zeros(n, 3, device=device), torch.zeros(n, 45, device=device)
                left, right = (zeros45, zeros45) if hands is None else (hands[sl, :45], hands[sl, 45:])
                out = module(betas=shape[sl], global_orient=orient[sl], body_pose=pose[sl, :63], transl=trans[sl],
                             left_hand_pose=left, right_hand_pose=right, jaw_pose=zeros3, leye_pose=zeros3,
                             reye_pose=zeros3, expression=torch.zeros(n, 10, device=device))
                joints.append(out.joints[:, SMPLX_TO_SMPL45])
            verts.append(out.vertices)
        if not verts:
            return torch.zeros(0, self.num_vertices, 3, device=device), torch.zeros(0, 45, 3, device=device)
        return torch.cat(verts).float(), torch.cat(joints).float()

    __call__ = forward

    @staticmethod
    def openpose18(joints: torch.Tensor) -> torch.Tensor:
        """OpenPose-18 3D points `(T,18,3)` from :meth:`forward`'s joints (hips pushed outward like HMR2)."""
        return openpose18_from_smpl(joints)

    def rest_vertices(self, betas=None, phenotype=None) -> np.ndarray:
        """(V,3) float64 template shaped by ``betas`` (first row; zeros when None)."""
        b = np.zeros((1, self.num_betas)) if betas is None else np.atleast_2d(np.asarray(betas, np.float64))
        b = b[:1, : self.num_betas]
        dirs = self.arrays["shapedirs"][:, :, : b.shape[1]].astype(np.float64)
        return self.arrays["v_template"].astype(np.float64) + np.einsum("vcb,b->vc", dirs, b[0])

    def rest_height(self, betas, phenotype=None) -> np.ndarray:
        """(T,) standing height in metres: vertical extent of the shaped rest mesh (SMPL's y is up)."""
        b = np.atleast_2d(np.asarray(betas, dtype=np.float64))[:, : self.num_betas]
        dirs = self.arrays["shapedirs"][:, :, : b.shape[1]].astype(np.float64)
        v = self.arrays["v_template"][None].astype(np.float64) + np.einsum("vcb,tb->tvc", dirs, b)
        return v[..., 1].max(1) - v[..., 1].min(1)

    def rest_joints(self, betas, phenotype=None) -> np.ndarray:
        """(T,24,3) float64 joints regressed from the shaped rest template (no pose, no translation)."""
        b = np.asarray(betas.detach().cpu() if torch.is_tensor(betas) else betas, dtype=np.float64)
        b = np.atleast_2d(b)
        b = np.pad(b, ((0, 0), (0, max(self.num_betas - b.shape[1], 0))))[:, : self.num_betas]
        joints = self._joint_template[None] + np.einsum("jcb,tb->tjc", self._joint_shapedirs, b)
        return joints[:, :24]


# --------------------------------------------------------------------------------------------------------------
# Loading


def check_model_arrays(arrays: dict, model_type: str, source: str = "arrays") -> dict:
    """Check keys and shapes of body-model arrays; return float32/int copies of the required ones."""
    if model_type not in NUM_JOINTS:
        raise ValueError(f"model_type must be 'smpl' or 'smplx', got {model_type!r}.")
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{source} is not an {model_type.upper()} model file: missing {missing} "
                         f"(found {sorted(arrays)[:12]}).")
    out = {}
    for key in REQUIRED_KEYS:
        value = np.asarray(arrays[key])
        if value.dtype == object:
            raise ValueError(f"{source}: '{key}' is not a numeric array.")
        out[key] = value
    joints = NUM_JOINTS[model_type]
    verts = out["v_template"].shape[0]
    expected = {"v_template": (verts, 3), "J_regressor": (joints, verts), "weights": (verts, joints),
                "kintree_table": (2, joints)}
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise ValueError(f"{source}: '{key}' has shape {out[key].shape}, expected {shape} for {model_type}.")
    if out["shapedirs"].ndim != 3 or out["shapedirs"].shape[:2] != (verts, 3):
        raise ValueError(f"{source}: 'shapedirs' has shape {out['shapedirs'].shape}, expected ({verts},3,B).")
    if out["posedirs"].shape[:2] != (verts, 3) or out["posedirs"].shape[-1] != 9 * (joints - 1):
        raise ValueError(f"{source}: 'posedirs' has shape {out['posedirs'].shape}, "
                         f"expected ({verts},3,{9 * (joints - 1)}).")
    if out["f"].ndim != 2 or out["f"].shape[1] != 3 or out["f"].max() >= verts:
        raise ValueError(f"{source}: 'f' must be (F,3) vertex indices below {verts}.")
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        out[key] = out[key].astype(np.float32)
        if not np.isfinite(out[key]).all():
            raise ValueError(f"{source}: '{key}' holds NaN or inf values.")
    out["kintree_table"] = out["kintree_table"].astype(np.int64)
    out["f"] = out["f"].astype(np.int64)
    for key, value in arrays.items():  # SMPL-X extras (landmarks, hand PCA) pass through unchanged
        if key not in out and key != "J" and isinstance(value, np.ndarray) and value.dtype != object:
            out[key] = value
    return out


def read_model_arrays(path) -> dict:
    """Arrays of a ``.npz`` (no pickled objects allowed) or ``.pkl`` (restricted unpickler) model file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return load_smpl_pickle(path)
    if suffix == ".npz":
        arrays, skipped = {}, []
        with open_npz(path, "SMPL model file", "smpl_neutral") as data:
            for key in data.files:
                # object arrays (e.g. SMPL-X 'joint2num' dicts) would need pickle: skipped; a damaged entry: error
                value = npz_array(data, key, path, "SMPL model file", "smpl_neutral", skip_objects=True)
                if value is None:
                    skipped.append(key)
                else:
                    arrays[key] = value
        if skipped:
            logger.info("%s: skipped non-array entries %s", path.name, skipped)
        return arrays
    raise ValueError(f"SMPL model file {path} must be .npz or .pkl, got '{suffix}'.")


def _find_model_file(directory: Path, gender: str, model_type: str | None) -> Path:
    prefixes = ["SMPLX"] if model_type == "smplx" else ["SMPL"] if model_type == "smpl" else ["SMPL", "SMPLX"]
    tried = []
    for prefix in prefixes:
        for folder in (directory, directory / prefix.lower()):
            for ext in (".npz", ".pkl"):
                candidate = folder / f"{prefix}_{gender.upper()}{ext}"
                tried.append(candidate.name)
                if candidate.is_file():
                    return candidate
    names = " or ".join(dict.fromkeys(tried))
    raise FileNotFoundError(f"No body model file {names} in {directory}. {SMPL_SOURCE}; place them in that folder.")


def _infer_model_type(path: Path, arrays: dict) -> str:
    if path.name.upper().startswith("SMPLX"):
        return "smplx"
    regressor = arrays.get("J_regressor")
    if regressor is not None and np.shape(regressor)[0] == NUM_JOINTS["smplx"]:
        return "smplx"
    return "smpl"


_CACHE: dict[tuple, BodyModel] = {}
_CACHE_LOCK = threading.Lock()


def load_body_model(path_or_dir, gender: str = "neutral", model_type: str | None = None) -> BodyModel:
    """Load an SMPL/SMPL-X model from a file or a folder holding ``SMPL_{GENDER}.npz|pkl``.

    Args:
        path_or_dir (`str` or `Path`): model file, or the folder to look in (also its ``smplx/`` sub-folder).
        gender (`str`, defaults to ``"neutral"``): used for the file name in a folder and recorded on the model.
        model_type (`str`, *optional*): ``"smpl"`` or ``"smplx"``; inferred from the file name / arrays if unset.

    Raises:
        `FileNotFoundError` naming the expected files, the folder and where to get them; `ValueError` for files
        in the wrong format; `safe_pickle.UnsafePickleError` for pickles holding anything but arrays.
    """
    gender = gender.lower()
    if gender not in ("neutral", "male", "female"):
        raise ValueError(f"gender must be neutral, male or female, got {gender!r}.")
    path = Path(path_or_dir).expanduser()
    if path.is_dir():
        path = _find_model_file(path, gender, model_type)
    elif not path.is_file():
        raise FileNotFoundError(f"SMPL model file {path} does not exist (expected SMPL_NEUTRAL.pkl or "
                                f"SMPL_NEUTRAL.npz in {path.parent}). {SMPL_SOURCE}.")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, gender, model_type)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    arrays = read_model_arrays(path)
    kind = model_type or _infer_model_type(path, arrays)
    model = BodyModel(arrays, kind, gender, source=str(path))
    with _CACHE_LOCK:
        _CACHE[key] = model
    logger.info("Loaded %r", model)
    return model
