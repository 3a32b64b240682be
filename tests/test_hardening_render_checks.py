"""Render SCAIL checks its 2D layer's projection before rendering, worded for the SMPL input (issue 23 case 9)."""
import numpy as np
import pytest
from motionguide.nodes.render import MotionGuideRenderSCAIL
from motionguide.pipelines.render import scail_guidance
from motionguide.pipelines.smpl.body.body_model import load_body_model


def test_body_outside_the_camera_is_reported_up_front_for_the_smpl_input(smpl_model_dir, monkeypatch):
    body = load_body_model(smpl_model_dir / "SMPL_NEUTRAL.npz")
    frames = 3
    transl = np.tile([0.0, 0.2, 4.0], (frames, 1))
    transl[1, 0] = 100.0  # frame 1: the body is 100 m to the side of the camera's axis
    seq = dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
               body_pose=np.zeros((frames, 69)), transl=transl, image_size=(128, 224))
    rendered = []
    monkeypatch.setattr(scail_guidance, "render_capsules", lambda *a, **k: rendered.append(1))
    with pytest.raises(ValueError) as info:
        MotionGuideRenderSCAIL().render(seq, body, width=128, height=224, camera="sequence")
    text = str(info.value)
    assert "SMPL body" in text and "frame 1" in text and "overlay_2d" in text and "POSE_KEYPOINT" not in text
    assert rendered == []  # nothing rendered before the error


def _seq(frames, size=(512, 896)):
    return dict(betas=np.zeros((frames, 10)), global_orient=np.tile([np.pi, 0.0, 0.0], (frames, 1)),
                body_pose=np.zeros((frames, 69)), transl=np.tile([0.0, 0.2, 4.0], (frames, 1)), image_size=size)


def test_render_scail_refuses_beyond_the_memory_budget_before_rendering(smpl_model_dir, monkeypatch):
    """Case 4: Render SCAIL at 8192×8192 peaked at 8.2 GB for one frame. Here a 0.01 GB budget stands in for the
    8 GB default, so the test allocates nothing big even on the code before the fix."""
    body = load_body_model(smpl_model_dir / "SMPL_NEUTRAL.npz")
    monkeypatch.setenv("MOTIONGUIDE_MEMORY_BUDGET_GB", "0.01")
    rendered = []
    monkeypatch.setattr(scail_guidance, "render_capsules", lambda *a, **k: rendered.append(1))
    with pytest.raises(ValueError, match=r"Render SCAIL: 2 frames at 512×896 need about 0.044 GB \(48 bytes.*"
                                         r"0.01 GB memory budget.*MOTIONGUIDE_MEMORY_BUDGET_GB"):
        MotionGuideRenderSCAIL().render(_seq(2), body, width=512, height=896, overlay_2d=False)
    assert rendered == []


def test_draw_pose_and_face_crops_refuse_beyond_the_budget(monkeypatch):
    import torch
    from motionguide.nodes.pose import MotionGuideDrawPose, MotionGuideFaceCrops

    monkeypatch.setenv("MOTIONGUIDE_MEMORY_BUDGET_GB", "0.01")
    frame = {"people": [{"pose_keypoints_2d": [10.0, 20.0, 0.9] * 18}], "canvas_width": 64, "canvas_height": 96}
    with pytest.raises(ValueError, match=r"Draw Pose: 10 frames at 1024×1024 need about 0.16 GB.*at most 0 frames|"
                                         r"Draw Pose: 10 frames at 1024×1024 need about 0.16 GB.*Not even one"):
        MotionGuideDrawPose().draw([frame] * 10, width=1024, height=1024)
    with pytest.raises(ValueError, match=r"Face Crops: 20 frames at 512×512 need about 0.079 GB"):
        MotionGuideFaceCrops().crop(torch.zeros(20, 8, 8, 3), [frame] * 20)
    monkeypatch.setenv("MOTIONGUIDE_MEMORY_BUDGET_GB", "1")
    assert MotionGuideDrawPose().draw([frame] * 10, width=64, height=96)[0].shape == (10, 96, 64, 3)
