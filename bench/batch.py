#!/usr/bin/env python3
"""Batch client bench against the fake ComfyUI (batch/fake_comfyui.py), all in one run:

* speed-up from a second server when each prompt takes ~0.25 s on the server (ideal 2.0);
* jobs/s with instant prompts at 200 and 2,000 jobs (upload, queue, websocket, history, download, state journal):
  the rate must not fall as the state grows (issue 11: it fell from 12 to 2 jobs/s when the state file was
  rewritten per job); the cost of one journal line next to one rewrite of a 2,000-job state file;
* the time to give up on the only server when it is dead, at the default --retries/--backoff, with 2,000 jobs;
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

import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv

cli.load_pack()
from motionguide.batch import client as batch_client  # noqa: E402
from motionguide.batch.fake_comfyui import FakeComfyUI  # noqa: E402

WORKFLOW = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "3": {"class_type": "FakeSampler", "inputs": {"seed": 0, "steps": 5, "ref": ["1", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "b"}},
}


def run(servers, jobs: int, step_delay: float, work: Path, *extra: str, expect: int = 0) -> float:
    work.mkdir(parents=True, exist_ok=True)
    (work / "wf.json").write_text(json.dumps(WORKFLOW))
    (work / "ref.png").write_bytes(b"\x89PNG bench")
    (work / "jobs.jsonl").write_text("".join(json.dumps({"reference": "ref.png", "seed": s}) + "\n" for s in range(jobs)))
    for s in servers:
        if isinstance(s, FakeComfyUI):
            s.step_delay = step_delay
    argv = [str(work / "wf.json"), str(work / "jobs.jsonl"), "--out", str(work / "out"), "--no-progress",
            "--poll", "1", *extra] + [a for s in servers for a in ("--server", getattr(s, "url", s))]
    started = time.perf_counter()
    assert batch_client.main(argv) == expect
    return time.perf_counter() - started


def state_write_costs(jobs: int, work: Path, repeat: int = 20) -> tuple[float, float]:
    """Seconds for one journal line (appended + fsynced on the writer thread) and one rewrite of the whole file."""
    import asyncio

    from motionguide.batch.state import BatchState, write_json_atomic

    state = BatchState.load(work / "state.json", "bench")
    for i in range(jobs):
        state.data["jobs"][f"job{i}"] = {"status": "done", "content_hash": "f" * 64, "server": "http://127.0.0.1:8188",
                                         "prompt_id": "0" * 36, "row": i, "outputs": [f"out/job{i}/b_{i:05d}_.png"]}
    state.start()

    async def lines():
        for i in range(repeat):
            state.update(f"job{i}", status="queued", prompt_id=str(i))
            await state.sync()

    started = time.perf_counter()
    asyncio.run(lines())
    line = (time.perf_counter() - started) / repeat
    state.close()
    started = time.perf_counter()
    for _ in range(repeat):
        write_json_atomic(work / "state.json", state.data)
    return line, (time.perf_counter() - started) / repeat


def main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    with FakeComfyUI(lifetime=300) as a, FakeComfyUI(lifetime=300) as b, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = run([a], 8, 0.05, tmp / "one")  # 5 steps x 0.05 s = 0.25 s per prompt
        two = run([a, b], 8, 0.05, tmp / "two")
        print(f"8 jobs of ~0.25 s: 1 server {one:.2f} s, 2 servers {two:.2f} s -> speed-up {one / two:.2f} (ideal 2.00)")
        rates = {}
        for n in (200, 2000):
            rates[n] = n / run([a], n, 0.0, tmp / f"rate{n}")
        print(f"instant prompts, one server: {rates[200]:.1f} jobs/s at 200 jobs, {rates[2000]:.1f} jobs/s at 2,000 "
              f"jobs (ratio {rates[2000] / rates[200]:.2f}; at least 10 jobs/s wanted)")
        line, rewrite = state_write_costs(2000, tmp / "state")
        print(f"state cost per change at 2,000 jobs: journal line {1000 * line:.2f} ms, whole-file rewrite "
              f"{1000 * rewrite:.1f} ms -> {rewrite / line:.0f}x")
        dead = FakeComfyUI()  # never started: connection refused
        batch_client.logger.setLevel(logging.CRITICAL)  # not 2,000 "job failed" lines
        give_up = run([dead.url], 2000, 0.0, tmp / "dead", "--retries", "3", "--backoff", "2", expect=1)
        print(f"only server dead, 2,000 jobs, --retries 3 --backoff 2: all failed after {give_up:.1f} s "
              f"(each job spending its own retries: 2,000 x 14 s = 7.8 h)")
        batch_client.logger.setLevel(logging.NOTSET)
        big = 64 << 20
        from motionguide.batch import fake_comfyui

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
