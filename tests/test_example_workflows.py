"""Example workflows: each UI-format file in example_workflows/ agrees with its API twin in headless/workflows_api/
(same nodes, same links, same widget values, read back through the nodes' INPUT_TYPES the way the frontend lays
out widgets), is well-formed (links, slots, types), carries a Markdown note, model entries and a thumbnail; and
every API twin runs through the workflow runner on the tiny models (4 frames, 64×64, one step)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
UI_DIR = ROOT / "example_workflows"
API_DIR = ROOT / "headless" / "workflows_api"
UI_FILES = sorted(UI_DIR.glob("*.json"))
VIRTUAL = {"MarkdownNote", "Note"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SEED_CONTROLS = {"fixed", "increment", "decrement", "randomize"}
MODEL_NODES = {"MotionGuideLoadModel", "MotionGuideDetectPose", "MotionGuideLoadSMPLModel", "MotionGuideEstimateSMPL",
               "MotionGuideLoadDisPose"}
PICTURE_NODES = {"LoadImage", "PreviewImage", "SaveImage", "VHS_LoadVideo", "VHS_VideoCombine", "LoadVideo", "SaveVideo"}


@pytest.fixture(scope="module")
def classes():
    from motionguide.headless.execute import node_classes

    return node_classes()


def _widget_inputs(cls):
    spec = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, entry in (spec.get(section) or {}).items():
            entry = tuple(entry) if isinstance(entry, (list, tuple)) else (entry,)
            opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            if (isinstance(entry[0], (list, tuple)) or entry[0] in WIDGET_TYPES) and not opts.get("forceInput"):
                yield section, name, opts


def ui_to_api(ui: dict, classes: dict) -> dict:
    """Read a UI workflow back into API form (what ComfyUI's graphToPrompt produces for it)."""
    links = {link[0]: link for link in ui["links"]}
    out = {}
    for node in ui["nodes"]:
        if node["type"] in VIRTUAL or node.get("mode", 0) in (2, 4):
            continue
        cls = classes[node["type"]]
        inputs = {}
        for slot_index, slot in enumerate(node["inputs"]):
            if slot.get("link") is None:
                continue
            link_id, src, src_slot, dst, dst_slot, _ = links[slot["link"]]
            assert (dst, dst_slot) == (node["id"], slot_index), f"link {link_id} does not point at node {node['id']}"
            inputs[slot["name"]] = [str(src), src_slot]
        values = node["widgets_values"]
        widgets = list(_widget_inputs(cls))
        if isinstance(values, dict):  # VideoHelperSuite stores widgets by name, plus its format's own options
            names = {n for _, n, _ in widgets}
            assert names <= set(values) | set(inputs), f"node {node['id']}: widgets missing {names - set(values)}"
            for name, value in values.items():
                if name != "videopreview" and name not in inputs:
                    inputs[name] = value
        else:
            stream = iter(values)
            for _, name, opts in widgets:
                value = next(stream)
                if opts.get("control_after_generate"):
                    assert next(stream) in SEED_CONTROLS
                if opts.get("image_upload") or opts.get("video_upload"):
                    next(stream)
                if name not in inputs:
                    inputs[name] = value
            leftover = list(stream)
            assert not leftover, f"node {node['id']} ({node['type']}): extra widget values {leftover}"
        out[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return out


def twin_name(path: Path) -> str:
    """The API twin's name (``headless/workflows_api/<name>.json``) a UI file records in ``extra``."""
    return json.loads(path.read_text())["extra"]["motionguide_api_twin"]


def test_there_are_examples_with_readable_names():
    names = {twin_name(p) for p in UI_FILES}
    assert "mimicmotion_pose_video" in names, "the MimicMotion example (a) is missing"
    assert {p.stem for p in API_DIR.glob("*.json")} >= names
    for path in UI_FILES:  # the templates browser shows the file name as the title
        assert "_" not in path.stem and " " in path.stem and path.with_suffix(".jpg").is_file(), path.name


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_ui_file_is_well_formed(path, classes):
    ui = json.loads(path.read_text())
    assert "nodes" in ui and "links" in ui, "API-format JSON must not live in example_workflows/ (templates browser)"
    nodes = {n["id"]: n for n in ui["nodes"]}
    assert len(nodes) == len(ui["nodes"]) and ui["last_node_id"] >= max(nodes)
    assert ui["last_link_id"] >= max((link[0] for link in ui["links"]), default=0)
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        out_slot = nodes[src]["outputs"][src_slot]
        assert link_id in out_slot["links"] and out_slot["type"] == kind
        in_slot = nodes[dst]["inputs"][dst_slot]
        assert in_slot["link"] == link_id
        expected = in_slot["type"]
        assert expected == kind or (expected in WIDGET_TYPES and kind in WIDGET_TYPES), \
            f"link {link_id}: {kind} into {nodes[dst]['type']}.{in_slot['name']} ({expected})"
    for node in ui["nodes"]:
        if node["type"] in VIRTUAL:
            continue
        cls = classes[node["type"]]
        assert [o["type"] for o in node["outputs"]] == list(cls.RETURN_TYPES)
        for out_slot in node["outputs"]:
            for link_id in out_slot["links"]:
                assert any(link[0] == link_id for link in ui["links"])
    notes = [n for n in ui["nodes"] if n["type"] == "MarkdownNote"]
    assert len(notes) == 1 and notes[0]["widgets_values"][0].lstrip().startswith("# ")
    assert len(notes[0]["widgets_values"][0]) > 300


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_ui_and_api_twin_agree(path, classes):
    ui = json.loads(path.read_text())
    api = json.loads((API_DIR / f"{twin_name(path)}.json").read_text())
    from_ui = ui_to_api(ui, classes)
    assert sorted(from_ui) == sorted(api), "different node ids"
    for node_id, node in api.items():
        mine = from_ui[node_id]
        assert mine["class_type"] == node["class_type"], node_id
        # graphToPrompt writes every widget, optional ones too: the twin must hold exactly the same inputs
        assert sorted(mine["inputs"]) == sorted(node["inputs"]), f"node {node_id}: different inputs"
        for name, value in node["inputs"].items():
            assert mine["inputs"][name] == value, f"node {node_id}.{name}: UI {mine['inputs'][name]!r} != API {value!r}"


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_model_entries_note_and_thumbnail(path):
    """properties.models holds only what ComfyUI's missing-models check can find and download (a .safetensors /
    .sft file with its direct URL): anything else opens a Missing Models dialog although the file is installed.
    Every model file the workflow reads is named in the note instead, with its folder and source."""
    import cv2
    from motionguide.nodes import comfy_adapter

    ui = json.loads(path.read_text())
    note = next(n for n in ui["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
    registry = {(e["folder"], e["name"]): e for e in comfy_adapter.model_registry()["models"]}
    named = 0
    for node in ui["nodes"]:
        values = node["widgets_values"] if isinstance(node["widgets_values"], list) else []
        for model in node["properties"].get("models", []):
            assert set(model) == {"name", "url", "directory"}
            assert model["name"].endswith((".safetensors", ".sft")), f"node {node['id']}: {model['name']} can't be checked"
            assert model["url"].startswith("https://huggingface.co/") and model["url"].endswith("/" + model["name"])
            assert model["name"] in values, f"{model['name']} is not a widget value of node {node['id']}"
        if node["type"] not in MODEL_NODES:
            continue
        for (folder, name), entry in registry.items():
            if name in values:
                assert f"models/{folder}/{name}" in note and entry["source"] in note, f"note lacks {folder}/{name}"
                named += 1
    assert named >= 2  # at least the two DWPose files (the motion-file templates need no others)
    thumb = cv2.imread(str(path.with_suffix(".jpg")))
    assert thumb is not None and thumb.shape == (512, 512, 3)  # the templates browser's cards are square
    assert thumb.std() > 10  # a drawn diagram, not a blank


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_nodes_without_a_picture_are_stored_no_taller_than_their_widgets(path, classes):
    """ComfyUI grows a node to fit its widgets but never shrinks it: a stored height above what the widgets need is
    an empty area (Set Camera had 82 px of it). Only nodes that show an image or a video keep a taller size."""
    import make_example_workflows as maker

    for node in json.loads(path.read_text())["nodes"]:
        if node["type"] in VIRTUAL | PICTURE_NODES:
            continue
        assert node["size"][1] <= maker.node_height(classes[node["type"]]), f"node {node['id']} ({node['type']})"


# ------------------------------------------------------------------------------------------------ running them

SMALL = {  # class -> input overrides that make a run take seconds on the tiny models
    "MotionGuideFitReference": {"resolution": 64},
    "MotionGuideSampler": {"steps": 1, "tile_size": 5, "tile_overlap": 1},
    "MotionGuideLoadModel": {"precision": "fp32", "memory_mode": "keep_loaded"},
    "MotionGuideEstimateSMPL": {"estimator": "hmr2_tiny.ckpt", "precision": "fp32"},
    "MotionGuideSMPLToPose": {"renderer": "torch"},
    "MotionGuideRenderSMPL": {"renderer": "torch"},
    "MotionGuideRenderSCAIL": {"width": 64, "height": 112, "renderer": "torch"},
    "MotionGuideSetBodyShape": {"mode": "sliders"},  # the tiny detector's keypoints are noise: nothing to fit
    "VHS_LoadVideo": {"frame_load_cap": 4, "select_every_nth": 1},
}
API_FILES = sorted(API_DIR.glob("*.json"))


@pytest.fixture()
def small_inputs(tmp_path, monkeypatch):
    """The shipped sample inputs, cut to 4 frames (core LoadVideo has no frame cap)."""
    from motionguide.pipelines.smpl.motion.sequence import load_sequence, save_sequence, slice_sequence
    from motionguide.pipelines.video.io import read_video, write_video

    samples = UI_DIR / "inputs"
    inputs = tmp_path / "input" / "motionguide"  # where the templates name them (copied there in ComfyUI)
    inputs.mkdir(parents=True)
    (inputs / "motionguide_reference.png").write_bytes((samples / "motionguide_reference.png").read_bytes())
    frames, fps = read_video(samples / "motionguide_driving.mp4", frame_load_cap=4)
    write_video(frames, fps, inputs / "motionguide_driving.mp4")
    motion = slice_sequence(load_sequence(samples / "motionguide_motion.npz"), 0, 4)
    save_sequence(motion, inputs / "motionguide_motion.npz")
    monkeypatch.setenv("MOTIONGUIDE_INPUT_DIR", str(inputs.parent))
    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path / "output"))
    return tmp_path / "output"


@pytest.mark.parametrize("path", API_FILES, ids=[p.stem for p in API_FILES])
def test_api_workflow_runs_on_tiny_models(path, classes, small_inputs, use_models_dir, tiny_dwpose_dir, tiny_svd_dir,
                                          tiny_mimicmotion_path, smpl_model_dir, hmr2_tiny_checkpoint, request):
    import torch
    from motionguide.headless.workflow_runner import run_workflow

    workflow = json.loads(path.read_text())
    if any(n["inputs"].get("model_file") == "anny (built-in)" for n in workflow.values()):
        request.getfixturevalue("anny_body")  # skips where the anny package is missing; shares the loaded body
    if any(n["class_type"] == "MotionGuideLoadGeometryAdapter" for n in workflow.values()):
        request.getfixturevalue("tiny_geometry_adapter_path")  # the templates' adapter file, for the tiny UNet
    if any(n["class_type"] == "MotionGuideLoadDisPose" for n in workflow.values()):
        for fixture in ("tiny_dispose_path", "tiny_cmp_path", "tiny_sd_dir"):
            request.getfixturevalue(fixture)
    for node in workflow.values():
        node["inputs"].update(SMALL.get(node["class_type"], {}))
    result = run_workflow(workflow, classes)
    decoded = [nid for nid, n in workflow.items() if n["class_type"] == "MotionGuideDecode"]
    if path.stem.startswith("animator_"):
        _check_animator_outputs(workflow, result)
        return
    assert len(decoded) == 1
    frames, fps = result.outputs[decoded[0]]
    assert tuple(frames.shape) == (4, 64, 64, 3) and torch.isfinite(frames).all()  # 4 frames after the reference
    saved = [e for ui in result.ui.values() for key in ("gifs", "images") for e in ui.get(key, [])
             if e["filename"].endswith(".mp4")]
    assert len(saved) == 1 and (small_inputs / saved[0]["subfolder"] / saved[0]["filename"]).is_file()


def _check_animator_outputs(workflow, result):
    """The animator templates end at this pack's outputs (the other pack's nodes are for the user to add): every
    node ran, the previews were written, and the hand-over outputs have the other packs' formats."""
    import torch

    assert set(result.outputs) == set(workflow)
    previews = [e for ui in result.ui.values() for e in ui.get("images", [])]
    assert previews, "no preview written"
    frames = 4
    for node_id, node in workflow.items():
        out = result.outputs[node_id]
        if node["class_type"] == "MotionGuideSMPLToNLF":
            poses = out[0]["joints3d_nonparam"][0]
            assert len(poses) == frames and all(tuple(p.shape) == (1, 24, 3) for p in poses)
            assert all(float(p[0, :, 2].min()) > 100 for p in poses)  # millimetres in front of the camera
        elif node["class_type"] == "MotionGuideRenderSCAIL":
            images, half, mask, identity = out
            assert tuple(images.shape) == (frames, 112, 64, 3) and tuple(half.shape) == (frames, 56, 32, 3)
            assert set(identity.unique().tolist()) <= {0.0, 1.0}
            # SCAIL draws nothing beyond 25 m. (Not the reverse here: a body placed from the tiny detector's noise
            # keypoints may stand 15 m away, where 21.5 mm capsules are thinner than a pixel of this 64 px image.)
            depth = [float(p[0, :, 2].max()) for nid, n in workflow.items() if n["class_type"] == "MotionGuideSMPLToNLF"
                     for p in result.outputs[nid][0]["joints3d_nonparam"][0]]
            assert not (float(mask.mean()) > 0.001 and min(depth) >= 25000.0), (float(mask.mean()), depth)
        elif node["class_type"] == "MotionGuideDrawPose":
            assert torch.is_tensor(out[0]) and out[0].ndim == 4 and float(out[0].max()) > 0
