"""The batch client against a real ComfyUI server (opt-in: it starts ComfyUI, ~6 s): core nodes, then the pack's
own example workflow (a) on the tiny models, with the pack linked into the server's ``custom_nodes``.

Set ``MOTIONGUIDE_COMFYUI=/path/to/ComfyUI`` and optionally ``MOTIONGUIDE_COMFYUI_PYTHON`` (its venv's python,
which needs the pack's requirements for the second test); skipped otherwise.
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from motionguide.batch import client as batch_client
from motionguide.batch.fake_comfyui import free_port
from real_comfyui import COMFY, SKIP_REASON, comfy_env, comfy_python, is_checkout

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not is_checkout("main.py"), reason=SKIP_REASON)

WORKFLOW = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}, "_meta": {"title": "Reference"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv"}},
    "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 2.0}},
    "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "big"}},
}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_base")
    for d in ("custom_nodes", "models", "input", "output", "user"):
        (base / d).mkdir()
    (base / "custom_nodes" / "motionguide").symlink_to(ROOT, target_is_directory=True)
    from motionguide.headless.demo import build_smoke_models

    build_smoke_models(base / "models")  # tiny DWPose, SVD and MimicMotion files in the real layouts
    from motionguide.headless.tiny_models.hmr2 import build_tiny_hmr2
    from motionguide.headless.tiny_models.smpl import build_synthetic_smpl

    build_synthetic_smpl(base / "models" / "smpl")
    build_tiny_hmr2(base / "models" / "hmr2" / "hmr2_tiny.ckpt")
    port = free_port()
    log = open(base / "server.log", "w")
    proc = subprocess.Popen([comfy_python(), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                             "--disable-auto-launch", "--disable-api-nodes", "--base-directory", str(base),
                             "--database-url", "sqlite:///:memory:"], cwd=COMFY, stdout=log, stderr=subprocess.STDOUT,
                            env=comfy_env())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/system_stats", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ComfyUI did not start: {(base / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url, base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_real_server_happy_path_validation_and_rerun(tmp_path, comfy):
    import cv2
    import numpy as np

    url, base = comfy
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 12, 3), 40 * i + 20, np.uint8))
    (tmp_path / "wf.json").write_text(json.dumps(WORKFLOW))
    (tmp_path / "jobs.csv").write_text("id,reference,4.scale_by\na,img0.png,2.0\nb,img1.png,3.0\nbad,img1.png,99\n")
    argv = [str(tmp_path / "wf.json"), str(tmp_path / "jobs.csv"), "--server", url, "--out", str(tmp_path / "out"),
            "--no-progress", "--poll", "1"]
    assert batch_client.main(argv) == 1
    state = json.loads((tmp_path / "out" / "batch_state.json").read_text())["jobs"]
    assert state["a"]["status"] == state["b"]["status"] == "done"
    big = cv2.imread(next(p for p in state["b"]["outputs"] if "big_" in p))
    assert big.shape == (24, 36, 3) and int(big[0, 0, 0]) == 60  # scaled ×3, pixel value kept
    inv = cv2.imread(next(p for p in state["a"]["outputs"] if "inv_" in p))
    assert int(inv[0, 0, 0]) == 255 - 20
    # ComfyUI answers 200 with node_errors when another output is valid: the job must still fail
    assert "node 4 (ImageScaleBy) input 'scale_by': value_bigger_than_max" in state["bad"]["error"]
    assert batch_client.main(argv) == 1  # rerun: a and b skipped, only 'bad' tried again
    again = json.loads((tmp_path / "out" / "batch_state.json").read_text())["jobs"]
    assert again["a"]["prompt_id"] == state["a"]["prompt_id"]
    assert sorted(p.name for p in (tmp_path / "out" / "a").iterdir()) == ["big_00001_.png", "inv_00001_.png"]


def test_real_server_runs_the_packs_smpl_example_on_tiny_models(tmp_path, comfy):
    """Example (b) (core video nodes, DWPose, HMR2, SMPL, render, sampler) queued twice by the batch client."""
    import cv2
    from motionguide.pipelines.video.io import read_video, write_video

    url, base = comfy
    log = (base / "server.log").read_text()
    assert not [line for line in log.splitlines() if "IMPORT FAILED" in line and "motionguide" in line], log[-3000:]
    samples = ROOT / "example_workflows" / "inputs"
    frames, fps = read_video(samples / "motionguide_driving.mp4", frame_load_cap=4)
    write_video(frames, fps, tmp_path / "driving4.mp4")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"id": f"seed{s}", "reference": str(samples / "motionguide_reference.png"),
                                        "video": str(tmp_path / "driving4.mp4"), "seed": s}) + "\n" for s in (1, 2)))
    small = ["4.resolution=64", "22.steps=1", "22.tile_size=5", "22.tile_overlap=1", "21.precision=fp32",
             "8.estimator=hmr2_tiny.ckpt", "9.estimator=hmr2_tiny.ckpt", "12.renderer=torch", "16.renderer=torch"]
    argv = [str(ROOT / "headless" / "workflows_api" / "smpl_guided_video.json"), str(jobs), "--server", url,
            "--out", str(tmp_path / "out"), "--no-progress", "--poll", "1", "--timeout", "300"]
    for item in small:
        argv += ["--set", item]
    assert batch_client.main(argv) == 0
    state = json.loads((tmp_path / "out" / "batch_state.json").read_text())["jobs"]
    videos = []
    for job in ("seed1", "seed2"):
        (mp4,) = [p for p in state[job]["outputs"] if p.endswith(".mp4")]
        capture = cv2.VideoCapture(mp4)
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4 and int(capture.get(3)) == 64
        videos.append(Path(mp4).read_bytes())
    assert videos[0] != videos[1]  # different seeds, different videos
