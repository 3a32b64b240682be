#!/usr/bin/env python3
"""Sampler benchmark, measured side by side in one run.

Prints: wall time per step vs the time of its UNet calls alone (overhead ratio), UNet calls per step, batched vs
unbatched tiles speed ratio, the PoseNet feature cache (128 channels before ``final_proj`` instead of the 320
of its output: bytes per frame here and at 576×1024, pinned or not), and peak memory for N and 4N frames (GPU:
``torch.cuda.max_memory_allocated``; CPU: peak resident set size sampled during the run, above the level before it).

    /work/main/.venv/bin/python bench/sampler.py [--frames 12] [--steps 3] [--tile 4] [--overlap 2] [--size 64]
    /work/main/.venv/bin/python bench/sampler.py --real-size   # SVD-XT sizes, random weights (needs a big GPU)
"""
import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv

cli.load_pack()

import torch  # noqa: E402
from motionguide.pipelines.mimicmotion import loading  # noqa: E402
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class UNetTimer:
    """Sums the wall time of every UNet call (synchronised on GPU) with forward hooks; ``spans`` keeps each call's
    (start, end)."""

    def __init__(self, unet, device):
        self.device, self.total, self.calls, self._start, self.spans = device, 0.0, 0, 0.0, []
        self.handles = [unet.register_forward_pre_hook(self._pre), unet.register_forward_hook(self._post)]

    def _pre(self, *args):
        sync(self.device)
        self._start = time.perf_counter()

    def _post(self, *args):
        sync(self.device)
        end = time.perf_counter()
        self.total += end - self._start
        self.calls += 1
        self.spans.append((self._start, end))

    def close(self):
        for h in self.handles:
            h.remove()


class PeakRSS:
    """Samples /proc/self/statm every millisecond; peak above the starting level, bytes."""

    def __init__(self):
        self.page = 4096
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def tiny_model(dtype, device):
    from motionguide.headless.tiny_models.svd import build_tiny_mimicmotion, build_tiny_svd

    tmp = Path(tempfile.mkdtemp(prefix="mg_bench_"))
    svd = build_tiny_svd(tmp / "svd")
    ckpt = build_tiny_mimicmotion(tmp / "MimicMotion_1-1.pth", svd)
    return loading.load_motion_model(svd, ckpt, dtype=dtype, device=device)


