"""SMPL nodes: load a body model, load/save 3D motion, smooth it, transfer the reference shape, move the camera.

Thin wrappers: the work is in ``pipelines/smpl`` (imported inside each call, so loading the pack stays light).
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..pipelines import options
from ..pipelines.smpl.body.loaders import ANNY
from . import sockets as S
from .comfy_adapter import (
    Progress,
    body_folder,
    check_interrupt,
    input_directory,
    input_path,
    list_model_files,
    model_folder_paths,
    output_directory,
    resolve_model_path,
)
from .model_check import check_model_input
from .sample_inputs import sample_input

logger = logging.getLogger(__name__)

CATEGORY = "MotionGuide/smpl"
ANNY_MODEL = ANNY  # the default built-in body
AUTO_MODEL = "auto (by gender)"
GENDERS = list(options.BODY_GENDERS)
MOTION_EXTENSIONS = (".npz", ".npy", ".pt", ".pth")
FORMATS = list(options.MOTION_FORMATS)
EXPORT_FORMATS = list(options.MOTION_EXPORT_FORMATS)
SMPL_SOURCE = "https://smpl.is.tue.mpg.de (free registration; MPI non-commercial licence, never redistributed)"


def _motion_files() -> list[str]:
    base = input_directory()
    if not base.is_dir():
        return []
    found = []
    for path in base.rglob("*"):
        if path.is_file() and path.suffix.lower() in MOTION_EXTENSIONS:
            found.append(path.relative_to(base).as_posix())
    return sorted(found)


def _motion_path(motion_file: str, path_override: str) -> Path:
    name = (path_override or "").strip() or motion_file
    if not name:
        raise FileNotFoundError(f"No motion file chosen: put one in {input_directory()} or type a path.")
    candidate = input_path(name, "Motion file")
    if not candidate.exists() and sample_input(name) is not None:  # a template's sample, not copied in (yet)
        return sample_input(name)
    if not candidate.exists():
        raise FileNotFoundError(f"Motion file or folder '{name}' not found (looked at {candidate}).")
    if candidate.is_dir():  # a folder of per-frame files: none of them may lead out either
        for item in candidate.glob("*.npy"):
            input_path(item, "Motion file")
    return candidate


def _check_motion(value, name: str) -> dict:
    if not isinstance(value, dict) or "global_orient" not in value:
        raise ValueError(f"'{name}' must be an SMPL_SEQUENCE (from Load SMPL Motion or Estimate SMPL), "
                         f"got {type(value).__name__}.")
    return value


_WARNED: set[str] = set()


class MotionGuideLoadSMPLModel:
    """Load Body Model: a built-in body (no files; pipelines/smpl/body/loaders.py) or SMPL/SMPL-X from models/smpl."""

    @classmethod
    def INPUT_TYPES(cls):
        from ..pipelines.smpl.body.loaders import body_loader, body_names

        files = list_model_files("smpl")
        builtin = body_names()
        tips = ""
        for name in builtin:
            loader = body_loader(name)
            reason = loader.unavailable()
            if reason and reason not in _WARNED:  # the choice stays (saved workflows keep binding to it)
                _WARNED.add(reason)
                logger.warning("Load Body Model: '%s' is unavailable: %s.", name, reason)
            tips += loader.tooltip
        return {"required": {
            "model_file": (builtin + [AUTO_MODEL] + files, {
                "default": AUTO_MODEL if files else builtin[0],
                "tooltip": tips + "'auto' picks SMPL_<GENDER>.npz or .pkl in models/smpl for the gender "
                           "below; SMPL files come from smpl.is.tue.mpg.de (MPI licence)."}),
            "gender": (GENDERS, {"default": "neutral",
                                 "tooltip": "Which SMPL file: HMR2 and most estimators use the neutral one (the "
                                            "Anny body's shape is set with Set Body Shape instead)."}),
        }}

    RETURN_TYPES = (S.SMPL_MODEL,)
    RETURN_NAMES = ("smpl_model",)
    OUTPUT_TOOLTIPS = ("The loaded body model (mesh, joints, faces, 24 part labels) that plays SMPL-format motion.",)
    FUNCTION = "load"
    CATEGORY = "MotionGuide/loaders"
    DESCRIPTION = ("Loads the body that performs SMPL-format motion: the built-in licence-free Anny body (default, "
                   "no files) or an SMPL/SMPL-X file from models/smpl (official pickles read without chumpy).")

    @classmethod
    def VALIDATE_INPUTS(cls, model_file):
        from ..pipelines.smpl.body.loaders import body_names

        return True if model_file == AUTO_MODEL or model_file in body_names() else check_model_input(("smpl",),
                                                                                                     model_file)

    def load(self, model_file, gender):
        from ..pipelines.smpl.body.loaders import body_names

        if model_file in body_names():
            return (load_builtin_body(model_file),)
        from ..pipelines.smpl.body.body_model import load_body_model

        if model_file != AUTO_MODEL:
            return (load_body_model(resolve_model_path("smpl", model_file), gender=gender),)
        folders = model_folder_paths("smpl")
        for folder in folders:
            if folder.is_dir():
                try:
                    return (load_body_model(folder, gender=gender),)
                except FileNotFoundError:
                    continue
        names = f"SMPL_{gender.upper()}.pkl or SMPL_{gender.upper()}.npz"
        raise FileNotFoundError(f"No SMPL body model found: expected {names} in "
                                f"{', '.join(str(f) for f in folders)}. Download it from {SMPL_SOURCE} and place "
                                f"it in that folder, or choose '{body_names()[0]}' (no files needed).")


def load_builtin_body(name: str = ANNY_MODEL):
    """A built-in body by its Load Body Model name (default: the Anny body, its cache in models/anny or
    $ANNY_CACHE_DIR), with a progress bar on a first-use build."""
    from ..pipelines.smpl.body.anny_cache import AnnyUnavailable
    from ..pipelines.smpl.body.loaders import body_loader

    loader = body_loader(name)
    progress = Progress(100, f"Preparing the body '{name}' (once)")
    try:
        return loader.load(body_folder(loader.folder), callback=progress.callback)
    except AnnyUnavailable as exc:
        raise RuntimeError(f"{exc} Or choose an SMPL file in Load Body Model.") from exc


class MotionGuideLoadSMPLMotion:
    """Load SMPL Motion: our .npz, 4D-Humans/HMR2 outputs, AMASS, WHAM/GVHMR."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion_file": (_motion_files() or [""], {
                    "tooltip": "Motion file in ComfyUI's input folder (.npz, .npy, .pt)."}),
                "format": (FORMATS, {"default": "auto",
                                     "tooltip": "File layout; 'auto' recognises it from the arrays inside."}),
                "width": ("INT", {"default": 576, "min": 16, "max": 8192, "step": 8,
                                  "tooltip": "Frame width for formats that carry no camera (AMASS, WHAM)."}),
                "height": ("INT", {"default": 1024, "min": 16, "max": 8192, "step": 8,
                                   "tooltip": "Frame height for formats that carry no camera (AMASS, WHAM)."}),
                "fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.5,
                                  "tooltip": "Frame rate; 0 keeps the file's own (30 when it has none)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "Instead of the list: a file or a folder of per-frame "
                                                             "HMR2 .npy files inside ComfyUI's input folder "
                                                             "(relative to it)."}),
                "smpl_model": (S.SMPL_MODEL, {"tooltip": "Body model for exact AMASS world→camera conversion."}),
            },
        }

    RETURN_TYPES = (S.SMPL_SEQUENCE, "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frame_count", "fps")
    OUTPUT_TOOLTIPS = ("The motion as an SMPL sequence in camera coordinates.", "Number of frames.",
                       "Frames per second.")
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Loads a 3D body motion (MotionGuide .npz, 4D-Humans/HMR2, AMASS, WHAM/GVHMR) as an SMPL sequence."

    @classmethod
    def VALIDATE_INPUTS(cls, motion_file, path=""):
        """The file exists (in the input folder, or a template's shipped sample): checked when the workflow is
        queued, with the folder in the message, instead of ComfyUI's bare "not in list"."""
        if motion_file is None and not path:  # linked from another node
            return True
        try:
            _motion_path(motion_file or "", path or "")
        except (FileNotFoundError, ValueError) as exc:
            return str(exc)
        return True

    @classmethod
    def IS_CHANGED(cls, motion_file, format, width, height, fps, path="", smpl_model=None):
        try:
            target = _motion_path(motion_file, path)
            return f"{target}:{target.stat().st_mtime_ns}"
        except (FileNotFoundError, ValueError):
            return float("nan")

    def load(self, motion_file, format, width, height, fps, path="", smpl_model=None):
        from ..pipelines.smpl.motion.importers import load_motion_file

        target = _motion_path(motion_file, path)
        seq = load_motion_file(target, format, image_size=(width, height), fps=fps or None, model=smpl_model)
        logger.info("Loaded %d frames of SMPL motion from %s", len(seq["valid"]), target)
        return (seq, int(len(seq["valid"])), float(seq["fps"]))


