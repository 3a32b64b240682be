"""`cli.py models download` against a fake Hugging Face endpoint on 127.0.0.1, and the doctor's file checks."""
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_hf_hub import FakeHub
from motionguide.headless import doctor, model_files, models_download
from motionguide.nodes import comfy_adapter

ROOT = Path(__file__).resolve().parents[1]
SVD = "stabilityai/stable-video-diffusion-img2vid-xt-1-1"
SVD_CONFIGS = ["vae/config.json", "image_encoder/config.json", "scheduler/scheduler_config.json",
               "feature_extractor/preprocessor_config.json", "unet/config.json"]
SVD_WEIGHTS = ["vae/diffusion_pytorch_model.fp16.safetensors", "image_encoder/model.fp16.safetensors"]


def safetensors_bytes(n: int = 64) -> bytes:
    from safetensors.numpy import save

    return save({"w": np.arange(n, dtype=np.float16)})


def torch_zip_bytes() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"unet.w": torch.zeros(300), "pose_net.w": torch.ones(3)}, buffer)
    return buffer.getvalue()


def onnx_bytes() -> bytes:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "tiny", [x], [y])
    return helper.make_model(graph).SerializeToString() if onnx else b""


@pytest.fixture()
def registry(monkeypatch, tmp_path):
    """A registry of the real shape, with the test files' sizes, and a fresh models folder."""
    onnx_file, pth = onnx_bytes(), torch_zip_bytes()
    entries = [
        {"id": "svd_xt_1_1", "name": "stable-video-diffusion-img2vid-xt-1-1", "folder": "diffusers",
         "kind": "diffusers_folder", "group": "svd", "required_files": SVD_CONFIGS, "weight_files": [
             ["vae/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors"],
             ["image_encoder/model.fp16.safetensors"]], "source": f"https://huggingface.co/{SVD}",
         "download": {"repo": SVD, "gated": True, "files": SVD_CONFIGS + SVD_WEIGHTS}},
        {"id": "svd_xt_1_1_single", "name": "svd_xt_1_1.safetensors", "folder": "checkpoints", "kind": "single_file",
         "group": "svd", "source": "hf", "download": {"repo": SVD, "gated": True, "files": ["svd_xt_1_1.safetensors"]}},
        {"id": "mimicmotion_1_1", "name": "MimicMotion_1-1.pth", "folder": "mimicmotion", "group": "mimicmotion",
         "size": len(pth), "source": "hf", "download": {"repo": "tencent/MimicMotion", "files": ["MimicMotion_1-1.pth"]}},
        {"id": "mimicmotion_1_0", "name": "MimicMotion_1.pth", "folder": "mimicmotion", "group": "mimicmotion",
         "source": "hf", "download": {"repo": "tencent/MimicMotion", "files": ["MimicMotion_1.pth"]}},
        {"id": "yolox_l", "name": "yolox_l.onnx", "folder": "dwpose", "group": "dwpose_detector", "size": len(onnx_file),
         "source": "hf", "download": {"repo": "yzd-v/DWPose", "files": ["yolox_l.onnx"]}},
        {"id": "smpl_neutral", "name": "SMPL_NEUTRAL.pkl", "folder": "smpl", "group": "smpl_neutral",
         "alternatives": ["SMPL_NEUTRAL.npz"], "source": "https://smpl.is.tue.mpg.de"},
    ]
    monkeypatch.setattr(comfy_adapter, "model_registry", lambda: {"models": entries})
    comfy_adapter.set_models_dir(tmp_path / "models")
    yield {"root": tmp_path / "models", "onnx": onnx_file, "pth": pth}
    comfy_adapter.set_models_dir(None)


def hub_with_files(data) -> FakeHub:
    hub = FakeHub()
    hub.add("yzd-v/DWPose", "yolox_l.onnx", data["onnx"])
    hub.add("tencent/MimicMotion", "MimicMotion_1-1.pth", data["pth"])
    for name in SVD_CONFIGS:
        hub.add(SVD, name, b"{}")
    for name in SVD_WEIGHTS:
        hub.add(SVD, name, safetensors_bytes())
    return hub


def run_download(names, hub, **kw):
    lines = []
    code = models_download.download(models_download.select(names, kw.pop("workflow", None)), endpoint=hub.url,
                                    say=lines.append)
    return code, "\n".join(lines)


def test_download_places_checked_files_and_never_overwrites(registry):
    with hub_with_files(registry) as hub:
        code, text = run_download(["yolox_l", "mimicmotion"], hub)
        assert code == 0, text
        onnx_path = registry["root"] / "dwpose" / "yolox_l.onnx"
        assert onnx_path.read_bytes() == registry["onnx"]
        assert (registry["root"] / "mimicmotion" / "MimicMotion_1-1.pth").read_bytes() == registry["pth"]
        assert "sha256 checked" in text
        assert not (registry["root"] / "dwpose" / models_download.STAGING).exists()  # staging cleaned up
        gets = sum(1 for method, _, _ in hub.requests if method == "GET")
        assert gets == 2
        # a second run downloads nothing: the good files stay as they are
        stamp = onnx_path.stat().st_mtime_ns
        code, text = run_download(["yolox_l", "mimicmotion_1_1"], hub)
        assert code == 0 and text.count("present and good") == 2
        assert sum(1 for method, _, _ in hub.requests if method == "GET") == gets
        assert onnx_path.stat().st_mtime_ns == stamp


