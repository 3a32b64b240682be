"""Regression guard for the 3D path's claim: on one small case of each kind of the retargeting benchmark
(bench/retarget.py, ground truth by plain forward kinematics), the pack's 3D chain beats MimicMotion's 2D
alignment with a wide margin. A regression in transfer, projection or the body model fails here."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench(anny_body):
    spec = importlib.util.spec_from_file_location("motionguide_bench_retarget", BENCH / "retarget.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


KINDS = {  # built-in case name → (max 3D/2D joint_err ratio, max 3D bone_err); the first 16 frames
    "adult→child walk": (0.15, 0.03),
    "tall→short full turn": (0.4, 0.03),
    "thin→heavy squat/bend": (0.15, 0.03),
    "child→adult arms/kicks": (0.3, 0.03),
    "adult→child towards camera": (0.2, 0.035),
    "cameras differ (walk)": (0.15, 0.03),
    "noise 8° (walk)": (0.35, 0.1),
}


@pytest.mark.parametrize("name", list(KINDS))
def test_3d_path_beats_2d_alignment(bench, name):
    case = dict(next(c for c in bench.BUILTIN_CASES if c["name"] == name), frames=[0, 16, 1])
    result = bench.run_case(case)
    max_ratio, max_bone = KINDS[name]
    assert result["frames"] == 16
    assert result["3d"]["joint_err"] <= max_ratio * result["2d"]["joint_err"], result
    assert result["3d"]["bone_err"] <= max_bone, result
    assert result["3d"]["lr_swaps"] == 0.0, result


def test_metrics_on_hand_made_keypoints(bench):
    import numpy as np

    gt = np.zeros((2, 18, 3))
    gt[..., 2] = 1.0
    gt[:, :, 1] = np.arange(18) * 10.0  # a vertical chain of points, 170 px tall
    gt[:, [2, 3, 4, 8, 9, 10], 0] = -20.0  # right side on the left of the image
    gt[:, [5, 6, 7, 11, 12, 13], 0] = 20.0
    body = np.array([100.0, 100.0])
    assert bench.errors(gt, gt, body) == {"joint_err": 0.0, "bone_err": 0.0, "lr_swaps": 0.0}
    shifted = gt.copy()
    shifted[..., 0] += 5.0  # 5 px = 5 % of the body height, bones unchanged
    assert bench.errors(shifted, gt, body)["joint_err"] == pytest.approx(0.05)
    assert bench.errors(shifted, gt, body)["bone_err"] == pytest.approx(0.0, abs=1e-12)
    mirrored = gt.copy()
    mirrored[1][[2, 3, 4, 8, 9, 10, 5, 6, 7, 11, 12, 13]] = gt[1][[5, 6, 7, 11, 12, 13, 2, 3, 4, 8, 9, 10]]
    assert bench.errors(mirrored, gt, body)["lr_swaps"] == 0.5  # the second frame has left and right swapped
