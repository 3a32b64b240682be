#!/usr/bin/env python3
"""DisPose benchmark, measured side by side in one run.

Prints: the sampler's wall time per step with DisPose against without it (same tiles; target ≤ 1.5×), what DisPose's
own pipeline would add per UNet call on top (it recomputes the motion-field embedding and the point adapter's scatter
and MLPs for every tile at every step; this pack computes them once per run: measured here with this pack's code
doing that per-call work), the one-off cost of the hints per frame (trajectory flow, CMP, DIFT) and peak memory for N
and 4N frames with DisPose.

    /work/main/.venv/bin/python bench/dispose.py [--frames 8] [--steps 2] [--tile 4] [--overlap 2]
    /work/main/.venv/bin/python bench/dispose.py --real-size   # 576×1024, SVD-XT sizes, random weights (GPU)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv
cli.load_pack()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from motionguide.pipelines.dispose.controlnet import DisPoseControlNet  # noqa: E402
from motionguide.pipelines.dispose.guidance import CONTROLNET_PART, DisPoseGuidance  # noqa: E402
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_controlnet(model, point_channels: int = 1280, widths=(16, 32, 96, 256)) -> DisPoseControlNet:
    """A DisPose ControlNet shaped like the released one for ``model``'s UNet, random weights, on its device."""
    from diffusers import UNetSpatioTemporalConditionModel

    config = {k: v for k, v in dict(model.unet.config).items() if not k.startswith("_")}
    with torch.device("meta"):
        cn = DisPoseControlNet(UNetSpatioTemporalConditionModel.from_config(config), widths, point_channels, 128)
    cn = cn.to_empty(device=model.device).to(model.dtype)
    g = torch.Generator(device=model.device).manual_seed(0)
    with torch.no_grad():
        for p in cn.parameters():
            p.normal_(0.0, 0.02, generator=g)
    return cn.eval().requires_grad_(False)


def random_keypoints(frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rs = np.random.RandomState(seed)
    base = rs.rand(18, 2) * [width - 1, height - 1]
    kp = np.zeros((frames, 18, 3))
    for f in range(frames):
        kp[f, :, :2] = np.clip(base + rs.randn(18, 2) * 4 * f, 0, [width - 1, height - 1])
        kp[f, :, 2] = 0.9
    return kp


def dispose_module(model, cn, frames: int, height: int, width: int) -> DisPoseGuidance:
    """DisPose guidance with random dense flow and point features (the sampler's cost does not depend on them)."""
    from motionguide.pipelines.dispose import motion

    kp = random_keypoints(frames, width, height)
    g = torch.Generator().manual_seed(1)
    dense = torch.randn(frames - 1, 2, height, width, generator=g)
    traj = torch.from_numpy(motion.trajectory_flow(kp, width, height))
    points = torch.randn(18, cn.point_adapter.embedding_channels, generator=g)
    return DisPoseGuidance(model, cn, torch.from_numpy(kp), dense, traj, points)


class PerCallWork(DisPoseGuidance):
    """DisPose's own pipeline's per-call work on top of the ControlNet pass: the motion-field embedding and the
    point adapter for the tile's frames, every call (this pack does them once per run)."""

    def residuals(self, call):
        cn = self.controlnet
        frames = torch.cat(call.frames).cpu()
        height, width = self.traj_flow.shape[-2:]
        device, dtype = call.sample.device, call.sample.dtype
        flow = torch.cat([torch.zeros(1, 2, height, width), self.dense_flow])[frames].to(device, dtype)
        traj = torch.cat([torch.zeros(1, 2, height, width), self.traj_flow])[frames].to(device, dtype)
        cn.controlnet_cond_embedding(flow, traj)
        state, mask = cn.point_adapter.scatter(self.keypoints[frames], self.point_features.to(dtype), width, height)
        cn.point_adapter(state.to(device), mask.to(device), width, height)
        return super().residuals(call)


def time_run(pipe, reference, poses, guidance, steps, tile, overlap) -> float:
    device = pipe.model.device
    sync(device)
    start = time.perf_counter()
    pipe(reference, poses, num_inference_steps=steps, tile_size=tile, tile_overlap=overlap, seed=0,
         guidance=guidance)
    sync(device)
    return (time.perf_counter() - start) / steps


def peak_memory(pipe, reference, poses, guidance, tile, overlap) -> int:
    device = pipe.model.device
    if device.type != "cuda":
        return -1
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    pipe(reference, poses, num_inference_steps=1, tile_size=tile, tile_overlap=overlap, seed=0, guidance=guidance)
    return torch.cuda.max_memory_allocated(device) - base


def tiny_setup(dtype, device):
    from motionguide.headless.tiny_models.dispose import build_tiny_dispose
    from motionguide.headless.tiny_models.svd import build_tiny_mimicmotion, build_tiny_svd
    from motionguide.pipelines.dispose.loading import load_dispose
    from motionguide.pipelines.mimicmotion.loading import load_motion_model

    tmp = Path(tempfile.mkdtemp(prefix="mg_dispose_bench_"))
    svd = build_tiny_svd(tmp / "svd")
    model = load_motion_model(svd, build_tiny_mimicmotion(tmp / "mm.pth", svd), dtype=dtype, device=device)
    cn = load_dispose(build_tiny_dispose(tmp / "DisPose.pth", svd), dict(model.unet.config), dtype)
    return model, cn.to(device)


def measure(model, cn, frames: int, height: int, width: int, steps: int, tile: int, overlap: int,
            memory: bool = True, rounds: int = 2) -> dict:
    """Per-step times (plain, DisPose, DisPose + DisPose's own per-call work), their ratios and peak memory."""
    g = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (1, 3, height, width), generator=g, dtype=torch.uint8)
    poses = torch.randint(0, 256, (frames, 3, height, width), generator=g, dtype=torch.uint8)
    pipe = MimicMotionPipeline(model)
    model.attach_part(CONTROLNET_PART, cn, streamed=True)
    try:
        module = dispose_module(model, cn, frames, height, width)
        own = PerCallWork(model, cn, module.keypoints, module.dense_flow, module.traj_flow, module.point_features)
        time_run(pipe, reference, poses, [module], 1, tile, overlap)  # warm-up
        times = {"plain": [], "dispose": [], "own": []}
        for _ in range(rounds):  # interleaved, best of each: the machine's load changes between runs
            for name, guidance in (("plain", None), ("dispose", [module]), ("own", [own])):
                times[name].append(time_run(pipe, reference, poses, guidance, steps, tile, overlap))
        plain, dispose, theirs = (min(times[k]) for k in ("plain", "dispose", "own"))
        out = {"plain_s_per_step": plain, "dispose_s_per_step": dispose, "ratio": dispose / plain,
               "with_per_call_work_s_per_step": theirs, "per_call_work_ratio": theirs / plain}
        if memory and model.device.type == "cuda":
            small = peak_memory(pipe, reference, poses, [module], tile, overlap)
            many = torch.cat([poses] + [poses[1:]] * 3)
            big = peak_memory(pipe, reference, many, [dispose_module(model, cn, many.shape[0], height, width)], tile,
                              overlap)
            out.update(peak_n_mib=small / 2**20, peak_4n_mib=big / 2**20, frames_n=frames, frames_4n=many.shape[0])
        return out
    finally:
        model.extra_parts.pop(CONTROLNET_PART, None)


