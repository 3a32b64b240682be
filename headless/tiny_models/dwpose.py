"""Tiny DWPose ONNX files with the real names and signatures (docs/architecture.md, *Model files*), built with the
``onnx`` helper API.

- ``yolox_l.onnx``: input ``images`` [1, 3, 640, 640] → output ``output`` [1, 8400, 85]. For each stride
  (8/16/32) the image is average-pooled to the anchor grid; brightness above 140 (after a 5×5 local mean) gives
  the objectness at stride 32 only (3×3 local maxima only), class 0 (person) is ~1, boxes are 256×256 letterbox pixels centred on the
  cell. A bright blob on a dark background is thus "a person"; the 114 letterbox padding is not.
- ``dw-ll_ucoco_384.onnx``: input ``input`` [batch, 3, 384, 288] (dynamic batch) → ``simcc_x`` [batch, 133, 576],
  ``simcc_y`` [batch, 133, 768]: per keypoint a fixed seeded bump plus 0.1 × the crop's column/row brightness
  profile, so locations and scores depend on the image and scores straddle 0.3.
- ``dw-ll_ucoco_384_fixed.onnx``: the same pose model with a fixed batch of 1 (the per-person path).
- ``broken/wrong_signature.onnx``: a 17-keypoint heatmap model (input [1, 3, 256, 192]) for the error tests.

Session fixture ``tiny_dwpose_dir``: ``models_dir/dwpose`` holding all of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DETECTOR_NAME = "yolox_l.onnx"
POSE_NAME = "dw-ll_ucoco_384.onnx"
POSE_FIXED_NAME = "dw-ll_ucoco_384_fixed.onnx"
WRONG_NAME = "broken/wrong_signature.onnx"
OPSET = 17
BOX_W, BOX_H = 160.0, 416.0  # letterbox pixels
GAIN, THRESHOLD = 0.05, 140.0  # objectness = sigmoid(GAIN · (local brightness − THRESHOLD))


def _save(graph, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="motionguide-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _const(name: str, array) -> "object":
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def build_tiny_yolox(path) -> Path:
    from onnx import TensorProto, helper

    nodes, inits, flat = [], [], []
    for s in (8, 16, 32):
        g = 640 // s
        p = f"s{s}_"
        nodes.append(helper.make_node("AveragePool", ["images"], [p + "pool"], kernel_shape=[s, s], strides=[s, s]))
        inits.append(_const(p + "gray_w", np.full((1, 3, 1, 1), 1.0 / 3.0)))
        nodes.append(helper.make_node("Conv", [p + "pool", p + "gray_w"], [p + "gray"]))
        nodes.append(helper.make_node("AveragePool", [p + "gray"], [p + "local"], kernel_shape=[9, 5],
                                      strides=[1, 1], pads=[4, 2, 4, 2], count_include_pad=1))
        box_bias = [0.0, 0.0, np.log(BOX_W / s), np.log(BOX_H / s)]
        inits += [_const(p + "box_w", np.zeros((4, 1, 1, 1))), _const(p + "box_b", box_bias)]
        nodes.append(helper.make_node("Conv", [p + "local", p + "box_w", p + "box_b"], [p + "box"]))
        inits += [_const(p + "obj_w", [[[[GAIN]]]]),
                  _const(p + "obj_b", [-GAIN * THRESHOLD - (0.0 if s == 32 else 40.0)])]
        nodes.append(helper.make_node("Conv", [p + "local", p + "obj_w", p + "obj_b"], [p + "obj_logit"]))
        nodes.append(helper.make_node("Sigmoid", [p + "obj_logit"], [p + "obj_all"]))
        # Keep only 3×3 local maxima (CenterNet-style), so one blob gives one box.
        nodes.append(helper.make_node("MaxPool", [p + "local"], [p + "peak"], kernel_shape=[3, 3], strides=[1, 1],
                                      pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Equal", [p + "local", p + "peak"], [p + "is_peak"]))
        nodes.append(helper.make_node("Cast", [p + "is_peak"], [p + "peak_f"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [p + "obj_all", p + "peak_f"], [p + "obj"]))
        cls_bias = np.full(80, -6.0)
        cls_bias[0] = 6.0
        inits += [_const(p + "cls_w", np.zeros((80, 1, 1, 1))), _const(p + "cls_b", cls_bias)]
        nodes.append(helper.make_node("Conv", [p + "local", p + "cls_w", p + "cls_b"], [p + "cls_logit"]))
        nodes.append(helper.make_node("Sigmoid", [p + "cls_logit"], [p + "cls"]))
        nodes.append(helper.make_node("Concat", [p + "box", p + "obj", p + "cls"], [p + "head"], axis=1))
        inits.append(helper.make_tensor(p + "shape", TensorProto.INT64, [3], [1, 85, g * g]))
        nodes.append(helper.make_node("Reshape", [p + "head", p + "shape"], [p + "flat"]))
        flat.append(p + "flat")
    nodes.append(helper.make_node("Concat", flat, ["heads"], axis=2))
    nodes.append(helper.make_node("Transpose", ["heads"], ["output"], perm=[0, 2, 1]))
    graph = helper.make_graph(
        nodes, "tiny_yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])], inits)
    return _save(graph, Path(path))


def _bumps(rng, bins: int, count: int = 133) -> np.ndarray:
    centres = rng.uniform(0.2 * bins, 0.8 * bins, count)
    amplitude = rng.uniform(0.15, 0.95, count)
    grid = np.arange(bins)[None, :]
    return amplitude[:, None] * np.exp(-0.5 * ((grid - centres[:, None]) / (bins / 40.0)) ** 2)


def _upsample2(n: int) -> np.ndarray:
    """[n, 2n] matrix copying column c to bins 2c and 2c+1, × 0.1."""
    m = np.zeros((n, 2 * n))
    m[np.arange(n), 2 * np.arange(n)] = 0.1
    m[np.arange(n), 2 * np.arange(n) + 1] = 0.1
    return m


def build_tiny_dwpose_pose(path, dynamic_batch: bool = True, seed: int = 0) -> Path:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    batch = "batch" if dynamic_batch else 1
    inits = [_const("wx", _upsample2(288)), _const("bx", _bumps(rng, 576)),
             _const("wy", _upsample2(384)), _const("by", _bumps(rng, 768))]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["cols"], axes=[1, 2], keepdims=1),  # [N,1,1,288]
        helper.make_node("ReduceMean", ["input"], ["rows4"], axes=[1, 3], keepdims=1),  # [N,1,384,1]
        helper.make_node("Squeeze", ["cols", "ax1"], ["cols3"]),  # [N,1,288]
        helper.make_node("Squeeze", ["rows4", "ax3"], ["rows3"]),  # [N,1,384]
        helper.make_node("MatMul", ["cols3", "wx"], ["px"]),
        helper.make_node("MatMul", ["rows3", "wy"], ["py"]),
        helper.make_node("Add", ["px", "bx"], ["simcc_x"]),
        helper.make_node("Add", ["py", "by"], ["simcc_y"]),
    ]
    inits += [helper.make_tensor("ax1", TensorProto.INT64, [1], [1]),
              helper.make_tensor("ax3", TensorProto.INT64, [1], [3])]
    graph = helper.make_graph(
        nodes, "tiny_dwpose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 384, 288])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [batch, 133, 576]),
         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [batch, 133, 768])], inits)
    return _save(graph, Path(path))


def build_wrong_signature(path) -> Path:
    from onnx import TensorProto, helper

    inits = [_const("w", np.full((17, 3, 1, 1), 0.1))]
    nodes = [helper.make_node("AveragePool", ["input"], ["pool"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Conv", ["pool", "w"], ["heatmaps"])]
    graph = helper.make_graph(
        nodes, "wrong_signature",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 17, 64, 48])], inits)
    return _save(graph, Path(path))


def build_tiny_dwpose(directory) -> Path:
    """Write the tiny detector, pose models (dynamic and fixed batch) and a wrong-signature file into
    ``directory`` (a ``models/dwpose`` folder); returns it."""
    directory = Path(directory)
    build_tiny_yolox(directory / DETECTOR_NAME)
    build_tiny_dwpose_pose(directory / POSE_NAME, dynamic_batch=True)
    build_tiny_dwpose_pose(directory / POSE_FIXED_NAME, dynamic_batch=False)
    build_wrong_signature(directory / WRONG_NAME)
    return directory


def person_image(width: int = 192, height: int = 256, blobs=((0.5, 0.5, 0.3, 0.6),), seed: int = 0) -> np.ndarray:
    """Dark noisy RGB uint8 image with bright rectangles (cx, cy, w, h as fractions): the tiny detector's people."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    for cx, cy, bw, bh in blobs:
        x1, x2 = int((cx - bw / 2) * width), int((cx + bw / 2) * width)
        y1, y2 = int((cy - bh / 2) * height), int((cy + bh / 2) * height)
        image[max(y1, 0):y2, max(x1, 0):x2] = 250
    return image
