#!/usr/bin/env python3
"""One-command GPU check, for the day a GPU is at hand: no weights needed (real-size random weights).

Measures, each in its own time-boxed subprocess so a crash, an out-of-memory or a hang costs only that row:

- ``cuda_tests``: the CUDA-marked tests (``pytest -m gpu``).
- ``sampler_fp16`` / ``sampler_bf16``: the sampler at 576×1024 (portrait) with tiles 16 and 72 (two tiles each),
  unet_batch 1/2/4: ms per frame per UNet pass, achieved TFLOP/s (torch's FLOP counter) vs the card's peak,
  step time vs its UNet calls (overhead), and batched vs unbatched speed.
- ``sampler_memory``: peak device memory for N and 4N frames (fp16, tile 16) against the extra latents.
- ``decode``: chunked temporal VAE decode (chunks 8 and 4): peak memory and ms per frame.
- ``dwpose``: DWPose on onnxruntime's CUDA provider (tiny models): provider in use, frames/s.
- ``rasteriser``: the torch SMPL rasteriser on CUDA at 512×768: frames/s.
- ``hmr2``: the HMR2 ViT-H network per crop in fp16 and fp32.
- ``training``: one geometry-adapter training step at 576×1024, 16 frames (VAE encode, UNet + PoseNet + adapter
  forward and backward in bf16 autocast, AdamW on the adapter): steps/s and peak memory, with and without the
  UNet's gradient checkpointing.
- ``dispose``: DisPose's ControlNet in the sampler at 576×1024 (fp16, tile 16, random weights of the released
  layout): per-step time against the plain sampler (target ≤ 1.5×), against DisPose's own per-call work, and peak
  memory for N and 4N frames.

Prints one table and writes a JSON file. ``--dry-run`` runs every measurement's code path on the CPU at tiny
sizes (CI runs it), so the script has been executed end to end before it ever meets a GPU.

    bash bench/gpu_check.sh [--dry-run] [--json PATH] [--only sampler_fp16,decode] [--total-budget 450]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Wall-clock cap of each measurement's subprocess (seconds, real run); the total stays under 8 minutes.
BUDGET_S = {"info": 45, "cuda_tests": 110, "sampler_fp16": 110, "sampler_bf16": 90, "sampler_memory": 60,
            "decode": 45, "dwpose": 30, "rasteriser": 30, "hmr2": 45, "training": 70, "dispose": 60}
MEASUREMENTS = tuple(BUDGET_S)
DRY_BUDGET_S = 300
KILL_GRACE_S = 10  # after its own soft deadline a measurement's process is killed this much later

# Dense fp16/bf16 tensor-core peak, TFLOP/s (vendor data sheets, no sparsity), matched on the device name.
PEAK_TFLOPS = (("H200", 989.0), ("H100 SXM", 989.0), ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 756.0),
               ("GH200", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0), ("A10", 125.0), ("L4", 121.0),
               ("RTX 4090", 165.0), ("RTX 3090", 71.0), ("V100", 125.0), ("T4", 65.0))


# --------------------------------------------------------------------------------------------------------------
# Child side: one measurement, rows appended to a JSON-lines file as they are made


class Rows:
    """Appends one JSON object per line (flushed), so rows made before a timeout or crash survive."""

    def __init__(self, path: Path, measurement: str):
        self.path, self.measurement = path, measurement

    def add(self, config: str, **values) -> None:
        row = {"measurement": self.measurement, "config": config, "status": "ok", **values}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")

    def error(self, config: str, exc: BaseException) -> None:
        self.add(config, status="error", error=f"{type(exc).__name__}: {exc}"[:500],
                 where=traceback.format_exc(limit=-3)[-800:])


def _setup_pack():
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import cli

    cli.load_pack()


def _device(dry: bool):
    import torch

    if dry:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible to torch (torch.cuda.is_available() is False)")
    return torch.device("cuda")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> int:
    import torch

    if device.type != "cuda":
        return 0
    _sync(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def _peak_above(device, base: int):
    import torch

    if device.type != "cuda":
        return None
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - base


def _free(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _mib(n):
    return None if n is None else round(n / 2**20, 1)


def measure_info(rows: Rows, dry: bool, deadline: float) -> None:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "dry_run": dry}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", device_count=torch.cuda.device_count(),
                    peak_tflops=peak_tflops(props.name), cudnn=torch.backends.cudnn.version())
    try:
        import onnxruntime

        info.update(onnxruntime=onnxruntime.__version__, ort_providers=onnxruntime.get_available_providers())
    except Exception as exc:  # reported, not fatal
        info.update(onnxruntime=f"not importable: {exc}")
    rows.add("environment", **info)


def peak_tflops(name: str | None):
    for key, value in PEAK_TFLOPS:
        if name and key.lower() in name.lower():
            return value
    return None


def measure_cuda_tests(rows: Rows, dry: bool, deadline: float) -> None:
    if dry:
        rows.add("pytest -m gpu", status="skipped", note="dry run: the CUDA tests skip themselves without a GPU")
        return
    timeout = max(10.0, deadline - time.monotonic() - 5)
    env = {**os.environ, "MOTIONGUIDE_NO_COMFY": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-rfEs",
                           "tests"], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else proc.stderr[-300:]
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))][:10]
    rows.add("pytest -m gpu", status="ok" if proc.returncode in (0, 5) else "error", summary=summary,
             failures=failures, returncode=proc.returncode)


def _sampler_sizes(dry: bool):
    """(height, width, tiles, overlap, unet_batches, steps) of the sampler runs."""
    if dry:
        return 32, 32, (3,), 1, (1, 4), 1
    return 1024, 576, (16, 72), 6, (1, 2, 4), 2


_tiny_files: dict = {}


def _build_motion_model(dtype, device, dry: bool):
    """Real-size SVD-XT + MimicMotion with random weights on ``device``; the tiny test models for a dry run."""
    import sampler as sampler_bench  # bench/sampler.py

    if not dry:
        model = sampler_bench.real_size_model(dtype, device)
    else:
        from motionguide.headless.tiny_models.svd import build_tiny_mimicmotion, build_tiny_svd
        from motionguide.pipelines.mimicmotion.loading import load_motion_model

        if not _tiny_files:  # written once per process
            tmp = Path(tempfile.mkdtemp(prefix="mg_gpu_check_"))
            _tiny_files["svd"] = build_tiny_svd(tmp / "svd")
            _tiny_files["ckpt"] = build_tiny_mimicmotion(tmp / "MimicMotion_1-1.pth", _tiny_files["svd"])
        model = load_motion_model(_tiny_files["svd"], _tiny_files["ckpt"], dtype=dtype, device=device)
    model.device = device
    return model


def unet_flops_per_frame(model, tile: int, height: int, width: int) -> float:
    """FLOPs of one UNet pass (batch 1, ``tile`` frames) per frame, from torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    m = model
    h, w = height // m.vae_scale_factor, width // m.vae_scale_factor
    sample = torch.randn(1, tile, 8, h, w, device=m.device, dtype=m.dtype)
    embeds = torch.randn(1, 1, m.unet.config.cross_attention_dim, device=m.device, dtype=m.dtype)
    ids = torch.tensor([[6.0, 127.0, 0.0]], device=m.device, dtype=m.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        m.unet(sample, torch.tensor(1.0, device=m.device, dtype=m.dtype), encoder_hidden_states=embeds,
               added_time_ids=ids, return_dict=False)
    return counter.get_total_flops() / tile


def _inputs(frames: int, height: int, width: int):
    import torch

    g = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (1, 3, height, width), generator=g, dtype=torch.uint8)
    poses = torch.randint(0, 256, (frames, 3, height, width), generator=g, dtype=torch.uint8)
    return reference, poses


