#!/usr/bin/env python3
"""Batch client bench against the fake ComfyUI (tests/fake_comfyui.py), all in one run:

* speed-up from a second server when each prompt takes ~0.25 s on the server (ideal 2.0);
* client overhead per job (upload, queue, websocket, history, download, state file) with instant prompts;
* download throughput of a large output file.

    /work/main/.venv/bin/python bench/batch.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import cli  # noqa: E402

cli.load_pack()
from fake_comfyui import FakeComfyUI  # noqa: E402
from motionguide.batch import client as batch_client  # noqa: E402

WORKFLOW = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "3": {"class_type": "FakeSampler", "inputs": {"seed": 0, "steps": 5, "ref": ["1", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "b"}},
}


def run(servers, jobs: int, step_delay: float, work: Path) -> float:
    work.mkdir(parents=True, exist_ok=True)
    (work / "wf.json").write_text(json.dumps(WORKFLOW))
    (work / "ref.png").write_bytes(b"\x89PNG bench")
    (work / "jobs.jsonl").write_text("".join(json.dumps({"reference": "ref.png", "seed": s}) + "\n" for s in range(jobs)))
    for s in servers:
        s.step_delay = step_delay
    argv = [str(work / "wf.json"), str(work / "jobs.jsonl"), "--out", str(work / "out"), "--no-progress",
            "--poll", "1"] + [a for s in servers for a in ("--server", s.url)]
    started = time.perf_counter()
    assert batch_client.main(argv) == 0
    return time.perf_counter() - started


def main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    with FakeComfyUI(lifetime=300) as a, FakeComfyUI(lifetime=300) as b, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = run([a], 8, 0.05, tmp / "one")  # 5 steps x 0.05 s = 0.25 s per prompt
        two = run([a, b], 8, 0.05, tmp / "two")
        print(f"8 jobs of ~0.25 s: 1 server {one:.2f} s, 2 servers {two:.2f} s -> speed-up {one / two:.2f} (ideal 2.00)")
        n = 40
        instant = run([a], n, 0.0, tmp / "instant")
        print(f"client overhead with instant prompts: {1000 * instant / n:.1f} ms per job ({n} jobs, one server)")
        big = 64 << 20
        import fake_comfyui

        original = fake_comfyui.output_bytes
        fake_comfyui.output_bytes = lambda pid, nid, seed: b"\0" * big
        try:
            seconds = run([a], 2, 0.0, tmp / "big")
        finally:
            fake_comfyui.output_bytes = original
        print(f"2 jobs with a 64 MiB output each: {seconds:.2f} s -> {2 * big / seconds / 2**20:.0f} MiB/s end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
