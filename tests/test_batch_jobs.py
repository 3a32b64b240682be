"""Job lists, bindings and overrides of the batch client: pure functions, no server."""
from __future__ import annotations

import json
import os

import pytest

from motionguide.batch import jobs as bj
from motionguide.batch.server import format_prompt_error, output_files
from motionguide.batch.state import publish_no_clobber, temp_path_for

PROMPT = {
    "10": {"class_type": "LoadImage", "inputs": {"image": "a.png"}, "_meta": {"title": "Reference"}},
    "11": {"class_type": "LoadImage", "inputs": {"image": "b.png"}, "_meta": {"title": "Mask source"}},
    "12": {"class_type": "LoadVideo", "inputs": {"file": "d.mp4"}},
    "13": {"class_type": "MotionGuideLoadSMPLMotion", "inputs": {"fps": 30, "motion_file": "walk.npz"}},
    "20": {"class_type": "MotionGuideSampler", "inputs": {"seed": 1, "steps": 25, "ref": ["10", 0]}, "_meta": {"title": "Sampler"}},
    "21": {"class_type": "KSampler", "inputs": {"noise_seed": 5, "seed": ["30", 0]}},
}


def test_parse_overrides_all_forms():
    assert bj.parse_overrides("20.steps=4; Sampler.cfg=2.5;5.name=x y") == [
        ("20", "steps", 4), ("Sampler", "cfg", 2.5), ("5", "name", "x y")]
    assert bj.parse_overrides(['20.flag=true', '20.l=[1, 2]', '20.s="7"']) == [
        ("20", "flag", True), ("20", "l", [1, 2]), ("20", "s", "7")]
    assert bj.parse_overrides({"20": {"steps": 3}}) == [("20", "steps", 3)]
    assert bj.parse_target("My.Node.steps") == ("My.Node", "steps")
    with pytest.raises(bj.JobError, match="not NODE.INPUT=VALUE"):
        bj.parse_overrides("20.steps")
    with pytest.raises(bj.JobError, match="is not NODE.INPUT"):
        bj.parse_overrides("steps=3")


def test_conventions():
    assert bj.convention_targets(PROMPT, "seed").targets == [("20", "seed"), ("21", "noise_seed")]  # links skipped
    ref = bj.convention_targets(PROMPT, "reference")
    assert ref.targets == [("10", "image")] and ref.upload  # two LoadImage: the title decides
    assert bj.convention_targets(PROMPT, "video").targets == [("12", "file")]
    assert bj.convention_targets(PROMPT, "motion").targets == [("13", "motion_file")]  # first string input
    two = dict(PROMPT, **{"10": dict(PROMPT["10"], _meta={"title": "A"})})
    with pytest.raises(bj.JobError, match=r"found: 10, 11; pass --bind reference=NODE.INPUT"):
        bj.convention_targets(two, "reference")
    with pytest.raises(bj.JobError, match="job field 'pose' has no binding"):
        bj.convention_targets(PROMPT, "pose")


def test_parse_bindings_by_id_and_title():
    b = bj.parse_bindings({"reference": "11.image", "seed": ["Sampler.seed", "21.noise_seed"],
                           "mask": {"targets": "11.image", "upload": True}, "steps": "Sampler.steps"}, PROMPT)
    assert b["reference"].targets == [("11", "image")] and b["reference"].upload
    assert b["seed"].targets == [("20", "seed"), ("21", "noise_seed")] and not b["seed"].upload
    assert b["mask"].upload and not b["steps"].upload


