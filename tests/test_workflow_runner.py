"""The headless workflow runner: ComfyUI-style validation errors and dependency-ordered execution."""
import json

import numpy as np
import pytest
import torch

from motionguide.headless.workflow_runner import (
    NodeExecutionError,
    WorkflowError,
    execution_order,
    load_workflow,
    run_workflow,
    set_input,
    types_match,
    validate_workflow,
)


class SolidImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 8, "min": 8, "max": 64}),
                             "height": ("INT", {"default": 8, "min": 8, "max": 64}),
                             "value": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0}),
                             "channel": (["red", "green", "blue"],)}}

    RETURN_TYPES = ("IMAGE", "INT")
    FUNCTION = "make"

    def make(self, width, height, value, channel):
        image = torch.zeros(1, height, width, 3)
        image[..., ["red", "green", "blue"].index(channel)] = value
        return image, width * height


class Scale:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "factor": ("FLOAT", {"default": 1.0})},
                "optional": {"offset": ("FLOAT", {"default": 0.0})},
                "hidden": {"node_id": "UNIQUE_ID"}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "scale"
    calls = []

    def scale(self, image, factor, offset=0.0, node_id=None):
        Scale.calls.append((node_id, torch.is_inference_mode_enabled()))
        return (image * factor + offset,)


class NeedsPose:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pose": ("POSE_KEYPOINT",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    def run(self, pose):
        return (pose,)


class Checked:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"size": ("INT", {"default": 64})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def VALIDATE_INPUTS(cls, size):
        return True if size % 64 == 0 else f"size must be a multiple of 64, got {size}"

    def run(self, size):
        return (size,)


class Broken:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    def run(self, image):
        raise ValueError("no person found in the reference image")


CLASSES = {c.__name__: c for c in (SolidImage, Scale, NeedsPose, Checked, Broken)}


def good_workflow():
    return {
        "1": {"class_type": "SolidImage", "inputs": {"width": 16, "height": 8, "value": 0.25, "channel": "green"}},
        "2": {"class_type": "Scale", "inputs": {"image": ["1", 0], "factor": 2.0}},
        "3": {"class_type": "Scale", "inputs": {"image": ["2", 0], "factor": 0.5, "offset": 0.1}},
    }


def kinds(problems):
    return [(p.node_id, p.input_name, p.kind) for p in problems]


def test_runs_in_dependency_order_with_hidden_inputs_and_inference_mode():
    workflow = good_workflow()
    # Declared out of order on purpose: the runner must sort by links.
    workflow = {"3": workflow["3"], "1": workflow["1"], "2": workflow["2"]}
    Scale.calls.clear()
    result = run_workflow(workflow, CLASSES)
    assert result.order == ["1", "2", "3"]
    image = result.outputs["3"][0]
    assert image.shape == (1, 8, 16, 3)
    assert torch.allclose(image[0, 0, 0], torch.tensor([0.1, 0.35, 0.1]))
    assert result.outputs["1"][1] == 128
    assert Scale.calls == [("2", True), ("3", True)]


