"""The batch client against a real ComfyUI server with core nodes only (opt-in: it starts ComfyUI, ~6 s).

Set ``MOTIONGUIDE_COMFYUI=/path/to/ComfyUI`` and optionally ``MOTIONGUIDE_COMFYUI_PYTHON`` (its venv's python);
skipped otherwise.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fake_comfyui import free_port
from motionguide.nodes import batch_client

COMFY = os.environ.get("MOTIONGUIDE_COMFYUI")
pytestmark = pytest.mark.skipif(not COMFY or not (Path(COMFY) / "main.py").is_file(),
                                reason="set MOTIONGUIDE_COMFYUI to a ComfyUI checkout to run against a real server")

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
    port = free_port()
    python = os.environ.get("MOTIONGUIDE_COMFYUI_PYTHON", sys.executable)
    log = open(base / "server.log", "w")
    proc = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                             "--disable-auto-launch", "--disable-api-nodes", "--base-directory", str(base),
                             "--database-url", "sqlite:///:memory:"], cwd=COMFY, stdout=log, stderr=subprocess.STDOUT)
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
