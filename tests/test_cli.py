"""`cli.py run`: runs an API workflow headless, applies --set, and fails with a clear message on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=240, cwd=cwd)


def test_run_workflow_with_override_and_errors(tmp_path):
    from motionguide.pipelines.video.io import read_image, write_image

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    image = np.random.default_rng(1).integers(0, 255, (20, 12, 3), dtype=np.uint8)
    write_image(image, inputs / "a.png")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    out = run_cli("run", path, "--set", "2.filename_prefix=renamed", "--input-dir", inputs, "--output-dir", outputs,
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    written = outputs / "renamed_00001.png"
    assert f"wrote {written}" in out.stdout
    assert np.array_equal(read_image(written), image)
    assert "node 1: LoadImage" in out.stderr

    workflow["2"]["inputs"]["images"] = ["1", 1]  # MASK into IMAGE
    path.write_text(json.dumps(workflow))
    bad = run_cli("run", path, "--input-dir", inputs, "--output-dir", outputs, cwd=tmp_path)
    assert bad.returncode == 2
    assert "node 2 (SaveImage), input 'images': received_type(MASK) mismatch input_type(IMAGE)" in bad.stderr
