"""bench/gpu_check.py's CPU dry run: every measurement's code path at tiny sizes, the table and the JSON file, so
the GPU check has run end to end before it first meets a GPU; and the wrapper script's time-boxed subprocess path."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_covers_every_measurement(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--in-process",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    by = {}
    for row in rows:
        by.setdefault(row["measurement"], []).append(row)
    assert set(by) == {"info", "cuda_tests", "sampler_fp16", "sampler_bf16", "sampler_memory", "decode", "dwpose",
                       "rasteriser", "hmr2", "training", "dispose"}
    assert all(r["status"] in ("ok", "skipped") for r in rows), [r for r in rows if r["status"] not in ("ok", "skipped")]
    sampler = [r for r in by["sampler_fp16"] + by["sampler_bf16"] if "unet_batch" in r["config"]]
    assert len(sampler) == 4 and all(r["ms_per_frame_pass"] > 0 and r["flops_per_frame_pass"] > 0 for r in sampler)
    assert all(r["finite"] for r in sampler) and all(r["overhead"] >= 1.0 for r in sampler)
    assert by["dwpose"][0]["provider"] == "CPUExecutionProvider" and by["rasteriser"][0]["frames_per_s"] > 0
    assert len(by["hmr2"]) == 2 and all(r["ms_per_crop"] > 0 for r in by["hmr2"])
    assert len(by["training"]) == 2 and all(r["steps_per_s"] > 0 and r["finite"] for r in by["training"])
    assert by["dispose"][0]["ratio"] > 0 and by["dispose"][0]["per_call_work_ratio"] > 0
    assert "measurement" in proc.stdout and "sampler_fp16" in proc.stdout and str(out) in proc.stdout  # one table


def test_gpu_check_script_runs_measurements_in_time_boxed_processes(tmp_path):
    out = tmp_path / "info.json"
    env = {**os.environ, "MOTIONGUIDE_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", "--only", "info", "--json",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["measurement"] for r in rows] == ["info"] and rows[0]["torch"] and rows[0]["dry_run"] is True
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--only", "nonsense"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown measurements" in bad.stderr
