"""Pose nodes: detect (DWPose on onnxruntime), align to the reference body, draw, save and load keypoints.

Thin wrappers: the work is in ``pipelines/dwpose``; pipeline modules are imported inside the functions.
"""
from __future__ import annotations

import logging

from ..pipelines import options
from ..pipelines.options import check_choice
from . import comfy_adapter as adapter
from .model_check import check_model_input
from .sockets import BOOLEAN, FLOAT, IMAGE, INT, POSE_KEYPOINT, STRING

logger = logging.getLogger(__name__)

CATEGORY = "MotionGuide/pose"
DETECTOR_DEFAULT = "yolox_l.onnx"
POSE_DEFAULT = "dw-ll_ucoco_384.onnx"
PERSON_CHOICES = ["all (reference)" if s == "all" else s for s in options.PERSON_SELECTIONS]
MISSING_CHOICES = list(options.MISSING_PERSON_MODES)
DEVICE_CHOICES = ["auto", "cuda", "cpu"]
STYLE_CHOICES = list(options.POSE_STYLES)
FIT_CHOICES = ["reference", "confident points", "confident points, weighted"]
SMOOTHING_CHOICES = list(options.POSE_SMOOTHING)
SAVE_FORMATS = ["one file (POSE_KEYPOINT list)", "OpenPose file per frame"]


def _model_choices(preferred: str, word: str) -> list[str]:
    files = adapter.list_model_files("dwpose")
    ranked = sorted(files, key=lambda f: (f != preferred, word not in f.lower(), f))
    return ranked or [preferred]


def _to_uint8_frames(images):
    """IMAGE [F, H, W, 3] float 0..1 → numpy uint8, after checking it is an image batch."""
    from ..pipelines.video.io import to_uint8

    if len(images.shape) != 4 or images.shape[-1] < 3:
        raise ValueError(f"images must be an IMAGE batch [frames, height, width, 3], got shape {list(images.shape)}.")
    return to_uint8(images[..., :3])


def _to_image_tensor(maps):
    from ..pipelines.video.io import from_uint8

    return from_uint8(maps)


