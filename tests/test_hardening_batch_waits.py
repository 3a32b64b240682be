"""The batch client: every network wait is bounded by --timeout (a server that never answers), and a download
cut mid-body is retried, and a rerun fetches a finished prompt's outputs instead of queueing it again (issue 23
cases 5 and 6). Fake servers on 127.0.0.1 only."""
import time

from motionguide.batch.fake_comfyui import SilentServer, output_bytes
from test_batch_client import fake, outputs_of, run_batch, state, work, write_jobs  # noqa: F401 - fixtures


def test_a_server_that_never_answers_is_given_up_within_the_timeout(work):  # noqa: F811
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "a", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1}])
    with SilentServer(lifetime=40) as silent:
        t0 = time.monotonic()
        assert run_batch(work, [silent.url], jobs, "--timeout", "1", "--retries", "0") == 1
        took = time.monotonic() - t0
    # /object_info used a fixed 60 s and the websocket connect aiohttp's 300 s: 364 s with --timeout 10
    assert took < 10, took
    assert "TimeoutError" in state(work)["a"]["error"] and silent.url in state(work)["a"]["error"]


def test_a_download_cut_mid_body_is_retried_without_queueing_again(work, fake):  # noqa: F811
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": f"ref{i}.png", "video": f"drive{i}.mp4", "seed": i} for i in range(3)])
    fake.cut_next_views = 2
    assert run_batch(work, [fake], jobs) == 0
    assert len(fake.prompts) == 3
    for i in range(3):
        pid = state(work)[f"j{i}"]["prompt_id"]
        assert set(outputs_of(work, f"j{i}").values()) <= {output_bytes(pid, n, i) for n in ("4", "5")}
        assert len(outputs_of(work, f"j{i}")) == 2


def test_rerun_after_failed_downloads_fetches_from_history(work, fake):  # noqa: F811
    """Every download cut (more than --retries): the jobs fail; the rerun fetches the finished prompts' outputs
    from /history instead of queueing 3 more prompts (6 prompts for 3 jobs before)."""
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": f"ref{i}.png", "video": f"drive{i}.mp4", "seed": i} for i in range(3)])
    fake.cut_next_views = 1000
    assert run_batch(work, [fake], jobs, "--retries", "1") == 1
    errors = [state(work)[f"j{i}"]["error"] for i in range(3)]
    assert all("download" in e and "ClientPayloadError" in e for e in errors), errors
    assert len(fake.prompts) == 3
    fake.cut_next_views = 0
    assert run_batch(work, [fake], jobs) == 0
    assert len(fake.prompts) == 3
    assert all(len(outputs_of(work, f"j{i}")) == 2 for i in range(3))
