"""Stand-ins for the core / VideoHelperSuite nodes that example workflows use for files in and out.

Only the headless runner (``cli.py run`` / ``demo`` and the tests) uses these, so one API-format workflow runs both
in ComfyUI (with the real nodes) and without it. Inputs, outputs and names follow the real nodes; only what the
examples use is implemented.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..nodes import comfy_adapter as adapter
from ..nodes.sample_inputs import sample_input

logger = logging.getLogger(__name__)


def _files(extensions) -> list[str]:
    directory = adapter.input_directory()
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def _find_input(name: str) -> Path | None:
    """A file of the input folder, or (headless only: these stand-ins never run inside ComfyUI) a path to the user's
    own file, absolute or relative to the current folder."""
    if not isinstance(name, str) or not name.strip():
        return None
    inside = adapter.input_directory() / name
    if inside.is_file():
        return inside
    sample = sample_input(name)  # a template's motionguide/<file>: the pack's own copy
    if sample is not None:
        return sample
    own = Path(name).expanduser()
    return own.resolve() if own.is_file() else None


def _missing_input(name, kind: str, extensions, example: str) -> str:
    folder = adapter.input_directory()
    present = _files(extensions)
    listing = (f"Files there: {', '.join(present[:12])}{' ...' if len(present) > 12 else ''}." if present else
               "That folder has no such files." if folder.is_dir() else "That folder does not exist.")
    return (f"{kind} {name!r} was not found. Inputs are read from {folder} (change it with --input-dir), or give "
            f"the path of your own file, e.g. --set \"NODE.{example}=/path/to/file\". {listing}")


def _check_input(name, kind: str, extensions, example: str):
    """VALIDATE_INPUTS verdict for a file input: True, or a message saying where inputs are read from."""
    if name is None:  # linked from another node: checked when it runs
        return True
    path = _find_input(name)
    if path is None:
        return _missing_input(name, kind, extensions, example)
    if path.suffix.lower() not in extensions:
        return f"{kind} '{path}' is not one of the supported types ({', '.join(sorted(extensions))})."
    return True


def _input_path(name: str) -> Path:
    path = _find_input(name)
    if path is None:
        raise FileNotFoundError(_missing_input(name, "Input file", (), "image"))
    return path


def _ui_entry(path, kind="output"):
    rel = path.relative_to(adapter.directory_of_type(kind))
    return {"filename": rel.name, "subfolder": rel.parent.as_posix() if rel.parent.as_posix() != "." else "",
            "type": kind}


@dataclass
class VideoStandIn:
    """What core's VIDEO socket carries, reduced to frames + fps."""

    images: object  # IMAGE tensor [F,H,W,3]
    fps: float