class MotionGuideSaveSMPLMotion:
    """Save SMPL Motion to ComfyUI's output folder, never overwriting."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": (S.SMPL_SEQUENCE, {"tooltip": "The SMPL sequence to save."}),
                "filename_prefix": ("STRING", {"default": "motionguide/smpl_motion",
                                               "tooltip": "Path under the output folder; a counter is appended."}),
                "format": (EXPORT_FORMATS, {"default": "motionguide",
                                            "tooltip": "motionguide: everything incl. camera; hmr2: 4D-Humans "
                                                       "arrays; amass: z-up world motion."}),
            },
            "optional": {"smpl_model": (S.SMPL_MODEL, {"tooltip": "Body model for exact AMASS root conversion."})},
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the written .npz file.",)
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY
    DESCRIPTION = "Saves an SMPL sequence as .npz (MotionGuide, 4D-Humans or AMASS layout) without overwriting."

    def save(self, motion, filename_prefix, format, smpl_model=None):
        from ..pipelines.output_paths import save_new
        from ..pipelines.smpl.motion.importers import save_motion_file

        _check_motion(motion, "motion")
        written = save_new(output_directory(), filename_prefix or "smpl_motion", ".npz",
                           lambda path: save_motion_file(motion, path, format, model=smpl_model),
                           check_cancel=check_interrupt)
        logger.info("Saved SMPL motion to %s", written)
        return {"ui": {"text": [str(written)]}, "result": (str(written),)}


class MotionGuideSmoothSMPL:
    """Smooth SMPL Motion: one body shape, smooth rotations and path, frames without a person filled."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": (S.SMPL_SEQUENCE, {"tooltip": "The SMPL sequence to clean up (e.g. per-frame estimates)."}),
                "betas": (list(options.BETAS_MODES), {"default": "median",
                                               "tooltip": "median: one body shape for the whole clip; keep: as is."}),
                "rotation_window": ("INT", {"default": 9, "min": 1, "max": 61, "step": 2,
                                            "tooltip": "Savitzky–Golay window (frames) for joint rotations; "
                                                       "1 = off. Larger = smoother, less detail."}),
                "rotation_space": (list(options.ROTATION_SPACES), {"default": "quaternion",
                                                          "tooltip": "Continuous representation filtered."}),
                "translation_filter": (list(options.TRANSLATION_FILTERS), {
                    "default": "savgol", "tooltip": "Filter for the body path: Savitzky–Golay, One-Euro (adapts to "
                                                    "speed) or none."}),
                "translation_window": ("INT", {"default": 9, "min": 3, "max": 61, "step": 2,
                                               "tooltip": "Savitzky–Golay window (frames) for the path."}),
                "one_euro_min_cutoff": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 30.0, "step": 0.05,
                                                  "tooltip": "One-Euro cutoff in Hz at rest: lower = smoother."}),
                "one_euro_beta": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 10.0, "step": 0.01,
                                            "tooltip": "One-Euro speed coefficient: higher = less lag on fast moves."}),
                "fill_gaps": ("BOOLEAN", {"default": True,
                                          "tooltip": "Interpolate frames where no person was found first."}),
            },
            "optional": {
                "smpl_model": (S.SMPL_MODEL, {"tooltip": "Body model of the motion: with betas=median it keeps the "
                                                         "pelvis where it was estimated (root compensation)."}),
            },
        }

    RETURN_TYPES = (S.SMPL_SEQUENCE,)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The smoothed SMPL sequence.",)
    FUNCTION = "smooth"
    CATEGORY = CATEGORY
    DESCRIPTION = "Removes per-frame jitter from an SMPL motion and fills frames without a person."

    def smooth(self, motion, betas, rotation_window, rotation_space, translation_filter, translation_window,
               one_euro_min_cutoff, one_euro_beta, fill_gaps, smpl_model=None):
        from ..pipelines.smpl.motion.smoothing import smooth_sequence

        seq = smooth_sequence(_check_motion(motion, "motion"), model=smpl_model, betas=betas, rotation_window=rotation_window,
                              rotation_space=rotation_space, translation_filter=translation_filter,
                              translation_window=translation_window, one_euro_min_cutoff=one_euro_min_cutoff,
                              one_euro_beta=one_euro_beta, fill_gaps=fill_gaps)
        return (seq,)


