"""The README's main job: the demo workflow (image + video → DWPose → align → draw → sampler → decode → video)
run through the headless runner on the tiny models, as `cli.py demo` does in its smoke run."""
import shutil

import numpy as np
import pytest
import torch
from motionguide.headless import demo
from motionguide.headless.execute import node_classes
from motionguide.headless.workflow_runner import load_workflow, run_workflow
from motionguide.pipelines.video.io import read_video


@pytest.fixture()
def demo_env(tmp_path, monkeypatch, use_models_dir, tiny_dwpose_dir, tiny_svd_dir, tiny_mimicmotion_path):
    inputs = tmp_path / "input"
    shutil.copytree(demo.SAMPLE_INPUTS, inputs)
    monkeypatch.setenv("MOTIONGUIDE_INPUT_DIR", str(inputs))
    monkeypatch.setenv("MOTIONGUIDE_OUTPUT_DIR", str(tmp_path / "output"))
    workflow = load_workflow(demo.DEMO_WORKFLOW)
    for (node_id, name), value in demo.SMOKE_OVERRIDES.items():
        workflow[node_id]["inputs"][name] = value
    # Smaller still for the test suite: 4 driving frames (+ the reference pose), one tile, one step.
    workflow["2"]["inputs"]["frame_load_cap"] = 4
    workflow["9"]["inputs"].update(steps=1, tile_size=5, tile_overlap=1)
    return workflow, tmp_path / "output"


def test_demo_workflow_runs_end_to_end_on_tiny_models(demo_env):
    workflow, output = demo_env
    result = run_workflow(workflow, node_classes())
    reference = result.outputs["3"][0]
    assert tuple(reference.shape) == (1, 192, 128, 3)  # 288×512 sample → resolution-128 rule: 128×192
    assert result.outputs["3"][1:] == (128, 192)
    poses = result.outputs["7"][0]
    assert tuple(poses.shape) == (5, 192, 128, 3)  # reference pose + 4 driving frames
    latent = result.outputs["9"][0]
    assert tuple(latent["samples"].shape) == (5, 4, 24, 16)
    frames, fps = result.outputs["10"]
    assert tuple(frames.shape) == (4, 192, 128, 3) and fps == pytest.approx(12.0)
    assert torch.isfinite(frames).all() and 0.0 <= frames.min() and frames.max() <= 1.0
    written = output / "MotionGuide_demo_SMOKE_00001.mp4"
    assert written.is_file()
    video, video_fps = read_video(written)
    assert video.shape == (4, 192, 128, 3) and video_fps == pytest.approx(12.0)
    # The file holds the decoded frames (up to mp4 compression).
    assert np.abs(video.astype(float) - frames.numpy() * 255).mean() < 20


def test_demo_smoke_builder_reuses_its_models(tmp_path):
    built = demo.build_smoke_models(tmp_path / "smoke")
    names = sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())
    assert "mimicmotion/MimicMotion_1-1.pth" in names and "dwpose/yolox_l.onnx" in names
    assert "diffusers/stable-video-diffusion-img2vid-xt-1-1/vae/config.json" in names
    stamp = built / ".complete"
    mtime = stamp.stat().st_mtime_ns
    assert demo.build_smoke_models(tmp_path / "smoke") == built and stamp.stat().st_mtime_ns == mtime


def test_demo_reports_missing_real_weights(tmp_path):
    from motionguide.nodes import comfy_adapter

    comfy_adapter.set_models_dir(tmp_path)
    try:
        missing = demo.missing_real_models()
    finally:
        comfy_adapter.set_models_dir(None)
    assert missing == ["svd_xt_1_1 or svd_xt_1_1_single", "mimicmotion_1_1", "yolox_l", "dwpose_ll_384"]