def one_off_hints(frames: int, height: int, width: int, device, dtype) -> dict:
    """Seconds per frame of the hints on the tiny CMP / SD files (trajectory flow, CMP and DIFT together)."""
    from motionguide.headless.tiny_models.dispose import build_tiny_cmp, build_tiny_sd
    from motionguide.pipelines.dispose import motion
    from motionguide.pipelines.dispose.prepare import compute_hints

    tmp = Path(tempfile.mkdtemp(prefix="mg_dispose_hints_"))
    cmp_path, sd_path = build_tiny_cmp(tmp / "cmp.pth.tar"), build_tiny_sd(tmp / "sd")
    kp = random_keypoints(frames, width, height)
    reference = torch.randint(0, 256, (1, 3, height, width), dtype=torch.uint8)
    start = time.perf_counter()
    motion.trajectory_flow(kp, width, height)
    traj = time.perf_counter() - start
    sync(device)
    start = time.perf_counter()
    compute_hints(reference, kp, cmp_path, sd_path, device, dtype)
    sync(device)
    total = time.perf_counter() - start
    return {"traj_s_per_frame": traj / (frames - 1), "hints_s_per_frame": total / (frames - 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tile", type=int, default=4)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--real-size", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.real_size:
        import sampler as sampler_bench  # bench/sampler.py

        model = sampler_bench.real_size_model(torch.float16, device)
        cn = random_controlnet(model)
        height, width = 1024, 576
    else:
        model, cn = tiny_setup(torch.float32, device)
        height, width = 112, 64
    result = measure(model, cn, args.frames, height, width, args.steps, args.tile, args.overlap)
    result.update(one_off_hints(args.frames, height, width, device, model.dtype))
    print(f"DisPose bench on {device} ({'real size' if args.real_size else 'tiny models'}), {width}×{height}, "
          f"{args.frames} frames, tile {args.tile}/{args.overlap}, {args.steps} steps")
    for key, value in result.items():
        print(f"  {key:32s} {value:.4f}" if isinstance(value, float) else f"  {key:32s} {value}")


if __name__ == "__main__":
    main()
