"""RTMPose/DWPose whole-body model (``dw-ll_ucoco_384.onnx``): top-down crops → SimCC → 134-point layout."""
from __future__ import annotations

import cv2
import numpy as np

from . import skeleton as sk
from .runtime import describe_signature, is_dynamic

INPUT_SIZE = (288, 384)  # (width, height)
PADDING = 1.25
SIMCC_SPLIT_RATIO = 2.0
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
# (value − mean) / std for every uint8 value and channel, computed in float64 like the reference then stored as
# float32: a table lookup gives the same network input without float64 image copies.
_NORMALISED = ((np.arange(256)[:, None] - MEAN) / STD).astype(np.float32)
EXPECTED_SIGNATURE = ("input 'input' [N or 1, 3, 384, 288] float32; outputs 'simcc_x' [N, 133, 576] and "
                      "'simcc_y' [N, 133, 768]")


def box_to_center_scale(box, padding: float = PADDING) -> tuple[np.ndarray, np.ndarray]:
    """xyxy box → centre (x, y) and scale (w, h) × ``padding``."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return np.array([x1 + x2, y1 + y2]) * 0.5, np.array([x2 - x1, y2 - y1]) * padding


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow the shorter side of ``scale`` (w, h) so that w / h == ``aspect_ratio``."""
    w, h = float(scale[0]), float(scale[1])
    return np.array([w, w / aspect_ratio]) if w > h * aspect_ratio else np.array([h * aspect_ratio, h])


def warp_matrix(center: np.ndarray, scale: np.ndarray, output_size=INPUT_SIZE) -> np.ndarray:
    """2×3 affine matrix mapping the box (centre, scale) onto an ``output_size`` (w, h) crop, no rotation.

    Three point pairs as the reference builds them (float32): the centre, the point half a box-width above it,
    and that vector turned 90°.
    """
    dst_w, dst_h = output_size

    def third(a, b):
        d = a - b
        return b + np.r_[-d[1], d[0]]

    src = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, scale[0] * -0.5])
    src[2] = third(src[0], src[1])
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0.0, dst_w * -0.5])
    dst[2] = third(dst[0], dst[1])
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def crop_person(image: np.ndarray, box, input_size=INPUT_SIZE):
    """Affine crop of one person: returns (float32 ``[3, h, w]`` normalised crop, centre, aspect-fixed scale)."""
    w, h = input_size
    center, scale = box_to_center_scale(box)
    scale = fix_aspect_ratio(scale, aspect_ratio=w / h)
    crop = cv2.warpAffine(image, warp_matrix(center, scale, (w, h)), (int(w), int(h)), flags=cv2.INTER_LINEAR)
    chw = np.stack([np.take(_NORMALISED[:, c], crop[..., c]) for c in range(3)])
    return chw, center, scale


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = SIMCC_SPLIT_RATIO):
    """SimCC argmax decode: locations ``[N, K, 2]`` (in crop pixels, bins / ``split_ratio``) and scores ``[N, K]``.

    The score is min(max_x, max_y); a location is −1 where the score is ≤ 0 (before the division).
    """
    n, k, _ = simcc_x.shape
    sx = simcc_x.reshape(n * k, -1)
    sy = simcc_y.reshape(n * k, -1)
    locs = np.stack((np.argmax(sx, axis=1), np.argmax(sy, axis=1)), axis=-1).astype(np.float32)
    vals = np.minimum(np.amax(sx, axis=1), np.amax(sy, axis=1))
    locs[vals <= 0.0] = -1
    return (locs / split_ratio).reshape(n, k, 2), vals.reshape(n, k)


def crop_to_image(locs: np.ndarray, center: np.ndarray, scale: np.ndarray, input_size=INPUT_SIZE) -> np.ndarray:
    """Crop-pixel keypoints ``[K, 2]`` → image pixels (float64)."""
    return locs / np.array(input_size, dtype=np.float64) * scale + center - scale / 2


