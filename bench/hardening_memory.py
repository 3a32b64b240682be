"""Peak memory and time of the cases hardened in issue 23, each in its own subprocess (peak RSS from
``resource.getrusage``). Run it on this checkout, and on an older one with ``--repo`` to compare:

    python bench/hardening_memory.py                       # this checkout
    python bench/hardening_memory.py --repo /tmp/old_copy  # another copy of the pack, same cases

Cases: a 0.7 GB-declared motion .npz of 2 MB (Load SMPL Motion), one 4096×4096 SCAIL capsule frame, the joints of
a 3,000-frame sequence (SMPL to NLF Poses), IMAGE → uint8 of 200 576×1024 frames (Face Crops' conversion).
Not part of the tests.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv

CASES = {
    "motion_bomb": """
import numpy as np
frames = 2_500_000  # 2.5M × 69 float32 = 0.69 GB declared, ~0.7 MB compressed
path = TMP + "/bomb.npz"
np.savez_compressed(path, global_orient=np.zeros((frames, 3), np.float32), body_pose=np.zeros((frames, 69),
                    np.float32), transl=np.zeros((frames, 3), np.float32), betas=np.zeros(10, np.float32),
                    image_size=np.array([64, 96]))
start()
from motionguide.pipelines.smpl.motion.importers import load_motion_file
try:
    load_motion_file(path)
    RESULT["outcome"] = "loaded"
except ValueError as exc:
    RESULT["outcome"] = "refused: " + str(exc)[:90]
""",
    "scail_4096": """
import numpy as np
from motionguide.pipelines.render.scail import render_capsules
joints = np.zeros((24, 3)); joints[:, 1] = np.linspace(-800, 800, 24); joints[:, 0] = np.linspace(-300, 300, 24)
joints[:, 2] = 900.0  # close to the camera: the body fills the frame
K = np.array([[4096.0, 0, 2048], [0, 4096.0, 2048], [0, 0, 1]])
start()
out = render_capsules([joints[None]], K, (4096, 4096))
RESULT["outcome"] = f"{int((out[..., 3] > 0).sum())} px drawn"
""",
    "joints_3000": """
import numpy as np
from motionguide.headless.tiny_models.smpl import build_synthetic_smpl
from motionguide.pipelines.smpl.body.body_model import load_body_model
from motionguide.pipelines.smpl.estimate.nlf import sequence_joints
model = load_body_model(build_synthetic_smpl(TMP))
frames = 3000
seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0, 0], (frames, 1)),
           body_pose=np.zeros((frames, 69)), transl=np.tile([0, 0.2, 4.0], (frames, 1)), image_size=(512, 896))
start()
RESULT["outcome"] = f"{sequence_joints(model, seq).shape}"
""",
    "to_uint8_200": """
import torch
from motionguide.pipelines.video.io import to_uint8
images = torch.rand(200, 1024, 576, 3)
start()
RESULT["outcome"] = f"{to_uint8(images).shape}"
""",
}

PRELUDE = """
import json, resource, sys, tempfile, time
sys.path.insert(0, REPO)
import cli
cli.load_pack()  # registers the pack as "motionguide"
TMP = tempfile.mkdtemp()
RESULT = {}
def start():
    RESULT["base_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULT["t0"] = time.perf_counter()
"""
POSTLUDE = """
RESULT["seconds"] = round(time.perf_counter() - RESULT.pop("t0"), 2)
RESULT["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
RESULT["grown_mb"] = round(RESULT["peak_mb"] - RESULT.pop("base_mb"))
print(json.dumps(RESULT))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(ROOT), help="the copy of the pack to measure")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    for name in args.cases:
        code = f"REPO = {args.repo!r}\n" + PRELUDE + CASES[name] + POSTLUDE
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp, timeout=900)
        line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
        try:
            print(f"{name:14s} {json.dumps(json.loads(line))}")
        except ValueError:
            print(f"{name:14s} failed: {line}")


if __name__ == "__main__":
    main()