def _measure_sampler(rows: Rows, dry: bool, deadline: float, dtype_name: str) -> None:
    import sampler as sampler_bench  # bench/sampler.py
    import torch
    from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions

    device = _device(dry)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    height, width, tiles, overlap, batches, steps = _sampler_sizes(dry)
    model = _build_motion_model(dtype, device, dry)
    pipe = MimicMotionPipeline(model)
    peak = peak_tflops(torch.cuda.get_device_name(0)) if device.type == "cuda" else None
    for tile in tiles:
        frames = tile + (tile - overlap)  # exactly two tiles: 4 passes per step with guidance
        reference, poses = _inputs(frames, height, width)
        try:
            flops = unet_flops_per_frame(model, tile, height, width)
        except Exception as exc:
            rows.error(f"{dtype_name} tile {tile} FLOP count", exc)
            flops = None
        baseline = None
        for batch in batches:
            config = f"{dtype_name} {width}x{height} tile {tile} unet_batch {batch}"
            if time.monotonic() > deadline - 10:
                rows.add(config, status="skipped", note="time box reached")
                continue
            timer = sampler_bench.UNetTimer(model.unet, device)
            step_ends = []
            try:
                _sync(device)
                start = time.perf_counter()
                out = pipe(reference, poses, num_inference_steps=steps, tile_size=tile, tile_overlap=overlap,
                           seed=0, options=SamplerOptions(unet_batch=batch),
                           on_step=lambda i, n, x0: (_sync(device), step_ends.append(time.perf_counter())))
                ok = bool(torch.isfinite(out.latents).all())
            except Exception as exc:
                rows.error(config, exc)
                _free(device)
                continue
            finally:
                timer.close()
            # measure the last step (the first one warms kernels up when steps > 1)
            step_start = step_ends[-2] if len(step_ends) > 1 else start
            calls = [(a, b) for a, b in timer.spans if a >= step_start]
            unet_s = sum(b - a for a, b in calls)
            step_s = step_ends[-1] - step_start
            passes = 2 * len(out.tiles)
            ms_frame = unet_s / (passes * tile) * 1e3
            tflops = flops / (ms_frame / 1e3) / 1e12 if flops else None
            if tflops is not None:
                tflops = round(tflops, 1 if tflops >= 1 else 4)
            baseline = step_s if batch == 1 else baseline
            rows.add(config, ms_per_frame_pass=round(ms_frame, 3), unet_calls_per_step=len(calls),
                     step_s=round(step_s, 3), overhead=round(step_s / unet_s, 3) if unet_s else None,
                     tflops=tflops,
                     peak_tflops=peak, mfu=None if tflops is None or not peak else round(tflops / peak, 3),
                     batched_speedup=round(baseline / step_s, 3) if baseline else None, finite=ok,
                     gflop_per_frame_pass=None if flops is None else round(flops / 1e9, 3),
                     flops_per_frame_pass=None if flops is None else int(flops))
            _free(device)


