"""SCAIL style: the capsule rendering against SCAIL-Pose's own renderer, and the Render SCAIL Pose node.

``tests/data/scail_capsules.npz`` holds SMPL-24 joints (mm, NLF's 55° camera, 3 frames of a random motion on the
synthetic body) and the RGBA frames SCAIL-Pose@830da75 rendered from them offline (``render_nlf_as_images``
without the 2D overlay → ``render_3d/taichi_cylinder.render_whole``, taichi 1.7.4 on the CPU), at 128×224.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from motionguide.nodes.render import MotionGuideRenderSCAIL
from motionguide.pipelines.render.scail import (
    IDENTITY_PALETTE,
    capsule_segments,
    half_size,
    identity_mask,
    limb_color,
    render_capsules,
)
from motionguide.pipelines.smpl.body.body_model import load_body_model
from motionguide.pipelines.smpl.estimate.nlf import fov_intrinsics
from scipy.spatial.transform import Rotation

DATA = np.load(Path(__file__).parent / "data" / "scail_capsules.npz")


@pytest.fixture(scope="module")
def ours():
    width, height = (int(v) for v in DATA["size"])
    return render_capsules([j[None] for j in DATA["joints"]], fov_intrinsics(width, height), (width, height)).numpy()


def test_silhouette_matches_scail_pose(ours):
    theirs = DATA["rgba"]
    a, b = ours[..., 3] > 127, theirs[..., 3] > 127
    iou = (a & b).sum() / (a | b).sum()
    assert iou >= 0.99, iou
    assert b.sum() > 3000  # the reference is not empty
    assert set(np.unique(ours[..., 3])) == {0, 204}  # alpha 0.8 → ⌊0.8·255⌋


def test_shaded_colours_match_scail_pose_within_2_of_255(ours):
    theirs = DATA["rgba"]
    both = (ours[..., 3] > 127) & (theirs[..., 3] > 127)
    error = np.abs(ours[..., :3].astype(int) - theirs[..., :3].astype(int)).max(-1)[both]
    # Measured: mean of the worst channel 0.27 (0.12 over all channels), 99.9 % of pixels within 2/255 (the rest where two capsules meet, where SCAIL's
    # finite-difference normal mixes both).
    assert error.mean() < 0.4, error.mean()
    assert np.percentile(error, 99.5) <= 2
    assert (error > 2).mean() < 0.002


def test_colour_remap_and_skipped_limbs():
    assert limb_color(0) == pytest.approx((255 / 300 + 0.15, 0.15, 0.15))
    joints = DATA["joints"][0].copy()
    starts, _, ids = capsule_segments(joints[None])
    assert len(ids) == 13 and len(starts) == 13
    joints[15] = 0.0  # missing head: the neck–head capsule is skipped, as SCAIL tests joints
    assert len(capsule_segments(joints[None])[2]) == 12


def test_true_occlusion_and_whole_clip_depth_fade():
    K = fov_intrinsics(256, 256)
    # Two crossing capsules in one frame: the nearer one is drawn where they overlap.
    near = np.zeros((24, 3))
    near[12], near[15] = (0, -200, 1000), (0, 200, 1000)  # neck–head, grey, vertical, 1 m
    far = near.copy()
    far[12], far[17] = (-300, 0, 1500), (300, 0, 1500)  # neck–right shoulder, red, 1.5 m
    far[15] = 0.0
    image = render_capsules([np.stack([near, far])], K, (256, 256)).numpy()[0]
    centre = image[128, 128, :3].astype(int)
    assert centre[0] == centre[1] == centre[2]  # grey wins at the crossing
    assert int(image[128, 100, 0]) > int(image[128, 100, 1]) + 50  # red beside it
    # The fade is fixed over the whole clip: the same capsule 1 m further in another frame is darker.
    moved = near.copy()
    moved[[12, 15], 2] += 1000
    frames = render_capsules([near[None], moved[None]], K, (256, 256)).numpy()
    brightness = [float(f[..., :3][f[..., 3] > 0].astype(float).mean()) for f in frames]
    assert brightness[0] > brightness[1] + 5, brightness


def test_half_size_and_identity_mask():
    images = torch.rand(2, 8, 6, 3)
    small = half_size(images)
    assert small.shape == (2, 4, 3, 3)
    torch.testing.assert_close(small[0, 0, 0], images[0, :2, :2].mean((0, 1)))
    masks = torch.zeros(1, 4, 4)
    masks[0, 1:3, 1:3] = 1
    black = identity_mask(masks, 0, "black")
    assert black[0, 1, 1].tolist() == [0.0, 0.0, 1.0] and black[0, 0, 0].tolist() == [0.0, 0.0, 0.0]
    white = identity_mask(masks, 1, "white")
    assert white[0, 1, 1].tolist() == [1.0, 0.0, 0.0] and white[0, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert len(IDENTITY_PALETTE) == 6 and all(set(c) <= {0, 255} for c in IDENTITY_PALETTE)
    with pytest.raises(ValueError, match="black"):
        identity_mask(masks, 0, "grey")


def test_render_scail_node_on_the_synthetic_body(smpl_model_dir):
    body = load_body_model(smpl_model_dir, "neutral", "smpl")
    frames = 2
    orient = (Rotation.from_rotvec([math.pi, 0, 0])).as_rotvec()
    K = np.array([[500, 0, 64], [0, 500, 112], [0, 0, 1]], np.float32)
    seq = {"betas": np.zeros((frames, 10), np.float32), "global_orient": np.tile(orient, (frames, 1)).astype(np.float32),
           "body_pose": np.zeros((frames, 69), np.float32),
           "transl": np.tile(np.array([0.0, 0.2, 5.0], np.float32), (frames, 1)),
           "K": np.repeat(K[None], frames, 0), "image_size": (128, 224), "valid": np.ones(frames, bool),
           "fps": 16.0, "model_type": "smpl"}
    images, half, mask, identity = MotionGuideRenderSCAIL().render(seq, body, width=128, height=224,
                                                                   renderer="torch", overlay_2d=False)
    with_layer, _, mask_layer, _ = MotionGuideRenderSCAIL().render(seq, body, width=128, height=224,
                                                                   renderer="torch")
    # The 2D layer (nose-eye-ear lines of the facing body) changes colours only, never SCAIL's alpha mask.
    assert (with_layer != images).any() and torch.equal(mask_layer, mask)
    changed = (with_layer != images).any(-1)
    assert int(changed.sum()) < 0.05 * changed.numel()
    assert images.shape == (2, 224, 128, 3) and half.shape == (2, 112, 64, 3) and mask.shape == (2, 224, 128)
    assert 0.01 < float(mask.mean()) < 0.5
    # The identity mask is the body's silhouette in pure blue and covers the capsules' pixels.
    blue = (identity[..., 2] == 1) & (identity[..., 0] == 0) & (identity[..., 1] == 0)
    assert set(identity.unique().tolist()) <= {0.0, 1.0}
    assert float((blue & (mask > 0)).sum()) / float((mask > 0).sum()) > 0.8


# ``scail_overlay.npz``: the same joints with random DWPose keypoints per frame, through SCAIL-Pose's whole frame
# path (``render_nlf_as_images`` with ``poses``: capsules + ``draw_pose_to_canvas_np`` cheek/hands/face layer +
# its channel-wise composition), and the 2D layer alone at 608×1080 (2 px hands), keypoints run through its
# DWPose post-processing (``_get_multi_result_from_est``).
OVERLAY = np.load(Path(__file__).parent / "data" / "scail_overlay.npz")


def _frames(kp, sc, size):
    from motionguide.pipelines.dwpose.keypoints import PoseFrame

    return [PoseFrame(k[None], s[None], int(size[0]), int(size[1])) for k, s in zip(kp, sc)]


def test_2d_layer_matches_scail_pose_pixel_for_pixel():
    from motionguide.pipelines.dwpose.draw_styles import draw_scail_overlay

    width, height = (int(v) for v in OVERLAY["size2"])
    ours = np.stack([draw_scail_overlay(f, width, height) for f in _frames(OVERLAY["kp2"], OVERLAY["sc2"],
                                                                           OVERLAY["size2"])])
    theirs = OVERLAY["overlay2"]
    assert theirs.any() and int((ours != theirs).any(-1).sum()) == 0


def test_full_frame_with_overlay_matches_scail_pose():
    from motionguide.pipelines.dwpose.draw_styles import draw_scail_overlay
    from motionguide.pipelines.render.scail import overlay_2d

    width, height = (int(v) for v in OVERLAY["size"])
    rgba = render_capsules([j[None] for j in OVERLAY["joints"]], fov_intrinsics(width, height), (width, height))
    layer = np.stack([draw_scail_overlay(f, width, height) for f in _frames(OVERLAY["kp"], OVERLAY["sc"],
                                                                            OVERLAY["size"])])
    ours = overlay_2d(rgba, layer).numpy()
    theirs = OVERLAY["rgba"]
    assert (ours[..., 3] == theirs[..., 3]).mean() > 0.999
    drawn = layer != 0  # channel by channel, as SCAIL composes
    assert drawn.sum() > 1000
    np.testing.assert_array_equal(ours[..., :3][drawn], theirs[..., :3][drawn])  # the 2D layer: exact
    error = np.abs(ours[..., :3].astype(int) - theirs[..., :3].astype(int)).max(-1)
    assert (error > 2).mean() < 0.002


def test_screen_window_culling_loses_no_pixel(monkeypatch):
    from motionguide.pipelines.render import scail

    K = fov_intrinsics(96, 96)
    corner = np.zeros((24, 3))
    corner[12], corner[17] = (-700, -690, 1400), (-600, -650, 1300)  # off-axis, near the image corner
    corner[15] = (-720, -780, 1450)
    culled = render_capsules([corner[None], DATA["joints"][0][None]], K, (96, 96)).numpy()
    monkeypatch.setattr(scail, "_screen_window", lambda s, e, k, w, h, r: (0, 0, w, h))
    full = render_capsules([corner[None], DATA["joints"][0][None]], K, (96, 96)).numpy()
    assert full[0, ..., 3].any()
    np.testing.assert_array_equal(culled, full)
