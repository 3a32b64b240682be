"""DisPose on MimicMotion, component by component against DisPose's own code.

``tests/data/dispose_reference.npz`` was made offline by running DisPose's code (lihxxx/DisPose @ c38ab13, CUDA
calls stubbed, nothing else changed) on the tiny files of this pack's builders: the tiny MimicMotion UNet
(``build_tiny_mimicmotion``, seed 0) and a tiny ``DisPose.pth`` (``build_tiny_dispose``, seed 0), which DisPose's
``ControlNetSVDModel`` (motion towers (4, 8, 8, 8), its ``PointAdapter(32, [32, 64], [16, 16], 8)``) loaded with no
missing or unexpected key. Video 64×128 px, 4 frames; keypoints from ``np.random.RandomState(7)`` (frame 3 loses
keypoint 4, the reference misses keypoint 17, keypoints 8 and 9 collide in frame 2). Inputs drawn from
``torch.Generator().manual_seed(11)`` in this order: dense flow ``randn(1,3,2,128,64)·3``, reference point features
``randn(1,18,32)`` (keypoint 17 zeroed), UNet input ``randn(2,4,8,16,8)`` (pass 0 unconditional), CLIP embedding
``randn(1,1,32)`` (unconditional: zeros), PoseNet features ``randn(8,32,16,8)·0.1`` (unconditional rows zeroed),
DIFT map ``randn(1,32,1,5,3)``; the reference image ``rand(3,128,64)`` from seed 3; timestep 0.37, added time ids
(6, 127, 0). Arrays: the trajectory flow (``points_to_flows`` + ``cv2.filter2D``), CMP's 384×384 hints
(``sample_inputs_flow``), the DIFT keypoint lookup (``Ctrl_Pipeline.__call__``), the point adapter, the ControlNet's
residuals (a CFG-batched call, as its pipeline makes them) and its UNet's output with those residuals. CMP: DisPose's
model classes with one block per ResNet stage and its own widths (``cmp_random_state(5, **CMP_ONE_BLOCK)``), the
arithmetic of its ``CMP.run`` on a 96×64 image ``rand(1,3,64,96)`` from seed 21 with three hints (pixels (y, x) =
(10, 20), (40, 70), (30, 5), each ``randn(2)·10`` from the same generator). DIFT: DisPose's ``MyUNet2DConditionModel``
and ``OneStepSDPipeline`` on ``build_tiny_sd`` (seed 0), the first feature of ``SDFeaturizer.forward`` (ensemble 8,
t 261, up block 1, "photo of a human") of ``round(rand(1,3,128,64)·255)`` from seed 17, input rounded to fp16 as its
caller does, global RNG seeded 13. Sampling run: DisPose's ``Ctrl_Pipeline`` in fp32 on the tiny SVD folder and
MimicMotion file (seed 0) with a DisPose file of 1280-wide point features (``build_tiny_dispose(seed=4,
point_channels=1280)``: its pipeline hard-codes that width), 2 steps, CFG 2.0, tiles of 3 with overlap 1, generator
seed 5, ``output_type="latent"``; from ``torch.Generator().manual_seed(31)``: the reference ``rand(1,3,128,64)·255``
rounded, pose maps ``rand(4,3,128,64)·255`` rounded, the dense flow ``randn(1,3,2,128,64)·3`` and the DIFT map
``randn(1,1280,4,2)``; the reference reaches both pipelines the way DisPose's and MimicMotion's inference scripts hand
it over, ``uint8((u8/127.5 − 1 + 1)·127.5)`` (a truncating round trip that the pack's sampler reproduces). Its only
changes: a no-op ``torch.cuda.device``, and CLIP's input resized to the tiny encoder's 32 px instead of 224.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from motionguide.headless.tiny_models.dispose import (CMP_ONE_BLOCK, build_tiny_cmp, build_tiny_dispose, build_tiny_sd,
                                                     cmp_random_state)
from motionguide.headless.tiny_models.svd import TINY_UNET_CONFIG
from motionguide.pipelines.dispose import motion
from motionguide.pipelines.dispose.controlnet import reference_skip_repeats
from motionguide.pipelines.dispose.guidance import DisPoseGuidance
from motionguide.pipelines.dispose.cmp import build_cmp
from motionguide.pipelines.dispose.dift import dift_features, load_dift_model
from motionguide.pipelines.dispose.loading import load_cmp, load_dispose
from motionguide.pipelines.dispose.points import reference_point_features
from motionguide.pipelines.guidance.hook import UNetCall, UNetResidualHooks, UNetResiduals
from motionguide.pipelines.mimicmotion.loading import load_motion_model
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline

REF = np.load(Path(__file__).parent / "data" / "dispose_reference.npz")
W, H = (int(v) for v in REF["size"])
KP = REF["keypoints"]
F = KP.shape[0]


def inputs():
    g = torch.Generator().manual_seed(11)
    dense = torch.randn(1, F - 1, 2, H, W, generator=g)[0] * 3
    ref_emb = torch.randn(1, 18, 32, generator=g)[0]
    ref_emb[17] = 0
    sample = torch.randn(2, F, 8, H // 8, W // 8, generator=g)
    ehs = torch.cat([torch.zeros(1, 1, 32), torch.randn(1, 1, 32, generator=g)])
    pose = torch.randn(2 * F, 32, H // 8, W // 8, generator=g) * 0.1
    pose[:F] = 0
    dift = torch.randn(1, 32, 1, 5, 3, generator=g)[:, :, 0]
    return dict(dense=dense, ref_emb=ref_emb, sample=sample, ehs=ehs, pose=pose, dift=dift)


def close(ours, theirs, rtol=1e-5, atol=1e-6):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def test_trajectory_flow_matches_dispose():
    flow = motion.trajectory_flow(KP, W, H)
    assert np.abs(REF["traj_flow"]).max() > 0.05  # the blurred vectors are there, not an all-zero map
    close(flow, REF["traj_flow"], atol=1e-6)


def test_blur_matrix_is_reflect_101_gaussian():
    a = motion.blur_matrix(5, kernel_size=5, sigma=1.0)
    g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    g /= g.sum()
    # row 0: offsets -2,-1 reflect (without the edge) to pixels 2,1
    np.testing.assert_allclose(a[0], [g[2], g[1] + g[3], g[0] + g[4], 0, 0])
    np.testing.assert_allclose(a.sum(1), 1.0)


def test_cmp_hints_match_dispose():
    sparse, mask = motion.cmp_hints(KP, W, H)
    assert mask.sum() > 0
    close(sparse, REF["cmp_sparse"], atol=1e-5)
    close(mask, REF["cmp_mask"], atol=0)


def test_frame_without_person_gets_empty_hints():
    kp = KP.copy()
    kp[2, :, 2] = 0.0
    flow = motion.trajectory_flow(kp, W, H)
    sparse, mask = motion.cmp_hints(kp, W, H)
    assert not flow[1].any() and not flow[2].any()  # 1→2 and 2→3 touch the empty frame
    close(flow[0], REF["traj_flow"][0])
    assert not sparse[1].any() and not mask[1].any()
    close(mask[0], REF["cmp_mask"][0], atol=0)


def test_dift_lookup_matches_dispose():
    out = reference_point_features(inputs()["dift"], torch.from_numpy(KP[0]), W, H)
    assert not out[17].any() and out[:17].abs().sum() > 0
    close(out, REF["dift_points"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_svd_dir, tiny_mimicmotion_path):
    path = build_tiny_dispose(tmp_path_factory.mktemp("dispose") / "DisPose.pth", TINY_UNET_CONFIG)
    model = load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu")
    return model, load_dispose(path, TINY_UNET_CONFIG, torch.float32)


def prepared(tiny, repeat_skips=True):
    model, cn = tiny
    x = inputs()
    module = DisPoseGuidance(model, cn, torch.from_numpy(KP), x["dense"], torch.from_numpy(REF["traj_flow"]),
                             x["ref_emb"], repeat_skips=repeat_skips)
    module.prepare(torch.device("cpu"), torch.float32, torch.device("cpu"))
    frames = torch.arange(F)
    call = UNetCall(0, 1, x["sample"], torch.tensor(0.37), x["ehs"], torch.tensor([[6.0, 127.0, 0.0]] * 2),
                    [frames, frames], [False, True])
    return module, call, x


def test_point_adapter_matches_dispose(tiny):
    module, _, _ = prepared(tiny)
    for k, level in enumerate(module.points):
        assert level.abs().sum() > 0
        close(level, REF[f"adapter_{k}"])


def test_controlnet_residuals_match_dispose(tiny):
    module, call, _ = prepared(tiny, repeat_skips=False)
    with torch.no_grad():
        res = module.residuals(call)
    assert len(res.down) == 6
    for k, d in enumerate(res.down):
        close(d, REF[f"down_{k}"], rtol=1e-4, atol=1e-5)
    close(res.mid, REF["mid"], rtol=1e-4, atol=1e-5)


def test_unet_consumes_residuals_as_dispose(tiny):
    """DisPose's UNet adds each down residual once per remaining down block; the hook with the repeat factors
    gives its output."""
    assert reference_skip_repeats(TINY_UNET_CONFIG) == [2, 2, 2, 2, 1, 1]
    assert reference_skip_repeats({"down_block_types": [0] * 4, "layers_per_block": 2}) == [4] * 4 + [3] * 3 + [2] * 3 + [1] * 2
    module, call, x = prepared(tiny)
    model = tiny[0]
    with torch.no_grad():
        res = module.residuals(call)
        with UNetResidualHooks(model.unet) as hooks:
            hooks.residuals = UNetResiduals(conv_in=x["pose"]) + res
            out = model.unet(call.sample, call.timestep, encoder_hidden_states=call.encoder_hidden_states,
                             added_time_ids=call.added_time_ids, return_dict=False)[0]
        plain = model.unet(call.sample, call.timestep, encoder_hidden_states=call.encoder_hidden_states,
                           added_time_ids=call.added_time_ids, return_dict=False)[0]
    theirs = torch.from_numpy(REF["unet_out"])
    assert (theirs - plain).abs().max() > 1e-2  # the residuals matter
    rel = ((out - theirs).norm() / theirs.norm()).item()
    assert rel < 1e-5, rel
    close(out, theirs, rtol=1e-4, atol=1e-5)


def test_mimicmotion_file_as_dispose_is_an_error(tiny_mimicmotion_path):
    with pytest.raises(ValueError, match="MimicMotion checkpoint"):
        load_dispose(tiny_mimicmotion_path, TINY_UNET_CONFIG, torch.float32)


def test_dispose_file_with_a_missing_tensor_is_an_error(tmp_path):
    path = build_tiny_dispose(tmp_path / "DisPose.pth", TINY_UNET_CONFIG)
    state = torch.load(path, weights_only=True)
    del state["controlnet_mid_block.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="controlnet_mid_block.weight"):
        load_dispose(path, TINY_UNET_CONFIG, torch.float32)


def test_cmp_matches_dispose():
    state = cmp_random_state(5, **CMP_ONE_BLOCK)
    model = build_cmp(state, "test")
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    g = torch.Generator().manual_seed(21)
    image = torch.rand(1, 3, 64, 96, generator=g)
    sparse, mask = torch.zeros(1, 2, 64, 96), torch.zeros(1, 2, 64, 96)
    for y, x in [(10, 20), (40, 70), (30, 5)]:
        sparse[0, :, y, x] = torch.randn(2, generator=g) * 10
        mask[0, :, y, x] = 1
    with torch.no_grad():
        flow = model.flow(image, sparse, mask)
    assert REF["cmp_flow"].std() > 1e-3
    close(flow[0], REF["cmp_flow"], rtol=1e-4, atol=1e-5)


def test_cmp_file_loads_strictly(tmp_path):
    path = build_tiny_cmp(tmp_path / "ckpt_iter_42000.pth.tar")
    model = load_cmp(path, torch.float32)
    assert model.mesh.shape[1] == 99
    with pytest.raises(FileNotFoundError, match="MOFA-Video-Hybrid"):
        load_cmp(tmp_path / "missing.pth.tar", torch.float32)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state_dict"]["module.flow_decoder.head.bias"]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="flow_decoder.head.bias"):
        load_cmp(path, torch.float32)


def test_dift_features_match_dispose(tmp_path):
    model = load_dift_model(build_tiny_sd(tmp_path / "sd"), torch.float32)
    ref = (torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(17)) * 255).round()
    out = dift_features(model, ref, torch.Generator().manual_seed(13))
    assert out.std() > 1e-3
    close(out, REF["dift_features"], rtol=1e-4, atol=1e-5)


def test_sd_folder_missing_parts_are_named(tmp_path):
    folder = build_tiny_sd(tmp_path / "sd")
    (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="vae/diffusion_pytorch_model"):
        load_dift_model(folder, torch.float32)


def test_strength_scales_and_zero_strength_adds_nothing(tiny):
    module, call, _ = prepared(tiny)
    model, cn = tiny
    half = DisPoseGuidance(model, cn, module.keypoints, module.dense_flow, module.traj_flow, module.point_features,
                           strength=0.5)
    half.prepare(torch.device("cpu"), torch.float32, torch.device("cpu"))
    with torch.no_grad():
        full, part = module.residuals(call), half.residuals(call)
    torch.testing.assert_close(part.mid, full.mid * 0.5)
    torch.testing.assert_close(part.down[0], full.down[0] * 0.5)
    assert module.unconditional and len(call.frames) == 2  # both CFG halves get the same hints, as DisPose


def test_sampling_run_matches_dispose_pipeline(tiny, tmp_path):
    model = tiny[0]
    cn = load_dispose(build_tiny_dispose(tmp_path / "DisPose.pth", TINY_UNET_CONFIG, seed=4, point_channels=1280),
                      TINY_UNET_CONFIG, torch.float32)
    g = torch.Generator().manual_seed(31)
    reference = (torch.rand(1, 3, H, W, generator=g) * 255).round().to(torch.uint8)
    poses = (torch.rand(F, 3, H, W, generator=g) * 255).round().to(torch.uint8)
    dense = torch.randn(1, F - 1, 2, H, W, generator=g)[0] * 3
    dift_map = torch.randn(1, 1280, 4, 2, generator=g)
    points = reference_point_features(dift_map, torch.from_numpy(KP[0]), W, H)
    module = DisPoseGuidance(model, cn, torch.from_numpy(KP), dense, torch.from_numpy(REF["traj_flow"]), points)
    out = MimicMotionPipeline(model)(reference, poses, num_inference_steps=2, min_guidance_scale=2.0,
                                     max_guidance_scale=2.0, tile_size=3, tile_overlap=1, seed=5, guidance=[module])
    ours = out.latents * model.scaling_factor
    theirs = torch.from_numpy(REF["sampled_latents"])
    plain = MimicMotionPipeline(model)(reference, poses, num_inference_steps=2, min_guidance_scale=2.0,
                                       max_guidance_scale=2.0, tile_size=3, tile_overlap=1, seed=5).latents
    plain = plain * model.scaling_factor
    theirs_plain = torch.from_numpy(REF["sampled_latents_plain"])  # MimicMotion's own pipeline, same inputs

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    assert rel(theirs_plain, theirs) > 1e-2 and rel(plain, ours) > 1e-2  # DisPose changes the result
    # Both runs equal their reference to float rounding (measured 2.2e-5 without and 1.4e-5 with DisPose, max 2.4e-4:
    # one float32 ulp of the σ=700 noisy latents, |x| ~ 2500, after the first step). Without the reference image's
    # round trip the plain run would be 0.56% off.
    assert rel(plain, theirs_plain) < 2e-4, rel(plain, theirs_plain)
    assert rel(ours, theirs) < 2e-4, rel(ours, theirs)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-3)
    # and DisPose's effect (guided − plain) is the same in both (measured 2.1e-5)
    assert rel(ours - plain, theirs - theirs_plain) < 2e-4, rel(ours - plain, theirs - theirs_plain)