def measure_sampler_fp16(rows, dry, deadline):
    _measure_sampler(rows, dry, deadline, "fp16")


def measure_sampler_bf16(rows, dry, deadline):
    _measure_sampler(rows, dry, deadline, "bf16")


def measure_sampler_memory(rows: Rows, dry: bool, deadline: float) -> None:
    import torch
    from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions

    device = _device(dry)
    height, width, tiles, overlap, _, _ = _sampler_sizes(dry)
    tile, frames = tiles[0], (2 if dry else 32)
    model = _build_motion_model(torch.float16 if not dry else torch.float32, device, dry)
    pipe = MimicMotionPipeline(model)
    if not dry:  # warm-up (kernels, allocator)
        pipe(*_inputs(tile, height, width), num_inference_steps=1, tile_size=tile, tile_overlap=overlap)
    peaks = {}
    for n in (frames, 4 * frames):
        config = f"peak memory {n} frames, tile {tile}, 1 step"
        try:
            reference, poses = _inputs(n, height, width)
            base = _reset_peak(device)
            out = pipe(reference, poses, num_inference_steps=1, tile_size=tile, tile_overlap=overlap,
                       options=SamplerOptions())
            peaks[n] = _peak_above(device, base)
            rows.add(config, peak_mib=_mib(peaks[n]), tiles=len(out.tiles),
                     note=None if device.type == "cuda" else "CPU: device peak not measured")
        except Exception as exc:
            rows.error(config, exc)
        _free(device)
    if len(peaks) == 2 and None not in peaks.values():
        h, w = height // model.vae_scale_factor, width // model.vae_scale_factor
        # 3N more frames × 4 latent-sized tensors (latents, scaled input, two fused sums), fp16
        extra_latents = 3 * frames * 4 * (4 * h * w) * 2
        rows.add(f"growth {frames} → {4 * frames} frames", growth_mib=_mib(peaks[4 * frames] - peaks[frames]),
                 extra_latents_mib=_mib(extra_latents))