class LoadImage:
    @classmethod
    def INPUT_TYPES(cls):
        from ..pipelines.video.io import IMAGE_EXTENSIONS

        return {"required": {"image": (_files(IMAGE_EXTENSIONS), {"image_upload": True})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"
    CATEGORY = "image"

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        from ..pipelines.video.io import IMAGE_EXTENSIONS

        return _check_input(image, "Image", IMAGE_EXTENSIONS, "image")

    def load_image(self, image):
        import torch

        from ..pipelines.video.io import from_uint8, read_image

        pixels = from_uint8(read_image(_input_path(image))[None])
        return pixels, torch.zeros(pixels.shape[:3])


class VHS_LoadVideo:
    @classmethod
    def INPUT_TYPES(cls):
        from ..pipelines.video.io import VIDEO_EXTENSIONS

        return {"required": {
            "video": (_files(VIDEO_EXTENSIONS),),
            "force_rate": ("FLOAT", {"default": 0, "min": 0, "max": 60, "step": 1}),
            "custom_width": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8}),
            "custom_height": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8}),
            "frame_load_cap": ("INT", {"default": 0, "min": 0, "max": 100000}),
            "skip_first_frames": ("INT", {"default": 0, "min": 0, "max": 100000}),
            "select_every_nth": ("INT", {"default": 1, "min": 1, "max": 1000}),
        }, "optional": {"format": (["AnimateDiff", "None"], {"default": "None"})}}

    RETURN_TYPES = ("IMAGE", "INT", "AUDIO", "VHS_VIDEOINFO")
    RETURN_NAMES = ("IMAGE", "frame_count", "audio", "video_info")
    FUNCTION = "load_video"
    CATEGORY = "Video Helper Suite"

    @classmethod
    def VALIDATE_INPUTS(cls, video):
        from ..pipelines.video.io import VIDEO_EXTENSIONS

        return _check_input(video, "Video", VIDEO_EXTENSIONS, "video")

    def load_video(self, video, force_rate=0, custom_width=0, custom_height=0, frame_load_cap=0,
                   skip_first_frames=0, select_every_nth=1, format="None"):
        import cv2
        import numpy as np

        from ..pipelines.video.io import from_uint8, read_video

        frames, fps = read_video(_input_path(video), frame_load_cap=frame_load_cap,
                                 skip_first_frames=skip_first_frames, select_every_nth=select_every_nth)
        if force_rate:
            logger.warning("[MotionGuide] stand-in VHS_LoadVideo ignores force_rate=%s (uses select_every_nth).",
                           force_rate)
        if custom_width or custom_height:
            h, w = frames.shape[1:3]
            new_w = custom_width or round(w * custom_height / h)
            new_h = custom_height or round(h * custom_width / w)
            frames = np.stack([cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_AREA) for f in frames])
        info = {"source_fps": fps * select_every_nth, "source_frame_count": len(frames), "loaded_fps": fps,
                "loaded_frame_count": len(frames), "loaded_width": frames.shape[2], "loaded_height": frames.shape[1]}
        return from_uint8(frames), len(frames), None, info


class VHS_VideoCombine:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",),
            "frame_rate": ("FLOAT", {"default": 8, "min": 1, "step": 1}),
            "loop_count": ("INT", {"default": 0, "min": 0, "max": 100}),
            "filename_prefix": ("STRING", {"default": "MotionGuide"}),
            "format": (["video/h264-mp4", "image/gif", "image/webp"],),
            "pingpong": ("BOOLEAN", {"default": False}),
            "save_output": ("BOOLEAN", {"default": True}),
        }, "optional": {
            "audio": ("AUDIO",),
            # video/h264-mp4's own widgets (VHS adds them for that format; ours writes through PyAV)
            "pix_fmt": (["yuv420p"], {"default": "yuv420p"}),
            "crf": ("INT", {"default": 19, "min": 0, "max": 51, "step": 1}),
            "save_metadata": ("BOOLEAN", {"default": True}),
            "trim_to_audio": ("BOOLEAN", {"default": False}),
        }}

    RETURN_TYPES = ("VHS_FILENAMES",)
    RETURN_NAMES = ("Filenames",)
    OUTPUT_NODE = True
    FUNCTION = "combine_video"
    CATEGORY = "Video Helper Suite"

    def combine_video(self, images, frame_rate, loop_count=0, filename_prefix="MotionGuide",
                      format="video/h264-mp4", pingpong=False, save_output=True, audio=None, pix_fmt="yuv420p",
                      crf=19, save_metadata=True, trim_to_audio=False):
        import numpy as np

        from ..pipelines.output_paths import unique_path
        from ..pipelines.video.io import to_uint8, write_video

        frames = to_uint8(images)
        if pingpong:
            frames = np.concatenate([frames, frames[-2:0:-1]])
        extension = {"video/h264-mp4": ".mp4", "image/gif": ".gif", "image/webp": ".webp"}[format]
        path = write_video(frames, frame_rate, unique_path(adapter.output_directory(), filename_prefix, extension),
                           crf=crf, pix_fmt=pix_fmt)
        logger.info("[MotionGuide] wrote %s (%d frames at %.2f fps%s)", path, len(frames), frame_rate,
                    f", H.264 crf {crf}" if extension == ".mp4" else "")
        entry = dict(_ui_entry(path), format=format, frame_rate=frame_rate)
        return {"ui": {"gifs": [entry]}, "result": ((save_output, [str(path)]),)}


class SaveImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "MotionGuide"})}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save_images"
    CATEGORY = "image"

    KIND = "output"

    def save_images(self, images, filename_prefix="MotionGuide"):
        from functools import partial

        from ..pipelines.output_paths import file_set, save_new
        from ..pipelines.video.io import to_uint8, write_image

        directory = adapter.directory_of_type(self.KIND)
        with file_set() as written:  # all images or none
            for frame in to_uint8(images):
                written.append(save_new(directory, filename_prefix, ".png", partial(write_image, frame),
                                        check_cancel=adapter.check_interrupt))
        entries = [_ui_entry(path, self.KIND) for path in written]
        return {"ui": {"images": entries}, "result": ()}


class PreviewImage(SaveImage):
    """Like ComfyUI's: previews go to the temp folder, not the outputs."""

    KIND = "temp"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def save_images(self, images, filename_prefix="MotionGuide_preview"):
        return super().save_images(images, filename_prefix)


class LoadVideo:
    @classmethod
    def INPUT_TYPES(cls):
        from ..pipelines.video.io import VIDEO_EXTENSIONS

        return {"required": {"file": (_files(VIDEO_EXTENSIONS), {"video_upload": True})}}

    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "load_video"
    CATEGORY = "image/video"

    @classmethod
    def VALIDATE_INPUTS(cls, file):
        from ..pipelines.video.io import VIDEO_EXTENSIONS

        return _check_input(file, "Video", VIDEO_EXTENSIONS, "file")

    def load_video(self, file):
        from ..pipelines.video.io import from_uint8, read_video

        frames, fps = read_video(_input_path(file))
        return (VideoStandIn(from_uint8(frames), fps),)


class GetVideoComponents:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": ("VIDEO",)}}

    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")
    FUNCTION = "get_components"
    CATEGORY = "image/video"

    def get_components(self, video):
        return video.images, None, float(video.fps)


class CreateVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0})},
                "optional": {"audio": ("AUDIO",)}}

    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "create_video"
    CATEGORY = "image/video"

    def create_video(self, images, fps, audio=None):
        return (VideoStandIn(images, float(fps)),)


class SaveVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": ("VIDEO",), "filename_prefix": ("STRING", {"default": "video/MotionGuide"}),
                             "format": (["auto", "mp4"],), "codec": (["auto", "h264"],)}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save_video"
    CATEGORY = "image/video"

    def save_video(self, video, filename_prefix, format="auto", codec="auto"):
        from ..pipelines.output_paths import unique_path
        from ..pipelines.video.io import to_uint8, write_video

        path = write_video(to_uint8(video.images), video.fps,  # core SaveVideo: H.264 at libx264's default crf
                           unique_path(adapter.output_directory(), filename_prefix, ".mp4"), crf=23)
        return {"ui": {"images": [_ui_entry(path)], "animated": (True,)}, "result": ()}


class ImageBatch:
    """Core "Batch Images": image2's frames after image1's, image2 cover-resized (centre crop, bilinear) if sizes differ."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"
    CATEGORY = "image"

    def batch(self, image1, image2):
        import torch

        if image1.shape[1:] != image2.shape[1:]:
            height, width = image1.shape[1:3]
            h, w = image2.shape[1:3]
            if w / h > width / height:  # crop the sides to the target aspect, as core's common_upscale does
                keep = round(h * width / height)
                image2 = image2[:, :, (w - keep) // 2:(w - keep) // 2 + keep]
            else:
                keep = round(w * height / width)
                image2 = image2[:, (h - keep) // 2:(h - keep) // 2 + keep]
            image2 = torch.nn.functional.interpolate(image2.movedim(-1, 1), size=(height, width),
                                                     mode="bilinear").movedim(1, -1)
        return (torch.cat((image1, image2), dim=0),)


STANDIN_CLASSES = {cls.__name__: cls for cls in (LoadImage, VHS_LoadVideo, VHS_VideoCombine, SaveImage, PreviewImage,
                                                 LoadVideo, GetVideoComponents, CreateVideo, SaveVideo, ImageBatch)}