def test_demo_writes_3d_guidance_previews_of_the_sample_motion(anny_body, tmp_path, monkeypatch):
    """The smoke run's 3D previews: the sample motion on the built-in body shaped to the sample reference."""
    from motionguide.pipelines.render.guidance_preview import guidance_preview, write_preview
    from motionguide.pipelines.smpl.motion.sequence import load_sequence, slice_sequence

    keypoints, size = demo.sample_reference_keypoints()
    assert size == (288, 512) and keypoints.shape == (18, 3)
    assert keypoints[5, 0] > keypoints[2, 0]  # facing the camera: the left shoulder on the image's right
    motion = slice_sequence(load_sequence(demo.SAMPLE_INPUTS / "motionguide_motion.npz"), 0, 3)
    result = guidance_preview(anny_body, motion, keypoints, size, fit_iterations=15)
    frames = result["frames"]
    assert frames.shape == (3, 512, 4 * 288, 3) and frames.dtype == np.uint8
    panels = [frames[:, :, i * 288:(i + 1) * 288] for i in range(4)]
    assert all((p.max(-1) > 0).mean() > 0.002 for p in panels)  # pose (thin lines), depth, normal, parts drawn
    body_pixels = (panels[1].max(-1) > 0).mean()
    assert 0.05 < body_pixels < 0.5  # a person, not an empty or full frame
    # standing where the reference stands: feet near the reference's ankles, head near its head
    rows = np.flatnonzero((panels[1][0].max(-1) > 0).any(1))
    assert abs(rows.max() - keypoints[[10, 13], 1].max()) < 30 and rows.min() < keypoints[0, 1]
    written = write_preview(result, tmp_path, "MotionGuide_demo_3D_guidance")
    assert [p.suffix for p in written] == [".mp4", ".png"] and all(p.is_file() for p in written)


def test_the_preview_frames_the_whole_clip_and_draws_a_readable_skeleton(anny_body):
    """Issue: a raised hand left the 288×512 panels in 27 of 45 frames. One zoom for the whole clip keeps every
    vertex of every frame inside the panel with a margin; a clip that fits keeps its camera."""
    import torch
    from motionguide.pipelines.pinhole import project
    from motionguide.pipelines.render.guidance_preview import FRAME_MARGIN, frame_whole_clip
    from motionguide.pipelines.smpl.motion.posing import pose_sequence
    from motionguide.pipelines.smpl.motion.sequence import load_sequence, slice_sequence, validate_sequence

    motion = validate_sequence(slice_sequence(load_sequence(demo.SAMPLE_INPUTS / "motionguide_motion.npz"), 0, 45, 4))
    width, height = motion["image_size"]

    def extent(seq):
        vertices, _ = pose_sequence(anny_body, seq)
        uv = project(vertices, torch.as_tensor(seq["K"]).float())
        return uv.reshape(-1, 2).min(0).values.numpy(), uv.reshape(-1, 2).max(0).values.numpy()

    tight = dict(motion, K=motion["K"] * np.array([[2.5, 1, 1], [1, 2.5, 1], [0, 0, 1]], np.float32))
    lo, hi = extent(tight)
    assert lo.min() < 0 or hi[0] > width or hi[1] > height  # the body leaves the frame
    framed = frame_whole_clip(anny_body, tight)
    lo, hi = extent(framed)
    pad = FRAME_MARGIN * height - 0.5
    assert lo.min() >= pad and hi[0] <= width - pad and hi[1] <= height - pad
    assert np.allclose(framed["K"], framed["K"][:1])  # one camera for the clip: no zoom pumping
    assert frame_whole_clip(anny_body, framed) is framed  # fits: unchanged

    from motionguide.pipelines.dwpose.draw import draw_pose_maps
    from motionguide.pipelines.render.smpl_render import sequence_to_pose_keypoints

    pose = sequence_to_pose_keypoints(anny_body, slice_sequence(framed, 0, 1), backend="torch")
    panel = draw_pose_maps(pose, width, height, style="thick")[0]
    drawn = panel.max(-1) > 0
    # thick lines: every drawn row of the spine-to-knee limbs is several pixels wide
    widths = drawn.sum(1)[drawn.any(1)]
    assert np.median(widths) >= 6 and drawn.mean() > 0.01
