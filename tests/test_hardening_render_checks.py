"""Render SCAIL checks its 2D layer's projection before rendering, worded for the SMPL input (issue 23 case 9)."""
import numpy as np
import pytest
from motionguide.nodes.render import MotionGuideRenderSCAIL
from motionguide.pipelines.render import scail
from motionguide.pipelines.smpl.body.body_model import load_body_model


def test_body_outside_the_camera_is_reported_up_front_for_the_smpl_input(smpl_model_dir, monkeypatch):
    body = load_body_model(smpl_model_dir / "SMPL_NEUTRAL.npz")
    frames = 3
    transl = np.tile([0.0, 0.2, 4.0], (frames, 1))
    transl[1, 0] = 100.0  # frame 1: the body is 100 m to the side of the camera's axis
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
               body_pose=np.zeros((frames, 69)), transl=transl, image_size=(128, 224))
    rendered = []
    monkeypatch.setattr(scail, "render_capsules", lambda *a, **k: rendered.append(1))
    with pytest.raises(ValueError) as info:
        MotionGuideRenderSCAIL().render(seq, body, width=128, height=224, camera="sequence")
    text = str(info.value)
    assert "SMPL body" in text and "frame 1" in text and "overlay_2d" in text and "POSE_KEYPOINT" not in text
    assert rendered == []  # nothing rendered before the error
