"""YOLOX person detector (``yolox_l.onnx``): letterbox → ONNX → grid decode → NMS (docs/architecture.md, *Reference
algorithms*)."""
from __future__ import annotations

import cv2
import numpy as np

from .runtime import describe_signature, is_dynamic

INPUT_SIZE = (640, 640)  # (height, width)
STRIDES = (8, 16, 32)
PAD_VALUE = 114
NMS_IOU = 0.45
SCORE_THRESHOLD = 0.1
PERSON_THRESHOLD = 0.3
EXPECTED_SIGNATURE = "input 'images' [1, 3, 640, 640] float32; output 'output' [1, 8400, 85] (4 box + obj + 80 classes)"


def letterbox(image: np.ndarray, input_size=INPUT_SIZE) -> tuple[np.ndarray, float]:
    """Resize ``image`` (H×W×3 uint8) by r = min(h_in/H, w_in/W), paste top-left on a canvas filled with 114.

    Returns the float32 ``[3, h_in, w_in]`` network input (raw 0..255, channels as given) and r.
    """
    h_in, w_in = input_size
    padded = np.full((h_in, w_in, 3), PAD_VALUE, dtype=np.uint8)
    r = min(h_in / image.shape[0], w_in / image.shape[1])
    new_w, new_h = int(image.shape[1] * r), int(image.shape[0] * r)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    padded[:new_h, :new_w] = resized
    return np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32), r


def grid_decode(raw: np.ndarray, input_size=INPUT_SIZE, strides=STRIDES) -> np.ndarray:
    """YOLOX head decode: xy = (p + grid)·s, wh = exp(p)·s for each anchor; returns a decoded copy ``[A, 5+C]``."""
    out = np.array(raw, dtype=np.float32, copy=True)  # float32 like the reference, which decodes in place
    grids, expanded = [], []
    for s in strides:
        hs, ws = input_size[0] // s, input_size[1] // s
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), s))
    grid = np.concatenate(grids, 0)
    stride = np.concatenate(expanded, 0)
    if out.shape[0] != grid.shape[0]:
        raise ValueError(f"Detector output has {out.shape[0]} anchors; {grid.shape[0]} expected for input "
                         f"{input_size[1]}×{input_size[0]} and strides {strides}.")
    out[:, :2] = (out[:, :2] + grid) * stride
    out[:, 2:4] = np.exp(out[:, 2:4]) * stride
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> list[int]:
    """Greedy NMS with the +1 px area convention; indices of kept boxes, best first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return keep


def person_boxes_from_output(raw: np.ndarray, ratio: float, input_size=INPUT_SIZE, nms_iou: float = NMS_IOU,
                             score_threshold: float = SCORE_THRESHOLD,
                             person_threshold: float = PERSON_THRESHOLD) -> np.ndarray:
    """Decoded person boxes ``[N, 5]`` (xyxy in original-image pixels, score), best first per class order.

    Like the reference: per-class NMS over every class whose score passes ``score_threshold``, then the class-0
    (person) survivors above ``person_threshold`` are kept.
    """
    pred = grid_decode(raw, input_size)
    cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    boxes = np.stack([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], axis=1).astype(np.float32)
    boxes /= ratio  # in place: stays float32, as in the reference
    # Only the person class can survive the final filter, and NMS is per class, so the other classes are skipped.
    scores = pred[:, 4] * pred[:, 5]
    valid = scores > score_threshold
    if not valid.any():
        return np.zeros((0, 5))
    vb, vs = boxes[valid], scores[valid]
    keep = nms(vb, vs, nms_iou)
    dets = np.concatenate([vb[keep], vs[keep, None]], axis=1).astype(np.float64)
    return dets[dets[:, 4] > person_threshold]


class YOLOXDetector:
    """Person boxes for one RGB frame at a time (``detect``), on one onnxruntime session."""

    def __init__(self, session, path: str = "yolox_l.onnx"):
        self.session = session
        inputs, outputs = session.get_inputs(), session.get_outputs()
        shape_in = list(inputs[0].shape) if len(inputs) == 1 else []
        shape_out = list(outputs[0].shape) if outputs else []
        ok = (len(inputs) == 1 and len(shape_in) == 4 and shape_in[1] == 3 and len(shape_out) == 3
              and (is_dynamic(shape_out[-1]) or shape_out[-1] >= 6))
        if ok:
            h, w = shape_in[2], shape_in[3]
            self.input_size = (h if not is_dynamic(h) else INPUT_SIZE[0], w if not is_dynamic(w) else INPUT_SIZE[1])
            anchors = sum((self.input_size[0] // s) * (self.input_size[1] // s) for s in STRIDES)
            ok = is_dynamic(shape_out[1]) or shape_out[1] == anchors
        if not ok:
            raise ValueError(f"'{path}' is not a YOLOX detector: it has {describe_signature(session)}; expected "
                             f"{EXPECTED_SIGNATURE}. Pick yolox_l.onnx from yzd-v/DWPose.")
        self.input_name = inputs[0].name
        self.path = path

    def preprocess(self, image: np.ndarray):
        return letterbox(image, self.input_size)

    def inference(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tensor[None]})[0][0]

    def postprocess(self, raw: np.ndarray, ratio: float) -> np.ndarray:
        return person_boxes_from_output(raw, ratio, self.input_size)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """``[N, 5]`` person boxes (xyxy + score); the whole image as one box (score NaN) when none is found."""
        tensor, ratio = self.preprocess(image)
        boxes = self.postprocess(self.inference(tensor), ratio)
        if len(boxes) == 0:
            h, w = image.shape[:2]
            boxes = np.array([[0.0, 0.0, float(w), float(h), np.nan]])
        return boxes
