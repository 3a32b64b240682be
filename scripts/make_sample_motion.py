#!/usr/bin/env python3
"""Write ``example_workflows/inputs/motionguide_motion.npz``: a procedural SMPL motion (a person walking on the
spot and waving) for the motion-file example workflow. Made by the project from sine curves, no capture data.

    python scripts/make_sample_motion.py
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "example_workflows" / "inputs" / "motionguide_motion.npz"
FRAMES, FPS = 45, 15.0
WIDTH, HEIGHT = 576, 1024

# SMPL joint -> index in body_pose (joint id - 1; the root is global_orient)
L_HIP, R_HIP, L_KNEE, R_KNEE, SPINE3, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW = 0, 1, 3, 4, 8, 15, 16, 17, 18


def walk_and_wave(frames: int = FRAMES) -> dict:
    body = np.zeros((frames, 23, 3), np.float32)
    for t in range(frames):
        phase = 2 * math.pi * t / 15.0  # one stride per second
        swing = 0.35 * math.sin(phase)
        body[t, L_HIP, 0], body[t, R_HIP, 0] = -swing, swing
        body[t, L_KNEE, 0] = 0.5 * max(0.0, math.sin(phase))  # knees bend on the forward swing
        body[t, R_KNEE, 0] = 0.5 * max(0.0, -math.sin(phase))
        body[t, SPINE3, 1] = 0.1 * math.sin(phase)
        body[t, R_SHOULDER, 2] = 1.2  # right arm down by the side, swinging
        body[t, R_SHOULDER, 0] = -0.3 * math.sin(phase)
        wave = 0.5 + 0.5 * math.sin(2 * phase)  # left arm raised, waving from the elbow
        body[t, L_SHOULDER, 2] = 0.3
        body[t, L_ELBOW, 1] = 0.6 + 0.8 * wave
    global_orient = np.tile(np.array([math.pi, 0, 0], np.float32), (frames, 1))  # upright, facing the camera
    transl = np.tile(np.array([0.0, 0.25, 5.5], np.float32), (frames, 1))
    transl[:, 1] += 0.02 * np.abs(np.sin(2 * math.pi * np.arange(frames) / 15.0)).astype(np.float32)
    return {"betas": np.zeros((frames, 10), np.float32), "global_orient": global_orient,
            "body_pose": body.reshape(frames, 69), "transl": transl, "image_size": (WIDTH, HEIGHT), "fps": FPS,
            "model_type": "smpl"}


def main() -> int:
    sys.path.insert(0, str(ROOT))
    import cli

    cli.load_pack()
    from motionguide.pipelines.smpl.motion.sequence import save_sequence

    path = save_sequence(walk_and_wave(), OUT, overwrite=True)
    print(f"wrote {path} ({FRAMES} frames at {FPS:g} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
