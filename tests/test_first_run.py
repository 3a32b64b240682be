"""A newcomer's first Run (issue 22): the templates' sample inputs are where ComfyUI's loaders look, the motion-file
templates need no estimator file, and every missing model file of a workflow is named at once, at validation."""
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from motionguide.headless import model_files
from motionguide.nodes import model_check, sample_inputs

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "headless" / "workflows_api"
FILE_INPUTS = {("LoadImage", "image"), ("LoadVideo", "file"), ("VHS_LoadVideo", "video"),
               ("MotionGuideLoadSMPLMotion", "motion_file")}


@pytest.fixture()
def fake_comfyui(tmp_path, monkeypatch):
    """ComfyUI as the pack sees it at import: a ``folder_paths`` with an input folder, a server with prompt hooks."""
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_input_directory = lambda: str(tmp_path / "input")
    server = types.ModuleType("server")
    handlers = []
    server.PromptServer = types.SimpleNamespace(instance=types.SimpleNamespace(add_on_prompt_handler=handlers.append))
    monkeypatch.setenv("MOTIONGUIDE_NO_COMFY", "0")
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    monkeypatch.setitem(sys.modules, "server", server)
    monkeypatch.setattr(model_check, "_registered", False)
    return tmp_path / "input", handlers


# ------------------------------------------------------------------------------------------------ item 1: samples


def test_samples_are_copied_into_comfyui_input_once_and_never_over_a_users_file(fake_comfyui):
    input_dir, _ = fake_comfyui
    target = input_dir / "motionguide"
    target.mkdir(parents=True)
    (target / "motionguide_reference.png").write_bytes(b"the user's own picture")
    written = sample_inputs.install_sample_inputs()
    assert sorted(p.name for p in written) == ["motionguide_driving.mp4", "motionguide_motion.npz"]
    assert (target / "motionguide_reference.png").read_bytes() == b"the user's own picture"  # never replaced
    shipped = sample_inputs.SAMPLES_DIR / "motionguide_motion.npz"
    assert (target / "motionguide_motion.npz").read_bytes() == shipped.read_bytes()
    assert sample_inputs.install_sample_inputs() == []  # the next start copies nothing
    assert sorted(p.name for p in target.iterdir()) == sorted(sample_inputs.sample_names())  # no temp files left