class MotionGuideDetectPose:
    DESCRIPTION = "Detects whole-body poses (DWPose on onnxruntime) in every frame, with real confidence scores."
    CATEGORY = CATEGORY
    FUNCTION = "detect"
    RETURN_TYPES = (POSE_KEYPOINT, IMAGE)
    RETURN_NAMES = ("pose_keypoint", "pose_preview")
    OUTPUT_TOOLTIPS = ("Keypoints per frame (OpenPose-18 body, 68 face, 2×21 hands) in pixels with real scores.",
                       "Pose maps drawn at the input size in the reference style.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": (IMAGE, {"tooltip": "Frames to detect people in (a reference image or a driving video)."}),
            "detector": (_model_choices(DETECTOR_DEFAULT, "yolox"),
                         {"tooltip": "Person detector ONNX in models/dwpose (yolox_l.onnx from yzd-v/DWPose)."}),
            "pose_model": (_model_choices(POSE_DEFAULT, "dw"),
                           {"tooltip": "Whole-body pose ONNX in models/dwpose (dw-ll_ucoco_384.onnx)."}),
            "body": (BOOLEAN, {"default": True, "tooltip": "Output body keypoints (off: body scores are 0)."}),
            "hands": (BOOLEAN, {"default": True, "tooltip": "Output hand keypoints (off: hands are null)."}),
            "face": (BOOLEAN, {"default": True, "tooltip": "Output face keypoints (off: face is null)."}),
            "person": (PERSON_CHOICES, {"default": PERSON_CHOICES[0], "tooltip":
                       "Whom to keep: everybody (as the reference), or one person followed across frames by IoU "
                       "tracking, picked as the largest, the most central, or by detection index."}),
            "person_index": (INT, {"default": 0, "min": 0, "max": 64, "step": 1,
                                   "tooltip": "Detection index of the person to follow when person = index."}),
            "keep_others": (BOOLEAN, {"default": False, "tooltip":
                            "With one followed person: also keep the other people (after the followed one)."}),
            "missing_person": (MISSING_CHOICES, {"default": MISSING_CHOICES[0], "tooltip":
                               "Frames without a person: interpolate from neighbouring frames, leave empty, or "
                               "keep the reference's whole-image guess (the whole frame taken as one person's box; "
                               "the only choice that accepts a clip with nobody in it)."}),
            "device": (DEVICE_CHOICES, {"default": "auto", "tooltip":
                       "onnxruntime provider. auto: CUDA when ComfyUI runs on a CUDA GPU and the installed "
                       "onnxruntime-gpu can use it (else the CPU, with one warning saying what to install); "
                       "cpu: always the CPU."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, detector, pose_model):
        """Both ONNX files are checked when the workflow is queued (with every other missing model file listed)."""
        for name in (detector, pose_model):
            verdict = check_model_input(("dwpose",), name)
            if verdict is not True:
                return verdict
        return True

    def detect(self, images, detector, pose_model, body=True, hands=True, face=True, person="all (reference)",
               person_index=0, keep_others=False, missing_person="interpolate", device="auto"):
        from ..pipelines.dwpose import draw, keypoints, tracking, wholebody

        frames = _to_uint8_frames(images)
        count, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
        if count == 0:
            raise ValueError("images is an empty batch (0 frames): check the image or video loader before Detect "
                             "Pose (skip_first_frames, frame_load_cap, select_every_nth).")
        det_path = adapter.resolve_model_path("dwpose", detector)
        pose_path = adapter.resolve_model_path("dwpose", pose_model)
        device = adapter.onnx_device(device)
        progress = adapter.Progress(count * 2, "Detect Pose")
        detected = wholebody.detect_video_cached(frames, det_path, pose_path, device,
                                                 callback=lambda done, total: progress.set(done))
        selection = "all" if person.startswith("all") else person
        result = tracking.follow_person(detected, selection, person_index, keep_others, missing_person, label=person)
        pose_keypoint = keypoints.frames_to_pose_keypoint(result, body=body, hands=hands, face=face)
        maps = draw.draw_pose_maps(result, width, height, body=body, hands=hands, face=face,
                                   callback=lambda done, total: progress.set(count + done))
        return (pose_keypoint, _to_image_tensor(maps))


class MotionGuideAlignPose:
    DESCRIPTION = "Fits the driving poses onto the reference person's body (MimicMotion's alignment by default)."
    CATEGORY = CATEGORY
    FUNCTION = "align"
    RETURN_TYPES = (POSE_KEYPOINT,)
    RETURN_NAMES = ("aligned_pose",)
    OUTPUT_TOOLTIPS = ("Driving poses in the reference image's frame (its size), optionally preceded by the "
                       "reference pose as frame 0.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "driving_pose": (POSE_KEYPOINT, {"tooltip": "Poses of the driving video (Detect Pose on its frames)."}),
            "reference_pose": (POSE_KEYPOINT, {"tooltip": "Pose of the reference image (its first frame is used)."}),
            "fit": (FIT_CHOICES, {"default": "reference", "tooltip":
                    "reference: MimicMotion's least-squares fit over single-person frames; confident points: only "
                    "points scoring > 0.3 of the first person of each frame (frames without any are skipped); "
                    "weighted: also weight points by their scores."}),
            "smoothing": (SMOOTHING_CHOICES, {"default": "none",
                                              "tooltip": "Temporal smoothing of the first person's keypoints."}),
            "smoothing_window": (INT, {"default": 7, "min": 3, "max": 61, "step": 2,
                                       "tooltip": "Savitzky–Golay window in frames (odd)."}),
            "one_euro_min_cutoff": (FLOAT, {"default": 1.0, "min": 0.01, "max": 30.0, "step": 0.01, "tooltip":
                                    "One-Euro minimum cutoff in Hz at 30 frames/s: lower = smoother when still."}),
            "one_euro_beta": (FLOAT, {"default": 0.05, "min": 0.0, "max": 10.0, "step": 0.001,
                                      "tooltip": "One-Euro speed coefficient: higher = less lag on fast moves."}),
            "retarget_bones": (BOOLEAN, {"default": False, "tooltip":
                               "Give the driving skeleton the reference person's proportions: each bone scaled by "
                               "its reference / first-frame length ratio (Wan2.2-Animate's rule, within 0.67–1.5×), "
                               "keeping directions and foreshortening. Needs a first driving frame seen from the "
                               "same side as the reference; for turns and side views use the 3D path."}),
            "include_reference_frame": (BOOLEAN, {"default": True, "tooltip":
                                        "Put the reference pose first, as the sampler expects (frame 0)."}),
        }}

    def align(self, driving_pose, reference_pose, fit="reference", smoothing="none", smoothing_window=7,
              one_euro_min_cutoff=1.0, one_euro_beta=0.05, retarget_bones=False, include_reference_frame=True):
        from ..pipelines.dwpose import align, keypoints

        driving = keypoints.pose_keypoint_to_frames(driving_pose, "driving_pose")
        if not driving:
            raise ValueError("driving_pose is empty (0 frames): connect Detect Pose run on the driving video.")
        references = keypoints.pose_keypoint_to_frames(reference_pose, "reference_pose")
        if not references:
            raise ValueError("reference_pose is empty: connect Detect Pose run on the reference image.")
        if len(references) > 1:
            logger.warning("Align pose: reference_pose has %d frames; the first one is used.", len(references))
        reference = references[0]
        check_choice("fit", fit, FIT_CHOICES)
        options = {}
        if smoothing == "savitzky-golay":
            options = {"window": smoothing_window}
        elif smoothing == "one-euro":
            options = {"min_cutoff": one_euro_min_cutoff, "beta": one_euro_beta}
        aligned, _ = align.align_poses(driving, reference, weighted=fit.endswith("weighted"),
                                       confident_only=fit != "reference", smoothing=smoothing,
                                       retarget=retarget_bones, **options)
        if include_reference_frame:
            aligned = [reference.copy()] + aligned
        return (keypoints.frames_to_pose_keypoint(aligned),)


class MotionGuideDrawPose:
    DESCRIPTION = ("Draws pose keypoints as pose maps in the exact style a model was trained on: MimicMotion's "
                   "confidence-aware maps (default), StableAnimator, Wan2.2-Animate, UniAnimate-DiT, Animate-X, "
                   "SteadyDancer.")
    CATEGORY = CATEGORY
    FUNCTION = "draw"
    RETURN_TYPES = (IMAGE,)
    RETURN_NAMES = ("pose_images",)
    OUTPUT_TOOLTIPS = ("One pose map per frame, RGB, at width × height.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "Keypoints to draw (ours, aligned, from SMPL, or from "
                                                         "comfyui_controlnet_aux)."}),
            "width": (INT, {"default": 576, "min": 0, "max": 8192, "step": 8,
                            "tooltip": "Output width in pixels (0 = the keypoints' own canvas width)."}),
            "height": (INT, {"default": 1024, "min": 0, "max": 8192, "step": 8,
                             "tooltip": "Output height in pixels (0 = the keypoints' own canvas height)."}),
            "style": (STYLE_CHOICES, {"default": "reference", "tooltip":
                      "reference: MimicMotion's exact pixels (what its PoseNet was trained on); thick: the same "
                      "colours with line widths that stay visible after the downscale; stableanimator: MimicMotion's "
                      "drawing with red/blue as StableAnimator saw them; wan_animate: Wan2.2-Animate (toes, widths "
                      "from the image size, hands, no face); unianimate / animate_x: plain DWPose with toes, red/blue "
                      "swapped as in their data (turn face off); steadydancer: plain DWPose, red/blue swapped "
                      "(turn face off)."}),
            "body": (BOOLEAN, {"default": True, "tooltip": "Draw the body."}),
            "hands": (BOOLEAN, {"default": True, "tooltip": "Draw the hands."}),
            "face": (BOOLEAN, {"default": True, "tooltip": "Draw the face (wan_animate never draws one; UniAnimate, "
                                                           "Animate-X and SteadyDancer were trained without)."}),
        }, "optional": {
            "feet": (BOOLEAN, {"default": True, "tooltip": "Draw the toes in the styles that have them (wan_animate, "
                                                           "unianimate, animate_x); needs foot keypoints (Detect "
                                                           "Pose or SMPL to Pose Keypoints)."}),
        }}

    def draw(self, pose_keypoint, width=576, height=1024, style="reference", body=True, hands=True, face=True,
             feet=True):
        from ..pipelines.dwpose import draw, keypoints

        frames = keypoints.pose_keypoint_to_frames(pose_keypoint, "pose_keypoint")
        check_choice("style", style, STYLE_CHOICES)
        if not frames:
            raise ValueError("pose_keypoint is empty (0 frames): connect Detect Pose, Align Pose or SMPL to Pose.")
        w, h = int(width) or frames[0].width, int(height) or frames[0].height
        progress = adapter.Progress(len(frames), "Draw Pose")
        maps = draw.draw_pose_maps(frames, w, h, callback=progress.callback, body=body, hands=hands, face=face,
                                   style=style, feet=feet)
        return (_to_image_tensor(maps),)