def test_gated_repo_says_what_to_do(registry, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with hub_with_files(registry) as hub:
        hub.gated.add(SVD)
        code, text = run_download(["svd_xt_1_1"], hub)
    assert code == 1
    assert f"{SVD} is gated and no Hugging Face token was found" in text
    assert "hf auth login" in text and "never stored" in text
    assert not (registry["root"] / "diffusers" / "stable-video-diffusion-img2vid-xt-1-1").exists()


def test_interrupted_transfer_resumes(registry, monkeypatch):
    from huggingface_hub import constants

    # real files arrive in 10 MB chunks; small chunks let this small file keep the half that arrived
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256)
    with hub_with_files(registry) as hub:
        hub.cut.add(("tencent/MimicMotion", "MimicMotion_1-1.pth"))
        code, text = run_download(["mimicmotion_1_1"], hub)
        assert code == 0, text
        ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith(".pth")]
    assert ranges[0] is None and ranges[-1] == f"bytes={len(registry['pth']) // 2 // 256 * 256}-"  # resumed
    assert (registry["root"] / "mimicmotion" / "MimicMotion_1-1.pth").read_bytes() == registry["pth"]


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "http://no-such-host.invalid"])
def test_unreachable_network_is_named_and_never_called_a_resume(registry, endpoint):
    """Offline (refused connection, unknown host): say the network is unreachable and that nothing arrived, not
    'run again to resume' (issue 22 item 10)."""
    lines = []
    code = models_download.download(models_download.select(["yolox_l"]), endpoint=endpoint, say=lines.append)
    text = "\n".join(lines)
    assert code == 1
    assert f"{endpoint} could not be reached" in text and "network is unreachable" in text
    assert "nothing was downloaded" in text and "to resume" not in text
    assert not (registry["root"] / "dwpose" / "yolox_l.onnx").exists()


def test_checksum_mismatch_is_deleted_and_reported(registry):
    with hub_with_files(registry) as hub:
        other = bytearray(registry["onnx"])
        other[-1] ^= 1
        hub.add("yzd-v/DWPose", "yolox_l.onnx", registry["onnx"], published=bytes(other))
        code, text = run_download(["yolox_l"], hub)
    assert code == 1
    assert "sha256 mismatch: Hugging Face publishes " + hashlib.sha256(bytes(other)).hexdigest() in text
    assert "deleted" in text
    folder = registry["root"] / "dwpose"
    assert not (folder / "yolox_l.onnx").exists()
    assert not [p for p in folder.rglob("*") if p.is_file()]  # nothing half-written is left behind


def test_broken_file_is_replaced_by_the_download(registry):
    target = registry["root"] / "dwpose" / "yolox_l.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 216746733\n")
    assert model_files.check_entry(model_files.registry()[4]).status == "broken"
    with hub_with_files(registry) as hub:
        code, text = run_download(["yolox_l"], hub)
    assert code == 0, text
    assert target.read_bytes() == registry["onnx"]


def test_workflow_selection_skips_present_groups_and_lists_manual_files(registry):
    workflow = {"1": {"class_type": "MotionGuideLoadModel", "inputs": {
        "svd_base": "stable-video-diffusion-img2vid-xt-1-1", "mimicmotion_checkpoint": "MimicMotion_1-1.pth"}},
        "2": {"class_type": "MotionGuideLoadSMPLModel", "inputs": {"model_file": "SMPL_NEUTRAL.pkl"}}}
    (registry["root"] / "mimicmotion").mkdir(parents=True)
    (registry["root"] / "mimicmotion" / "MimicMotion_1.pth").write_bytes(registry["pth"])  # 1.0 stands in for 1.1
    checks = model_files.check_all()
    verdict = model_files.verdicts(checks, {"w": workflow})[0]
    assert verdict.needs == ["svd", "mimicmotion", "smpl_neutral"]
    assert sorted(verdict.missing) == ["smpl_neutral", "svd"]
    with pytest.raises(models_download.DownloadError, match="unknown model 'nope'"):
        models_download.select(["nope"])
    picked = [e["id"] for e in models_download.select(["svd"])]
    assert picked == ["svd_xt_1_1"]  # the folder (VAE + CLIP only) before the 4.8 GB single file


# ------------------------------------------------------------------------------------------------------------
# the doctor's checks of the files themselves


