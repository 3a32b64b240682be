"""Video files out: H.264 yuv420p through PyAV honouring crf, odd sizes padded (never cropped), and a writer that
re-opens what it wrote and publishes nothing on a full disk or a silently short write."""
import errno
import logging

import numpy as np
import pytest

from motionguide.pipelines.video import encode
from motionguide.pipelines.video.encode import VideoWriteError, probe_video
from motionguide.pipelines.video.io import read_video, write_video


def _clip(frames=6, height=48, width=64, noise=20):
    rng = np.random.default_rng(0)
    base = np.zeros((frames, height, width, 3), np.uint8)
    base[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, None]
    base[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[None, :, None]
    base[..., 2] = (np.arange(frames) * 30 % 256)[:, None, None]
    return np.clip(base.astype(int) + rng.integers(-noise, noise + 1, base.shape), 0, 255).astype(np.uint8)


def test_mp4_is_h264_yuv420p_with_every_frame_and_crf_is_honoured(tmp_path):
    clip = _clip(noise=4)  # mild noise: smooth enough for 4:2:0 chroma, detailed enough to show crf
    fine = write_video(clip, 12.0, tmp_path / "fine.mp4", crf=0)
    coarse = write_video(clip, 12.0, tmp_path / "coarse.mp4", crf=45)
    info = probe_video(fine)
    assert (info["codec"], info["pix_fmt"], info["frames"], info["width"], info["height"]) == \
        ("h264", "yuv420p", 6, 64, 48)
    assert fine.stat().st_size > 3 * coarse.stat().st_size
    decoded_fine, fps = read_video(fine)
    decoded_coarse, _ = read_video(coarse)
    assert fps == pytest.approx(12.0)
    error_fine = np.abs(decoded_fine.astype(int) - clip).mean()
    error_coarse = np.abs(decoded_coarse.astype(int) - clip).mean()
    assert error_fine < 3.0 < error_coarse  # crf 0 keeps the picture (up to 4:2:0 chroma), crf 45 does not
    with pytest.raises(ValueError, match="crf must be between 0"):
        write_video(clip, 12.0, tmp_path / "bad.mp4", crf=60)


def test_odd_sizes_are_padded_not_cropped_and_said(tmp_path, caplog):
    clip = _clip(frames=3, height=33, width=47, noise=0)
    with caplog.at_level(logging.WARNING):
        path = write_video(clip, 8.0, tmp_path / "odd.mp4", crf=0)
    assert "47x33" in caplog.text and "48x34" in caplog.text
    decoded, _ = read_video(path)
    assert decoded.shape == (3, 34, 48, 3)
    assert np.abs(decoded[:, :33, :47].astype(int) - clip).mean() < 3.0  # every source pixel is still there
    assert np.abs(decoded[:, 33, :47].astype(int) - clip[:, 32]).mean() < 4.0  # the padding repeats the edge


class _FullDisk:
    """A file that takes ``limit`` bytes and then fails like a full disk (or, ``silent``, drops the rest and says
    nothing, as OpenCV's writer did)."""

    def __init__(self, path, mode, limit, silent):
        self._file = open(path, mode)
        self.limit, self.silent, self.written = limit, silent, 0

    def write(self, data):
        room = max(self.limit - self.written, 0)
        if len(data) > room:
            if not self.silent:
                raise OSError(errno.ENOSPC, "No space left on device")
            self._file.write(bytes(data[:room]))
            self.written += room
            return len(data)
        self.written += len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.mark.parametrize("silent", [False, True], ids=["ENOSPC", "silently-short"])
@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif"])
def test_full_disk_is_an_error_and_leaves_nothing_under_the_final_name(tmp_path, monkeypatch, silent, name):
    monkeypatch.setattr(encode, "open_for_writing", lambda path, mode: _FullDisk(path, mode, 1500, silent))
    target = tmp_path / name
    with pytest.raises(VideoWriteError, match="Nothing was saved under that name") as caught:
        write_video(_clip(frames=8), 12.0, target)
    assert str(target) in str(caught.value) and "Free space in" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no final file, no temporary leftovers
    monkeypatch.setattr(encode, "open_for_writing", open)
    assert probe_video(write_video(_clip(frames=8), 12.0, target))["frames"] == 8  # the next run works


def test_gif_and_webp_keep_all_frames_and_existing_files_are_never_replaced(tmp_path):
    clip = _clip(frames=5, height=31, width=40)
    for name in ("clip.gif", "clip.webp"):
        info = probe_video(write_video(clip, 10.0, tmp_path / name))
        assert (info["frames"], info["width"], info["height"]) == (5, 40, 31)  # odd sizes fine here: no padding
        assert abs(info["duration_ms"] - 500) <= 10
    before = (tmp_path / "clip.gif").read_bytes()
    with pytest.raises(FileExistsError):
        write_video(clip[:2], 10.0, tmp_path / "clip.gif")
    assert (tmp_path / "clip.gif").read_bytes() == before
    with pytest.raises(ValueError, match="use .mp4"):
        write_video(clip, 10.0, tmp_path / "clip.avi")


def test_vhs_video_combine_stand_in_writes_h264_at_the_requested_crf(tmp_path, monkeypatch):
    from motionguide.headless.core_standins import VHS_VideoCombine
    from motionguide.pipelines.video.io import from_uint8

    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path))
    images = from_uint8(_clip())
    node = VHS_VideoCombine()
    out = {crf: node.combine_video(images, 12.0, filename_prefix=f"crf{crf}", crf=crf) for crf in (0, 40)}
    paths = {crf: tmp_path / o["ui"]["gifs"][0]["filename"] for crf, o in out.items()}
    assert all(probe_video(p)["codec"] == "h264" for p in paths.values())
    assert paths[0].stat().st_size > 3 * paths[40].stat().st_size
