"""Saving never hangs and never leaves partial sets (issue 11 items 1, 3, 4)."""
import errno
import os

import numpy as np
import pytest
from motionguide.pipelines import output_paths
from motionguide.pipelines.output_paths import unique_path


def _seq(frames=3):
    from motionguide.pipelines.smpl.motion.sequence import validate_sequence

    return validate_sequence(dict(betas=np.zeros((frames, 10)), global_orient=np.zeros((frames, 3)),
                                  body_pose=np.zeros((frames, 69)), transl=np.tile([0.0, 0.0, 5.0], (frames, 1)),
                                  image_size=(64, 64), fps=25.0))


def test_a_file_named_like_the_subfolder_is_a_clear_error(tmp_path, monkeypatch):
    from motionguide.nodes import smpl as nodes

    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path))
    (tmp_path / "motionguide").write_text("not a folder")
    with pytest.raises(ValueError, match=r"motionguide' is a file, not a folder") as info:
        nodes.MotionGuideSaveSMPLMotion().save(_seq(), "motionguide/smpl_motion", "motionguide")
    assert "filename_prefix" in str(info.value)
    (tmp_path / "motionguide").unlink()
    os.symlink(tmp_path / "gone", tmp_path / "motionguide")
    with pytest.raises(ValueError, match="broken symbolic link"):
        unique_path(tmp_path, "motionguide/smpl_motion", ".npz")


def test_a_subfolder_linking_out_of_the_output_folder_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "link")
    with pytest.raises(ValueError, match="points outside the output folder.*symbolic link"):
        unique_path(tmp_path / "out", "link/deeper/x", ".png")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    (tmp_path / "out" / "inside").mkdir()
    os.symlink(tmp_path / "out" / "inside", tmp_path / "out" / "alias")
    assert unique_path(tmp_path / "out", "alias/x", ".png") == tmp_path / "out" / "alias" / "x_00001.png"


def test_a_dangling_symlink_at_the_next_name_is_skipped(tmp_path, monkeypatch):
    from motionguide.nodes import smpl as nodes

    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path))
    (tmp_path / "mg").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "mg" / "walk_00001.npz")
    assert unique_path(tmp_path, "mg/walk", ".npz").name == "walk_00002.npz"
    out = nodes.MotionGuideSaveSMPLMotion().save(_seq(), "mg/walk", "motionguide")
    assert out["result"][0].endswith("walk_00002.npz")
    assert os.path.islink(tmp_path / "mg" / "walk_00001.npz")  # left alone


def test_only_a_lost_race_is_retried_and_only_a_few_times(tmp_path):
    calls = []

    def always_taken(path):
        calls.append(path)
        path.write_text("someone else")  # the name appears between the choice and the publish
        raise FileExistsError(path)

    with pytest.raises(FileExistsError, match="5 attempts"):
        output_paths.save_new(tmp_path, "race", ".txt", always_taken, attempts=5)
    assert len(calls) == 5 and [p.name for p in calls] == [f"race_0000{i}.txt" for i in range(1, 6)]

    def not_a_race(path):  # a FileExistsError about something else is not retried
        calls.append(path)
        raise FileExistsError("some other file")

    calls.clear()
    with pytest.raises(FileExistsError, match="some other file"):
        output_paths.save_new(tmp_path, "other", ".txt", not_a_race)
    assert len(calls) == 1


def test_retries_check_cancel(tmp_path):
    class Cancelled(Exception):
        pass

    def cancel():
        raise Cancelled()

    def taken(path):
        path.write_text("x")
        raise FileExistsError(path)

    with pytest.raises(Cancelled):
        output_paths.save_new(tmp_path, "c", ".txt", taken, check_cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c_00001.txt"]


def test_new_file_refuses_a_dangling_symlink_name(tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "x.txt")
    with pytest.raises(FileExistsError, match="already exists"):
        with output_paths.new_file(tmp_path / "x.txt"):
            pass
    assert not (tmp_path / "nowhere").exists()


def _pose(frames=4):
    return [{"people": [{"pose_keypoints_2d": [10.0, 20.0, 0.9] * 18}], "canvas_width": 64, "canvas_height": 96}
            for _ in range(frames)]


def _disk_full_after(monkeypatch, method: str, ok_writes: int):
    """Make pathlib's ``method`` fail with ENOSPC after ``ok_writes`` successful calls."""
    from pathlib import Path

    real = getattr(Path, method)
    count = {"n": 0}

    def write(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] > ok_writes:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, write)


def _all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_save_pose_per_frame_leaves_nothing_on_a_full_disk(tmp_path, monkeypatch):
    from motionguide.nodes import pose as nodes

    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path))
    per_frame = nodes.SAVE_FORMATS[1]
    with monkeypatch.context() as patch:
        _disk_full_after(patch, "write_text", 2)
        with pytest.raises(OSError, match="No space left"):
            nodes.MotionGuideSavePose().save(_pose(4), "p/run", per_frame)
    assert _all_files(tmp_path) == ["p"]  # no half set, no temporary files
    out = nodes.MotionGuideSavePose().save(_pose(4), "p/run", per_frame)["result"][0]
    assert out.endswith("run_00001") and len(os.listdir(out)) == 4


def test_save_image_set_is_removed_on_a_full_disk(tmp_path, monkeypatch):
    import torch
    from motionguide.headless import core_standins

    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path))
    (tmp_path / "img_00002.png").write_bytes(b"someone else's")
    images = torch.rand(3, 8, 8, 3)
    with monkeypatch.context() as patch:
        _disk_full_after(patch, "write_bytes", 2)
        with pytest.raises(OSError, match="No space left"):
            core_standins.SaveImage().save_images(images, "img")
    assert _all_files(tmp_path) == ["img_00002.png"]  # ours removed, the other file kept
    saved = core_standins.SaveImage().save_images(images, "img")["ui"]["images"]
    assert [e["filename"] for e in saved] == ["img_00001.png", "img_00003.png", "img_00004.png"]


def test_stale_partial_downloads_are_removed_on_start(tmp_path, caplog):
    from motionguide.batch.state import remove_partial_downloads, temp_path_for

    out = tmp_path / "out"
    stale = temp_path_for(out / "job1", "clip.mp4")  # what a killed client leaves behind
    stale.write_bytes(b"half a video")
    kept = [out / "job1" / "clip.mp4", out / "job1" / "notes.part", out / ".hidden.part"]
    for path in kept:
        path.write_bytes(b"x")
    assert stale.name.startswith(".clip.mp4.") and stale.name.endswith(".part")
    assert remove_partial_downloads(out) == 1
    assert not stale.exists() and all(p.exists() for p in kept)
    assert remove_partial_downloads(tmp_path / "missing") == 0


def test_batch_client_cleans_partial_downloads_when_it_starts(tmp_path, monkeypatch):
    from motionguide.batch import client as batch_client
    from motionguide.batch.state import temp_path_for

    stale = temp_path_for(tmp_path / "out" / "j", "a.png")
    (tmp_path / "wf.json").write_text('{"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}')
    # one job on a server that is not there: it fails quickly
    (tmp_path / "jobs.jsonl").write_text('{"id": "j", "1.image": "missing.png"}\n')
    assert batch_client.main([str(tmp_path / "wf.json"), str(tmp_path / "jobs.jsonl"), "--out",
                              str(tmp_path / "out"), "--no-progress", "--server", "127.0.0.1:9", "--backoff",
                              "0.001"]) == 1
    assert not stale.exists()
