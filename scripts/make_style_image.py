#!/usr/bin/env python3
"""Draw docs/images/animator_styles.png: one 3D-retargeted motion frame in three animators' guidance styles.

The sample motion (example_workflows/inputs/motionguide_motion.npz, an adult) is put on a child's body (Transfer
SMPL Shape on the built-in Anny body with a child's phenotype; ANNY_CACHE_DIR must hold its cache) and seen with
the camera turned 30° (Set SMPL Camera), then rendered as SCAIL's capsules (Render SCAIL Pose), Wan2.2-Animate's
pose image and UniAnimate-DiT's (Draw Pose Maps styles), side by side. Rerun after changing a style:

    python scripts/make_style_image.py
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.load_pack()
import cv2  # noqa: E402
from motionguide.nodes.render import MotionGuideRenderSCAIL  # noqa: E402
from motionguide.pipelines.dwpose.draw import draw_pose_map  # noqa: E402
from motionguide.pipelines.render.smpl_render import sequence_to_pose_keypoints  # noqa: E402
from motionguide.pipelines.smpl.body.anny_cache import load_anny_body  # noqa: E402
from motionguide.pipelines.smpl.estimate.nlf import sequence_in_camera  # noqa: E402
from motionguide.pipelines.smpl.motion.camera import set_camera  # noqa: E402
from motionguide.pipelines.smpl.motion.sequence import load_sequence, slice_sequence  # noqa: E402
from motionguide.pipelines.smpl.motion.transfer import transfer_shape  # noqa: E402

FRAME = 20
W, H = 288, 512
CHILD = {"gender": 0.5, "age": 0.3, "muscle": 0.5, "weight": 0.5, "height": 0.3, "proportions": 0.5}


def main():
    body = load_anny_body()
    motion = slice_sequence(load_sequence(ROOT / "example_workflows" / "inputs" / "motionguide_motion.npz"),
                            FRAME, FRAME + 1)
    reference = dict(slice_sequence(motion, 0, 1))
    reference["phenotype"] = CHILD
    reference["image_size"] = (W, H)
    reference["K"] = np.array([[[420.0, 0, W / 2], [0, 420.0, H / 2], [0, 0, 1]]], np.float32)
    reference["transl"] = np.array([[0.0, 0.05, 1.5]], np.float32)
    reference["bbox"] = np.zeros((1, 4), np.float32)
    moved = transfer_shape(motion, reference, body)
    turned = set_camera(moved, body, yaw=30.0)
    framed = sequence_in_camera(body, turned, width=W, height=H, camera="nlf_fov55")
    scail = MotionGuideRenderSCAIL().render(framed, body, width=W, height=H, camera="sequence",
                                            renderer="torch")[0][0].numpy()
    keypoints = sequence_to_pose_keypoints(body, framed, width=W, height=H, backend="torch")[0]
    wan = draw_pose_map(keypoints, W, H, style="wan_animate")
    uni = draw_pose_map(keypoints, W, H, style="unianimate", face=False)
    panels = [(scail * 255).astype(np.uint8), wan, uni]
    labels = ["scail (SCAIL, SCAIL-2)", "wan_animate (Wan2.2-Animate)", "unianimate (UniAnimate-DiT)"]
    tiles = []
    for image, label in zip(panels, labels):
        tile = np.zeros((H + 28, W, 3), np.uint8)
        tile[28:] = image
        cv2.putText(tile, label, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (230, 230, 230), 1, cv2.LINE_AA)
        tiles.append(np.pad(tile, ((0, 0), (0, 6), (0, 0)), constant_values=40))
    out = ROOT / "docs" / "images" / "animator_styles.png"
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