def test_targets_run_and_validate_only_ancestors():
    result = run_workflow(good_workflow(), CLASSES, targets=["2"])
    assert result.order == ["1", "2"]
    workflow = good_workflow()
    workflow["3"]["inputs"]["factor"] = "not a number"  # broken, but not needed for target 2
    workflow["2"]["_meta"] = {"title": "Scale it"}
    assert run_workflow(workflow, CLASSES, targets=["Scale it"]).order == ["1", "2"]
    with pytest.raises(WorkflowError, match="'factor'"):
        run_workflow(workflow, CLASSES)
    with pytest.raises(WorkflowError, match="--targets: The workflow has no node with id or title 'nine'"):
        run_workflow(workflow, CLASSES, targets=["nine"])


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda w: w["2"].update(class_type="Nope"), ("2", None, "invalid_prompt")),
        (lambda w: w["2"]["inputs"].pop("factor"), ("2", "factor", "required_input_missing")),
        (lambda w: w["2"]["inputs"].update(image=["9", 0]), ("2", "image", "bad_linked_input")),
        (lambda w: w["2"]["inputs"].update(image=["1", 5]), ("2", "image", "bad_linked_input")),
        (lambda w: w["2"]["inputs"].update(image=["1", 1]), ("2", "image", "return_type_mismatch")),
        (lambda w: w["1"]["inputs"].update(width=100), ("1", "width", "value_bigger_than_max")),
        (lambda w: w["1"]["inputs"].update(value=-0.5), ("1", "value", "value_smaller_than_min")),
        (lambda w: w["1"]["inputs"].update(channel="purple"), ("1", "channel", "value_not_in_list")),
        (lambda w: w["1"]["inputs"].update(width="wide"), ("1", "width", "invalid_input_type")),
        (lambda w: w["1"]["inputs"].update(width=8.5), ("1", "width", "invalid_input_type")),
        (lambda w: w["2"]["inputs"].update(image=0.5), ("2", "image", "invalid_input_type")),
    ],
)
def test_rejects_bad_workflows_naming_node_input_and_problem(mutate, expected):
    workflow = good_workflow()
    mutate(workflow)
    with pytest.raises(WorkflowError) as info:
        run_workflow(workflow, CLASSES)
    assert expected in kinds(info.value.problems)
    node_id, input_name, kind = expected
    message = str(info.value)
    assert f"node {node_id}" in message and kind in message
    if input_name:
        assert f"'{input_name}'" in message


def test_messages_say_what_is_wrong():
    workflow = good_workflow()
    workflow["1"]["inputs"]["channel"] = "purple"
    workflow["2"]["inputs"]["image"] = ["1", 1]
    problems = validate_workflow(workflow, CLASSES)
    text = "\n".join(map(str, problems))
    assert "'purple' is not one of ['red', 'green', 'blue']" in text
    assert "received_type(INT) mismatch input_type(IMAGE)" in text


def test_custom_type_link_mismatch_and_validate_inputs():
    workflow = {
        "1": {"class_type": "SolidImage", "inputs": {"width": 8, "height": 8, "value": 0.0, "channel": "red"}},
        "2": {"class_type": "NeedsPose", "inputs": {"pose": ["1", 0]}},
        "3": {"class_type": "Checked", "inputs": {"size": 100}},
    }
    problems = validate_workflow(workflow, CLASSES)
    assert ("2", "pose", "return_type_mismatch") in kinds(problems)
    assert any(p.kind == "custom_validation_failed" and "multiple of 64, got 100" in p.message for p in problems)
    workflow["3"]["inputs"]["size"] = 128
    del workflow["2"]
    assert validate_workflow(workflow, CLASSES) == []


def test_cycle_and_empty_workflow_are_errors():
    workflow = good_workflow()
    workflow["2"]["inputs"]["image"] = ["3", 0]
    with pytest.raises(WorkflowError, match="cycle: 2 -> 3 -> 2|cycle: 3 -> 2 -> 3"):
        execution_order(workflow)
    assert kinds(validate_workflow({}, CLASSES)) == [("-", None, "no_prompt")]


def test_node_failure_names_node_and_keeps_cause():
    workflow = good_workflow()
    workflow["4"] = {"class_type": "Broken", "inputs": {"image": ["3", 0]}}
    with pytest.raises(NodeExecutionError, match=r"Node 4 \(Broken\) failed: ValueError: no person") as info:
        run_workflow(workflow, CLASSES)
    assert isinstance(info.value.__cause__, ValueError)


def test_type_matching_rules():
    assert types_match("IMAGE", "IMAGE")
    assert types_match("*", "LATENT") and types_match("MASK", "*")
    assert types_match("IMAGE", "MASK,IMAGE")
    assert not types_match("IMAGE", "LATENT")