def measure_dispose(rows: Rows, dry: bool, deadline: float) -> None:
    import dispose as dispose_bench  # bench/dispose.py
    import torch

    device = _device(dry)
    height, width, tiles, overlap, _, _ = _sampler_sizes(dry)
    tile, frames = tiles[0], (3 if dry else 16)
    dtype = torch.float32 if dry else torch.float16
    model = _build_motion_model(dtype, device, dry)
    config = f"DisPose vs plain sampler, {width}×{height}, {frames} frames, tile {tile}"
    try:
        cn = dispose_bench.random_controlnet(model, point_channels=32 if dry else 1280)
        result = dispose_bench.measure(model, cn, frames, height, width, 1, tile, overlap if not dry else 1,
                                       memory=not dry, rounds=1 if dry else 2)
        rows.add(config, ratio=round(result["ratio"], 3), per_call_work_ratio=round(result["per_call_work_ratio"], 3),
                 plain_s_per_step=round(result["plain_s_per_step"], 4),
                 dispose_s_per_step=round(result["dispose_s_per_step"], 4),
                 target="ratio <= 1.5", peak_n_mib=result.get("peak_n_mib"), peak_4n_mib=result.get("peak_4n_mib"),
                 note=None if device.type == "cuda" else "CPU dry run: times are not meaningful")
    except Exception as exc:
        rows.error(config, exc)
    _free(device)


def measure_decode(rows: Rows, dry: bool, deadline: float) -> None:
    import torch
    from motionguide.pipelines.mimicmotion.decode import decode_latents

    device = _device(dry)
    if dry:
        vae = _build_motion_model(torch.float32, device, True).vae
        dtype, frames, size = torch.float32, 4, (4, 4)
    else:
        from diffusers import AutoencoderKLTemporalDecoder
        from motionguide.pipelines.mimicmotion import loading

        config = json.loads((loading.BUNDLED_SVD_CONFIG / "vae" / "config.json").read_text())
        with torch.device(device):
            vae = AutoencoderKLTemporalDecoder(**{k: v for k, v in config.items() if not k.startswith("_")})
        vae = vae.to(torch.float16).eval()
        dtype, frames, size = torch.float16, 16, (128, 72)
    latents = torch.randn(frames, 4, *size, generator=torch.Generator().manual_seed(0))
    decode_latents(vae, latents[:2], device=device, dtype=dtype, chunk_size=2)  # warm-up
    for chunk in (8, 4) if not dry else (2,):
        config = f"decode {frames} frames, chunk {chunk}"
        if time.monotonic() > deadline - 5:
            rows.add(config, status="skipped", note="time box reached")
            continue
        try:
            base = _reset_peak(device)
            start = time.perf_counter()
            frames_out = decode_latents(vae, latents, device=device, dtype=dtype, chunk_size=chunk)
            _sync(device)
            seconds = time.perf_counter() - start
            rows.add(config, peak_mib=_mib(_peak_above(device, base)), ms_per_frame=round(seconds / frames * 1e3, 2),
                     shape=list(frames_out.shape))
        except Exception as exc:
            rows.error(config, exc)
        _free(device)


