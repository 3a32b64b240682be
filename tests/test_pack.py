"""The pack as ComfyUI sees it: import without ComfyUI, model folders, file lookup errors, tolerant loading."""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import motionguide
from motionguide.nodes import comfy_adapter as adapter
from motionguide.nodes.registry import build_mappings

ROOT = Path(__file__).resolve().parents[1]


def test_pack_imports_without_comfyui_and_light():
    """A fresh interpreter imports the pack with no comfy module and no heavy libraries pulled in at import."""
    code = (
        "import sys; sys.path.insert(0, %r); import cli; m = cli.load_pack();"
        "heavy = [n for n in ('diffusers', 'onnxruntime', 'pyrender', 'OpenGL', 'smplx', 'transformers') if n in sys.modules];"
        "print(len(m.NODE_CLASS_MAPPINGS), len(m.NODE_TABLE), m.WEB_DIRECTORY, heavy, 'comfy' in sys.modules)"
    ) % str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, table, web, heavy, comfy = out.stdout.split(" ", 4)
    assert table == str(len(motionguide.NODE_TABLE))
    assert web == "./web"
    assert heavy.strip() == "[]" or heavy == "[]", f"heavy imports at pack import: {heavy}"
    assert comfy.strip() == "False"


def test_node_table_ids_are_unique_and_prefixed():
    ids = [row[1] for row in motionguide.NODE_TABLE]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("MotionGuide") for i in ids)
    assert set(motionguide.NODE_DISPLAY_NAME_MAPPINGS) == set(motionguide.NODE_CLASS_MAPPINGS)