def test_file_checks_catch_pointers_truncation_and_pages(tmp_path):
    good = tmp_path / "a.safetensors"
    good.write_bytes(safetensors_bytes())
    assert model_files.file_problem(good) is None
    cut = tmp_path / "b.safetensors"
    cut.write_bytes(safetensors_bytes()[:-10])
    assert "truncated safetensors" in model_files.file_problem(cut)
    pointer = tmp_path / "c.pth"
    pointer.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 3049867447\n")
    assert "Git-LFS pointer" in model_files.file_problem(pointer)
    page = tmp_path / "d.onnx"
    page.write_bytes(b"<!DOCTYPE html><html>Sign in</html>")
    assert "HTML page" in model_files.file_problem(page)
    pth = tmp_path / "e.pth"
    pth.write_bytes(torch_zip_bytes())
    assert model_files.file_problem(pth) is None
    pth.write_bytes(torch_zip_bytes()[:-200])
    assert "truncated" in model_files.file_problem(pth)
    onnx_file = tmp_path / "f.onnx"
    onnx_file.write_bytes(onnx_bytes())
    assert model_files.file_problem(onnx_file) is None
    onnx_file.write_bytes(b"\x08\x07garbage that is no protobuf" * 3)
    assert "not a readable ONNX" in model_files.file_problem(onnx_file)


def test_doctor_verdict_and_exit_status(registry, capsys):
    root = registry["root"]
    svd = root / "diffusers" / "stable-video-diffusion-img2vid-xt-1-1"
    for name in SVD_CONFIGS:
        (svd / name).parent.mkdir(parents=True, exist_ok=True)
        (svd / name).write_text("{}")
    workflows = {"video": {"1": {"class_type": "MotionGuideLoadModel", "inputs": {
        "svd_base": "stable-video-diffusion-img2vid-xt-1-1", "mimicmotion_checkpoint": "MimicMotion_1-1.pth"}}},
        "detect": {"1": {"class_type": "MotionGuideDetectPose", "inputs": {"detector": "yolox_l.onnx"}}}}
    original = model_files.shipped_workflows
    model_files.shipped_workflows = lambda: workflows
    try:
        code = doctor.run([doctor.check_torch, doctor.check_models])
        text = capsys.readouterr().out
        assert code == 1  # nothing can run
        # a folder with only configs is not "ok"
        assert f"svd: incomplete: {svd}: lacks vae/diffusion_pytorch_model.fp16.safetensors" in text
        assert "missing for video:" in text and "missing for detect: yolox_l.onnx (dwpose/)" in text
        assert "models download svd_xt_1_1 mimicmotion_1_1 yolox_l --models-dir" in text
        (root / "dwpose").mkdir()
        (root / "dwpose" / "yolox_l.onnx").write_bytes(registry["onnx"])
        code = doctor.run([doctor.check_torch, doctor.check_models])
        text = capsys.readouterr().out
        assert code == 0
        assert "Verdict: ready: detect; not ready: video" in text
    finally:
        model_files.shipped_workflows = original


def test_cli_honours_hf_endpoint_and_explains_a_gated_repo(tmp_path):
    with FakeHub() as hub:
        hub.gated.add(SVD)
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        env.pop("HF_TOKEN")
        out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "models", "download", "svd_xt_1_1",
                              "--models-dir", str(tmp_path / "models")], env=env, capture_output=True, text=True,
                             timeout=120)
        assert any(path.startswith(f"/{SVD}/resolve/main/") for _, path, _ in hub.requests)
    assert out.returncode == 1, out.stderr
    assert "is gated and no Hugging Face token was found" in out.stdout
    assert not (tmp_path / "models" / "diffusers").exists() or not any((tmp_path / "models" / "diffusers").rglob("*.json"))


def test_shipped_registry_download_specs_are_consistent():
    entries = json.loads((ROOT / "models_config" / "models.json").read_text())["models"]
    by_id = {e["id"]: e for e in entries}
    assert by_id["svd_xt_1_1"]["download"]["gated"] is True
    assert not any("download" in e for e in entries if e["kind"] in ("smpl", "smplx", "hmr2_checkpoint"))
    for e in entries:
        assert e["group"]
        if e.get("kind") == "diffusers_folder":
            assert set(e["required_files"]) <= set(e["download"]["files"])


def test_incomplete_folder_gets_only_its_missing_files(registry):
    svd = registry["root"] / "diffusers" / "stable-video-diffusion-img2vid-xt-1-1"
    for name in SVD_CONFIGS:
        (svd / name).parent.mkdir(parents=True, exist_ok=True)
        (svd / name).write_text('{"mine": true}')
    assert model_files.check_entry(model_files.registry()[0]).status == "incomplete"
    with hub_with_files(registry) as hub:
        code, text = run_download(["svd_xt_1_1"], hub)
        fetched = sorted(path.rsplit("/main/", 1)[1] for method, path, _ in hub.requests if method == "GET")
    assert code == 0, text
    assert fetched == sorted(SVD_WEIGHTS)  # the configs already there are kept, not fetched again
    assert (svd / "vae" / "config.json").read_text() == '{"mine": true}'
    assert model_files.check_entry(model_files.registry()[0]).status == "ok"
    assert not any(p.name == models_download.STAGING for p in svd.rglob("*"))