def measure_dwpose(rows: Rows, dry: bool, deadline: float) -> None:
    import numpy as np
    from motionguide.headless.tiny_models.dwpose import build_tiny_dwpose, person_image
    from motionguide.pipelines.dwpose.wholebody import Wholebody

    folder = build_tiny_dwpose(Path(tempfile.mkdtemp(prefix="mg_gpu_check_")) / "dwpose")
    estimator = Wholebody(folder / "yolox_l.onnx", folder / "dw-ll_ucoco_384.onnx", "cpu" if dry else "cuda")
    width, height, count = (192, 256, 2) if dry else (576, 1024, 16)
    frames = np.stack([person_image(width, height, seed=i) for i in range(count)])
    estimator(frames[0])  # warm-up (session, CUDA kernels)
    start = time.perf_counter()
    poses = estimator.detect_video(frames)
    seconds = time.perf_counter() - start
    wanted = "CPUExecutionProvider" if dry else "CUDAExecutionProvider"
    status = "ok" if estimator.provider == wanted else "error"
    rows.add(f"tiny DWPose {width}x{height}, {count} frames", status=status, provider=estimator.provider,
             frames_per_s=round(count / seconds, 2), people=[p.num_people for p in poses][:4],
             error=None if status == "ok" else f"{wanted} not in use (is onnxruntime-gpu installed for this CUDA?)")


def measure_rasteriser(rows: Rows, dry: bool, deadline: float) -> None:
    import render as render_bench  # bench/render.py
    import torch
    from motionguide.headless.tiny_models.smpl import build_synthetic_smpl
    from motionguide.pipelines.render.maps import render_maps
    from motionguide.pipelines.smpl.body.body_model import load_body_model
    from motionguide.pipelines.smpl.motion.posing import pose_sequence
    from motionguide.pipelines.smpl.motion.sequence import default_intrinsics

    device = _device(dry)
    frames = 2 if dry else 32
    width, height = render_bench.WIDTH, render_bench.HEIGHT
    body = load_body_model(build_synthetic_smpl(Path(tempfile.mkdtemp(prefix="mg_gpu_check_")) / "smpl"))
    vertices, _ = pose_sequence(body, render_bench.motion(frames))
    K = torch.from_numpy(default_intrinsics(width, height))

    def render():
        out = render_maps(vertices, body.faces, K, (width, height), vertex_labels=body.part_labels,
                          backend="torch", device=device, chunk_size=8)
        _sync(device)
        return out

    render()  # warm-up
    start = time.perf_counter()
    out = render()
    seconds = time.perf_counter() - start
    coverage = float((out["mask"] > 0).float().mean())
    rows.add(f"torch rasteriser {width}x{height}, {frames} frames, all maps", device=str(device),
             frames_per_s=round(frames / seconds, 1), coverage=round(coverage, 3))


