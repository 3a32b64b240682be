"""A model or motion file a loader cannot read gives a ValueError naming the file, saying it is corrupt or refused
and where to get it again; never a raw library message, never the advice to disable safe loading (issue 11
item 8)."""
import pickle

import numpy as np
import pytest
import torch
from motionguide.pipelines.mimicmotion.loading import read_state_dict
from motionguide.pipelines.smpl.body.body_model import read_model_arrays
from motionguide.pipelines.smpl.estimate.hmr2 import read_checkpoint
from motionguide.pipelines.smpl.motion.importers import load_motion_file

MIMIC = "huggingface.co/tencent/MimicMotion"
HMR2 = "github.com/shubham-goel/4D-Humans"
SMPL = "smpl.is.tue.mpg.de"


class _Payload:
    def __reduce__(self):
        import os

        return os.system, ("echo should never run",)


def _pth_files(folder, name):
    """Empty, truncated and code-carrying PyTorch checkpoints named ``name``."""
    good = folder / "good.pth"
    torch.save({"w": torch.zeros(64, 64)}, good)
    empty, truncated, payload = folder / "empty" / name, folder / "truncated" / name, folder / "payload" / name
    for path in (empty, truncated, payload):
        path.parent.mkdir()
    empty.write_bytes(b"")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({"w": _Payload()}, payload)
    return {"empty": empty, "truncated": truncated, "payload": payload}


def _safetensors_files(folder, name):
    garbage, crafted = folder / "garbage" / name, folder / "crafted" / name
    for path in (garbage, crafted):
        path.parent.mkdir(parents=True)
    garbage.write_bytes(b"\x00\x01not a safetensors file at all" * 3)
    crafted.write_bytes((2 ** 40).to_bytes(8, "little") + b'{"w": {"dtype": "F32", "shape": [4], "data_offsets":')
    return {"garbage": garbage, "crafted": crafted}


def _check(info, path, source, refused=False):
    msg = str(info.value)
    assert type(info.value) is not EOFError and isinstance(info.value, ValueError)
    assert str(path) in msg and source in msg, msg
    assert ("refused" if refused else "corrupt") in msg, msg
    assert "weights_only=False" not in msg and "weights_only" not in msg.replace("weights_only=True", ""), msg


@pytest.mark.parametrize("case", ["empty", "truncated", "payload"])
@pytest.mark.parametrize("loader, name, source", [(read_state_dict, "MimicMotion_1-1.pth", MIMIC),
                                                  (read_checkpoint, "hmr2_epoch_35.ckpt", HMR2)])
def test_pickled_checkpoints(tmp_path, case, loader, name, source):
    path = _pth_files(tmp_path, name)[case]
    with pytest.raises(ValueError) as info:
        loader(path)
    _check(info, path, source, refused=case == "payload")
    if case == "payload":
        assert "posix.system" in str(info.value) or "os.system" in str(info.value)


@pytest.mark.parametrize("case", ["garbage", "crafted"])
def test_safetensors_headers(tmp_path, case):
    mimic = _safetensors_files(tmp_path / "m", "MimicMotion_1-1.safetensors")[case]
    hmr2 = _safetensors_files(tmp_path / "h", "hmr2_epoch_35.safetensors")[case]
    with pytest.raises(ValueError) as info:
        read_state_dict(mimic)
    _check(info, mimic, MIMIC)
    with pytest.raises(ValueError) as info:
        read_checkpoint(hmr2)
    _check(info, hmr2, HMR2)


def test_single_file_svd_header(tmp_path):
    from motionguide.pipelines.mimicmotion.loading import load_svd_single_file

    path = _safetensors_files(tmp_path, "svd_xt_1_1.safetensors")["garbage"]
    with pytest.raises(ValueError) as info:
        load_svd_single_file(path, torch.float32)
    _check(info, path, "stabilityai/stable-video-diffusion-img2vid-xt-1-1")


def test_hmr2_reason_is_not_cut(tmp_path, monkeypatch):
    # torch puts its advice first and the cause ~500 characters in; the old wrapper kept the first 300
    path = _pth_files(tmp_path, "hmr2_epoch_35.ckpt")["truncated"]
    advice = "Weights only load failed. " + "Re-running `torch.load` with `weights_only` set to `False` ... " * 8

    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError(advice + "\n\nTrying to load unsupported GLOBAL evil.payload_function whose "
                                     "module evil is blocked.")

    monkeypatch.setattr(torch.serialization, "get_unsafe_globals_in_checkpoint", lambda p: [])
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(ValueError) as info:
        read_checkpoint(path)
    assert "evil.payload_function" in str(info.value)
    _check(info, path, HMR2, refused=True)


def test_empty_smpl_files(tmp_path):
    for name in ("SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz"):
        path = tmp_path / name
        path.write_bytes(b"")
        with pytest.raises(ValueError) as info:
            read_model_arrays(path)
        _check(info, path, SMPL)


def test_crafted_smpl_pickle_is_refused_with_the_source(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"x": _Payload()}, 2))
    with pytest.raises(ValueError) as info:
        read_model_arrays(path)
    _check(info, path, SMPL, refused=True)


def test_motion_npz_empty_or_with_objects(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz' is corrupt"):
        load_motion_file(empty)
    objects = tmp_path / "objects.npz"
    np.savez(objects, poses=np.array([{"a": 1}], dtype=object), trans=np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"objects\.npz' .*refused.*'poses' holds pickled Python objects"):
        load_motion_file(objects)


def _damage_first_entry(path):
    """Flip bytes inside the first stored array of an uncompressed .npz (its zip directory stays intact)."""
    data = bytearray(path.read_bytes())
    start = data.index(b"\x93NUMPY") + 200  # past the .npy header, inside the array bytes
    data[start:start + 16] = bytes(b ^ 0xFF for b in data[start:start + 16])
    path.write_bytes(bytes(data))


def test_damaged_array_inside_an_smpl_npz(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, v_template=np.ones((6890, 3)), kintree_table=np.zeros((2, 24), np.int64),
             names=np.array([{"a": 1}], dtype=object))
    assert set(read_model_arrays(path)) == {"v_template", "kintree_table"}  # the object entry is skipped
    _damage_first_entry(path)
    with pytest.raises(ValueError) as info:
        read_model_arrays(path)
    _check(info, path, SMPL)


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage that is no ONNX protobuf" * 4, "cut"])
def test_unreadable_dwpose_onnx(tmp_path, content):
    from motionguide.pipelines.dwpose.runtime import create_session

    path = tmp_path / "dw-ll_ucoco_384.onnx"
    if content == "cut":
        import onnx
        from onnx import TensorProto, helper

        weight = helper.make_tensor("w", TensorProto.FLOAT, [64, 64], np.ones(64 * 64, np.float32))
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight])
        blob = helper.make_model(graph).SerializeToString()
        onnx.checker.check_model(onnx.load_from_string(blob))
        content = blob[: len(blob) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        create_session(path, "cpu")
    _check(info, path, "huggingface.co/yzd-v/DWPose")
    assert "ONNXRuntimeError" not in str(info.value) and ".cc:" not in str(info.value), str(info.value)
