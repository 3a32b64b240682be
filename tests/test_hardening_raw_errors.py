"""Inputs that used to surface a raw library error (RecursionError, int-conversion limits, numpy conversions,
"embedded null byte") now get a message naming the input and what to do; a long valid workflow runs
(issue 23 cases 7 and 8)."""
import json

import numpy as np
import pytest
import torch
from motionguide.headless.workflow_runner import WorkflowError, execution_order, load_workflow
from motionguide.pipelines.json_input import MAX_INT_DIGITS, parse_json
from motionguide.pipelines.output_paths import unique_path


def _pose_frame(width=64):
    return {"people": [{"pose_keypoints_2d": [10.0, 20.0, 0.9] * 18}], "canvas_width": width, "canvas_height": 96}


@pytest.mark.parametrize("text, words", [
    ("[" * 100000, r"nested more than"),
    ('{"canvas_width": ' + "7" * 5000 + "}", rf"5000 digits.*at most {MAX_INT_DIGITS}"),
    ("{'single': 'quotes'}", r"not readable JSON .*line 1"),
])
def test_json_text_errors_name_the_input(text, words):
    with pytest.raises(ValueError, match=rf"Pose file 'p.json'.*{words}"):
        parse_json(text, "Pose file 'p.json'", "Save it again with Save Pose.")


def test_load_pose_file_errors_name_the_file(tmp_path, monkeypatch):
    from motionguide.nodes import comfy_adapter as adapter
    from motionguide.nodes import pose as nodes

    monkeypatch.setattr(adapter, "input_directory", lambda: tmp_path)
    cases = {"deep.json": "[" * 100000 + "]" * 100000, "digits.json": "[" + "9" * 5000 + "]",
             "wide.json": json.dumps(_pose_frame()).replace('"canvas_width": 64', '"canvas_width": ' + "9" * 400)}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=rf"{name}"):
            nodes.MotionGuideLoadPose().load(name)


def test_huge_canvas_integer_is_named_not_an_overflow():
    from motionguide.pipelines.dwpose.keypoints import pose_keypoint_to_frames

    with pytest.raises(ValueError, match=r"'canvas_width' must be a whole number of pixels"):
        pose_keypoint_to_frames([_pose_frame(width=10 ** 400)])


@pytest.mark.parametrize("text, words", [
    ("[" * 100000, r"nested more than"),
    ("[[0,0,0],[0,0,0],[0,0,1]]", r"fx=0"),
    ("[[NaN,0,32],[0,500,48],[0,0,1]]", r"finite"),
    ("[[-500,0,32],[0,500,48],[0,0,1]]", r"fx=-500"),
    ("[[500,0,32],[0,500,48]]", r"\[\[fx,0,cx\]"),
    ('[["a",0,32],[0,500,48],[0,0,1]]', r"\[\[fx,0,cx\]"),
])
def test_nlf_intrinsics_are_checked_where_they_enter(text, words):
    from motionguide.nodes.nlf import _parse_intrinsics

    with pytest.raises(ValueError, match=rf"intrinsics.*{words}"):
        _parse_intrinsics(text)
    assert _parse_intrinsics("[[500,0,32],[0,500,48],[0,0,1]]")[0][0] == 500.0


def test_nlf_to_sequence_refuses_bad_intrinsics_before_fitting(smpl_model_dir):
    """Case 8: zeros, NaN and fx < 0 went into the sequence and failed in the next node ('fix the file')."""
    from motionguide.pipelines.smpl.body.body_model import load_body_model
    from motionguide.pipelines.smpl.estimate.joint_fit import nlf_to_sequence

    model = load_body_model(smpl_model_dir / "SMPL_NEUTRAL.npz")
    nlf = {"joints3d_nonparam": [[torch.ones(1, 24, 3) * 1000.0 for _ in range(3)]]}
    for K in (np.zeros((3, 3)), np.full((3, 3), np.nan), [[-500, 0, 32], [0, 500, 48], [0, 0, 1]]):
        with pytest.raises(ValueError, match=r"intrinsics .*fx"):
            nlf_to_sequence(model, nlf, width=64, height=96, K=K, iterations=0)


@pytest.mark.parametrize("frame", ["not joints", {"a": 1}, [["x"] * 3] * 24, object()])
def test_nlf_frames_holding_strings_or_objects(frame):
    from motionguide.pipelines.smpl.estimate.nlf import nlf_frames

    with pytest.raises(ValueError, match=r"nlf_poses frame 1 .*millimetres"):
        nlf_frames({"joints3d_nonparam": [[torch.zeros(1, 24, 3), frame]]})


def test_long_chain_orders_without_recursion():
    chain = {"0": {"class_type": "A", "inputs": {}}}
    for i in range(1, 5000):
        chain[str(i)] = {"class_type": "A", "inputs": {"x": [str(i - 1), 0]}}
    order = execution_order(chain)
    assert order == [str(i) for i in range(5000)]
    cycle = dict(chain, **{"0": {"class_type": "A", "inputs": {"x": ["4999", 0]}}})
    with pytest.raises(WorkflowError, match="cycle: 0 -> 4999 -> 4998"):
        execution_order(cycle, ["0"])


@pytest.mark.parametrize("text, words", [("{not json", r"not readable JSON"), ("[" * 100000, r"nested more than"),
                                         ("[1, 2]", r"not an API-format workflow")])
def test_malformed_workflow_file_is_named(tmp_path, text, words):
    path = tmp_path / "flow.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"flow.json.*{words}"):
        load_workflow(path)


@pytest.mark.parametrize("prefix", ["run\0x", "a/\0/b"])
def test_filename_prefix_with_a_nul_byte(tmp_path, prefix):
    with pytest.raises(ValueError, match=r"filename_prefix .* control character"):
        unique_path(tmp_path, prefix, ".png")
    assert list(tmp_path.iterdir()) == []