def measure_hmr2(rows: Rows, dry: bool, deadline: float) -> None:
    import torch
    from motionguide.headless.tiny_models.hmr2 import TINY_CONFIG
    from motionguide.pipelines.smpl.estimate.hmr2_vit import HMR2Config, HMR2Network

    device = _device(dry)
    config = HMR2Config.from_dict(TINY_CONFIG) if dry else HMR2Config()
    batch = 2 if dry else 8
    with torch.device(device):
        network = HMR2Network(config).eval()
    for dtype in (torch.float16, torch.float32) if not dry else (torch.float32, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        label = f"HMR2 {'tiny' if dry else 'ViT-H'} {name}, batch {batch}"
        if time.monotonic() > deadline - 5:
            rows.add(label, status="skipped", note="time box reached")
            continue
        try:
            net = network.to(dtype)
            crops = torch.randn(batch, 3, 256, 256, device=device, dtype=dtype)
            with torch.no_grad():
                net(crops)  # warm-up
                base = _reset_peak(device)
                _sync(device)
                start = time.perf_counter()
                repeats = 3
                for _ in range(repeats):
                    out = net(crops)
                _sync(device)
            seconds = (time.perf_counter() - start) / repeats
            rows.add(label, ms_per_crop=round(seconds / batch * 1e3, 2), peak_mib=_mib(_peak_above(device, base)),
                     finite=bool(torch.isfinite(out["cam"]).all()))
        except Exception as exc:
            rows.error(label, exc)
        _free(device)


def measure_training(rows: Rows, dry: bool, deadline: float) -> None:
    import torch
    from motionguide.pipelines.guidance.geometry_adapter import AdapterConfig, GeometryAdapter
    from motionguide.pipelines.training.objective import denoised, edm_loss, edm_scalings
    from motionguide.pipelines.training.trainer import TrainModule

    device = _device(dry)
    height, width, frames = (64, 64, 3) if dry else (1024, 576, 16)
    dtype = torch.float32 if dry else torch.bfloat16
    model = _build_motion_model(dtype, device, dry)
    unet, vae = model.unet.requires_grad_(False), model.vae.requires_grad_(False)
    model.pose_net.requires_grad_(False)
    maps = ("depth", "normal", "semantic", "mask")
    adapter = GeometryAdapter(AdapterConfig(maps, out_channels=unet.config.block_out_channels[0])).to(device)
    module = TrainModule(unet, model.pose_net, adapter).train()
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(frames, 3, height, width, generator=g) * 2 - 1).to(device, dtype)
    pose = (torch.rand(frames, 3, height, width, generator=g) * 2 - 1).to(device, dtype)
    map_in = {m: torch.rand(frames, 3 if m in ("normal", "semantic") else 1, height, width, generator=g).to(device)
              for m in maps}
    dim = unet.config.cross_attention_dim
    embeds = torch.randn(1, 1, dim, generator=g).to(device, dtype)
    time_ids = torch.tensor([[6.0, 127.0, 0.02]], device=device, dtype=dtype)
    sigma = torch.tensor([1.0], device=device)

    def step():
        with torch.no_grad():
            x = torch.cat([vae.encode(pixels[i:i + 8]).latent_dist.mode() for i in range(0, frames, 8)])
            x = (x.float() * model.scaling_factor).unsqueeze(0)  # [1,F,4,h,w]
        noisy = x + sigma * torch.randn_like(x)
        s = edm_scalings(sigma)
        sample = torch.cat([noisy * s.c_in, x[:, :1].expand_as(x)], dim=2).to(dtype)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not dry):
            v = module(sample, s.c_noise.to(dtype), embeds, time_ids, pose, map_in, torch.ones(1, device=device))
        loss = edm_loss(denoised(noisy, v.float(), sigma), x, sigma).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for checkpointing in (False, True):
        label = f"train {width}×{height}, {frames} frames, checkpointing {'on' if checkpointing else 'off'}"
        if time.monotonic() > deadline - 10:
            rows.add(label, status="skipped", note="time box reached")
            continue
        try:
            if checkpointing:
                unet.enable_gradient_checkpointing()
            else:
                unet.disable_gradient_checkpointing()
            step()  # warm-up
            base = _reset_peak(device)
            _sync(device)
            start = time.perf_counter()
            repeats = 1 if dry else 3
            for _ in range(repeats):
                loss = step()
            _sync(device)
            seconds = (time.perf_counter() - start) / repeats
            rows.add(label, steps_per_s=round(1.0 / seconds, 3), peak_mib=_mib(_peak_above(device, base)),
                     finite=bool(torch.isfinite(loss)))
        except torch.OutOfMemoryError as exc:
            rows.add(label, status="skipped", note=f"out of memory: {str(exc)[:120]}")
        except Exception as exc:
            rows.error(label, exc)
        optimizer.zero_grad(set_to_none=True)
        _free(device)


def run_child(name: str, result: Path, dry: bool, budget: float) -> int:
    rows = Rows(result, name)
    deadline = time.monotonic() + budget
    try:
        _setup_pack()
        globals()[f"measure_{name}"](rows, dry, deadline)
    except BaseException as exc:  # reported as a row; the parent goes on with the next measurement
        rows.error("(whole measurement)", exc)
        return 1
    return 0


# --------------------------------------------------------------------------------------------------------------
# Parent side: time-boxed subprocesses, one table, one JSON file


