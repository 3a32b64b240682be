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
