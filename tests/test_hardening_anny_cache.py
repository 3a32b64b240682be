"""The built-in body's cache never deletes what it did not write, and a damaged cache is rebuilt, not fatal
(issue 23 cases 1 and 2). anny's build is replaced by a stand-in that writes files the way anny does (its cache
folder, ``v14/<builder>_<hash>.safetensors``) and reads them with anny's own reader, so no test waits minutes."""
import json
import logging
import shutil
from pathlib import Path

import pytest
from motionguide.pipelines.smpl.body import anny_body, anny_cache

pytest.importorskip("anny")


def _real_compact() -> Path:
    files = anny_cache.compact_files(anny_cache.cache_dir()) or sorted(
        anny_cache.cache_dir().glob(f"v*/{anny_cache.COMPACT_PREFIX}*.safetensors"))
    if not files:
        pytest.skip("the built-in body's cache is not built on this machine")
    return files[0]


@pytest.fixture
def fake_anny(monkeypatch):
    """anny.Anny stand-in: loads the compact file with anny's reader when present, else 'builds' it (a copy of
    the real one plus an intermediate file anny would write); AnnyBody is replaced by the module itself."""
    import anny
    import anny.paths
    from anny.models.model_data import ModelData

    good = _real_compact()
    calls = {"built": 0, "loaded": 0}

    def fake(**kwargs):
        version = Path(anny.paths.get_anny_cache_path()) / good.parent.name
        target = version / good.name
        if target.exists():
            ModelData.load_safetensors(target)
            calls["loaded"] += 1
        else:
            version.mkdir(parents=True, exist_ok=True)
            (version / "build_model_data_intermediate.safetensors").write_bytes(b"x" * 100)
            shutil.copyfile(good, target)
            calls["built"] += 1
        return "module"

    monkeypatch.setattr(anny, "Anny", fake)
    monkeypatch.setattr(anny_body, "AnnyBody", lambda module, source: ("body", source))
    monkeypatch.setattr(anny_cache, "_BODIES", {})
    monkeypatch.delenv("ANNY_CACHE_DIR", raising=False)
    return calls


def test_build_in_a_shared_models_folder_deletes_nothing_of_the_users(tmp_path, fake_anny):
    """ANNY_CACHE_DIR pointed at a models folder that holds vae/ weights: the first build deleted them."""
    users = {"vae/diffusion_pytorch_model.safetensors": b"vae weights", "vae_approx/taesd.safetensors": b"taesd",
             "v14/someone_elses.safetensors": b"theirs", "v2/model.safetensors": b"v2"}
    for name, data in users.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    anny_cache.load_anny_body(tmp_path)
    assert fake_anny["built"] == 1
    for name, data in users.items():
        assert (tmp_path / name).read_bytes() == data, name
    kept = [p.relative_to(tmp_path).as_posix() for p in anny_cache.cache_root(tmp_path).rglob("*.safetensors")]
    assert kept == [f"{anny_cache.SUBFOLDER}/v14/{_real_compact().name}"]  # the intermediate file was pruned
    manifest = json.loads((anny_cache.cache_root(tmp_path) / "manifest.json").read_text())
    assert manifest["state"] == "built" and manifest["files"][0]["size"] == _real_compact().stat().st_size


