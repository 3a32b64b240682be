"""The real DWPose ONNX files (skipped unless they are in $MOTIONGUIDE_MODELS_DIR/dwpose)."""
import os
from pathlib import Path

import numpy as np
import pytest

REAL = Path(os.environ.get("MOTIONGUIDE_MODELS_DIR", "/nonexistent")) / "dwpose"
pytestmark = [
    pytest.mark.real_weights,
    pytest.mark.skipif(not ((REAL / "yolox_l.onnx").is_file() and (REAL / "dw-ll_ucoco_384.onnx").is_file()),
                       reason=f"real DWPose files not found in {REAL}"),
]


def test_real_signatures_and_a_frame():
    from motionguide.pipelines.dwpose.wholebody import Wholebody

    estimator = Wholebody(REAL / "yolox_l.onnx", REAL / "dw-ll_ucoco_384.onnx")
    assert estimator.detector.input_size == (640, 640) and estimator.pose.input_size == (288, 384)
    frame = estimator(np.zeros((512, 384, 3), np.uint8))
    assert frame.keypoints.shape[1:] == (134, 2) and frame.num_people >= 1
    assert frame.extra["fallback_box"]  # nobody in a black frame: the whole image is the box
