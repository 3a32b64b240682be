"""NLF Poses to SMPL (IK fit): joint error in millimetres on synthetic motions, side by side in one run.

Motions: smooth random joint rotations (sines, up to ~0.4 rad per axis), a turning root and a drifting camera
translation, on the synthetic SMPL-format body, exported with SMPL to NLF Poses. Cases:
- same body: the fitted skeleton is the one that made the joints (the fit can be exact);
- noisy: 10 mm Gaussian noise per joint and frame (roughly NLF's jitter), fitted with and without smoothness;
- other body: the joints come from a taller body (betas[0] = 2), fitted on the neutral one (bone lengths differ,
  so the residual is the length mismatch, not the fit).
Errors are mean / max joint distance between the fitted skeleton and the target joints (noisy: the clean ones).
"""
import math
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv
import numpy as np  # noqa: E402

cli.load_pack()
from motionguide.headless.tiny_models.smpl import build_synthetic_smpl  # noqa: E402
from motionguide.pipelines.smpl.body.body_model import load_body_model  # noqa: E402
from motionguide.pipelines.smpl.estimate.joint_fit import nlf_to_sequence  # noqa: E402
from motionguide.pipelines.smpl.estimate.nlf import sequence_joints, sequence_to_nlf  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

FRAMES, MOTIONS = 32, 4
W, H = 512, 896


def motion(seed, betas0=0.0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, FRAMES)[:, None]
    pose = 0.4 * np.sin(2 * math.pi * (t * rng.uniform(0.3, 1.2, 69) + rng.uniform(0, 1, 69))) * rng.uniform(0.2, 1, 69)
    yaw = rng.uniform(-90, 90) * t[:, 0]
    orient = [Rotation.from_euler("y", a, degrees=True) * Rotation.from_rotvec([math.pi, 0, 0]) for a in yaw]
    betas = np.zeros((FRAMES, 10), np.float32)
    betas[:, 0] = betas0
    K = np.array([[800, 0, W / 2], [0, 800, H / 2], [0, 0, 1]], np.float32)
    return {"betas": betas, "global_orient": np.stack([r.as_rotvec() for r in orient]).astype(np.float32),
            "body_pose": pose.astype(np.float32),
            "transl": np.stack([0.3 * t[:, 0], 0.2 + 0 * t[:, 0], 4.0 + 0.5 * t[:, 0]], 1).astype(np.float32),
            "K": np.repeat(K[None], FRAMES, 0), "image_size": (W, H), "valid": np.ones(FRAMES, bool), "fps": 16.0,
            "model_type": "smpl"}


def errors(body, fitted, clean_mm):
    fit_mm = sequence_joints(body, fitted) * 1000.0
    d = np.linalg.norm(fit_mm - clean_mm, axis=-1)
    return d.mean(), d.max()


def main():
    body = load_body_model(build_synthetic_smpl(Path(tempfile.mkdtemp())), "neutral", "smpl")
    rows = {}
    for seed in range(MOTIONS):
        for case in ("same body", "noisy, smoothness 0", "noisy, smoothness 0.001 (default)",
                     "noisy, smoothness 0.05", "other body (betas0=2)"):
            seq = motion(seed, 2.0 if case.startswith("other") else 0.0)
            nlf, K, _ = sequence_to_nlf(body, seq, camera="sequence")
            clean = np.stack([f[0].numpy() for f in nlf["joints3d_nonparam"][0]]).astype(np.float64)
            target = clean
            smooth = 0.001
            if case.startswith("noisy"):
                target = clean + np.random.default_rng(100 + seed).normal(0, 10.0, clean.shape)
                smooth = float(case.split("smoothness ")[1].split(" ")[0])
            frames = [np.asarray(j, np.float32)[None] for j in target]
            start = time.perf_counter()
            fitted, _ = nlf_to_sequence(body, {"joints3d_nonparam": [frames]}, width=W, height=H, K=K,
                                        smoothness=smooth)
            elapsed = time.perf_counter() - start
            mean, worst = errors(body, fitted, clean)
            rows.setdefault(case, []).append((mean, worst, elapsed))
    print(f"{FRAMES} frames x {MOTIONS} motions, synthetic SMPL-format body, CPU (timings noisy on a shared machine)")
    print(f"{'case':40s} {'mean mm':>8s} {'max mm':>8s} {'s/clip':>7s}")
    for case, values in rows.items():
        v = np.array(values)
        print(f"{case:40s} {v[:, 0].mean():8.2f} {v[:, 1].max():8.2f} {v[:, 2].mean():7.2f}")


if __name__ == "__main__":
    main()