def _damage(path: Path, how: str, good: Path) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "corrupted":
        path.write_bytes(data[:5000] + bytes(b ^ 0xFF for b in data[5000:5100]) + data[5100:])
    elif how == "other_file":
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    elif how == "symlink":
        other = path.parent.parent / "elsewhere.safetensors"
        other.write_bytes(data)
        path.unlink()
        path.symlink_to(other)
    elif how == "extra_metadata":
        import safetensors.torch
        from safetensors import safe_open

        with safe_open(str(good), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta["metadata"] = json.dumps(dict(json.loads(meta["metadata"]), surprise=1))
        safetensors.torch.save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("how", ["truncated", "corrupted", "other_file", "symlink", "extra_metadata"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, fake_anny, how, caplog):
    anny_cache.load_anny_body(tmp_path)
    compact = anny_cache.compact_files(tmp_path)[0]
    _damage(compact, how, _real_compact())
    assert anny_cache.verify_cache(tmp_path)[0] is None and anny_cache.verify_cache(tmp_path)[1]
    anny_cache._BODIES.clear()
    with caplog.at_level(logging.WARNING):
        assert anny_cache.load_anny_body(tmp_path)[0] == "body"
    assert fake_anny["built"] == 2
    assert "rebuilding" in caplog.text and str(anny_cache.cache_root(tmp_path)) in caplog.text
    assert anny_cache.compact_files(tmp_path) == [compact] and not compact.is_symlink()
    anny_cache._BODIES.clear()
    anny_cache.load_anny_body(tmp_path)  # the next run uses it without building
    assert fake_anny == {"built": 2, "loaded": 1}


def test_damaged_cache_in_a_read_only_folder_names_the_file_and_the_command(tmp_path, fake_anny, monkeypatch):
    anny_cache.load_anny_body(tmp_path)
    _damage(anny_cache.compact_files(tmp_path)[0], "truncated", _real_compact())
    anny_cache._BODIES.clear()

    def refuse(directory):
        raise PermissionError(f"{directory} is not writable")

    monkeypatch.setattr(anny_cache, "_check_writable", refuse)
    with pytest.raises(PermissionError, match=r"motionguide-anny-v1 is damaged \(.*truncated.*python cli.py anny"):
        anny_cache.load_anny_body(tmp_path)


def test_old_layout_damaged_file_is_not_used_and_not_deleted(tmp_path, fake_anny):
    """A cache of the layout before the manifest (``<folder>/v14/``): a whole one is adopted (copied), a
    truncated one is left alone and a fresh cache is built; a raw SafetensorError before."""
    legacy = tmp_path / "v14" / _real_compact().name
    legacy.parent.mkdir()
    shutil.copyfile(_real_compact(), legacy)
    _damage(legacy, "truncated", _real_compact())
    size = legacy.stat().st_size
    anny_cache.load_anny_body(tmp_path)
    assert fake_anny["built"] == 1 and legacy.stat().st_size == size
    whole = tmp_path / "whole"
    (whole / "v14").mkdir(parents=True)
    shutil.copyfile(_real_compact(), whole / "v14" / _real_compact().name)
    anny_cache.load_anny_body(whole)
    assert fake_anny["built"] == 1 and anny_cache.is_built(whole)


def test_interrupted_build_leaves_no_file_that_counts_as_built(tmp_path, fake_anny, monkeypatch):
    import anny

    real = anny.Anny

    def killed(**kwargs):
        version = Path(anny.paths.get_anny_cache_path()) / "v14"
        version.mkdir(parents=True, exist_ok=True)
        (version / _real_compact().name).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(anny, "Anny", killed)
    with pytest.raises(KeyboardInterrupt):
        anny_cache.load_anny_body(tmp_path)
    assert not anny_cache.is_built(tmp_path)
    monkeypatch.setattr(anny, "Anny", real)
    assert anny_cache.load_anny_body(tmp_path)[0] == "body"
    assert fake_anny["built"] == 1 and anny_cache.is_built(tmp_path)


def test_one_cache_per_machine_outside_comfyui(tmp_path, monkeypatch):
    """Issue 22: the demo switched to its tiny-models folder and built a second cache there, the tests a third."""
    from motionguide.nodes import comfy_adapter as adapter

    monkeypatch.setattr(adapter, "in_comfyui", lambda: False)
    monkeypatch.setattr(adapter, "PACK_ROOT", tmp_path / "motionguide")
    before = adapter.anny_cache_folder()
    monkeypatch.setattr(adapter, "_models_dir_override", tmp_path / "smoke_models")
    assert adapter.anny_cache_folder() == before == anny_cache.MACHINE_CACHE == Path.home() / ".cache" / "anny"
    monkeypatch.setattr(adapter, "PACK_ROOT", tmp_path / "ComfyUI" / "custom_nodes" / "motionguide")
    assert adapter.anny_cache_folder() == tmp_path / "ComfyUI" / "models" / "anny"
    monkeypatch.delenv("ANNY_CACHE_DIR", raising=False)
    assert anny_cache.cache_dir() == anny_cache.MACHINE_CACHE  # the tests' default: the same folder