class MotionGuideFaceCrops:
    DESCRIPTION = ("512×512 crops of the driving person's face on every frame, exactly as Wan2.2-Animate's "
                   "preprocessing makes them, for its face_video / face_images input (the face is not retargeted).")
    CATEGORY = CATEGORY
    FUNCTION = "crop"
    RETURN_TYPES = (IMAGE,)
    RETURN_NAMES = ("face_images",)
    OUTPUT_TOOLTIPS = ("One 512×512 face crop per driving frame.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": (IMAGE, {"tooltip": "The driving video's frames."}),
            "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "Detect Pose on those same frames, with face on (the "
                                                         "first person's 68 face landmarks place each crop)."}),
        }}

    def crop(self, images, pose_keypoint):
        from ..pipelines.dwpose import face_crop, keypoints

        from ..pipelines.size_limits import check_memory

        check_memory("Face Crops", len(images), face_crop.CROP_SIZE, face_crop.CROP_SIZE,  # before converting
                     "crop fewer frames at a time (split the clip).")
        frames = _to_uint8_frames(images)
        poses = keypoints.pose_keypoint_to_frames(pose_keypoint, "pose_keypoint")
        progress = adapter.Progress(len(frames), "Face Crops")
        crops, _ = face_crop.face_crops(frames, poses, callback=progress.callback)
        return (_to_image_tensor(crops),)


