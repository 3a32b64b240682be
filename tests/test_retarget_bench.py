"""Regression guard for the 3D path's claim: on one small case of each kind of the retargeting benchmark
(bench/retarget.py: ground truth is the reference body's surface landmarks at a skeleton checked against plain
forward kinematics), the pack's 3D chain beats MimicMotion's 2D alignment with a wide margin and gets the
reference's limb lengths right. A regression in transfer, projection or the body model fails here."""
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
    "adult→child walk": (0.15, 0.01),
    "tall→short full turn": (0.4, 0.01),
    "thin→heavy squat/bend": (0.15, 0.01),
    "child→adult arms/kicks": (0.3, 0.01),
    "adult→child towards camera": (0.2, 0.01),
    "cameras differ (walk)": (0.15, 0.01),
    "noise 8° (walk)": (0.4, 0.08),
}


def _first_frames(bench, name, frames=16):
    return dict(next(c for c in bench.BUILTIN_CASES if c["name"] == name), frames=[0, frames, 1])


@pytest.mark.parametrize("name", list(KINDS))
def test_3d_path_beats_2d_alignment(bench, name):
    result = bench.run_case(_first_frames(bench, name))
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


def test_a_path_that_skips_the_shape_transfer_fails_the_bounds(bench, monkeypatch):
    """The bounds above can fail: the 3D chain keeping the driving body's shape gets the child's limbs wrong."""
    right = bench.run_case(_first_frames(bench, "adult→child walk"))
    original = bench.path_3d

    def driving_shape(model, driving_seq, reference_seq, reference_shape):
        return original(model, driving_seq, dict(reference_seq, phenotype=driving_seq["phenotype"]), reference_shape)

    monkeypatch.setattr(bench, "path_3d", driving_shape)
    wrong = bench.run_case(_first_frames(bench, "adult→child walk"))
    assert wrong["3d"]["bone_err"] > 5 * KINDS["adult→child walk"][1] > 5 * right["3d"]["bone_err"], (right, wrong)
    assert wrong["3d"]["joint_err"] > 2 * right["3d"]["joint_err"], (right, wrong)


def test_ground_truth_refuses_a_body_off_the_plain_kinematics(bench, anny_body):
    """The surface landmarks are only trusted at a skeleton that plain forward kinematics reproduces."""
    import numpy as np

    rest = bench.RestBody(anny_body, np.full(6, 0.5, np.float32))
    motion = bench.load_motion(bench.ensure_motion(bench.MOTIONS / "walk.npz"), [0, 4, 1])
    root = bench.standing_root(rest) + motion["delta"]
    points = bench.body_points(rest, motion["global"], motion["body_pose"], root)
    fk = bench.forward_kinematics(rest, motion["global"], bench.local_rotations(motion["body_pose"], 4), root)
    assert points.shape == (4, 18, 3)
    # landmarks sit near their joints: wrists within 4 cm of SMPL's wrist joints (20, 21), OpenPose 7 and 4
    assert np.linalg.norm(points[:, [7, 4]] - fk[:, [20, 21]], axis=-1).max() < 0.04
    rest.joints[18] += [0.0, 0.005, 0.0]  # the left elbow 5 mm off in the kinematics
    with pytest.raises(RuntimeError, match="mm from plain forward kinematics"):
        bench.body_points(rest, motion["global"], motion["body_pose"], root)
