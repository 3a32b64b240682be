#!/usr/bin/env python3
"""Draw the sample inputs shipped in example_workflows/inputs/ (made by the project, no third-party media).

A simple figure built from capsules: a reference image standing with arms slightly out, and a driving clip of
the same kind of figure waving and stepping. Deterministic; rerun to regenerate:

    python scripts/make_sample_inputs.py
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "example_workflows" / "inputs"
W, H = 288, 512

# (parent, child) bones of a simple body; joint names index the dict below.
BONES = [("neck", "pelvis"), ("neck", "l_elbow"), ("l_elbow", "l_wrist"), ("neck", "r_elbow"),
         ("r_elbow", "r_wrist"), ("pelvis", "l_knee"), ("l_knee", "l_ankle"), ("pelvis", "r_knee"),
         ("r_knee", "r_ankle")]


def skeleton(t: float, wave: float, step: float) -> dict[str, np.ndarray]:
    """Joint positions in pixels for phase ``t`` (radians)."""
    cx = W / 2 + 6 * math.sin(t)
    neck = np.array([cx, 150.0])
    pelvis = np.array([cx, 285.0])
    joints = {"neck": neck, "pelvis": pelvis}
    for side, sign in (("l", 1), ("r", -1)):
        shoulder = neck + [sign * 34, 8]
        raise_ = wave * (0.5 + 0.5 * math.sin(t + (0 if side == "l" else math.pi)))
        upper = math.radians(20 + 130 * raise_) * sign
        elbow = shoulder + 58 * np.array([math.sin(upper), math.cos(upper)])
        fore = upper + sign * math.radians(-25 - 60 * raise_)
        wrist = elbow + 52 * np.array([math.sin(fore), math.cos(fore)])
        hip = pelvis + [sign * 18, 0]
        swing = math.radians(step * 20 * math.sin(t + (0 if side == "l" else math.pi)))
        knee = hip + 92 * np.array([math.sin(swing), math.cos(swing)])
        ankle = knee + 92 * np.array([math.sin(swing * 0.4), math.cos(swing * 0.4)])
        joints.update({f"{side}_shoulder": shoulder, f"{side}_elbow": elbow, f"{side}_wrist": wrist,
                       f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle})
    return joints


def capsule(canvas, a, b, radius, colour):
    a, b = tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int))
    cv2.line(canvas, a, b, colour, thickness=2 * radius, lineType=cv2.LINE_AA)
    cv2.circle(canvas, a, radius, colour, -1, cv2.LINE_AA)
    cv2.circle(canvas, b, radius, colour, -1, cv2.LINE_AA)


def draw(joints, shirt, trousers, skin, background) -> np.ndarray:
    canvas = np.zeros((H, W, 3), np.uint8)
    canvas[:] = background
    # floor gradient so the image is not flat
    canvas[400:] = (np.array(background) * 0.8).astype(np.uint8)
    torso = np.array([joints["l_shoulder"], joints["r_shoulder"], joints["r_hip"], joints["l_hip"]], np.int32)
    for side in ("l", "r"):
        capsule(canvas, joints[f"{side}_hip"], joints[f"{side}_knee"], 13, trousers)
        capsule(canvas, joints[f"{side}_knee"], joints[f"{side}_ankle"], 11, trousers)
    cv2.fillConvexPoly(canvas, torso, shirt, cv2.LINE_AA)
    capsule(canvas, joints["neck"], joints["pelvis"], 30, shirt)
    for side in ("l", "r"):
        capsule(canvas, joints[f"{side}_shoulder"], joints[f"{side}_elbow"], 10, shirt)
        capsule(canvas, joints[f"{side}_elbow"], joints[f"{side}_wrist"], 8, skin)
        cv2.circle(canvas, tuple(np.round(joints[f"{side}_wrist"]).astype(int)), 10, skin, -1, cv2.LINE_AA)
        ankle = tuple(np.round(joints[f"{side}_ankle"] + [0, 8]).astype(int))
        cv2.ellipse(canvas, ankle, (16, 8), 0, 0, 360, (40, 40, 40), -1, cv2.LINE_AA)
    head = tuple(np.round(joints["neck"] - [0, 38]).astype(int))
    capsule(canvas, joints["neck"], joints["neck"] - [0, 20], 9, skin)
    cv2.circle(canvas, head, 27, skin, -1, cv2.LINE_AA)
    cv2.ellipse(canvas, (head[0], head[1] - 12), (28, 18), 0, 180, 360, (50, 35, 30), -1, cv2.LINE_AA)
    for dx in (-10, 10):
        cv2.circle(canvas, (head[0] + dx, head[1] + 2), 3, (30, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(canvas, (head[0], head[1] + 13), (8, 4), 0, 0, 180, (120, 40, 40), 2, cv2.LINE_AA)
    return canvas


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    reference = draw(skeleton(0.0, wave=0.0, step=0.0), shirt=(200, 60, 60), trousers=(40, 60, 120),
                     skin=(230, 190, 160), background=(225, 230, 235))
    cv2.imwrite(str(OUT / "motionguide_reference.png"), cv2.cvtColor(reference, cv2.COLOR_RGB2BGR))
    frames = [draw(skeleton(2 * math.pi * i / 24, wave=1.0, step=1.0), shirt=(60, 120, 200),
                   trousers=(70, 70, 70), skin=(200, 160, 130), background=(200, 215, 200)) for i in range(48)]
    writer = cv2.VideoWriter(str(OUT / "motionguide_driving.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (W, H))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    print(f"wrote {OUT / 'motionguide_reference.png'} and {OUT / 'motionguide_driving.mp4'} (48 frames, 24 fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