def test_prepare_jobs_builds_prompts_ids_and_flags_duplicates(tmp_path):
    (tmp_path / "ref.png").write_bytes(b"r")
    (tmp_path / "walk.npz").write_bytes(b"m")
    (tmp_path / "jobs.csv").write_text(
        "reference,motion,seed,Sampler.steps,strength\n"
        "ref.png,walk.npz,3,4,0.5\n"
        "ref.png,walk.npz,3,4,0.5\n"
        "ref.png,missing.npz,3,4,0.5\n"
        "ref.png,walk.npz,x,4,0.5\n"
    )
    jobs = bj.read_job_list(tmp_path / "jobs.csv")
    assert jobs[2].error == f"row 4: motion file not found: {tmp_path / 'missing.npz'}"
    assert jobs[3].error == "row 5: seed 'x' is not an integer"
    bindings = bj.parse_bindings({"strength": "20.strength"}, PROMPT)
    bj.prepare_jobs(jobs, PROMPT, bindings, global_overrides=[("21", "noise_seed", 9)])
    first = jobs[0]
    assert first.error is None
    digest = bj.file_digest(tmp_path / "ref.png")
    assert digest == "454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1"  # sha256(b"r")
    p = first.prompt
    assert p["10"]["inputs"]["image"] == f"mg_{digest[:12]}_ref.png"
    assert p["13"]["inputs"]["motion_file"].endswith("_walk.npz")
    assert p["20"]["inputs"] == {"seed": 3, "steps": 4, "ref": ["10", 0], "strength": 0.5}
    assert p["21"]["inputs"]["noise_seed"] == 9  # the global --set wins over the seed convention target order
    assert PROMPT["20"]["inputs"]["steps"] == 25  # the template is not mutated
    assert first.id == f"ref-{first.content_hash[:8]}"
    assert jobs[1].error == f"row 3: duplicate of job '{first.id}' (row 2): same inputs and settings"


def test_override_of_a_link_is_refused(tmp_path):
    (tmp_path / "j.jsonl").write_text(json.dumps({"overrides": {"Sampler": {"ref": "x"}}}) + "\n")
    jobs = bj.read_job_list(tmp_path / "j.jsonl")
    bj.prepare_jobs(jobs, PROMPT, {})
    assert jobs[0].error == "row 1: override Sampler.ref: that input is a link from node 10, not a value"


def test_load_workflow_forms(tmp_path):
    f = tmp_path / "w.json"
    f.write_text(json.dumps({"prompt": PROMPT, "bindings": {"reference": "11.image"}}))
    prompt, bindings = bj.load_workflow(f)
    assert prompt == PROMPT and bindings == {"reference": "11.image"}
    f.write_text(json.dumps({"1": {"inputs": {}}}))
    with pytest.raises(bj.WorkflowError, match="entry '1' is not an API-format node"):
        bj.load_workflow(f)


def test_format_prompt_error_recorded_shape():
    body = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                      "details": "", "extra_info": {}},
            "node_errors": {"3": {"errors": [{"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                                              "details": "pose, received_type(IMAGE) mismatch input_type(POSE_KEYPOINT)",
                                              "extra_info": {"input_name": "pose"}}],
                                  "dependent_outputs": ["9"], "class_type": "MotionGuideDrawPose"}}}
    assert format_prompt_error(body).splitlines() == [
        "prompt_outputs_failed_validation: Prompt outputs failed validation",
        "node 3 (MotionGuideDrawPose) input 'pose': return_type_mismatch: Return type mismatch between linked nodes"
        " - pose, received_type(IMAGE) mismatch input_type(POSE_KEYPOINT)",
    ]


def test_output_files_finds_every_file_entry():
    outputs = {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]},
               "10": {"gifs": [{"filename": "v.mp4", "subfolder": "s", "type": "output", "format": "video/h264-mp4"}],
                      "animated": [True]},
               "11": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}], "text": ["hi"]}}
    assert [(n, e["filename"]) for n, e in output_files(outputs)] == [("10", "v.mp4"), ("9", "a.png")]
    assert len(output_files(outputs, include_temp=True)) == 3