def test_broken_module_disables_only_its_nodes(tmp_path, monkeypatch):
    pkg = tmp_path / "fakepack_nodes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("class GoodNode:\n    pass\n")
    (pkg / "bad.py").write_text("import not_a_real_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from motionguide.nodes import registry

    monkeypatch.setattr(registry, "UNAVAILABLE", {})
    classes, names = build_mappings("fakepack_nodes", [
        ("good", "GoodNode", "Good"), ("good", "MissingNode", "Missing"), ("bad", "BadNode", "Bad")])
    assert list(classes) == ["GoodNode"] and names == {"GoodNode": "Good"}
    assert "not_a_real_module_xyz" in registry.UNAVAILABLE["BadNode"]
    assert "defines no class MissingNode" in registry.UNAVAILABLE["MissingNode"]


def test_fallback_models_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGUIDE_MODELS_DIR", str(tmp_path / "env"))
    assert adapter.fallback_models_dir() == (tmp_path / "env").resolve()
    adapter.set_models_dir(tmp_path / "flag")
    try:
        assert adapter.fallback_models_dir() == (tmp_path / "flag").resolve()
        assert adapter.model_folder_paths("dwpose") == [(tmp_path / "flag" / "dwpose").resolve()]
    finally:
        adapter.set_models_dir(None)


def test_listing_and_resolving_model_files(tmp_path):
    adapter.set_models_dir(tmp_path)
    try:
        (tmp_path / "dwpose" / "sub").mkdir(parents=True)
        (tmp_path / "dwpose" / "yolox_l.onnx").write_bytes(b"x")
        (tmp_path / "dwpose" / "sub" / "dw-ll_ucoco_384.onnx").write_bytes(b"x")
        (tmp_path / "dwpose" / "notes.txt").write_text("ignored")
        assert adapter.list_model_files("dwpose") == ["sub/dw-ll_ucoco_384.onnx", "yolox_l.onnx"]
        assert adapter.resolve_model_path("dwpose", "yolox_l.onnx") == tmp_path / "dwpose" / "yolox_l.onnx"
        svd = tmp_path / "diffusers" / "stable-video-diffusion-img2vid-xt-1-1" / "vae"
        svd.mkdir(parents=True)
        (svd / "config.json").write_text("{}")
        assert adapter.list_model_dirs("diffusers", "vae/config.json") == ["stable-video-diffusion-img2vid-xt-1-1"]
        with pytest.raises(FileNotFoundError) as info:
            adapter.resolve_model_path("mimicmotion", "MimicMotion_1-1.pth")
        message = str(info.value)
        assert "'MimicMotion_1-1.pth'" in message and str(tmp_path / "mimicmotion") in message
        assert "huggingface.co/tencent/MimicMotion" in message
        with pytest.raises(FileNotFoundError, match="smpl.is.tue.mpg.de"):
            adapter.resolve_model_path("smpl", "SMPL_NEUTRAL.pkl")
    finally:
        adapter.set_models_dir(None)


def test_register_model_folders_appends_to_user_entries(tmp_path, monkeypatch):
    """Inside ComfyUI: keys are added, a user's extra_model_paths entry is kept first and stays permissive."""
    fake = types.ModuleType("folder_paths")
    fake.models_dir = str(tmp_path / "models")
    fake.folder_names_and_paths = {"dwpose": (["/user/dwpose"], set()), "checkpoints": (["/c"], {".safetensors"})}

    def add_model_folder_path(key, path, is_default=False):
        paths, exts = fake.folder_names_and_paths.setdefault(key, ([], set()))
        if path not in paths:
            paths.append(path)

    fake.add_model_folder_path = add_model_folder_path
    fake.get_folder_paths = lambda key: fake.folder_names_and_paths[key][0]
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    monkeypatch.delenv("MOTIONGUIDE_NO_COMFY", raising=False)
    adapter.register_model_folders()
    paths = fake.folder_names_and_paths
    assert paths["dwpose"][0] == ["/user/dwpose", str(tmp_path / "models" / "dwpose")]
    assert paths["dwpose"][1] == set()  # user's yaml entry accepts any file; we don't narrow it
    assert paths["smpl"][1] == {".pkl", ".npz"}
    assert paths["mimicmotion"][0] == [str(tmp_path / "models" / "mimicmotion")]
    assert "diffusers" in paths and paths["checkpoints"][0] == ["/c"]
    assert adapter.model_folder_paths("dwpose") == [Path("/user/dwpose"), tmp_path / "models" / "dwpose"]


def test_choose_dtype():
    import torch

    assert adapter.choose_dtype("auto", torch.device("cpu")) == torch.float32
    assert adapter.choose_dtype("auto", torch.device("cuda")) == torch.float16
    assert adapter.choose_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        adapter.choose_dtype("fp8", torch.device("cpu"))


def test_progress_reports_and_cancel_interrupts():
    seen = []
    adapter.progress_listener = lambda done, total, label: seen.append((done, total, label))
    try:
        progress = adapter.Progress(4, "frames")
        progress.update()
        progress.callback(3, 4)
        adapter.request_interrupt()
        with pytest.raises(adapter.Interrupted):
            progress.update()
        progress.update()  # the interrupt is consumed: the next run works
    finally:
        adapter.progress_listener = None
        adapter.clear_interrupt()
    assert seen == [(1, 4, "frames"), (3, 4, "frames"), (4, 4, "frames"), (4, 4, "frames")]


def test_doctor_lists_expected_model_paths(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "doctor", "--models-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1, out.stderr  # no model files: nothing can run
    text = out.stdout
    assert "onnxruntime" in text and "torch" in text and "OSMesa" in text
    assert f"mimicmotion: missing: {tmp_path / 'mimicmotion' / 'MimicMotion_1-1.pth'} (3.05 GB) or " in text
    assert f"missing: {tmp_path / 'dwpose' / 'yolox_l.onnx'}" in text
    assert "missing for mimicmotion_pose_video: yolox_l.onnx (dwpose/)" in text
    # every template's missing files, the DisPose template's included
    assert "models download yolox_l dwpose_ll_384 dispose cmp_mofa_hybrid sd_1_5 svd_xt_1_1 mimicmotion_1_1" in text
    assert "Verdict: nothing can run yet" in text


def _python_without_torch() -> str:
    base = Path(sys.base_prefix) / "bin" / "python3"
    if not base.exists() or subprocess.run([str(base), "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("needs a Python without torch beside the venv (the venv's base interpreter)")
    return str(base)


def test_cli_reexecutes_itself_in_the_project_venv(tmp_path):
    """README's `python cli.py ...` with a Python lacking torch: the venv's Python takes over, else a clear error."""
    python = _python_without_torch()
    env = {**os.environ, "MOTIONGUIDE_VENV": sys.prefix}
    out = subprocess.run([python, str(ROOT / "cli.py"), "demo", "--help"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--smoke" in out.stdout
    env["MOTIONGUIDE_VENV"] = str(tmp_path / "no-venv")
    out = subprocess.run([python, str(ROOT / "cli.py"), "demo"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 1
    assert "torch is not installed" in out.stderr and "bash scripts/setup_env.sh" in out.stderr