def real_size_model(dtype, device):
    """SVD-XT 1.1 + MimicMotion at real sizes with random weights, built straight on the device."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from motionguide.pipelines.mimicmotion.pose_net import PoseNet
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = loading.BUNDLED_SVD_CONFIG

    def read(name):
        return {k: v for k, v in json.loads((cfg / name).read_text()).items() if not k.startswith("_")}

    with torch.device(device):
        unet = UNetSpatioTemporalConditionModel(**read("unet/config.json")).to(dtype).eval()
        vae = AutoencoderKLTemporalDecoder(**read("vae/config.json")).to(dtype).eval()
        clip_cfg = {k: v for k, v in read("image_encoder/config.json").items() if k != "architectures"}
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_cfg)).to(dtype).eval()
        pose = PoseNet(320).to(dtype).eval()
    scheduler = json.loads((cfg / "scheduler/scheduler_config.json").read_text())
    return loading.MotionModel(unet=unet, pose_net=pose, vae=vae, image_encoder=clip, scheduler_config=scheduler,
                               image_mean=loading.CLIP_MEAN, image_std=loading.CLIP_STD, dtype=dtype,
                               device=torch.device(device))


def make_inputs(frames, args):
    g = torch.Generator().manual_seed(0)
    h, w = args.height, args.width
    reference = torch.randint(0, 256, (1, 3, h, w), generator=g, dtype=torch.uint8)
    poses = torch.randint(0, 256, (frames, 3, h, w), generator=g, dtype=torch.uint8)
    return reference, poses


def run(pipe, frames, args, options, inputs=None):
    reference, poses = inputs if inputs is not None else make_inputs(frames, args)
    timer = UNetTimer(pipe.model.unet, pipe.model.device)
    loop = {}
    original = pipe._denoise

    def timed(*a, **k):
        sync(pipe.model.device)
        start = time.perf_counter()
        result = original(*a, **k)
        sync(pipe.model.device)
        loop["s"] = time.perf_counter() - start
        return result

    pipe._denoise = timed
    try:
        out = pipe(reference, poses, num_inference_steps=args.steps, tile_size=args.tile, tile_overlap=args.overlap,
                   seed=0, options=options)
    finally:
        pipe._denoise = original
        timer.close()
    return out, loop["s"], timer.total, timer.calls


def pose_cache_report(pipe, frames, args):
    """Runs one step and measures the PoseNet cache the sampler keeps: bytes per frame, channels, pinned."""
    from motionguide.pipelines.mimicmotion.pose_guidance import PoseGuidance

    seen = {}
    original = PoseGuidance.prepare

    def record(self, *a, **k):
        original(self, *a, **k)
        cache = self.features
        seen.update(bytes=cache.numel() * cache.element_size(), channels=cache.shape[1], frames=cache.shape[0],
                    pinned=cache.is_pinned() if cache.device.type == "cpu" and torch.cuda.is_available() else None,
                    device=str(cache.device))

    PoseGuidance.prepare = record
    try:
        run(pipe, frames, argparse.Namespace(**{**vars(args), "steps": 1}), SamplerOptions())
    finally:
        PoseGuidance.prepare = original
    out_channels = pipe.model.pose_net.final_proj.out_channels
    per_frame = seen["bytes"] / seen["frames"]
    real = {c: c * (1024 // 8) * (576 // 8) * 2 for c in (128, 320)}  # MimicMotion at 576×1024, fp16
    return (f"  PoseNet cache: {seen['channels']} channels per pixel (PoseNet output: {out_channels}; the cache keeps "
            f"the narrower of the 128 before final_proj and the output): {per_frame / 1024:.1f} KiB/frame here, on "
            f"{seen['device']}, pinned: {seen['pinned']}. MimicMotion (320 wide) at 576×1024 fp16: "
            f"{real[128] / 1e6:.2f} MB/frame instead of {real[320] / 1e6:.2f} MB (−{1 - 128 / 320:.0%}; a 35 s clip "
            f"≈ 526 frames: {526 * real[128] / 1e9:.2f} GB instead of {526 * real[320] / 1e9:.2f} GB)")


def peak_memory(pipe, frames, args):
    device = pipe.model.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run(pipe, frames, args, SamplerOptions())
        return torch.cuda.max_memory_allocated(device) - base, "GPU allocated"
    inputs = make_inputs(frames, args)  # the caller's pose maps are not the sampler's memory
    with PeakRSS() as rss:
        run(pipe, frames, args, SamplerOptions(), inputs)
    return rss.peak - rss.base, "CPU RSS"


def peak_memory_fresh(frames, args):
    """CPU: the allocator keeps freed pages, so each size is measured in a fresh process (model loaded first)."""
    cmd = [sys.executable, __file__, "--probe-frames", str(frames)] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
        if k not in ("probe_frames", "real_size") and v is not None]
    if args.real_size:
        cmd.append("--real-size")
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1]), "CPU RSS"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tile", type=int, default=4)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--real-size", action="store_true", help="SVD-XT sizes with random weights (GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--probe-frames", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    model = real_size_model(dtype, device) if args.real_size else tiny_model(dtype, device)
    model.device = device
    pipe = MimicMotionPipeline(model)
    if args.probe_frames:  # child process of peak_memory_fresh
        print(peak_memory(pipe, args.probe_frames, args)[0])
        return
    kind = "real-size random" if args.real_size else "tiny"
    print(f"sampler bench: {kind} model, {device}, {dtype}, {args.frames} frames {args.width}×{args.height}, "
          f"{args.steps} steps, tile {args.tile}/{args.overlap}")

    run(pipe, min(args.frames, args.tile), argparse.Namespace(**{**vars(args), "steps": 1}), SamplerOptions())  # warm-up
    run(pipe, args.frames, args, SamplerOptions(unet_batch=1000))  # warm the batched shapes too
    out, loop_s, unet_s, calls = run(pipe, args.frames, args, SamplerOptions())
    tiles = len(out.tiles)
    print(f"  tiles: {tiles}; UNet calls per step: {calls / args.steps:.0f} (reference: 2 × tiles = {2 * tiles})")
    print(f"  time per step: {loop_s / args.steps * 1e3:.1f} ms; its UNet calls alone: {unet_s / args.steps * 1e3:.1f} ms;"
          f" overhead ratio {loop_s / unet_s:.3f} (target ≤ 1.03)")
    batch = 2 * tiles
    _, loop_b, _, calls_b = run(pipe, args.frames, args, SamplerOptions(unet_batch=batch))
    print(f"  batched (unet_batch={batch}, {calls_b / args.steps:.0f} call/step) vs unbatched: "
          f"speed ratio {loop_s / loop_b:.2f}×")
    print(pose_cache_report(pipe, args.frames, args))
    if device.type == "cuda":
        mem_n, what = peak_memory(pipe, args.frames, args)
        mem_4n, _ = peak_memory(pipe, 4 * args.frames, args)
    else:
        mem_n, what = peak_memory_fresh(args.frames, args)
        mem_4n, _ = peak_memory_fresh(4 * args.frames, args)
    latent_bytes = 3 * args.frames * 4 * (args.height // 8) * (args.width // 8) * torch.finfo(dtype).bits // 8
    pose_bytes = 3 * args.frames * min(model.pose_net.feature_channels, model.pose_net.final_proj.out_channels) \
        * (args.height // 8) * (args.width // 8) \
        * torch.finfo(dtype).bits // 8
    print(f"  peak {what}: N={args.frames}: {mem_n / 2**20:.1f} MiB; 4N={4 * args.frames}: {mem_4n / 2**20:.1f} MiB; "
          f"growth {(mem_4n - mem_n) / 2**20:.1f} MiB (extra latents {latent_bytes / 2**20:.2f} MiB, "
          f"extra PoseNet cache {pose_bytes / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
