"""Video files out: H.264 MP4 (yuv420p) through PyAV, animated GIF / WebP through Pillow.

Every file is written under a temporary name, re-opened and checked (frame count, frame size, codec) and only then
published under its final name (``output_paths.new_file``). A failed or silently truncated write (a full disk) is
an error and leaves nothing under the final name.
"""
from __future__ import annotations

import logging
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..output_paths import new_file

logger = logging.getLogger(__name__)

MP4_PIX_FMTS = ("yuv420p",)  # what browsers play; H.264 4:2:0 needs even frame sizes
DEFAULT_CRF = 19  # VideoHelperSuite's default for video/h264-mp4

# How the encoder opens its output file; tests replace it with a file object that fails like a full disk.
open_for_writing = open


class VideoWriteError(RuntimeError):
    """Writing or verifying a video failed; nothing was published under the final name."""


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row / column so height and width are even (H.264 yuv420p cannot store odd sizes)."""
    h, w = frames.shape[1:3]
    pad_h, pad_w = h % 2, w % 2
    if not (pad_h or pad_w):
        return frames
    logger.warning("[MotionGuide] video frames are %dx%d; H.264 (yuv420p) needs even sizes, so the last %s "
                   "repeated: the file is %dx%d.", w, h,
                   " and ".join(part for part, on in (("column is", pad_w), ("row is", pad_h)) if on),
                   w + pad_w, h + pad_h)
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _frame_rate(fps: float) -> Fraction:
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"Video frame rate must be a positive number, got {fps!r}.")
    return Fraction(float(fps)).limit_denominator(1001)


def _encode_mp4(frames: np.ndarray, fps: float, fileobj, crf: int, pix_fmt: str) -> None:
    import av

    with av.open(fileobj, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=_frame_rate(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(int(crf))}
        # BT.709, limited range, and tagged so: what browsers assume for video (VideoHelperSuite does the same).
        context = stream.codec_context
        context.colorspace = context.color_primaries = context.color_trc = 1  # AVCOL_*_BT709
        context.color_range = 1  # AVCOL_RANGE_MPEG
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _encode_animated(frames: np.ndarray, fps: float, fileobj, fmt: str) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(fileobj, format=fmt, save_all=True, append_images=images[1:],
                   duration=max(int(round(1000 / fps)), 1), loop=0, **({"lossless": True} if fmt == "WEBP" else {}))


def probe_video(path: str | os.PathLike) -> dict:
    """Decode a written file: ``{"frames", "width", "height", "codec", "pix_fmt"}`` (GIF/WebP: frames counted by
    their durations, since Pillow merges identical neighbours). Raises on an unreadable file."""
    path = Path(path)
    if path.suffix.lower() in {".gif", ".webp"}:
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
            total_ms, count = 0, 0
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                image.load()
                total_ms += image.info.get("duration", 0)
                count += 1
        return {"frames": count, "duration_ms": total_ms, "width": width, "height": height,
                "codec": path.suffix.lower()[1:], "pix_fmt": None}
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = 0
        for frame in container.decode(stream):
            count += 1
            width, height = frame.width, frame.height
        return {"frames": count, "width": stream.width if not count else width,
                "height": stream.height if not count else height, "codec": stream.codec_context.name,
                "pix_fmt": stream.codec_context.pix_fmt}


def _check(path: Path, frames: np.ndarray, fps: float, kind: str) -> None:
    try:
        found = probe_video(path)
    except Exception as exc:
        raise VideoWriteError(f"the written file cannot be read back ({type(exc).__name__}: {exc})") from exc
    want_h, want_w = frames.shape[1:3]
    if (found["width"], found["height"]) != (want_w, want_h):
        raise VideoWriteError(f"it reads back as {found['width']}x{found['height']}, not {want_w}x{want_h}")
    if kind == "mp4":
        if found["frames"] != len(frames):
            raise VideoWriteError(f"it reads back with {found['frames']} of {len(frames)} frames")
        if found["codec"] != "h264":
            raise VideoWriteError(f"it reads back as {found['codec']}, not h264")
    elif found["frames"] == 1 and len(frames) > 1:  # identical frames merged into one (WebP then reads 0 ms)
        if not (frames == frames[:1]).all():
            raise VideoWriteError(f"it reads back as 1 frame, not {len(frames)} different frames")
    else:  # Pillow merges identical neighbours, adding up their durations
        frame_ms = max(int(round(1000 / fps)), 1)
        if not 1 <= found["frames"] <= len(frames) or abs(found["duration_ms"] - frame_ms * len(frames)) > frame_ms:
            raise VideoWriteError(f"it reads back with {found['frames']} frames lasting {found['duration_ms']} ms, "
                                  f"not {len(frames)} frames of {frame_ms} ms")


def write_video_file(frames: np.ndarray, fps: float, path: str | os.PathLike, *, crf: int = DEFAULT_CRF,
                     pix_fmt: str = "yuv420p") -> Path:
    """Write RGB uint8 ``[F,H,W,3]`` as ``.mp4`` (H.264, ``pix_fmt``, ``crf``), ``.gif`` or ``.webp``; verified, atomic,
    never overwriting. Odd sizes are padded to even for MP4 (with a warning), never cropped."""
    path = Path(path)
    suffix = path.suffix.lower()
    kind = {".mp4": "mp4", ".gif": "GIF", ".webp": "WEBP"}.get(suffix)
    if kind is None:
        raise ValueError(f"Cannot write a video named '{path.name}': use .mp4 (H.264), .gif or .webp.")
    if kind == "mp4":
        if pix_fmt not in MP4_PIX_FMTS:
            raise ValueError(f"pix_fmt {pix_fmt!r} is not supported for MP4 here; use one of {list(MP4_PIX_FMTS)}.")
        if not 0 <= int(crf) <= 51:
            raise ValueError(f"crf must be between 0 (lossless) and 51 for H.264, got {crf}.")
        frames = pad_to_even(frames)
    _frame_rate(fps)
    try:
        with new_file(path) as tmp:
            with open_for_writing(tmp, "wb") as handle:
                if kind == "mp4":
                    _encode_mp4(frames, fps, handle, crf, pix_fmt)
                else:
                    _encode_animated(frames, fps, handle, kind)
                handle.flush()
                os.fsync(handle.fileno())  # a full disk may only show here (delayed allocation)
            _check(tmp, frames, fps, kind)
    except FileExistsError:
        raise
    except Exception as exc:
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
        reason = str(exc) if isinstance(exc, VideoWriteError) else f"{type(exc).__name__}: {exc}"
        raise VideoWriteError(
            f"Writing the video '{path}' failed: {reason}. Nothing was saved under that name. "
            f"Free space in {path.parent}: {free / 1e6:.0f} MB; if the disk is full, free some space or choose "
            "another output folder, then run again.") from exc
    return path