def run_measurement(name: str, dry: bool, budget: float, result_dir: Path, in_process: bool = False) -> list[dict]:
    result = result_dir / f"{name}.jsonl"
    if in_process:  # no isolation and no hard kill: for the CPU dry run in the test suite
        start = time.monotonic()
        run_child(name, result, dry, budget)
        rows = [json.loads(line) for line in result.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows[-1]["seconds"] = round(time.monotonic() - start, 1)
        return rows
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--result", str(result),
           "--budget", str(budget)] + (["--dry-run"] if dry else [])
    start = time.monotonic()
    status, detail = None, ""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=budget + KILL_GRACE_S)
        if proc.returncode not in (0, 1):
            status, detail = "crashed", f"exit code {proc.returncode}: {output[-600:]}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group (its CUDA context dies with it)
        output, _ = proc.communicate()
        status, detail = "timeout", f"killed after {budget + KILL_GRACE_S:.0f} s"
    rows = []
    if result.is_file():
        rows = [json.loads(line) for line in result.read_text(encoding="utf-8").splitlines() if line.strip()]
    if status is not None:
        rows.append({"measurement": name, "config": "(process)", "status": status, "error": detail})
    if not rows:
        rows.append({"measurement": name, "config": "(process)", "status": "error",
                     "error": f"no result; output: {(output or '')[-600:]}"})
    for row in rows:
        row.setdefault("seconds", None)
    rows[-1]["seconds"] = round(time.monotonic() - start, 1)
    return rows


SHOWN = ("steps_per_s", "ms_per_frame_pass", "tflops", "mfu", "overhead", "batched_speedup", "peak_mib", "growth_mib",
         "extra_latents_mib", "ms_per_frame", "ms_per_crop", "frames_per_s", "provider", "summary", "device",
         "torch", "cuda", "memory_gib", "peak_tflops", "note", "error")


def table(rows: list[dict]) -> str:
    lines = [f"{'measurement':15s} {'config':44s} {'status':8s} values", "-" * 118]
    for row in rows:
        values = "; ".join(f"{k}={row[k]}" for k in SHOWN if row.get(k) is not None)
        lines.append(f"{row['measurement']:15s} {str(row['config'])[:44]:44s} {row['status']:8s} {values[:400]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: exercise every code path (CI)")
    parser.add_argument("--json", type=Path, default=None, help="result file (default output/gpu_check-<time>.json)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    parser.add_argument("--total-budget", type=float, default=440.0, help="seconds for everything (real run)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the measurements in this process (no time-box kill; for the CI dry run)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args.child, args.result, args.dry_run, args.budget)

    names = [n for n in args.only.split(",") if n] or list(MEASUREMENTS)
    unknown = sorted(set(names) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurements {unknown}; choose from {list(MEASUREMENTS)}")
    if "info" not in names:
        names.insert(0, "info")
    total = DRY_BUDGET_S if args.dry_run else args.total_budget
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = args.json or ROOT / "output" / f"gpu_check-{stamp}.json"
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mg_gpu_check_") as tmp:
        for i, name in enumerate(names):
            left = total - (time.monotonic() - started)
            reserve = 5.0 * (len(names) - i - 1)  # leave a little for the rest to report
            budget = min(BUDGET_S[name] * (2.0 if args.dry_run else 1.0), left - reserve - KILL_GRACE_S)
            if budget < 5:
                rows.append({"measurement": name, "config": "(process)", "status": "skipped",
                             "error": "total time budget used up"})
                continue
            print(f"[gpu_check] {name} (up to {budget:.0f} s)…", flush=True)
            rows.extend(run_measurement(name, args.dry_run, budget, Path(tmp), args.in_process))
    report = {"started": stamp, "dry_run": args.dry_run, "seconds": round(time.monotonic() - started, 1),
              "host": platform.node(), "rows": rows}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(table(rows))
    failed = [r for r in rows if r["status"] in ("error", "crashed", "timeout")]
    print(f"[gpu_check] {len(rows)} rows, {len(failed)} failed, {report['seconds']} s; JSON: {out_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