def test_publish_no_clobber(tmp_path):
    dest = tmp_path / "o.png"
    dest.write_bytes(b"old")
    tmp = temp_path_for(tmp_path, "o.png")
    tmp.write_bytes(b"new")
    assert publish_no_clobber(tmp, dest) == tmp_path / "o (1).png"
    assert dest.read_bytes() == b"old" and not tmp.exists()
    tmp = temp_path_for(tmp_path, "o.png")
    tmp.write_bytes(b"new")  # same bytes as o (1).png: reused, no third copy
    assert publish_no_clobber(tmp, dest) == tmp_path / "o (1).png"
    assert sorted(os.listdir(tmp_path)) == ["o (1).png", "o.png"]


def test_override_or_binding_on_a_node_without_inputs_is_a_clear_job_error(tmp_path):
    prompt = dict(PROMPT, **{"30": {"class_type": "Note"}})  # hand-edited: no "inputs" object at all
    (tmp_path / "j.jsonl").write_text(json.dumps({"overrides": {"30": {"text": "x"}}}) + "\n"
                                      + json.dumps({"strength": 2}) + "\n")
    jobs = bj.read_job_list(tmp_path / "j.jsonl")
    bj.prepare_jobs(jobs, prompt, bj.parse_bindings({"strength": "30.strength"}, prompt))
    for job in jobs:
        assert job.error.endswith("node 30 (Note) has no \"inputs\" object in the workflow; export it again with "
                                  "Workflow > Export (API), or add \"inputs\": {} to that node")
    assert jobs[0].error.startswith("row 1: override 30.text: ")
    assert jobs[1].error.startswith("row 2: field 'strength' -> 30.strength: ")


# ----------------------------------------------------------------------------------------------- state journal


def _state_with_jobs(path, n):
    jobs = {f"old{i}": {"status": "done", "content_hash": f"h{i}", "row": i + 1, "outputs": []} for i in range(n)}
    path.write_text(json.dumps({"version": 1, "client_id": "cid", "jobs": jobs}))


def test_state_update_appends_one_journal_line_off_the_calling_thread(tmp_path, monkeypatch):
    import asyncio
    import threading

    from motionguide.batch import state as bs

    path = tmp_path / "state.json"
    _state_with_jobs(path, 2000)
    state = bs.BatchState.load(path, "unused")
    assert state.client_id == "cid" and state.is_done("old5", "h5")
    synced_on = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced_on.append(threading.current_thread()), real_fsync(fd))[1])
    state.start()  # writes the snapshot once, on this thread
    synced_on.clear()
    snap = path.stat()
    journal = state.journal_path
    sizes = []

    async def updates():
        for i in range(50):
            state.update(f"new{i}", status="queued", server="http://s", prompt_id=f"p{i}", content_hash="c", row=i)
            await state.sync()
            sizes.append(journal.stat().st_size)

    asyncio.run(updates())
    steps = [b - a for a, b in zip(sizes, sizes[1:])]
    assert max(steps) < 300 and min(steps) > 50  # one short line per update, whatever the number of jobs
    assert path.stat().st_ino == snap.st_ino and path.stat().st_mtime_ns == snap.st_mtime_ns  # snapshot untouched
    assert synced_on and threading.main_thread() not in synced_on  # the disk work happened on the writer thread
    on_disk = bs.BatchState.load(path, "unused").data  # snapshot + journal, as a crash here would leave them
    assert on_disk == state.data and on_disk["jobs"]["new49"]["prompt_id"] == "p49"
    state.close()
    assert not journal.exists()  # folded into the snapshot
    assert json.loads(path.read_text()) == on_disk and len(on_disk["jobs"]) == 2050


