"""YOLOX pre/post-processing on hand-made inputs and outputs, and the onnxruntime session layer."""
import logging

import numpy as np
import pytest

from motionguide.pipelines.dwpose import detector, runtime
from motionguide.pipelines.dwpose.pose_model import RTMPoseWholebody


def test_letterbox_places_resized_image_top_left_on_114():
    image = np.zeros((200, 100, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # RGB kept as given
    tensor, r = detector.letterbox(image)
    assert r == pytest.approx(3.2)  # min(640/200, 640/100)
    assert tensor.shape == (3, 640, 640) and tensor.dtype == np.float32
    assert tensor[:, 0, 0].tolist() == [10, 20, 30]
    assert tensor[:, 639, 319].tolist() == [10, 20, 30]  # resized to 320 × 640
    assert tensor[:, 0, 320].tolist() == [114, 114, 114]
    assert np.all(tensor[:, :, 320:] == 114)


def test_letterbox_landscape_pads_bottom():
    tensor, r = detector.letterbox(np.full((100, 400, 3), 7, np.uint8))
    assert r == pytest.approx(1.6)
    assert np.all(tensor[:, :160] == 7) and np.all(tensor[:, 160:] == 114)


def test_grid_decode_strides_and_cells():
    raw = np.zeros((8400, 85), np.float32)
    raw[81, :4] = [0.5, 0.25, np.log(2.0), 0.0]  # stride 8, cell (x=1, y=1)
    raw[6400 + 40 + 3, :4] = [0, 0, 0, 0]  # stride 16, cell (x=3, y=1)
    raw[8000 + 20 * 19 + 19, :4] = [0, 0, 0, 0]  # stride 32, last cell (19, 19)
    out = detector.grid_decode(raw)
    assert out[0, :4].tolist() == [0, 0, 8, 8]
    assert out[81, :4].tolist() == [12.0, 10.0, 16.0, 8.0]
    assert out[6443, :4].tolist() == [48, 16, 16, 16]
    assert out[8399, :4].tolist() == [608, 608, 32, 32]
    with pytest.raises(ValueError, match="8400"):
        detector.grid_decode(np.zeros((100, 85), np.float32))


def test_nms_uses_plus_one_areas_and_045():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [20, 20, 29, 29], [0, 0, 9, 4]], np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # D beats A (IoU 50/100 = 0.5 > 0.45); B survives D (36/114 = 0.32) and suppresses nothing else.
    assert detector.nms(boxes, scores, 0.45) == [3, 1, 2]
    assert detector.nms(boxes, scores, 0.6) == [3, 0, 2]  # A–B IoU 81/119 = 0.68 > 0.6


def test_person_boxes_from_hand_made_output():
    raw = np.zeros((8400, 85), np.float32)
    person = 6400 + 1600 + 3 * 20 + 5  # stride 32, cell (5, 3)
    raw[person, :6] = [0.5, 0.5, np.log(4.0), np.log(8.0), 0.9, 0.8]
    dog = 6400 + 1600 + 10 * 20 + 10
    raw[dog, :4] = [0.5, 0.5, np.log(4.0), np.log(8.0)]
    raw[dog, 4], raw[dog, 6] = 0.9, 0.9  # class 1, not a person
    weak = 6400 + 1600 + 18 * 20 + 1
    raw[weak, :6] = [0.5, 0.5, 0.0, 0.0, 0.5, 0.5]  # 0.25: passes NMS's 0.1, fails the person 0.3
    boxes = detector.person_boxes_from_output(raw, ratio=2.0)
    # centre (5.5·32, 3.5·32) = (176, 112), size 128 × 256, then ÷ r
    np.testing.assert_allclose(boxes, [[56.0, -8.0, 120.0, 120.0, 0.72]], rtol=1e-6)
    assert detector.person_boxes_from_output(np.zeros((8400, 85), np.float32), 1.0).shape == (0, 5)


def test_no_person_gives_the_whole_image_box(tiny_dwpose_dir):
    det = detector.YOLOXDetector(runtime.create_session(tiny_dwpose_dir / "yolox_l.onnx", "cpu"))
    boxes = det.detect(np.zeros((90, 70, 3), np.uint8))
    assert boxes[:, :4].tolist() == [[0, 0, 70, 90]] and np.isnan(boxes[0, 4])


def _never_called():
    raise AssertionError("CUDA was probed although it is not wanted")


def test_provider_table(monkeypatch):
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    usable = lambda: None  # noqa: E731
    assert runtime.choose_providers("cuda", both, cuda_problem=usable) == both
    assert runtime.choose_providers("cpu", both, cuda_problem=_never_called) == ["CPUExecutionProvider"]
    # auto follows the torch device: no CUDA device → CPU, and CUDA is not even probed (no red onnxruntime lines)
    monkeypatch.setattr(runtime, "cuda_wanted", lambda device: device == "cuda")
    assert runtime.choose_providers("auto", both, cuda_problem=_never_called) == ["CPUExecutionProvider"]
    monkeypatch.setattr(runtime, "cuda_wanted", lambda device: True)
    assert runtime.choose_providers("auto", both, cuda_problem=usable) == both
    with pytest.raises(ValueError, match="device"):
        runtime.choose_providers("tpu", both)


def test_cuda_request_without_cuda_warns_once(caplog, monkeypatch):
    monkeypatch.setattr(runtime, "_warned", set())
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert runtime.choose_providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert "install onnxruntime-gpu" in caplog.text
    assert len(caplog.records) == 1


def test_unloadable_cuda_provider_falls_back_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(runtime, "_warned", set())
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    problem = lambda: "onnxruntime-gpu 1.31.1 is built for CUDA 13.0 and cannot load (libcublasLt.so.13: ...)"  # noqa: E731
    with caplog.at_level(logging.WARNING):
        assert runtime.choose_providers("cuda", both, cuda_problem=problem) == ["CPUExecutionProvider"]
        assert runtime.choose_providers("cuda", both, cuda_problem=problem) == ["CPUExecutionProvider"]
    assert len(caplog.records) == 1
    assert "DWPose runs on the CPU although a CUDA GPU is in use" in caplog.text and "CUDA 13.0" in caplog.text


def test_cuda_probe_names_the_missing_library():
    """On this machine's onnxruntime: None where CUDA loads (a GPU box), else the library and what to install."""
    import onnxruntime as ort

    runtime._cuda_problem.clear()
    problem = runtime.cuda_provider_problem(ort)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert "pip install onnxruntime-gpu" in problem
    elif problem is not None:
        assert ".so" in problem and "onnxruntime-gpu" in problem and runtime.CUDA_DOCS in problem


def test_node_auto_follows_comfyui_device(monkeypatch):
    import types

    from motionguide.nodes import comfy_adapter

    cpu = types.SimpleNamespace(get_torch_device=lambda: types.SimpleNamespace(type="cpu"))
    gpu = types.SimpleNamespace(get_torch_device=lambda: types.SimpleNamespace(type="cuda"))
    monkeypatch.setattr(comfy_adapter, "_comfy_module", lambda name: cpu)  # ComfyUI started with --cpu
    assert comfy_adapter.onnx_device("auto") == "cpu"
    assert comfy_adapter.onnx_device("cuda") == "cuda"
    monkeypatch.setattr(comfy_adapter, "_comfy_module", lambda name: gpu)
    assert comfy_adapter.onnx_device("auto") == "cuda"
    monkeypatch.setattr(comfy_adapter, "_comfy_module", lambda name: None)  # headless: the pipeline decides
    assert comfy_adapter.onnx_device("auto") == "auto"


def test_session_logs_provider(tiny_dwpose_dir, caplog):
    with caplog.at_level(logging.INFO):
        runtime.create_session(tiny_dwpose_dir / "yolox_l.onnx", "auto")
    assert "DWPose running on CPUExecutionProvider" in caplog.text


def test_wrong_files_name_the_file_and_signature(tiny_dwpose_dir, tmp_path):
    wrong = runtime.create_session(tiny_dwpose_dir / "broken" / "wrong_signature.onnx", "cpu")
    with pytest.raises(ValueError, match=r"wrong_signature\.onnx.*heatmaps.*simcc_x"):
        RTMPoseWholebody(wrong, "wrong_signature.onnx")
    with pytest.raises(ValueError, match=r"wrong_signature\.onnx.*'images' \[1, 3, 640, 640\]"):
        detector.YOLOXDetector(wrong, "wrong_signature.onnx")
    pose = runtime.create_session(tiny_dwpose_dir / "dw-ll_ucoco_384.onnx", "cpu")
    with pytest.raises(ValueError, match="not a YOLOX detector"):
        detector.YOLOXDetector(pose, "dw-ll_ucoco_384.onnx")
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        runtime.create_session(tmp_path / "nothing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx"):
        runtime.create_session(junk)