def test_set_input_parses_json_and_rejects_unknown_nodes():
    workflow = good_workflow()
    set_input(workflow, "1.width=32")
    set_input(workflow, "1.channel=blue")
    set_input(workflow, "2.factor=0.25")
    assert workflow["1"]["inputs"]["width"] == 32 and workflow["1"]["inputs"]["channel"] == "blue"
    assert workflow["2"]["inputs"]["factor"] == 0.25
    with pytest.raises(ValueError, match="no node with id or title '7'. Nodes: 1 \\(SolidImage\\)"):
        set_input(workflow, "7.width=1")
    with pytest.raises(ValueError, match="NODE.INPUT=VALUE"):
        set_input(workflow, "width=1")
    # Titles (ComfyUI's _meta.title, dots allowed) address nodes; with the classes, unknown inputs are errors.
    workflow["2"]["_meta"] = {"title": "Half v1.5"}
    assert set_input(workflow, "Half v1.5.factor=0.75", CLASSES) == "2" and workflow["2"]["inputs"]["factor"] == 0.75
    with pytest.raises(ValueError, match="node 2 \\(Scale\\) has no input 'fcator'. Its inputs: image, factor"):
        set_input(workflow, "2.fcator=1", CLASSES)
    workflow["3"]["_meta"] = {"title": "Half v1.5"}
    with pytest.raises(ValueError, match="carried by nodes 2, 3"):
        set_input(workflow, "Half v1.5.factor=1")


def test_load_workflow_rejects_ui_format(tmp_path):
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    with pytest.raises(WorkflowError, match="Export \\(API\\)"):
        load_workflow(path)
    api = tmp_path / "api.json"
    api.write_text(json.dumps({"prompt": good_workflow(), "client_id": "x"}))
    assert load_workflow(api) == good_workflow()


def test_standins_load_and_save_files(tmp_path, monkeypatch):
    from motionguide.headless.core_standins import STANDIN_CLASSES
    from motionguide.pipelines.video.io import read_video, write_image, write_video

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    monkeypatch.setenv("MOTIONGUIDE_INPUT_DIR", str(inputs))
    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(outputs))
    monkeypatch.setenv("MOTIONGUIDE_TEMP_DIR", str(tmp_path / "temp"))
    rng = np.random.default_rng(0)
    write_image(rng.integers(0, 255, (24, 16, 3), dtype=np.uint8), inputs / "ref.png")
    clip = np.zeros((5, 32, 48, 3), np.uint8)
    clip[:, :, :24] = 200
    write_video(clip, 10.0, inputs / "drive.mp4")
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "ref.png"}},
        "2": {"class_type": "VHS_LoadVideo", "inputs": {"video": "drive.mp4", "force_rate": 0, "custom_width": 0,
                                                         "custom_height": 0, "frame_load_cap": 4,
                                                         "skip_first_frames": 0, "select_every_nth": 1}},
        "3": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["2", 0], "frame_rate": 8, "loop_count": 0,
                                                            "filename_prefix": "t/clip", "format": "video/h264-mp4",
                                                            "pingpong": False, "save_output": True}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ref"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    result = run_workflow(workflow, STANDIN_CLASSES)
    assert result.outputs["1"][0].shape == (1, 24, 16, 3)
    assert result.outputs["2"][1] == 4
    written = outputs / "t" / "clip_00001.mp4"
    assert written.is_file() and result.ui["3"]["gifs"][0]["filename"] == "clip_00001.mp4"
    frames, fps = read_video(written)
    assert frames.shape == (4, 32, 48, 3) and fps == pytest.approx(8.0)
    assert abs(int(frames[0, 16, 5, 0]) - 200) < 12 and frames[0, 16, 40, 0] < 12
    # Previews go to the temp folder, as in ComfyUI, never among the outputs.
    assert [e["type"] for e in result.ui["5"]["images"]] == ["temp"] * 4
    assert (tmp_path / "temp" / "MotionGuide_preview_00004.png").is_file()
    assert sorted(p.name for p in outputs.rglob("*.png")) == ["ref_00001.png"]
    # A second run never overwrites the first file.
    run_workflow(workflow, STANDIN_CLASSES)
    assert (outputs / "t" / "clip_00002.mp4").is_file() and (outputs / "ref_00002.png").is_file()
    # A missing input file is a clear validation error (not in the combo list).
    workflow["1"]["inputs"]["image"] = "missing.png"
    with pytest.raises(WorkflowError, match="'missing.png' was not found. Inputs are read from .*Files there: ref.png"):
        run_workflow(workflow, STANDIN_CLASSES)