class MotionGuideTransferShape:
    """Transfer SMPL Shape: the driving motion with the reference person's body, placed in the reference camera."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "driving_motion": (S.SMPL_SEQUENCE, {"tooltip": "Motion to perform (estimated or loaded)."}),
            "reference_motion": (S.SMPL_SEQUENCE, {"tooltip": "SMPL of the reference image (its first valid "
                                                              "frame gives body shape, camera, box and ground)."}),
            "smpl_model": (S.SMPL_MODEL, {"tooltip": "Body model both sequences use."}),
            "orientation": (list(options.ORIENTATIONS), {
                "default": "upright", "tooltip": "upright: driving facing, the motion levelled to the reference's "
                                                 "ground (cameras at other heights/pitch); keep: driving rotations "
                                                 "as they are; align_first: turn the motion so its first frame "
                                                 "faces like the reference."}),
            "trajectory": (list(options.TRAJECTORIES), {
                "default": "relative", "tooltip": "relative: driving path (also towards/away from the camera) "
                                                  "from the reference spot, scaled by the height ratio; lock_root: "
                                                  "stay in place; keep: driving positions."}),
            "fit_to_box": ("BOOLEAN", {"default": True, "tooltip": "Place the reference body on the reference "
                                                                   "keypoints first (or, without keypoints, on its "
                                                                   "person box)."}),
            "ground": ("BOOLEAN", {"default": True, "tooltip": "Put the driving ground at the reference feet (no "
                                                               "floating or sinking; jumps kept)."}),
            "camera": (list(options.TRANSFER_CAMERAS), {"default": "reference",
                                                  "tooltip": "Intrinsics and frame size of the result; driving "
                                                             "carries the reference placement into the driving "
                                                             "frame."}),
        }}

    RETURN_TYPES = (S.SMPL_SEQUENCE,)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("Driving motion with the reference body shape, in the reference camera.",)
    FUNCTION = "transfer"
    CATEGORY = CATEGORY
    DESCRIPTION = "Re-targets a driving SMPL motion to the reference person's body shape, camera and ground."

    def transfer(self, driving_motion, reference_motion, smpl_model, orientation, trajectory, fit_to_box, ground,
                 camera):
        from ..pipelines.smpl.motion.transfer import transfer_shape

        progress = Progress(4, "Transfer SMPL Shape")
        seq = transfer_shape(_check_motion(driving_motion, "driving_motion"),
                             _check_motion(reference_motion, "reference_motion"), smpl_model,
                             orientation=orientation, trajectory=trajectory, fit_box=fit_to_box, ground=ground,
                             camera=camera, callback=progress.callback)
        return (seq,)


class MotionGuideSetBodyShape:
    """Set Body Shape: the built-in body's phenotype from sliders, or fitted to the sequence's 2D keypoints."""

    @classmethod
    def INPUT_TYPES(cls):
        def slider(tip, default=0.5):
            return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": tip})

        return {"required": {
            "motion": (S.SMPL_SEQUENCE, {"tooltip": "The sequence to shape (typically the reference image's, from "
                                                    "Estimate SMPL, which stores the keypoints the fit uses)."}),
            "smpl_model": (S.SMPL_MODEL, {"tooltip": "The built-in Anny body (Load Body Model)."}),
            "mode": (list(options.BODY_SHAPE_MODES), {
                "default": "sliders", "tooltip": "sliders: all six values below; fit: age, height and proportions "
                                                 "estimated from the keypoints and pose (gender, muscle, weight "
                                                 "from the sliders); fit_from_sliders: the fit starts at and stays "
                                                 "near the sliders."}),
            "gender": slider("0 = male, 1 = female (not identifiable from joints: set it)."),
            "age": slider("≈0.33 child, ≈0.67 young adult, 1 old.", 0.67),
            "muscle": slider("Muscle mass (not identifiable from joints: set it)."),
            "weight": slider("Body weight (not identifiable from joints: set it)."),
            "height": slider("Stature within the age group (0.38 with age 0.67 ≈ 1.71 m).", 0.38),
            "proportions": slider("Limb and torso proportions."),
            "iterations": ("INT", {"default": 100, "min": 10, "max": 1000, "step": 10,
                                   "tooltip": "Fit steps (fit modes only); more = slower, rarely better."}),
        }}

    RETURN_TYPES = (S.SMPL_SEQUENCE,)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The same motion with its body shape (phenotype) set; Transfer Shape carries the "
                       "reference's shape to the driving motion.",)
    FUNCTION = "set_shape"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Sets the built-in body's shape (gender, age, muscle, weight, height, proportions) from sliders, "
                   "or fits height and proportions to the person's 2D keypoints: make the reference a child, "
                   "taller, heavier...")

    def set_shape(self, motion, smpl_model, mode, gender, age, muscle, weight, height, proportions, iterations=100):
        from ..pipelines.smpl.motion.anny_shape import set_body_shape

        if smpl_model.shape_kind != "phenotype":
            raise ValueError("Set Body Shape shapes the built-in Anny body: choose 'anny (built-in)' in Load Body "
                             "Model (SMPL bodies take their shape from betas).")
        sliders = [gender, age, muscle, weight, height, proportions]
        progress = Progress(iterations if mode != "sliders" else 1, "Set Body Shape")
        warnings: list[str] = []
        seq = set_body_shape(_check_motion(motion, "motion"), smpl_model, mode, sliders, warnings=warnings,
                             **({"iterations": iterations, "callback": progress.callback} if mode != "sliders"
                                else {}))
        if warnings:  # shown on the node as well as in the log
            return {"ui": {"text": [f"Warning: {w}" for w in warnings]}, "result": (seq,)}
        return (seq,)


class MotionGuideSetCamera:
    """Set SMPL Camera: orbit, dolly and zoom, constant or animated from start to end values."""

    @classmethod
    def INPUT_TYPES(cls):
        def angle(tip, low=-180.0, high=180.0):
            return ("FLOAT", {"default": 0.0, "min": low, "max": high, "step": 1.0, "tooltip": tip})

        def factor(tip):
            return ("FLOAT", {"default": 1.0, "min": 0.05, "max": 20.0, "step": 0.05, "tooltip": tip})

        return {"required": {
            "motion": (S.SMPL_SEQUENCE, {"tooltip": "The SMPL sequence to re-view."}),
            "smpl_model": (S.SMPL_MODEL, {"tooltip": "Body model of the sequence (for the root joint pivot)."}),
            "yaw": angle("Orbit around the body's vertical axis (its up direction in the first frame), degrees "
                         "(90 turns a side view to a front view)."),
            "pitch": angle("Raise (+) or lower (−) the camera around the body, degrees.", -89.0, 89.0),
            "dolly": factor("Camera distance factor: 2 = twice as far (the body looks smaller, perspective flatter)."),
            "zoom": factor("Focal-length factor: 2 = body twice as large in the frame."),
            "animate": ("BOOLEAN", {"default": False, "tooltip": "Move from the values above (first frame) to the "
                                                                 "end values (last frame)."}),
            "yaw_end": angle("Yaw at the last frame (when animate is on)."),
            "pitch_end": angle("Pitch at the last frame (when animate is on).", -89.0, 89.0),
            "dolly_end": factor("Dolly at the last frame (when animate is on)."),
            "zoom_end": factor("Zoom at the last frame (when animate is on)."),
            "easing": (list(options.CAMERA_EASINGS), {
                "default": "ease_in_out", "tooltip": "How the camera moves from start to end values."}),
            "pivot": (list(options.CAMERA_PIVOTS), {
                "default": "first_frame", "tooltip": "first_frame: orbit around where the body starts (its path "
                                                     "turns too); per_frame: each frame turns about its own root."}),
        }}

    RETURN_TYPES = (S.SMPL_SEQUENCE,)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The same motion seen from the new camera.",)
    FUNCTION = "set_camera"
    CATEGORY = CATEGORY
    DESCRIPTION = "Views an SMPL motion from a new camera: orbit, dolly and zoom, optionally animated over the clip."

    def set_camera(self, motion, smpl_model, yaw, pitch, dolly, zoom, animate, yaw_end, pitch_end, dolly_end,
                   zoom_end, easing, pivot):
        from ..pipelines.smpl.motion.camera import set_camera

        ends = dict(yaw_end=yaw_end, pitch_end=pitch_end, dolly_end=dolly_end, zoom_end=zoom_end) if animate else {}
        seq = set_camera(_check_motion(motion, "motion"), smpl_model, yaw=yaw, pitch=pitch, dolly=dolly, zoom=zoom,
                         easing=easing, pivot=pivot, **ends)
        return (seq,)
