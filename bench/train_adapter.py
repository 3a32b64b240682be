"""Proof that the geometry maps carry information through the adapter (a bench, not a test).

A synthetic dataset made with the built-in Anny body: several motions (bench/make_motions.py) × several body
shapes, rendered at the tiny model's size; each video frame is the body's clay shading under a light that turns
during the clip (so the pixels depend on the body's geometry), over a per-clip background. Two runs on the tiny
SVD + MimicMotion models with identical steps, seeds, data order and trainable parameters (adapter + the tiny
UNet: a tiny random UNet cannot denoise when frozen), one reading the maps and one reading zeros in their place.
Reported: the held-out clips' denoising MSE ‖D(x + σε) − x‖² at fixed σ, and the wall time.

The tiny VAE's ``scaling_factor`` is first set so that this dataset's latents have unit std (see
:func:`calibrate_latent_scale`): with the builder's 0.18215 (the real SD/SVD VAE's factor) the random tiny VAE gives
latents of std ≈ 0.04, so at σ = 1 the clean latent is ~0.2% of the noisy input's variance, every model's loss is
the noise it fails to cancel, and maps (or any other conditioning) cannot change it measurably.

Then the same config for a few steps in one process with batch 2 and in 2 processes (``accelerate launch
--multi_gpu --num_processes 2`` on a CPU-only machine: gloo) with batch 1 each: the same global batch, so the losses
must agree.

    python bench/train_adapter.py [--steps 600] [--work DIR] [--skip-ddp] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
for path in (ROOT, BENCH):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv
cli.load_pack()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from make_motions import MOTIONS  # noqa: E402
from motionguide.headless.tiny_models.svd import TINY_SIZE, build_tiny_mimicmotion, build_tiny_svd  # noqa: E402
from motionguide.pipelines.dwpose.draw import draw_pose_maps  # noqa: E402
from motionguide.pipelines.render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints  # noqa: E402
from motionguide.pipelines.smpl.body.anny_cache import load_anny_body  # noqa: E402
from motionguide.pipelines.smpl.body.phenotype import PHENOTYPE_LABELS  # noqa: E402
from motionguide.pipelines.training.clip_writer import to_uint8_frames, write_clip  # noqa: E402
from motionguide.pipelines.training.config import config_from_dict  # noqa: E402
from motionguide.pipelines.training.trainer import Trainer  # noqa: E402

SHAPES = {
    "adult": {"gender": 0.5, "age": 0.67, "muscle": 0.5, "weight": 0.5, "height": 0.5, "proportions": 0.5},
    "tall": {"gender": 0.1, "age": 0.7, "muscle": 0.6, "weight": 0.5, "height": 0.95, "proportions": 0.7},
    "heavy": {"gender": 0.3, "age": 0.6, "muscle": 0.6, "weight": 0.98, "height": 0.45, "proportions": 0.4},
    "child": {"gender": 0.5, "age": 0.25, "muscle": 0.4, "weight": 0.45, "height": 0.4, "proportions": 0.3},
}
SIGMAS = [0.2, 0.5, 1.0, 2.0, 5.0]
MID_SIGMA = 1.0


def clay_video(normal: np.ndarray, mask: np.ndarray, index: int) -> np.ndarray:
    """``[F,H,W,3]`` uint8: clay shading ``0.15 + 0.85·max(0, n·l(t))`` with a light turning by 120° over the
    clip, a per-clip tint, over a per-clip flat background."""
    rng = np.random.default_rng(index)
    frames = normal.shape[0]
    n = normal * 2.0 - 1.0  # normal-map axes: x right, y up, z towards the camera
    start = rng.uniform(0, 2 * np.pi)
    angle = start + np.linspace(0, 2 * np.pi / 3, frames)
    light = np.stack([np.sin(angle), np.full(frames, 0.4), np.cos(angle)], 1)
    light /= np.linalg.norm(light, axis=1, keepdims=True)
    shade = 0.15 + 0.85 * np.clip(np.einsum("fhwc,fc->fhw", n, light), 0, 1)
    tint = rng.uniform(0.6, 1.0, 3)
    background = rng.uniform(0.1, 0.5)
    image = np.where(mask[..., None] > 0.5, shade[..., None] * tint, background)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_dataset(root: Path, frames: int = 24) -> Path:
    body = load_anny_body()
    width, height = TINY_SIZE
    index = 0
    for m, (motion, make) in enumerate(sorted(MOTIONS.items())):
        for s, shape in enumerate(list(SHAPES)[m % 2::2]):  # two shapes per motion, alternating
            seq = make(frames)
            seq["phenotype"] = np.array([SHAPES[shape][k] for k in PHENOTYPE_LABELS], np.float32)
            maps = render_sequence_maps(body, seq, width=width, height=height,
                                        maps=("depth", "normal", "semantic", "mask"))
            normal, mask = maps["normal"].numpy(), maps["mask"].numpy()
            video = clay_video(normal, mask, index)
            skeleton = draw_pose_maps(sequence_to_pose_keypoints(body, seq, width=width, height=height), width, height)
            write_clip(root, f"{motion}_{shape}", video, {
                "depth": to_uint8_frames(maps["depth"])[..., None], "normal": to_uint8_frames(maps["normal"]),
                "semantic": to_uint8_frames(maps["semantic"]), "mask": to_uint8_frames(maps["mask"])[..., None],
                "skeleton": skeleton}, fps=seq["fps"], info={"motion": motion, "shape": shape})
            index += 1
    return root


def calibrate_latent_scale(svd: Path, dataset: Path, frames_per_clip: int = 6) -> tuple[float, float]:
    """Set the tiny VAE's ``scaling_factor`` so that the dataset's latents have unit standard deviation, as SVD's
    own factor does for real images (its EDM preconditioning assumes σ_data = 1). The builder's 0.18215 belongs to
    the real VAE: on this random tiny VAE it leaves the latents with a std of about 0.04, so at σ = 1 the clean
    signal is ~0.2% of the noise's variance and nothing the model is told about the clean video can matter.
    Returns (latent std with the builder's factor, the new factor)."""
    from motionguide.pipelines.mimicmotion.loading import load_svd_base
    from motionguide.pipelines.mimicmotion.preprocess import to_unit_range
    from motionguide.pipelines.training import data as ds

    config_file = svd / "vae" / "config.json"
    config = json.loads(config_file.read_text())
    old = float(config["scaling_factor"])
    vae = load_svd_base(svd, torch.float32, None).vae
    latents = []
    with torch.no_grad():
        for clip in ds.read_dataset(dataset):
            index = np.linspace(0, clip.frames - 1, frames_per_clip).round().astype(int)
            frames = np.stack([ds._read_png(clip.path / "frames" / f"{i:06d}.png") for i in index])
            pixels = to_unit_range(torch.from_numpy(frames).permute(0, 3, 1, 2))
            latents.append(vae.encode(pixels).latent_dist.mode())
    std = float(torch.cat(latents).std())
    config["scaling_factor"] = 1.0 / std
    config_file.write_text(json.dumps(config, indent=2))
    return std * old, 1.0 / std


# Settings (both runs identical; only `zero_maps` differs):
# - σ: ln σ ~ N(0, 1.2²) instead of SVD's N(0.7, 1.6²), so the training σs cover the evaluated 0.2…5 around the
#   reported mid σ = 1 (about half of the samples fall in 0.45…2.2);
# - a narrower adapter (block widths 8, 16, 32, 64 instead of Champ's 16, 32, 96, 256): a third of the time per step
#   at 64×112 px, same structure and zero-initialised conv_out;
# - 2 frames per sample (the reference + one frame of the clip) and lr 2e-3: ~2× the steps of 4 frames in the time.
LEARNING_RATE, ADAPTER_LEARNING_RATE, NUM_FRAMES = 2e-3, 0.0, 2
BLOCK_CHANNELS, P_MEAN, P_STD = [8, 16, 32, 64], 0.0, 1.2


def run_config(work: Path, svd: Path, mm: Path, name: str, steps: int, zero_maps: bool, **train) -> dict:
    return {"dataset": str(work / "dataset"), "svd": str(svd), "mimicmotion": str(mm),
            "output_dir": str(work / "runs" / name), "run_name": name,
            "adapter": {"maps": ["depth", "normal", "semantic", "mask"], "zero_maps": zero_maps,
                        "block_channels": BLOCK_CHANNELS},
            "data": {"width": TINY_SIZE[0], "height": TINY_SIZE[1], "num_frames": NUM_FRAMES, "frame_stride": 2,
                     "reference": "random", "holdout": 2},
            "train": {"steps": steps, "batch_size": 2, "learning_rate": LEARNING_RATE,
                      "adapter_learning_rate": ADAPTER_LEARNING_RATE, "mixed_precision": "no",
                      "gradient_checkpointing": False, "train_unet": True, "checkpoint_every": steps,
                      "seed": 0, "max_grad_norm": 1.0, **train},
            "objective": {"condition_dropout": 0.0, "hand_weight": 0.0, "p_mean": P_MEAN, "p_std": P_STD},
            "validation": {"every": steps, "sigmas": SIGMAS, "windows": 3}}


def train_run(work, svd, mm, name, steps, zero_maps) -> tuple[dict, float]:
    shutil.rmtree(work / "runs" / name, ignore_errors=True)
    trainer = Trainer(config_from_dict(run_config(work, svd, mm, name, steps, zero_maps)), progress=True)
    started = time.perf_counter()
    result = trainer.train()
    return result["validation"], time.perf_counter() - started


DDP_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import cli
cli.load_pack()
from motionguide.pipelines.training.config import config_from_dict
from motionguide.pipelines.training.trainer import Trainer
config = config_from_dict(json.loads({config!r}))
trainer = Trainer(config, progress=False)
trainer.setup()
losses = [trainer.train_step() for _ in range({steps})]
if trainer.accelerator.is_main_process:
    names = [n for n, _ in trainer.trainable]
    params = dict(trainer.unwrapped.named_parameters())
    norm = sum(float(params[n].detach().double().pow(2).sum()) for n in names)
    print("RESULT " + json.dumps({{"losses": losses, "param_sq_norm": norm,
                                  "processes": trainer.accelerator.num_processes,
                                  "type": str(trainer.accelerator.distributed_type)}}))
"""


def ddp_check(work: Path, svd: Path, mm: Path, steps: int = 3) -> dict:
    results = {}
    for processes, batch in ((1, 2), (2, 1)):
        config = run_config(work, svd, mm, f"ddp{processes}", steps, False, batch_size=batch)
        script = work / f"ddp_{processes}.py"
        script.write_text(DDP_SCRIPT.format(root=str(ROOT), config=json.dumps(config), steps=steps))
        # accelerate 1.16 sends `--cpu --num_processes 2` to its single-process launcher (CPU multi-process goes
        # through mpirun there); `--multi_gpu` starts the processes with torchrun and, with no GPU, the trainer's
        # Accelerator(cpu=True) joins them over gloo (DistributedType.MULTI_CPU)
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
                    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    "--multi_gpu" if processes > 1 else "--cpu"]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        done = subprocess.run([*launcher, str(script)], capture_output=True, text=True, env=env, timeout=900)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"accelerate launch ({processes} processes) failed:\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")
        results[processes] = json.loads(line[len("RESULT "):])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--work", default=str(BENCH / "train_adapter_work"))
    parser.add_argument("--skip-ddp", action="store_true")
    parser.add_argument("--skip-runs", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (on a machine shared with other "
                        "work, 1 can be several times faster than 2)")
    parser.add_argument("--lr", type=float, default=LEARNING_RATE)
    parser.add_argument("--adapter-lr", type=float, default=ADAPTER_LEARNING_RATE, help="0: the same as --lr")
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help="frames per training sample")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    globals().update(LEARNING_RATE=args.lr, ADAPTER_LEARNING_RATE=args.adapter_lr, NUM_FRAMES=args.frames)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"torch threads: {torch.get_num_threads()}, cpu count: {os.cpu_count()}")
    started = time.perf_counter()
    svd = build_tiny_svd(work / "svd")
    mm = build_tiny_mimicmotion(work / "MimicMotion_1-1.pth", svd)
    if not (work / "dataset" / "manifest.jsonl").is_file():
        make_dataset(work / "dataset")
    before, factor = calibrate_latent_scale(svd, work / "dataset")
    print(f"tiny VAE latent std on this dataset with the builder's scaling_factor 0.18215: {before:.4f}; "
          f"scaling_factor set to {factor:.4g} (unit std, σ_data = 1 as SVD's preconditioning assumes)")
    made = time.perf_counter() - started
    print(f"dataset + tiny models: {made:.1f} s ({len(list((work / 'dataset').glob('*/clip.json')))} clips)")
    if not args.skip_runs:
        with_maps, t1 = train_run(work, svd, mm, "maps", args.steps, zero_maps=False)
        without, t2 = train_run(work, svd, mm, "zero_maps", args.steps, zero_maps=True)
        print(f"\nheld-out denoising MSE after {args.steps} steps (2 held-out clips × 3 windows, fixed noise):")
        print(f"{'sigma':>6} {'maps':>10} {'zero maps':>10} {'maps/zero':>10}")
        for sigma in SIGMAS:
            a, b = with_maps[sigma], without[sigma]
            print(f"{sigma:>6g} {a:>10.5f} {b:>10.5f} {a / b:>10.3f}")
        gap = 1 - with_maps[MID_SIGMA] / without[MID_SIGMA]
        print(f"mid σ = {MID_SIGMA}: the run with maps is {100 * gap:.1f}% lower (target ≥ 20%)")
        print(f"wall time: maps run {t1:.0f} s, zero-maps run {t2:.0f} s, total with data "
              f"{time.perf_counter() - started:.0f} s")
    if not args.skip_ddp:
        res = ddp_check(work, svd, mm)
        one, two = res[1], res[2]
        print("\nsame global batch (2), 3 steps: 1 process × batch 2 vs 2 processes (gloo) × batch 1")
        for k, (a, b) in enumerate(zip(one["losses"], two["losses"])):
            print(f"  step {k + 1}: {a:.8f}  {b:.8f}  |diff| {abs(a - b):.2e}")
        print(f"  trainable Σp²: {one['param_sq_norm']:.10f}  {two['param_sq_norm']:.10f}")
        print(f"  processes: {one['processes']} ({one['type']}) vs {two['processes']} ({two['type']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