class MotionGuideSavePose:
    DESCRIPTION = "Saves pose keypoints as OpenPose-style JSON in the output folder (never overwrites a file)."
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = (STRING,)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("The file written (or the folder of per-frame files).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "Keypoints to save."}),
            "filename_prefix": (STRING, {"default": "MotionGuide/pose", "tooltip":
                                "Path under the output folder; a 5-digit counter is added."}),
            "format": (SAVE_FORMATS, {"default": SAVE_FORMATS[0], "tooltip":
                       "One JSON list of frames (loads back as is), or one OpenPose JSON file per frame."}),
        }}

    def save(self, pose_keypoint, filename_prefix="MotionGuide/pose", format=SAVE_FORMATS[0]):
        from ..pipelines.dwpose.pose_files import save_pose_file

        path, count = save_pose_file(pose_keypoint, adapter.output_directory(), filename_prefix or "pose",
                                     per_frame=format != SAVE_FORMATS[0], check_cancel=adapter.check_interrupt)
        logger.info("Saved %d pose frames to %s", count, path)
        return {"ui": {"text": [str(path)]}, "result": (str(path),)}


def _pose_files() -> list[str]:
    root = adapter.input_directory()
    if not root.is_dir():
        return []
    files = {p.relative_to(root).as_posix() for p in root.rglob("*.json")}
    folders = {p.parent.relative_to(root).as_posix() for p in root.rglob("*_keypoints.json")}
    return sorted(files | {f + "/" for f in folders if f != "."})


class MotionGuideLoadPose:
    DESCRIPTION = "Loads pose keypoints from a JSON file (ours, comfyui_controlnet_aux's, or OpenPose per-frame files)."
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (POSE_KEYPOINT,)
    RETURN_NAMES = ("pose_keypoint",)
    OUTPUT_TOOLTIPS = ("The loaded keypoints, one entry per frame.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "file": (_pose_files() or ["pose.json"], {"tooltip":
                     "A .json file in the input folder (a list of frames or one frame), or a folder of OpenPose "
                     "*_keypoints.json files (ending in /), read in name order."}),
        }}

    @classmethod
    def IS_CHANGED(cls, file):
        path = adapter.input_directory() / file
        return path.stat().st_mtime_ns if path.exists() else ""

    def load(self, file):
        from ..pipelines.dwpose.pose_files import load_pose_file

        path = adapter.input_path(file, "Pose file")
        if not path.exists():
            raise FileNotFoundError(f"Pose file '{file}' was not found in the input folder "
                                    f"{adapter.input_directory()}.")
        return (load_pose_file(path, file, check_path=lambda p: adapter.input_path(p, "Pose file")),)
