"""`cli.py run`: runs an API workflow headless, applies --set, and fails with a clear message on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=240, cwd=cwd)


def test_run_workflow_with_override_and_errors(tmp_path):
    from motionguide.pipelines.video.io import read_image, write_image

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    image = np.random.default_rng(1).integers(0, 255, (20, 12, 3), dtype=np.uint8)
    write_image(image, inputs / "a.png")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    out = run_cli("run", path, "--set", "2.filename_prefix=renamed", "--input-dir", inputs, "--output-dir", outputs,
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    written = outputs / "renamed_00001.png"
    assert f"wrote {written}" in out.stdout
    assert np.array_equal(read_image(written), image)
    assert "node 1: LoadImage" in out.stderr

    workflow["2"]["inputs"]["images"] = ["1", 1]  # MASK into IMAGE
    path.write_text(json.dumps(workflow))
    bad = run_cli("run", path, "--input-dir", inputs, "--output-dir", outputs, cwd=tmp_path)
    assert bad.returncode == 2
    assert "node 2 (SaveImage), input 'images': received_type(MASK) mismatch input_type(IMAGE)" in bad.stderr


# --------------------------------------------------------------------------------------------------------------
# In-process: messages of `run` and `demo` (issue 12 items 8, 9, 11)

def _main(*args):
    from motionguide.headless.cli import main

    return main([str(a) for a in args])


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    for name in ("MOTIONGUIDE_INPUT_DIR", "MOTIONGUIDE_OUTPUT_DIR", "MOTIONGUIDE_TEMP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    from motionguide.pipelines.video.io import write_image

    own = tmp_path / "elsewhere" / "me.png"
    own.parent.mkdir()
    write_image(np.full((20, 12, 3), 77, np.uint8), own)
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "motionguide_reference.png"},
                      "_meta": {"title": "Reference image"}},
                "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}, "_meta": {"title": "Look.at.it"}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "out"}}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    return tmp_path, path, own


def test_run_says_where_inputs_are_read_from_and_takes_a_file_path(folders, capsys):
    tmp_path, path, own = folders
    assert _main("run", path) == 2
    err = capsys.readouterr().err
    assert f"inputs: {tmp_path / 'input'}" in err  # said before anything runs
    assert "'motionguide_reference.png' was not found. Inputs are read from" in err and "--input-dir" in err
    assert "is not one of []" not in err
    # The user's own file by path, and the node addressed by its title.
    assert _main("run", path, "--set", f"Reference image.image={own}") == 0
    out, err = capsys.readouterr()
    assert f"wrote {tmp_path / 'output' / 'out_00001.png'}" in out
    assert "previews: 1 files in" in out


def test_previews_go_to_a_temp_folder_emptied_every_run(folders, capsys):
    tmp_path, path, own = folders
    temp = tmp_path / "previews"
    for _ in range(2):
        assert _main("run", path, "--set", f"1.image={own}", "--temp-dir", temp) == 0
    assert len(list(temp.glob("*.png"))) == 1  # not two: the second run emptied the folder first
    assert f"previews: {temp}" in capsys.readouterr().err
    foreign = tmp_path / "not_ours"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    assert _main("run", path, "--set", f"1.image={own}", "--temp-dir", foreign) == 0
    assert (foreign / "keep.txt").read_text() == "x"  # a folder MotionGuide did not make is never emptied


def test_set_rejects_inputs_the_node_does_not_have_and_targets_check_only_what_they_need(folders, capsys):
    tmp_path, path, own = folders
    assert _main("run", path, "--set", "3.foo=1") == 2
    err = capsys.readouterr().err
    assert "node 3 (SaveImage) has no input 'foo'. Its inputs: images, filename_prefix." in err
    assert _main("run", path, "--set", "Nobody.seed=1") == 2
    assert "no node with id or title 'Nobody'" in capsys.readouterr().err
    # Node 3 is broken, but --targets 2 (by title, a dotted one) needs only nodes 1 and 2.
    workflow = json.loads(path.read_text())
    workflow["3"]["inputs"]["images"] = ["1", 1]
    path.write_text(json.dumps(workflow))
    assert _main("run", path, "--set", f"1.image={own}", "--targets", "Look.at.it") == 0
    assert "ran 2 nodes" in capsys.readouterr().out
    assert _main("run", path, "--set", f"1.image={own}") == 2
    assert "node 3 (SaveImage), input 'images'" in capsys.readouterr().err


def test_readme_run_example_sets_a_real_seed():
    import re
    import shlex

    from motionguide.headless.execute import node_classes
    from motionguide.headless.workflow_runner import load_workflow, set_input

    readme = (ROOT / "README.md").read_text()
    command = re.search(r"python cli\.py run (.+?)# any API-format", readme, re.S).group(1).replace("\\\n", " ")
    args = shlex.split(command)
    workflow = load_workflow(ROOT / args[0])
    classes = node_classes()
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    touched = [(set_input(workflow, s, classes), s.split("=")[0].rpartition(".")[2]) for s in sets]
    assert any(workflow[n]["class_type"] == "MotionGuideSampler" and name == "seed" for n, name in touched)


def test_missing_smpl_and_hmr2_files_name_the_folder_and_the_download(tmp_path):
    from motionguide.nodes import comfy_adapter
    from motionguide.headless.execute import node_classes
    from motionguide.headless.workflow_runner import validate_workflow

    workflow = {"1": {"class_type": "MotionGuideLoadSMPLModel", "inputs": {"model_file": "SMPL_NEUTRAL.pkl",
                                                                          "gender": "neutral"}},
                "2": {"class_type": "MotionGuideEstimateSMPL", "inputs": {
                    "images": ["9", 0], "pose_keypoint": ["9", 1], "estimator": "hmr2_epoch_35.ckpt"}},
                "9": {"class_type": "LoadImage", "inputs": {"image": str(tmp_path / "x.png")}}}
    comfy_adapter.set_models_dir(tmp_path / "models")
    try:
        text = "\n".join(map(str, validate_workflow(workflow, node_classes())))
    finally:
        comfy_adapter.set_models_dir(None)
    assert f"'SMPL_NEUTRAL.pkl' was not found in the 'smpl' folder ({tmp_path / 'models' / 'smpl'})" in text
    assert "smpl.is.tue.mpg.de" in text
    assert f"'hmr2_epoch_35.ckpt' was not found in the 'hmr2' folder ({tmp_path / 'models' / 'hmr2'})" in text
    assert "4D-Humans" in text and "is not one of" not in text


def test_demo_reports_a_broken_model_file_without_a_traceback(tmp_path, monkeypatch, capsys):
    from motionguide.headless import demo

    broken = tmp_path / "models"
    (broken / "dwpose").mkdir(parents=True)
    for name in ("yolox_l.onnx", "dw-ll_ucoco_384.onnx"):
        (broken / "dwpose" / name).write_bytes(b"this is not a protobuf" * 10)
    # the other files exist (validation checks every model file first), so the run reaches the broken ONNX
    (broken / "diffusers" / "stable-video-diffusion-img2vid-xt-1-1").mkdir(parents=True)
    (broken / "mimicmotion").mkdir()
    (broken / "mimicmotion" / "MimicMotion_1-1.pth").write_bytes(b"x")
    monkeypatch.setattr(demo, "build_smoke_models", lambda: broken)
    monkeypatch.setenv("MOTIONGUIDE_TEMP_DIR", str(tmp_path / "temp"))
    code = _main("demo", "--smoke", "--output-dir", tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2
    assert "error: Node 4 (MotionGuideDetectPose) failed" in err and "Traceback" not in err
    assert "cli.py doctor" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_progress_in_a_log_file_is_one_line_per_tenth(capsys):
    """Outside a terminal (CI logs, nohup) a bar is printed once per tenth, never once per update."""
    from motionguide.headless.execute import _print_progress

    for run in range(2):  # the same label twice (two Detect Pose nodes) prints both runs
        for done in range(301):
            _print_progress(done, 300, "Anny cache")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 * 11
    assert lines[0].endswith("0/300 Anny cache") and lines[10].endswith("300/300 Anny cache")
    assert all("\r" not in line for line in lines)