def to_openpose_layout(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """133 COCO-WholeBody points ``[P, 133, 2]`` / ``[P, 133]`` → the 134-point OpenPose-ordered layout.

    Neck = mean of the shoulders, scored 1 only when both shoulders score > 0.3 (else 0), inserted at 17; then
    the body is permuted from mmpose to OpenPose-18 order.
    """
    info = np.concatenate([keypoints, scores[..., None]], axis=-1)
    neck = np.mean(info[:, list(sk.NECK_FROM)], axis=1)
    neck[:, 2] = np.logical_and(info[:, sk.NECK_FROM[0], 2] > sk.NECK_SCORE_THRESHOLD,
                                info[:, sk.NECK_FROM[1], 2] > sk.NECK_SCORE_THRESHOLD).astype(int)
    out = np.insert(info, sk.NECK_INDEX, neck, axis=1)
    out[:, list(sk.OPENPOSE_IDX)] = out[:, list(sk.MMPOSE_IDX)]
    return out[..., :2], out[..., 2]


class RTMPoseWholebody:
    """133-point whole-body pose of given person boxes, on one onnxruntime session.

    Crops of one frame go to the model as one batch when its batch dimension is dynamic, else one by one.
    """

    def __init__(self, session, path: str = "dw-ll_ucoco_384.onnx"):
        self.session = session
        self.path = path
        inputs, outputs = session.get_inputs(), session.get_outputs()
        shape_in = list(inputs[0].shape) if len(inputs) == 1 else []
        ok = len(inputs) == 1 and len(shape_in) == 4 and shape_in[1] == 3 and len(outputs) == 2
        if ok:
            h, w = shape_in[2], shape_in[3]
            if is_dynamic(h) or is_dynamic(w):
                h, w = INPUT_SIZE[1], INPUT_SIZE[0]
            self.input_size = (int(w), int(h))
            by_name = {o.name: o for o in outputs}
            ox, oy = (by_name["simcc_x"], by_name["simcc_y"]) if {"simcc_x", "simcc_y"} <= set(by_name) else outputs
            sx, sy = list(ox.shape), list(oy.shape)
            ok = (len(sx) == 3 and len(sy) == 3 and sx[1] == sk.NUM_RAW_KEYPOINTS and sy[1] == sk.NUM_RAW_KEYPOINTS
                  and (is_dynamic(sx[2]) or sx[2] == int(w * SIMCC_SPLIT_RATIO))
                  and (is_dynamic(sy[2]) or sy[2] == int(h * SIMCC_SPLIT_RATIO)))
        if not ok:
            raise ValueError(f"'{path}' is not a DWPose whole-body model: it has {describe_signature(session)}; "
                             f"expected {EXPECTED_SIGNATURE}. Pick dw-ll_ucoco_384.onnx from yzd-v/DWPose.")
        self.input_name = inputs[0].name
        self.output_names = [ox.name, oy.name]
        self.dynamic_batch = is_dynamic(shape_in[0])

    def preprocess(self, image: np.ndarray, boxes: np.ndarray):
        crops, centers, scales = zip(*(crop_person(image, b, self.input_size) for b in boxes))
        return np.stack(crops), np.stack(centers), np.stack(scales)

    def inference(self, crops: np.ndarray, batched: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        if batched is None:
            batched = self.dynamic_batch
        if batched and self.dynamic_batch:
            sx, sy = self.session.run(self.output_names, {self.input_name: crops})
            return sx, sy
        outs = [self.session.run(self.output_names, {self.input_name: c[None]}) for c in crops]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def postprocess(self, simcc_x, simcc_y, centers, scales) -> tuple[np.ndarray, np.ndarray]:
        locs, scores = decode_simcc(simcc_x, simcc_y)
        keypoints = np.stack([crop_to_image(locs[i], centers[i], scales[i], self.input_size)
                              for i in range(len(locs))])
        return to_openpose_layout(keypoints, scores)

    def estimate(self, image: np.ndarray, boxes: np.ndarray, batched: bool | None = None):
        """134-point keypoints ``[P, 134, 2]`` (image pixels) and scores ``[P, 134]`` for ``boxes`` ``[P, ≥4]``."""
        if len(boxes) == 0:
            return np.zeros((0, sk.NUM_KEYPOINTS, 2)), np.zeros((0, sk.NUM_KEYPOINTS))
        crops, centers, scales = self.preprocess(image, boxes)
        simcc_x, simcc_y = self.inference(crops, batched)
        return self.postprocess(simcc_x, simcc_y, centers, scales)
