"""`python cli.py dataset build` on the shipped sample video with tiny DWPose models and a motion file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "example_workflows" / "inputs"


@pytest.fixture()
def videos(tmp_path, anny_body):
    from motionguide.pipelines.smpl.motion.importers import load_motion_file
    from motionguide.pipelines.smpl.motion.sequence import save_sequence

    folder, motions = tmp_path / "videos", tmp_path / "motions"
    folder.mkdir()
    motions.mkdir()
    shutil.copy(INPUTS / "motionguide_driving.mp4", folder / "walk.mp4")
    shutil.copy(INPUTS / "motionguide_driving.mp4", folder / "no_motion.mp4")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)  # not decodable
    seq = load_motion_file(INPUTS / "motionguide_motion.npz")
    # the sample motion is for shape transfer (a far camera); give it a camera that frames the body in the video
    seq["K"] = np.tile(np.array([[2000, 0, 288], [0, 2000, 512], [0, 0, 1]], np.float32), (len(seq["K"]), 1, 1))
    save_sequence(seq, motions / "walk.npz")
    return folder, motions


def _build(folder, motions, out, models_dir):
    from motionguide.headless.cli import main

    return main(["dataset", "build", str(folder), str(out), "--motion-dir", str(motions), "--models-dir",
                 str(models_dir), "--width", "64", "--height", "112", "--max-frames", "6"])


def test_dataset_build_writes_clips_skips_bad_videos_and_resumes(tmp_path, videos, tiny_dwpose_dir, models_dir,
                                                                 capsys):
    folder, motions = videos
    out = tmp_path / "dataset"
    assert _build(folder, motions, out, models_dir) == 0
    printed = capsys.readouterr().out
    assert "built 1 clips, 0 already there, 2 skipped" in printed
    report = json.loads((out / "report.json").read_text())
    reasons = {Path(f["video"]).name: f["reason"] for f in report["failed"]}
    assert "cannot be read" in reasons["broken.mp4"]
    assert "no body motion" in reasons["no_motion.mp4"] and "no_motion.npz" in reasons["no_motion.mp4"]
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [line["name"] for line in lines] == ["walk"]
    clip = out / "walk"
    info = json.loads((clip / "clip.json").read_text())
    assert info["frames"] == 6 and (info["width"], info["height"]) == (64, 112)
    assert info["maps"] == ["depth", "mask", "normal", "pose", "semantic", "skeleton"]
    assert info["semantic_palette"] == "motionguide-lr-v1" and info["depth_normalisation"] == "per-clip"
    assert len(list((clip / "frames").glob("*.png"))) == 6
    mask = cv2.imread(str(clip / "maps" / "mask" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (112, 64) and 0.05 < (mask > 0).mean() < 0.6  # the body, framed, not the whole image
    depth = cv2.imread(str(clip / "maps" / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(depth > 0, mask > 0)
    keypoints = json.loads((clip / "keypoints.json").read_text())
    assert len(keypoints) == 6 and all(len(f["people"][0]["pose_keypoints_2d"]) == 54 for f in keypoints if f["people"])
    assert len(info["valid"]) == 6 and info["valid"] == [i not in info["frames_without_person"] for i in range(6)]
    # a rerun skips the finished clip; a crashed clip's temp folder is never listed
    (out / ".ghost.tmp").mkdir()
    stamp = (clip / "clip.json").stat().st_mtime_ns
    assert _build(folder, motions, out, models_dir) == 0
    assert "built 0 clips, 1 already there, 2 skipped" in capsys.readouterr().out
    assert (clip / "clip.json").stat().st_mtime_ns == stamp
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 1
    from motionguide.pipelines.training.data import read_dataset

    clips = read_dataset(out)
    assert [c.name for c in clips] == ["walk"]
