"""The batch client against a fake ComfyUI (batch/fake_comfyui.py) on 127.0.0.1: happy path, errors, resume."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from motionguide.batch import client as batch_client
from motionguide.batch import state as batch_state
from motionguide.batch.fake_comfyui import FakeComfyUI, output_bytes

ROOT = Path(__file__).resolve().parents[1]

WORKFLOW = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}, "_meta": {"title": "Reference image"}},
    "2": {"class_type": "VHS_LoadVideo", "inputs": {"video": "placeholder.mp4"}, "_meta": {"title": "Driving video"}},
    "3": {"class_type": "FakeSampler", "inputs": {"seed": 0, "steps": 3, "ref": ["1", 0], "video": ["2", 0]},
          "_meta": {"title": "Sampler"}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "mg"}},
    "5": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["3", 0], "filename_prefix": "mgvid"}},
}


@pytest.fixture()
def fake():
    with FakeComfyUI(lifetime=60) as server:
        yield server


@pytest.fixture()
def fake2():
    with FakeComfyUI(lifetime=60) as server:
        yield server


@pytest.fixture()
def work(tmp_path):
    """Workflow, inputs and a job-list writer in tmp_path."""
    (tmp_path / "wf.json").write_text(json.dumps(WORKFLOW))
    for i in range(4):
        (tmp_path / f"ref{i}.png").write_bytes(b"\x89PNG ref %d" % i)
        (tmp_path / f"drive{i}.mp4").write_bytes(b"MP4 drive %d" % i)
    return tmp_path


def write_jobs(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_batch(work: Path, servers, jobs: Path, *extra) -> int:
    argv = [str(work / "wf.json"), str(jobs), "--out", str(work / "out"), "--backoff", "0.02", "--poll", "0.5",
            "--no-progress"]
    for s in servers:
        argv += ["--server", s.url if hasattr(s, "url") else s]
    return batch_client.main(argv + list(extra))


def state(work: Path) -> dict:
    """The jobs as the next run would read them (snapshot + journal)."""
    return batch_state.BatchState.load(work / "out" / "batch_state.json", "unused").data["jobs"]


def outputs_of(work: Path, job_id: str) -> dict[str, bytes]:
    d = work / "out" / job_id
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else {}


def test_happy_path_two_jobs_two_servers_then_rerun_skips(work, fake, fake2):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": "a", "reference": "ref0.png", "video": "drive0.mp4", "seed": 11},
        {"id": "b", "reference": "ref1.png", "video": "drive1.mp4", "seed": 22, "overrides": {"3": {"steps": 4}}},
    ])
    assert run_batch(work, [fake, fake2], jobs) == 0
    prompts = fake.prompts + fake2.prompts
    assert len(prompts) == 2
    assert fake.max_queue_len <= 1 and fake2.max_queue_len <= 1  # one job in flight per server
    by_seed = {p["prompt"]["3"]["inputs"]["seed"]: p for p in prompts}
    assert sorted(by_seed) == [11, 22]
    assert by_seed[22]["prompt"]["3"]["inputs"]["steps"] == 4 and by_seed[11]["prompt"]["3"]["inputs"]["steps"] == 3
    # the uploaded names (content-addressed) were bound into LoadImage/VHS_LoadVideo, bytes intact
    p = by_seed[11]["prompt"]
    server = fake if by_seed[11] in fake.prompts else fake2
    assert server.uploads[p["1"]["inputs"]["image"]] == b"\x89PNG ref 0"
    assert server.uploads[p["2"]["inputs"]["video"]] == b"MP4 drive 0"
    assert p["3"]["inputs"]["ref"] == ["1", 0]  # links untouched
    st = state(work)
    for job_id, seed in (("a", 11), ("b", 22)):
        files = outputs_of(work, job_id)
        assert len(files) == 2 and any(n.endswith(".png") for n in files) and any(n.endswith(".mp4") for n in files)
        pid = st[job_id]["prompt_id"]
        assert files[next(n for n in files if n.endswith(".png"))] == output_bytes(pid, "4", seed)
        assert st[job_id]["status"] == "done"
    assert not list((work / "out").rglob("*.part"))
    # rerun: nothing is queued again, nothing is rewritten
    before = {p: p.stat().st_mtime_ns for p in (work / "out").rglob("*.png")}
    assert run_batch(work, [fake, fake2], jobs) == 0
    assert len(fake.prompts) + len(fake2.prompts) == 2
    assert {p: p.stat().st_mtime_ns for p in (work / "out").rglob("*.png")} == before


def test_csv_job_list_with_node_input_columns(work, fake):
    (work / "jobs.csv").write_text("id,reference,video,seed,Sampler.steps,overrides\n"
                                   "c1,ref0.png,drive0.mp4,5,7,4.filename_prefix=\"x\"\n")
    assert run_batch(work, [fake], work / "jobs.csv") == 0
    p = fake.prompts[0]["prompt"]
    assert p["3"]["inputs"]["steps"] == 7 and p["3"]["inputs"]["seed"] == 5 and p["4"]["inputs"]["filename_prefix"] == "x"
    assert sorted(outputs_of(work, "c1")) == ["mgvid_00002_.mp4", "x_00001_.png"]


def test_validation_error_fails_only_that_job(work, fake, caplog):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": "bad", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1, "overrides": ["3.steps=1000"]},
        {"id": "good", "reference": "ref1.png", "video": "drive1.mp4", "seed": 2},
    ])
    assert run_batch(work, [fake], jobs) == 1
    st = state(work)
    assert st["good"]["status"] == "done" and st["bad"]["status"] == "failed"
    assert "node 3 (FakeSampler) input 'steps': value_bigger_than_max" in st["bad"]["error"]
    assert "steps 1000 bigger than max of 100" in st["bad"]["error"]
    assert len(fake.prompts) == 1  # the rejected prompt was never queued, and not retried
    assert "job bad (row 1) failed" in caplog.text


def test_unknown_node_type_from_400_and_from_object_info(work):
    wf = dict(WORKFLOW, **{"6": {"class_type": "NotInstalledNode", "inputs": {"x": ["3", 0]}}})
    (work / "wf.json").write_text(json.dumps(wf))
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "j", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1}])
    with FakeComfyUI(object_info=False) as server:  # no /object_info: the 400 answer tells
        assert run_batch(work, [server], jobs) == 1
        err = state(work)["j"]["error"]
        assert "invalid_prompt: Cannot execute because node NotInstalledNode does not exist. (Node ID '#6')" in err
    (work / "out" / "batch_state.json").unlink()
    with FakeComfyUI() as server:  # /object_info: found before anything is uploaded or queued
        assert run_batch(work, [server], jobs) == 1
        assert "lacks node types NotInstalledNode" in state(work)["j"]["error"]
        assert server.prompts == [] and server.uploads == {}


def test_server_without_nodes_hands_jobs_to_another(work, fake):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": f"ref{i}.png", "video": f"drive{i}.mp4", "seed": i} for i in range(3)])
    classes = {k: v for k, v in fake.classes.items() if k != "VHS_VideoCombine"}
    with FakeComfyUI(classes=classes) as poor:
        assert run_batch(work, [poor, fake], jobs) == 0
        assert poor.prompts == [] and len(fake.prompts) == 3


def test_prompt_left_on_a_server_without_the_nodes_is_run_elsewhere(work, fake):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"r{i}", "reference": f"ref{i}.png", "video": f"drive{i}.mp4", "seed": i} for i in range(3)])
    assert run_batch(work, [fake], jobs) == 0
    classes = {k: v for k, v in fake.classes.items() if k != "FakeSampler"}
    with FakeComfyUI(classes=classes) as poor:
        path = work / "out" / "batch_state.json"
        saved = json.loads(path.read_text())
        for i in range(3):  # as if queued there by a run that was then killed
            saved["jobs"][f"r{i}"].update(status="queued", server=poor.url, prompt_id=f"lost{i}")
        path.write_text(json.dumps(saved))
        assert run_batch(work, [poor, fake], jobs) == 0  # poor's worker hands all its resumed jobs over
        assert poor.prompts == [] and len(fake.prompts) == 6
        assert {v["server"] for v in state(work).values()} == {fake.url}


def test_unexpected_error_fails_the_job_not_the_batch(work, fake, monkeypatch):
    real = batch_state.publish_no_clobber

    def disk_full(tmp, dest):
        if "bad" in str(dest):
            raise OSError(28, "No space left on device")
        return real(tmp, dest)

    monkeypatch.setattr(batch_client, "publish_no_clobber", disk_full)
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": "bad", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1},
        {"id": "good", "reference": "ref1.png", "video": "drive1.mp4", "seed": 2}])
    assert run_batch(work, [fake], jobs) == 1
    st = state(work)
    assert st["bad"]["error"] == "unexpected OSError: [Errno 28] No space left on device" and st["good"]["status"] == "done"
    assert not list((work / "out").rglob("*.part"))  # the temp file was cleaned up


def test_partial_node_errors_with_200_fail_the_job(work, fake):
    wf = dict(WORKFLOW, **{"6": {"class_type": "LoadImage", "inputs": {"image": "not_uploaded.png"}},
                           "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "z"}}})
    (work / "wf.json").write_text(json.dumps(wf))
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "j", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1}])
    assert run_batch(work, [fake], jobs) == 1  # two LoadImage nodes: the title "Reference image" picks node 1
    err = state(work)["j"]["error"]
    assert "some outputs invalid" in err and "node 6 (LoadImage) input 'image': custom_validation_failed" in err
    assert {"prompt_id": state(work)["j"]["prompt_id"]} in fake.interrupts  # the valid half was cancelled


def test_execution_error_and_interrupt_fail_their_jobs_only(work, fake):
    fake.behaviour.update({13: "error", 14: "interrupt"})
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"s{s}", "reference": "ref0.png", "video": "drive0.mp4", "seed": s} for s in (13, 14, 15)])
    assert run_batch(work, [fake], jobs) == 1
    st = state(work)
    assert st["s13"]["error"] == "node 3 (FakeSampler) raised ValueError: boom: sampler diverged at step 1"
    assert st["s14"]["error"].startswith(f"interrupted on {fake.url} at node 3 (FakeSampler)")
    assert st["s15"]["status"] == "done" and len(outputs_of(work, "s15")) == 2
    assert outputs_of(work, "s13") == {} and outputs_of(work, "s14") == {}
    assert len(fake.prompts) == 3  # not retried


def test_websocket_drop_mid_job_reconnects_without_requeue(work, fake):
    fake.behaviour[7] = "drop_ws"
    fake.step_delay = 0.1  # still running after the reconnect: followed on the new socket
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "d", "reference": "ref0.png", "video": "drive0.mp4", "seed": 7}])
    assert run_batch(work, [fake], jobs) == 0
    assert len(fake.prompts) == 1 and fake.dropped == {fake.prompts[0]["prompt_id"]}
    assert len(outputs_of(work, "d")) == 2


def test_prompt_lost_in_a_server_restart_is_queued_again(work, fake):
    fake.behaviour[8] = "vanish"
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "v", "reference": "ref0.png", "video": "drive0.mp4", "seed": 8}])
    assert run_batch(work, [fake], jobs) == 0
    first, second = (p["prompt_id"] for p in fake.prompts)  # exactly one re-queue, with a new prompt id
    assert first not in fake.history and state(work)["v"]["prompt_id"] == second
    assert len(outputs_of(work, "v")) == 2


def test_killed_client_resumes_from_state_file(work, fake):
    fake.behaviour[2] = "slow"  # job 2 runs ~1 s on the server
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"k{s}", "reference": f"ref{s}.png", "video": f"drive{s}.mp4", "seed": s} for s in (1, 2, 3)])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import cli; cli.load_pack();"
            "from motionguide.batch.client import main; sys.exit(main(sys.argv[2:]))")
    argv = [str(work / "wf.json"), str(jobs), "--out", str(work / "out"), "--server", fake.url, "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT), *argv], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while len(fake.prompts) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(fake.prompts) == 2, proc.stderr.read().decode() if proc.poll() is not None else "slow client"
    finally:
        proc.kill()
        proc.wait(5)
    st = state(work)
    assert st["k1"]["status"] == "done" and st["k2"]["status"] == "queued"
    k1_files = outputs_of(work, "k1")
    # the rerun follows k2's prompt (still running, or finished meanwhile) instead of queuing it again
    assert run_batch(work, [fake], jobs) == 0
    assert [p["prompt"]["3"]["inputs"]["seed"] for p in fake.prompts] == [1, 2, 3]
    st = state(work)
    assert all(st[k]["status"] == "done" for k in ("k1", "k2", "k3"))
    assert outputs_of(work, "k1") == k1_files
    png = next(n for n in outputs_of(work, "k2") if n.endswith(".png"))
    assert outputs_of(work, "k2")[png] == output_bytes(st["k2"]["prompt_id"], "4", 2)


def test_missing_input_file_and_duplicates_fail_per_job(work, fake):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": "ok", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1},
        {"id": "missing", "reference": "nope.png", "video": "drive0.mp4", "seed": 1},
        {"id": "dup-content", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1},
        {"id": "ok", "reference": "ref1.png", "video": "drive1.mp4", "seed": 2},
        {"reference": "ref2.png", "video": "drive2.mp4", "seed": 3},
    ])
    assert run_batch(work, [fake], jobs) == 1
    st = state(work)
    assert len(fake.prompts) == 2
    assert st["ok"]["status"] == "done" and st["ok"]["row"] == 1
    done_ids = [k for k, v in st.items() if v["status"] == "done"]
    assert sorted(done_ids) == sorted(["ok", next(k for k in st if k.startswith("ref2-"))])
    assert "missing" not in st and "dup-content" not in st  # bad rows never touch the state


def test_bad_rows_are_reported(work, fake, caplog):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": "missing", "reference": "nope.png", "video": "drive0.mp4", "seed": 1},
        {"id": "a", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1},
        {"id": "b", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1},
        {"id": "a", "reference": "ref1.png", "video": "drive1.mp4", "seed": 2},
    ])
    assert run_batch(work, [fake], jobs) == 1
    text = caplog.text
    assert f"line 1: reference file not found: {work / 'nope.png'}" in text
    assert "row 3: duplicate of job 'a' (row 2): same inputs and settings" in text
    assert "row 4: duplicate job id 'a' (first used on row 2)" in text


def test_timeout_cancels_the_prompt_and_the_next_job_runs(work, fake):
    fake.behaviour[9] = "hang"
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": "hang", "reference": "ref0.png", "video": "drive0.mp4", "seed": 9},
        {"id": "after", "reference": "ref1.png", "video": "drive1.mp4", "seed": 10},
    ])
    t0 = time.monotonic()
    assert run_batch(work, [fake], jobs, "--timeout", "0.5") == 1
    assert time.monotonic() - t0 < 10
    st = state(work)
    assert st["hang"]["error"].startswith("no result within --timeout 0.5 s")
    assert {"prompt_id": st["hang"]["prompt_id"]} in fake.interrupts
    assert st["after"]["status"] == "done"


def test_server_down_retries_then_fails_and_5xx_is_retried(work, fake):
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "r", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1}])
    fake.fail_next_prompts = 2
    assert run_batch(work, [fake], jobs, "--retries", "3") == 0
    assert len(fake.prompts) == 1 and state(work)["r"]["status"] == "done"


def test_only_server_dead_fails_every_job_fast_saying_it_is_down(work):
    down = FakeComfyUI()  # never started: connection refused
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": "ref0.png", "video": "drive0.mp4", "seed": i} for i in range(30)])
    t0 = time.monotonic()
    # each job spending its own retries would sleep 30 x (0.1 + 0.2) = 9 s; the server's breaker opens after 0.3 s
    assert run_batch(work, [down.url], jobs, "--retries", "2", "--backoff", "0.1") == 1
    assert time.monotonic() - t0 < 3
    errors = {v["error"] for v in state(work).values()}
    assert len(state(work)) == 30 and len(errors) == 1
    err = errors.pop()
    assert err.startswith(f"server {down.url} is down: 3 connection failures in a row over 0.")
    assert "ClientConnectorError" in err
    assert err.endswith("; start it (or fix --server) and rerun the same command to resume")


def test_down_server_next_to_a_live_one(work, fake):
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": f"ref{i}.png", "video": f"drive{i}.mp4", "seed": i} for i in range(3)])
    down = FakeComfyUI()
    assert run_batch(work, [down.url, fake], jobs, "--retries", "3") == 0
    assert len(fake.prompts) == 3


def test_a_server_that_comes_back_gets_jobs_again(work, fake, fake2):
    import threading

    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": "ref0.png", "video": "drive0.mp4", "seed": i} for i in range(16)])
    fake.step_delay = 0.04  # ~0.15 s a job on the live server: the batch outlasts the other one's cool-down
    fake2.refuse_connections()
    codes = []
    client = threading.Thread(target=lambda: codes.append(run_batch(work, [fake2, fake], jobs)))
    client.start()
    time.sleep(0.4)  # its breaker opened (4 failures: 0.02 + 0.04 + 0.08 + 0.16 s), then it comes back
    fake2.accept_connections()
    client.join(30)
    assert codes == [0] and len(fake.prompts) + len(fake2.prompts) == 16
    assert len(fake2.prompts) >= 2  # found back by a probe after its cool-down


def test_existing_outputs_are_never_overwritten(work, fake):
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "keep", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1}])
    dest = work / "out" / "keep"
    dest.mkdir(parents=True)
    (dest / "mg_00001_.png").write_bytes(b"precious")
    assert run_batch(work, [fake], jobs) == 0
    files = outputs_of(work, "keep")
    assert files["mg_00001_.png"] == b"precious"
    assert files["mg_00001_ (1).png"] == output_bytes(state(work)["keep"]["prompt_id"], "4", 1)


def test_ui_format_and_bad_binding_exit_2(work, fake, caplog):
    (work / "ui.json").write_text(json.dumps({"nodes": [], "links": []}))
    jobs = write_jobs(work / "jobs.jsonl", [{"reference": "ref0.png"}])
    assert batch_client.main([str(work / "ui.json"), str(jobs), "--server", fake.url, "--out", str(work / "o")]) == 2
    assert "UI format" in caplog.text and "Export (API)" in caplog.text
    assert run_batch(work, [fake], jobs, "--bind", "reference=99.image") == 2
    assert "binding 'reference': the workflow has no node with id or title '99'" in caplog.text
    assert fake.prompts == []


def test_cli_sub_command_wiring():
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    batch_client.add_arguments(sub.add_parser("batch"))
    args = parser.parse_args(["batch", "wf.json", "jobs.csv", "--server", "h:1", "--server", "h:2", "--set", "3.steps=4"])
    assert args.server == ["h:1", "h:2"] and args.set == ["3.steps=4"] and args.retries == 3 and callable(batch_client.run)


@pytest.mark.parametrize("text, what", [
    ("[]", "it holds a JSON list, expected an object with version, client_id and jobs"),
    ("null", "it holds JSON null"),
    ('{"version": 1}', "missing 'client_id', 'jobs'"),
    ('{"version": 1, "client_id": "c", "jobs": []}', "'jobs' is a JSON list, expected an object"),
    ('{"version": 1, "client_id": "c", "jobs": {"a": 3}}', "job 'a' is a JSON number, expected an object"),
    ('{"version": 1, "client_id": "c", "jobs": {"a": {"server": ["x"]}}}', "job 'a': 'server' is a JSON list"),
])
def test_state_file_of_the_wrong_shape_exits_2_naming_it(work, fake, caplog, text, what):
    jobs = write_jobs(work / "jobs.jsonl", [{"id": "a", "reference": "ref0.png", "video": "drive0.mp4", "seed": 1}])
    path = work / "out" / "batch_state.json"
    path.parent.mkdir()
    path.write_text(text)
    assert run_batch(work, [fake], jobs) == 2
    assert f"state file {path} is not a batch state file: {what}" in caplog.text
    assert "move it away to start afresh" in caplog.text
    assert fake.prompts == [] and path.read_text() == text  # nothing queued, the file left as it was


def test_a_second_client_on_the_same_state_file_exits_2_naming_the_holder(work, fake, caplog):
    import os
    import socket
    import threading

    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": f"ref{i}.png", "video": f"drive{i}.mp4", "seed": i} for i in range(4)])
    fake.pause()  # the first client waits on its first prompt while the second one starts
    codes = {}
    first = threading.Thread(target=lambda: codes.setdefault("first", run_batch(work, [fake], jobs)))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not fake.prompts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(fake.prompts) == 1
        assert run_batch(work, [fake], jobs, "--timeout", "1") == 2  # (without a lock: its prompts time out)
    finally:
        fake.resume()
        first.join(20)
    assert codes == {"first": 0}
    assert len(fake.prompts) == 4  # each job queued once
    text = caplog.text
    assert f"state file {work / 'out' / 'batch_state.json'} is in use by another batch client" in text
    assert f"(pid {os.getpid()} on {socket.gethostname()}, started 20" in text
    assert "wait for it to finish (or stop it), or give this batch its own --out or --state" in text
    # the lock goes with its holder: the next run gets it
    assert run_batch(work, [fake], jobs) == 0 and len(fake.prompts) == 4


def test_state_file_is_written_at_start_and_end_only(work, fake, monkeypatch):
    snapshots = []
    real = batch_state.write_json_atomic
    monkeypatch.setattr(batch_state, "write_json_atomic", lambda path, data: (snapshots.append(path), real(path, data)))
    jobs = write_jobs(work / "jobs.jsonl", [
        {"id": f"j{i}", "reference": "ref0.png", "video": "drive0.mp4", "seed": i} for i in range(12)])
    assert run_batch(work, [fake], jobs) == 0
    assert len(snapshots) == 2  # per job: two journal lines, not two rewrites of the whole file
    assert all(v["status"] == "done" for v in state(work).values()) and len(state(work)) == 12
    assert not (work / "out" / "batch_state.json.journal").exists()


def test_prompt_deleted_from_the_queue_is_noticed_and_queued_again(work, fake):
    import threading

    jobs = write_jobs(work / "jobs.jsonl", [{"id": "c", "reference": "ref0.png", "video": "drive0.mp4", "seed": 4}])
    fake.pause()  # our prompt waits behind someone else's job...
    codes = []
    client = threading.Thread(target=lambda: codes.append(run_batch(work, [fake], jobs, "--poll", "0.2",
                                                                    "--timeout", "20")))
    t0 = time.monotonic()
    client.start()
    try:
        while not fake.prompts and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        assert fake.delete_queued() == [fake.prompts[0]["prompt_id"]]  # ...and that user presses "Clear queue"
    finally:
        fake.resume()
        client.join(30)
    assert codes == [0] and time.monotonic() - t0 < 5  # noticed at the first quiet spell, not at --timeout
    first, second = (p["prompt_id"] for p in fake.prompts)
    assert fake.cleared == [first] and state(work)["c"]["prompt_id"] == second
    assert len(outputs_of(work, "c")) == 2


@pytest.mark.parametrize("chatter", [0.0, 0.05])
def test_prompt_deleted_every_time_fails_as_lost_after_the_retries(work, chatter):
    # chatter: other users' status messages every 50 ms never leave our socket quiet; they must not hide the loss
    with FakeComfyUI(chatter=chatter) as fake:
        fake.behaviour[5] = "cleared"
        jobs = write_jobs(work / "jobs.jsonl", [
            {"id": "lost", "reference": "ref0.png", "video": "drive0.mp4", "seed": 5},
            {"id": "fine", "reference": "ref1.png", "video": "drive1.mp4", "seed": 6}])
        t0 = time.monotonic()
        assert run_batch(work, [fake], jobs, "--poll", "0.2", "--retries", "1", "--timeout", "20") == 1
        assert time.monotonic() - t0 < 5
        st = state(work)
        assert st["fine"]["status"] == "done"
        assert len([p for p in fake.prompts if p["prompt"]["3"]["inputs"]["seed"] == 5]) == 2  # queued twice, no more
        assert st["lost"]["error"] == (
            f"lost 2 times (--retries 1): prompt {st['lost']['prompt_id']} was removed from the queue of {fake.url} "
            "before it ran to the end (someone cleared the queue or deleted it, or the server restarted)")