def test_outside_comfyui_nothing_is_copied(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOTIONGUIDE_NO_COMFY", "1")
    assert sample_inputs.install_sample_inputs() == []
    assert list(tmp_path.iterdir()) == []


def test_read_only_input_folder_costs_the_samples_not_the_pack(tmp_path, monkeypatch):
    blocker = tmp_path / "input"
    blocker.write_text("a file where the folder should be")
    assert sample_inputs.install_sample_inputs(blocker) == []  # logged, not raised


@pytest.mark.parametrize("path", sorted(API_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_templates_name_the_samples_in_the_motionguide_input_folder(path):
    workflow = json.loads(path.read_text())
    named = [(n["class_type"], name, value) for n in workflow.values() for name, value in n["inputs"].items()
             if (n["class_type"], name) in FILE_INPUTS]
    assert named, "no file input"
    for class_type, name, value in named:
        assert value.startswith("motionguide/"), f"{class_type}.{name} = {value!r}"
        assert sample_inputs.sample_input(value) == sample_inputs.SAMPLES_DIR / value.split("/", 1)[1]
    assert sample_inputs.sample_input("motionguide/../cli.py") is None
    assert sample_inputs.sample_input("motionguide/not_a_sample.png") is None


def test_cli_runs_a_template_without_input_dir(tmp_path, monkeypatch, capsys):
    """The README's `run` example: the samples are read from the pack when the input folder lacks them."""
    from motionguide.headless.cli import main

    for name in ("MOTIONGUIDE_INPUT_DIR", "MOTIONGUIDE_OUTPUT_DIR", "MOTIONGUIDE_TEMP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "motionguide/motionguide_reference.png"}},
                "2": {"class_type": "MotionGuideLoadSMPLMotion",
                      "inputs": {"motion_file": "motionguide/motionguide_motion.npz", "format": "auto", "width": 576,
                                 "height": 1024, "fps": 0.0}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ref"}}}
    (tmp_path / "wf.json").write_text(json.dumps(workflow))
    assert main(["run", str(tmp_path / "wf.json"), "--temp-dir", str(tmp_path / "t")]) == 0
    assert (tmp_path / "output" / "ref_00001.png").is_file()
    assert not (tmp_path / "input").exists()  # nothing copied outside ComfyUI


# ------------------------------------------------------------------------------------ item 2: no estimator file


def test_only_the_driving_video_template_needs_hmr2():
    needs = {name: model_files.workflow_needs(wf) for name, wf in model_files.shipped_workflows().items()}
    with_hmr2 = sorted(name for name, groups in needs.items() if "hmr2" in groups)
    assert with_hmr2 == ["smpl_guided_video"], needs
    for name in ("animator_scail", "animator_wan_animate", "animator_mtvcrafter", "animator_stableanimator"):
        assert needs[name] == ["dwpose_detector", "dwpose_pose"], (name, needs[name])
    assert sorted(needs["smpl_motion_camera_orbit"]) == ["dwpose_detector", "dwpose_pose", "mimicmotion", "svd"]


def test_reference_body_from_pose_stands_in_the_persons_box_and_fits(anny_body):
    from motionguide.headless.demo import sample_reference_keypoints
    from motionguide.nodes.smpl_reference import MotionGuidePlaceReferenceBody
    from motionguide.pipelines.smpl.motion.anny_shape import set_body_shape
    from motionguide.pipelines.smpl.motion.transfer import transfer_shape

    keypoints, (width, height) = sample_reference_keypoints()
    pose = [{"people": [{"pose_keypoints_2d": keypoints.reshape(-1).tolist()}], "canvas_width": width,
             "canvas_height": height}]
    (seq,) = MotionGuidePlaceReferenceBody().place(pose, anny_body)
    assert seq["body_pose"].shape == (1, 69) and seq["image_size"] == (width, height)
    np.testing.assert_allclose(seq["keypoints"][0], keypoints, atol=1e-4)
    # the standing body, projected, spans the person's box (from the head top above the nose to the ankles)
    verts, _ = anny_body.forward(None, seq["global_orient"], seq["body_pose"], None)
    points = verts[0].double().numpy() + seq["transl"][0]
    uv = (points @ seq["K"][0].T)[:, :2] / (points @ seq["K"][0].T)[:, 2:]
    box = seq["bbox"][0]
    assert abs((uv[:, 1].max() - uv[:, 1].min()) / (box[3] - box[1]) - 1) < 0.2
    assert abs((uv[:, 0].mean() - (box[0] + box[2]) / 2)) < 0.1 * (box[2] - box[0])
    shaped = set_body_shape(seq, anny_body, "fit", iterations=10)
    assert shaped["phenotype"].shape[-1] == 6 and np.isfinite(shaped["phenotype"]).all()
    motion = {k: v for k, v in shaped.items()}
    moved = transfer_shape(motion, shaped, anny_body, trajectory="lock_root")
    assert np.isfinite(moved["transl"]).all()
    with pytest.raises(ValueError, match="person_index 3 does not exist"):
        MotionGuidePlaceReferenceBody().place(pose, anny_body, person_index=3)
    nobody = [{"people": [{"pose_keypoints_2d": [0.0] * 54}], "canvas_width": width, "canvas_height": height}]
    with pytest.raises(ValueError, match="fewer than 6 confident body points.*whole person is visible"):
        MotionGuidePlaceReferenceBody().place(nobody, anny_body)


# ------------------------------------------------------------------------ item 3: every missing file at once


def _workflow_missing_three():
    return {
        "1": {"class_type": "MotionGuideDetectPose", "inputs": {"images": ["9", 0], "detector": "yolox_l.onnx",
                                                                 "pose_model": "dw-ll_ucoco_384.onnx"}},
        "2": {"class_type": "MotionGuideEstimateSMPL", "inputs": {"estimator": "hmr2_epoch_35.ckpt"}},
        "3": {"class_type": "MotionGuideLoadSMPLModel", "inputs": {"model_file": "anny (built-in)"}},
    }


def test_every_missing_model_file_is_listed_with_folder_and_source(tmp_path):
    from motionguide.nodes import comfy_adapter

    comfy_adapter.set_models_dir(tmp_path / "models")
    try:
        missing = model_check.missing_model_files(_workflow_missing_three())
        (tmp_path / "models" / "dwpose").mkdir(parents=True)
        (tmp_path / "models" / "dwpose" / "yolox_l.onnx").write_bytes(b"\x08")
        fewer = model_check.missing_model_files(_workflow_missing_three())
    finally:
        comfy_adapter.set_models_dir(None)
    assert [(m.node_id, m.name) for m in missing] == [("1", "yolox_l.onnx"), ("1", "dw-ll_ucoco_384.onnx"),
                                                      ("2", "hmr2_epoch_35.ckpt")]
    assert missing[0].folder == str(tmp_path / "models" / "dwpose")
    assert "huggingface.co/yzd-v/DWPose" in missing[0].source and "4D-Humans" in missing[2].source
    assert [m.name for m in fewer] == ["dw-ll_ucoco_384.onnx", "hmr2_epoch_35.ckpt"]


def test_comfyui_validation_of_the_first_loader_lists_them_all(fake_comfyui, tmp_path):
    """In ComfyUI: the on_prompt handler sees the queued prompt; each loader's VALIDATE_INPUTS then names its own
    file and every other missing one, so one Run reports all of them."""
    from motionguide.nodes import comfy_adapter
    from motionguide.nodes.pose import MotionGuideDetectPose
    from motionguide.nodes.smpl_estimate import MotionGuideEstimateSMPL

    _, handlers = fake_comfyui
    model_check.register_prompt_handler()
    model_check.register_prompt_handler()
    assert handlers == [model_check.on_prompt]  # registered once
    comfy_adapter.set_models_dir(tmp_path / "models")
    try:
        # (inside real ComfyUI folder_paths answers; here the fake has no model table, so the fallback folder does)
        sys.modules["folder_paths"].get_folder_paths = lambda key: [str(tmp_path / "models" / key)]
        body = {"prompt": _workflow_missing_three(), "client_id": "x"}
        assert handlers[0](body) is body
        verdict = MotionGuideDetectPose.VALIDATE_INPUTS("yolox_l.onnx", "dw-ll_ucoco_384.onnx")
        estimator = MotionGuideEstimateSMPL.VALIDATE_INPUTS("hmr2_epoch_35.ckpt")
    finally:
        comfy_adapter.set_models_dir(None)
        model_check.remember_prompt({})
    assert verdict.startswith("Model file 'yolox_l.onnx' was not found in the 'dwpose' folder")
    assert "This workflow lacks 3 model files in all:" in verdict
    for name in ("dwpose/yolox_l.onnx", "dwpose/dw-ll_ucoco_384.onnx", "hmr2/hmr2_epoch_35.ckpt"):
        assert name in verdict and name in estimator


def test_headless_run_names_every_missing_file_once(tmp_path, capsys, monkeypatch):
    from motionguide.headless.execute import node_classes, report_failure
    from motionguide.headless.workflow_runner import WorkflowError, run_workflow
    from motionguide.nodes import comfy_adapter

    workflow = json.loads((API_DIR / "smpl_guided_video.json").read_text())
    comfy_adapter.set_models_dir(tmp_path / "models")
    try:
        with pytest.raises(WorkflowError) as info:
            run_workflow(workflow, node_classes())
    finally:
        comfy_adapter.set_models_dir(None)
        model_check.remember_prompt({})
    assert report_failure(info.value) == 2
    err = capsys.readouterr().err
    assert err.count("This workflow lacks 5 model files in all:") == 1
    for name in ("yolox_l.onnx", "dw-ll_ucoco_384.onnx", "hmr2_epoch_35.ckpt", "stable-video-diffusion-img2vid-xt-1-1",
                 "MimicMotion_1-1.pth"):
        assert f"/{name} (" in err, name
    assert "LoadImage" not in err and "motion_file" not in err  # the sample inputs resolve


# ------------------------------------------------------------------------------------- item 9: console noise


def test_warp_cuda_warning_becomes_one_line_of_ours_and_anny_info_is_held_back():
    """In a fresh interpreter on this CPU machine: Warp's C-level CUDA warning and banner do not reach the console;
    one line of ours says what it means. Anny's INFO loggers are held at WARNING while the body is built."""
    import subprocess

    pytest.importorskip("warp")
    code = ("import logging, sys; sys.path.insert(0, %r); import cli; cli.load_pack();"
            "logging.basicConfig(level=logging.INFO, format='%%(name)s: %%(message)s');"
            "from motionguide.pipelines.smpl.body.quiet import quiet_logger, quiet_warp; quiet_warp();"
            "log = logging.getLogger('anny.models.full_model');"
            "ctx = quiet_logger('anny'); ctx.__enter__(); log.info('held back'); ctx.__exit__(None, None, None);"
            "log.info('shown after')") % str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "Warp CUDA warning" not in text and "initialized:" not in text
    import torch

    if not torch.cuda.is_available():
        assert text.count("found no NVIDIA driver and runs on the CPU") == 1
    assert "held back" not in text and "shown after" in text


# --------------------------------------------------------------------------------- item 12: SMPL is optional


def test_doctor_calls_the_smpl_files_optional(tmp_path, capsys):
    from motionguide.headless import doctor
    from motionguide.nodes import comfy_adapter

    comfy_adapter.set_models_dir(tmp_path / "models")
    try:
        report = doctor.Report([])
        doctor.check_models(report)
    finally:
        comfy_adapter.set_models_dir(None)
    smpl = [f.text for f in report.findings if f.text.startswith(("smpl_", "smplx_"))]
    assert len(smpl) == 4 and all("missing (optional: only to use SMPL bodies; the built-in Anny body needs no "
                                  "file)" in t for t in smpl), smpl
    assert all(f.level == "note" for f in report.findings if f.text.startswith("smpl"))
    hmr2 = next(f.text for f in report.findings if f.text.startswith("hmr2:"))
    assert "optional" not in hmr2  # the driving-video template needs it


def test_smoke_demo_explains_the_align_warning_it_will_print(tmp_path, monkeypatch, capsys):
    from motionguide.headless import demo, execute

    class Stop(Exception):
        pass

    def stop(*_args, **_kwargs):
        raise Stop

    from motionguide.nodes import comfy_adapter

    monkeypatch.setattr(demo, "build_smoke_models", lambda: tmp_path)
    monkeypatch.setattr(execute, "execute", stop)
    for name in ("MOTIONGUIDE_TEMP_DIR", "MOTIONGUIDE_INPUT_DIR", "MOTIONGUIDE_OUTPUT_DIR"):  # restored afterwards
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    try:
        with pytest.raises(Stop):
            demo.run_demo(smoke=True, output_dir=tmp_path / "out")
    finally:
        comfy_adapter.set_models_dir(None)  # the demo points the models folder at its smoke models
    err = " ".join(line.strip("# ") for line in capsys.readouterr().err.splitlines())
    assert "'Align pose: no driving frame has a usable person' below is expected here" in err


# ------------------------------------------------------------------------------------------ item 11: CLI edges


def test_nodes_command_lists_every_node(capsys):
    import motionguide
    from motionguide.headless.cli import main

    assert main(["nodes"]) == 0
    out = capsys.readouterr().out
    for _, node_id, name in motionguide.NODE_TABLE:
        assert node_id in out and name in out
    assert main(["nodes", "--inputs"]) == 0
    assert "    pose_keypoint (POSE_KEYPOINT)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, hint", [
    (["run", "wf.json", "--modles-dir", "x"], "--modles-dir: did you mean --models-dir?"),
    (["doctor", "--model-dir=x"], "--model-dir: did you mean --models-dir?"),
    (["rnu", "wf.json"], "did you mean 'run'?"),
    (["models", "donwload"], "did you mean 'download'?"),
])
def test_a_misspelt_option_or_command_gets_a_suggestion(argv, hint, capsys):
    from motionguide.headless.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert hint in capsys.readouterr().err


def test_a_file_that_is_no_image_gets_no_model_file_hint(tmp_path, monkeypatch, capsys):
    from motionguide.headless.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not a picture")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "o"}}}
    (tmp_path / "wf.json").write_text(json.dumps(workflow))
    assert main(["run", "wf.json", "--set", f"1.image={tmp_path / 'notes.png'}", "--temp-dir", "t"]) == 2
    err = capsys.readouterr().err
    assert "not an image file" in err and "doctor" not in err


# ------------------------------------------------------------------------- item 7: bench scripts use .venv


def _python_without_cv2():
    import shutil
    import subprocess

    for candidate in ("python3", "python"):
        path = shutil.which(candidate)
        if path and subprocess.run([path, "-c", "import cv2"], capture_output=True).returncode != 0:
            return path
    return None


def test_bench_script_run_with_a_plain_python_reruns_itself_in_the_venv(tmp_path):
    """The README's `python bench/retarget.py`: a Python without the project's packages re-runs the script with
    the project's virtual environment (here the shared one, named by $MOTIONGUIDE_VENV)."""
    import os
    import subprocess

    plain = _python_without_cv2()
    if plain is None:
        pytest.skip("no Python without cv2 on this machine")
    env = {**os.environ, "MOTIONGUIDE_VENV": str(Path(sys.prefix))}
    out = subprocess.run([plain, str(ROOT / "bench" / "retarget.py"), "--help"], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "usage: retarget.py" in out.stdout
    env["MOTIONGUIDE_VENV"] = str(tmp_path / "no_venv")
    out = subprocess.run([plain, str(ROOT / "bench" / "retarget.py"), "--help"], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 1 and "bash scripts/setup_env.sh" in out.stderr and "No module named" not in out.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("*.py")
                                          if "\nimport cli" in p.read_text()))  # gpu_check.sh picks its Python
def test_every_bench_script_that_loads_the_pack_reruns_in_the_venv_first(script):
    text = (ROOT / "bench" / script).read_text()
    head = text[:text.index("cli.use_project_venv(")]
    assert "cli.load_pack()" not in head and "\nimport numpy" not in head and "\nimport torch" not in head


# ---------------------------------------------------------------------------------- item 5: template cards


def test_template_cards_read_the_same_as_title_and_description_and_the_pack_is_called_motionguide():
    """The templates browser shows a custom template's file name as its title and again as its description with
    '-' and '_' turned into spaces; with neither in our names both read the same. The browser labels the pack with
    its folder name unless the pack's locale names it: locales/en/main.json gives 'MotionGuide'."""
    names = [p.stem for p in (ROOT / "example_workflows").glob("*.json")]
    assert names and not [n for n in names if "-" in n or "_" in n]
    locale = json.loads((ROOT / "locales" / "en" / "main.json").read_text())
    assert locale["templateWorkflows"]["category"]["motionguide"] == "MotionGuide"
    readme = (ROOT / "README.md").read_text()
    assert "custom_nodes\ngit clone <this repository> motionguide" in readme.replace("cd ComfyUI/custom_nodes", "custom_nodes")


# ----------------------------------------------------------------------------- item 4: Cancel inside a decode


def test_cancel_is_answered_between_decoder_blocks_not_only_between_chunks(tiny_svd_dir, tiny_mimicmotion_path):
    """A chunk of 8 frames at 576×1024 takes minutes on a CPU: the progress callback (which raises on Cancel) is
    also called before each decoder block, so Cancel stops a decode inside its first chunk."""
    import torch
    from motionguide.pipelines.mimicmotion.loading import load_motion_model
    from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline

    model = load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu")
    latents = torch.randn(6, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    calls = []
    frames = MimicMotionPipeline(model).decode_latents(latents, chunk_size=4,
                                                       callback=lambda d, t: calls.append((d, t)))
    assert frames.shape[0] == 6
    blocks = 1 + len(model.vae.decoder.up_blocks)
    assert calls.count((0, 2)) == blocks and calls.count((1, 2)) == blocks + 1 and calls[-1] == (2, 2)
    assert not any(b._forward_pre_hooks for b in [model.vae.decoder.mid_block, *model.vae.decoder.up_blocks])

    class Cancelled(Exception):
        pass

    seen = []

    def cancel_at_once(done, total):
        seen.append(done)
        raise Cancelled

    with pytest.raises(Cancelled):
        MimicMotionPipeline(model).decode_latents(latents, chunk_size=4, callback=cancel_at_once)
    assert seen == [0]  # inside the first chunk, before its first decoder block
    assert not any(b._forward_pre_hooks for b in [model.vae.decoder.mid_block, *model.vae.decoder.up_blocks])
    # the next decode works and equals the first
    torch.testing.assert_close(MimicMotionPipeline(model).decode_latents(latents, chunk_size=4), frames)


def test_cancel_is_answered_inside_a_unet_call(tiny_svd_dir, tiny_mimicmotion_path):
    import torch
    from motionguide.pipelines.mimicmotion.loading import load_motion_model
    from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline

    model = load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu")
    reference = torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    poses = torch.zeros((4, 3, 64, 64), dtype=torch.uint8)
    unet_calls = []
    handle = model.unet.register_forward_pre_hook(lambda *_: unet_calls.append(1))

    class Cancelled(Exception):
        pass

    seen = []

    def cancel_in_the_first_unet_call(done, total):
        seen.append(done)
        if unet_calls:  # the first UNet call has started: cancel now
            raise Cancelled

    try:
        with pytest.raises(Cancelled):
            MimicMotionPipeline(model)(reference, poses, num_inference_steps=2, tile_size=4, tile_overlap=2, seed=1,
                                       callback=cancel_in_the_first_unet_call)
    finally:
        handle.remove()
    assert len(unet_calls) == 1 and seen[-1] == 0  # stopped inside the first call, before it reported a tile
    blocks = [*model.unet.down_blocks, model.unet.mid_block, *model.unet.up_blocks]
    assert not any(b._forward_pre_hooks for b in blocks)


def test_progress_repeats_only_check_for_cancel(monkeypatch):
    from motionguide.nodes import comfy_adapter

    shown = []
    monkeypatch.setattr(comfy_adapter, "progress_listener", lambda d, t, label: shown.append(d))
    progress = comfy_adapter.Progress(4, "x")
    for done in (0, 0, 1, 1, 1, 2):
        progress.callback(done, 4)
    assert shown == [0, 1, 2]
    comfy_adapter.request_interrupt()
    try:
        with pytest.raises(comfy_adapter.Interrupted):
            progress.callback(2, 4)  # a repeated count still answers Cancel
    finally:
        comfy_adapter.clear_interrupt()


def test_a_missing_geometry_adapter_is_listed_with_how_to_make_one(tmp_path):
    """No one publishes geometry adapters: the list says how to train one instead of a download source, and the
    adapter loader's own check adds every other missing file of the workflow."""
    from motionguide.nodes import comfy_adapter
    from motionguide.nodes.geometry_adapter import MotionGuideLoadGeometryAdapter

    prompt = dict(_workflow_missing_three(), **{
        "4": {"class_type": "MotionGuideLoadGeometryAdapter", "inputs": {"adapter_file": "mine.safetensors"}}})
    comfy_adapter.set_models_dir(tmp_path / "models")
    try:
        missing = model_check.remember_prompt(prompt)
        verdict = MotionGuideLoadGeometryAdapter.VALIDATE_INPUTS("mine.safetensors")
    finally:
        comfy_adapter.set_models_dir(None)
        model_check.remember_prompt({})
    assert [m.name for m in missing][-1] == "mine.safetensors"
    assert "python cli.py train CONFIG.yaml" in missing[-1].source
    assert verdict.startswith("Geometry adapter 'mine.safetensors' was not found")
    assert "This workflow lacks 4 model files in all:" in verdict and "hmr2/hmr2_epoch_35.ckpt" in verdict