def test_state_journal_torn_last_line_is_ignored_and_a_corrupt_one_named(tmp_path):
    from motionguide.batch import state as bs

    path = tmp_path / "state.json"
    _state_with_jobs(path, 2)
    journal = tmp_path / "state.json.journal"
    lines = [{"journal": 1, "client_id": "cid"},
             {"job": "old0", "set": {"status": "failed", "error": "x"}},
             {"job": "a", "set": {"status": "queued", "prompt_id": "p"}}]
    good = "".join(json.dumps(line) + "\n" for line in lines)
    journal.write_text(good + '{"job": "a", "set": {"status": "do')  # the write a crash cut short
    jobs = bs.BatchState.load(path, "unused").data["jobs"]
    assert jobs["old0"]["status"] == "failed" and jobs["old1"]["status"] == "done"
    assert jobs["a"] == {"status": "queued", "prompt_id": "p"}
    journal.write_text(good.replace('"a"', '"b"', 1) + "garbage\n" + good.splitlines(True)[2])
    with pytest.raises(ValueError, match=f"state journal {journal} line 4 is corrupt"):
        bs.BatchState.load(path, "unused")
    journal.write_text(good + json.dumps({"job": "a", "set": {"row": "seven"}}) + "\n")
    with pytest.raises(ValueError, match=f"state journal {journal} line 4: job 'a': 'row' is a JSON string"):
        bs.BatchState.load(path, "unused")
    journal.write_text(good.replace('"cid"', '"another"'))  # left over from a state file that was moved away
    assert bs.BatchState.load(path, "unused").data["jobs"]["old0"]["status"] == "done"


def test_state_journal_is_compacted_now_and_then(tmp_path, monkeypatch):
    import asyncio

    from motionguide.batch import state as bs

    monkeypatch.setattr(bs, "COMPACT_MIN_LINES", 10)
    path = tmp_path / "state.json"
    state = bs.BatchState.load(path, "fresh")
    state.start()
    assert json.loads(path.read_text())["client_id"] == "fresh"  # written at start: the journal has its client id

    async def updates():
        for i in range(25):
            state.update(f"j{i}", status="done", row=i)
        await state.sync()

    asyncio.run(updates())
    lines = state.journal_path.read_text().splitlines()
    assert 1 <= len(lines) <= 11  # header + fewer than COMPACT_MIN_LINES updates
    assert len(json.loads(path.read_text())["jobs"]) >= 15  # the rest went into the snapshot
    assert bs.BatchState.load(path, "unused").data == state.data
    # a crash after a compaction, before the journal was emptied: replaying it again changes nothing
    journal_before = state.journal_path.read_text()
    state.close()
    state.journal_path.write_text(journal_before)
    assert bs.BatchState.load(path, "unused").data == state.data


def test_circuit_breaker_opens_after_the_retries_and_doubles_its_delays():
    from motionguide.batch.server import CircuitBreaker

    now = [100.0]
    breaker = CircuitBreaker("http://s", retries=3, backoff=2.0, clock=lambda: now[0])
    delays = []
    for _ in range(3):
        delays.append(breaker.failure(ConnectionError("refused")))
        now[0] += delays[-1]
        assert not breaker.open
    assert delays == [2.0, 4.0, 8.0]  # the patience one job used to get, now shared by all jobs of the server
    breaker.failure(ConnectionError("refused again"))
    assert breaker.open and breaker.cooldown == 32.0
    assert breaker.reason() == ("server http://s is down: 4 connection failures in a row over 14.0 s (last: refused "
                                "again); start it (or fix --server) and rerun the same command to resume")
    breaker.success()
    assert not breaker.open and breaker.failure(OSError("x")) == 2.0
    for _ in range(10):
        breaker.failure(OSError("x"))
    assert breaker.cooldown == 60.0  # capped


def test_state_lock_names_its_holder_and_tells_a_missing_lock_apart(tmp_path, monkeypatch):
    import errno

    from motionguide.batch import state as bs

    with bs.StateLock(tmp_path / "s.json") as held:
        assert json.loads(held.path.read_text())["pid"] == os.getpid()
        with pytest.raises(bs.StateInUse, match=rf"state file {tmp_path / 's.json'} is in use .*pid {os.getpid()} on "):
            bs.StateLock(tmp_path / "s.json").acquire()
    with bs.StateLock(tmp_path / "s.json"):  # released: free again
        pass

    def no_locks(fd):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(bs.StateLock, "_lock", staticmethod(no_locks))
    with pytest.raises(OSError, match="does this filesystem support file locks"):
        bs.StateLock(tmp_path / "t.json").acquire()
