"""Face Crops (Wan-Animate): Wan2.2-Animate's face boxes, exactly, and what happens to frames without a face."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from motionguide.pipelines.dwpose import skeleton as sk
from motionguide.pipelines.dwpose.face_crop import face_box, face_crops
from motionguide.pipelines.dwpose.keypoints import PoseFrame

DATA = Path(__file__).parent / "data" / "wan_face_boxes.json"


def _landmarks(rng, w, h):
    """68 points of a face: a random box (some touching or crossing the image border), jittered points. The
    reference numbers were made with this same generator and seed."""
    fw = rng.uniform(8, 0.5 * w)
    fh = fw * rng.uniform(0.8, 1.6)
    cx = rng.uniform(-0.1 * w, 1.1 * w)
    cy = rng.uniform(-0.1 * h, 1.1 * h)
    return np.stack([cx + (rng.random(68) - 0.5) * fw, cy + (rng.random(68) - 0.5) * fh], 1)


def test_boxes_match_wan_preprocessing():
    """Boxes from Wan2.2's get_face_bboxes (run offline on these landmarks) for 40 faces, some at the borders."""
    data = json.loads(DATA.read_text())
    rng = np.random.default_rng(data["seed"])
    for case in data["cases"]:
        w, h = case["size"]
        points = _landmarks(rng, w, h)
        assert list(face_box(points / (w, h) * (w, h), w, h)) == case["box_x1_x2_y1_y2"], case


def test_box_by_hand():
    points = np.array([[100.0, 200.0], [140.0, 260.0]])  # 40 × 60, area 2400 → 3120 at the same aspect
    new_w, new_h = np.sqrt(3120 * 40 / 60), np.sqrt(3120 * 60 / 40)
    dw, dh = (new_w - 40) / 2, (new_h - 60) / 4
    assert face_box(points, 1000, 1000) == (int(100 - dw), int(140 + dw), int(200 - 3 * dh), int(260 + dh))
    assert face_box(points, 138, 1000)[1] == 138  # clipped to the frame
    assert face_box(np.array([[5.0, 5.0], [5.0, 9.0]]), 100, 100) is None  # no width: no face


def _pose(face_xy, width, height, person=True):
    if not person:
        return PoseFrame.empty(width, height)
    keypoints = np.zeros((1, sk.NUM_KEYPOINTS, 2))
    scores = np.zeros((1, sk.NUM_KEYPOINTS))
    if face_xy is not None:
        keypoints[0, sk.FACE] = face_xy
        scores[0, sk.FACE] = 0.9
    return PoseFrame(keypoints, scores, width, height)


def test_crops_pixels_and_frames_without_a_face(caplog):
    import cv2

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (4, 200, 160, 3), dtype=np.uint8)
    face = np.stack([np.linspace(60, 100, 68), np.linspace(80, 130, 68)], 1)
    poses = [_pose(None, 160, 200), _pose(face, 160, 200), _pose(None, 160, 200, person=False),
             _pose(face + 300, 160, 200)]  # no landmarks, a face, nobody, a face outside the frame
    crops, missing = face_crops(frames, poses)
    assert crops.shape == (4, 512, 512, 3) and crops.dtype == np.uint8 and missing == 3
    x1, x2, y1, y2 = face_box(face, 160, 200)
    for i in range(4):  # every frame is cut with frame 1's box, from its own pixels
        expected = cv2.resize(np.ascontiguousarray(frames[i, y1:y2, x1:x2]), (512, 512),
                              interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(crops[i], expected)
    assert "3 of 4 frames have no usable face" in caplog.text


def test_keypoints_on_another_canvas_are_scaled():
    frames = np.zeros((1, 400, 320, 3), np.uint8)
    face = np.stack([np.linspace(60, 100, 68), np.linspace(80, 130, 68)], 1)  # on a 160 × 200 canvas
    x1, x2, y1, y2 = face_box(face * 2, 320, 400)
    frames[0, y1:y2, x1:x2] = 255  # the crop box of the face at the images' size (twice the canvas)
    crops, _ = face_crops(frames, [_pose(face, 160, 200)])
    assert crops[0].min() == 255  # the whole crop is that box, not the unscaled spot


def test_node_errors_name_the_remedy():
    from motionguide.nodes.pose import MotionGuideFaceCrops

    node = MotionGuideFaceCrops()
    images = torch.zeros(2, 64, 64, 3)
    nobody = [{"people": [], "canvas_width": 64, "canvas_height": 64}] * 2
    with pytest.raises(ValueError, match="no face in any frame.*face on"):
        node.crop(images, nobody)
    with pytest.raises(ValueError, match="2 images but 1 pose frames"):
        node.crop(images, nobody[:1])
    face = np.stack([np.linspace(10, 40, 68), np.linspace(12, 50, 68), np.full(68, 0.9)], 1)
    person = {"pose_keypoints_2d": [0.0] * 54, "face_keypoints_2d": face.reshape(-1).tolist()}
    with torch.inference_mode():
        (out,) = node.crop(images, [{"people": [person], "canvas_width": 64, "canvas_height": 64}] * 2)
    assert tuple(out.shape) == (2, 512, 512, 3) and out.dtype == torch.float32


def test_progress_reaches_every_frame():
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    face = np.stack([np.linspace(10, 40, 68), np.linspace(12, 50, 68)], 1)
    calls = []
    face_crops(frames, [_pose(face, 64, 64)] * 3, callback=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
