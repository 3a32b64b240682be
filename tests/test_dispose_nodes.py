"""DisPose at node level on tiny files: Load DisPose (one message for every missing file), Prepare DisPose (hints,
no-person errors), the sampler's optional dispose input (changes the result, works with unet_batch and tiles)."""
import numpy as np
import pytest
import torch

from motionguide.nodes.dispose import MotionGuideLoadDisPose, MotionGuidePrepareDisPose
from motionguide.nodes.sampling import MotionGuideLoadModel, MotionGuideSampler

W, H, F = 64, 112, 6
ARGS = dict(steps=1, cfg_min=2.0, cfg_max=2.0, fps=7, motion_bucket=127, noise_aug=0.0, tile_size=4, tile_overlap=2)


@pytest.fixture()
def node_model(use_models_dir, tiny_svd_dir, tiny_mimicmotion_path, tiny_dispose_path, tiny_cmp_path, tiny_sd_dir):
    (model,) = MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                           mimicmotion_checkpoint="MimicMotion_1-1.pth", precision="fp32",
                                           memory_mode="offload_after_run", device="cpu")
    return model


def pose_keypoint(frames=F, seed=0, empty=()):
    rs = np.random.RandomState(seed)
    base = rs.rand(18, 2) * [W - 1, H - 1]
    out = []
    for f in range(frames):
        pts = np.clip(base + rs.randn(18, 2) * 2 * f, 0, [W - 1, H - 1])
        body = np.concatenate([pts, np.full((18, 1), 0.9)], 1).ravel().tolist()
        people = [] if f in empty else [{"pose_keypoints_2d": body, "face_keypoints_2d": None,
                                          "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}]
        out.append({"people": people, "canvas_width": W, "canvas_height": H})
    return out


def images(frames, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(frames, H, W, 3, generator=g) * 255).round() / 255


def test_load_dispose_lists_every_missing_file(node_model):
    with pytest.raises(FileNotFoundError) as info:
        MotionGuideLoadDisPose().load(node_model, "nope.pth", "nope.pth.tar", "no-sd-here")
    text = str(info.value)
    for part in ("nope.pth", "nope.pth.tar", "no-sd-here", "lihxxx/DisPose", "MOFA-Video-Hybrid",
                 "stable-diffusion-v1-5", "models/dispose/", "models/cmp/"):
        assert part in text, part


def test_prepare_and_sample_with_dispose(node_model):
    (dispose,) = MotionGuideLoadDisPose().load(node_model, "DisPose.pth", "ckpt_iter_42000.pth.tar",
                                               "stable-diffusion-v1-5")
    reference, poses = images(1, 0), images(F, 1)
    (guidance,) = MotionGuidePrepareDisPose().prepare(dispose, reference, pose_keypoint(empty=(3,)), seed=1)
    hints = guidance.hints
    assert hints.dense_flow.shape == (F - 1, 2, H, W) and hints.traj_flow.shape == (F - 1, 2, H, W)
    assert hints.dense_flow.abs().sum() > 0 and hints.point_features.shape == (18, 32)
    assert not hints.traj_flow[2].any() and not hints.traj_flow[3].any()  # frame 3 has nobody: no hints
    sampler = MotionGuideSampler()
    (plain,) = sampler.sample(node_model, reference, poses, seed=3, **ARGS)
    (guided,) = sampler.sample(node_model, reference, poses, seed=3, dispose=guidance, **ARGS)
    (batched,) = sampler.sample(node_model, reference, poses, seed=3, dispose=guidance, unet_batch=4, **ARGS)
    assert (guided["samples"] - plain["samples"]).abs().mean() > 1e-3
    torch.testing.assert_close(batched["samples"], guided["samples"], rtol=0, atol=2e-3)  # batched kernels round differently
    assert all(p.device.type == "cpu" for p in dispose.controlnet.parameters())
    assert "dispose_controlnet" in node_model.extra_parts  # the memory mode keeps or offloads it between runs
    sampler.sample(node_model, reference, poses[:2], seed=3, **ARGS)
    assert "dispose_controlnet" not in node_model.extra_parts  # a run without DisPose lets it go


def test_reference_without_person_is_an_error(node_model):
    (dispose,) = MotionGuideLoadDisPose().load(node_model, "DisPose.pth", "ckpt_iter_42000.pth.tar",
                                               "stable-diffusion-v1-5")
    with pytest.raises(ValueError, match="no person was detected in the reference"):
        MotionGuidePrepareDisPose().prepare(dispose, images(1, 0), pose_keypoint(empty=(0,)), seed=1)
