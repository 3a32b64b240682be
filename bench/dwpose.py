#!/usr/bin/env python3
"""DWPose stage benchmark: frames/s of detect + pose + draw on a clip, and batched vs per-person pose inference.

Runs on the tiny ONNX models (built into a temporary folder) and, when present, on the real models in
$MOTIONGUIDE_MODELS_DIR/dwpose (yolox_l.onnx, dw-ll_ucoco_384.onnx). Ratios are measured side by side in one run.

    /work/main/.venv/bin/python bench/dwpose.py [--frames 16] [--people 4] [--device auto]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv

cli.load_pack()

import numpy as np  # noqa: E402
from motionguide.headless.tiny_models.dwpose import build_tiny_dwpose, person_image  # noqa: E402
from motionguide.pipelines.dwpose import draw  # noqa: E402
from motionguide.pipelines.dwpose.wholebody import Wholebody  # noqa: E402


def clip(frames: int, width: int, height: int, people: int) -> np.ndarray:
    out = []
    for f in range(frames):
        blobs = [((i + 0.5) / people + 0.01 * f, 0.5, 0.6 / people, 0.7) for i in range(people)]
        out.append(person_image(width, height, blobs=blobs, seed=f))
    return np.stack(out)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(label: str, folder: Path, args) -> None:
    estimator = Wholebody(folder / "yolox_l.onnx", folder / "dw-ll_ucoco_384.onnx", args.device)
    frames = clip(args.frames, args.width, args.height, args.people)
    estimator(frames[0])  # warm-up
    detect_s = best_of(lambda: estimator.detect_video(frames), 2)
    poses = estimator.detect_video(frames)
    draw_s = best_of(lambda: [draw.draw_pose_map(p, args.width, args.height) for p in poses], 2)
    people = [p.num_people for p in poses]
    print(f"[{label}] provider {estimator.provider}; {args.frames} frames {args.width}×{args.height}, "
          f"people/frame {min(people)}–{max(people)}")
    print(f"  detect+pose: {args.frames / detect_s:7.2f} frames/s   draw: {args.frames / draw_s:7.2f} frames/s   "
          f"whole stage: {args.frames / (detect_s + draw_s):7.2f} frames/s")

    image = frames[0]
    h, w = image.shape[:2]
    boxes = np.array([[w * i / args.people, 0, w * (i + 1) / args.people, h, 1.0] for i in range(args.people)])
    crops, centers, scales = estimator.pose.preprocess(image, boxes)
    if not estimator.pose.dynamic_batch:
        print("  pose model has a fixed batch: per-person only")
        return
    batched = best_of(lambda: estimator.pose.inference(crops, batched=True), 5)
    single = best_of(lambda: estimator.pose.inference(crops, batched=False), 5)
    print(f"  pose inference, {args.people} people: batched {batched * 1e3:8.2f} ms, per-person {single * 1e3:8.2f} ms"
          f"  → per-person / batched = {single / batched:5.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--width", type=int, default=576)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("tiny models", build_tiny_dwpose(Path(tmp) / "dwpose"), args)
    real = Path(os.environ.get("MOTIONGUIDE_MODELS_DIR", ROOT / "models")) / "dwpose"
    if (real / "yolox_l.onnx").is_file() and (real / "dw-ll_ucoco_384.onnx").is_file():
        run("real models", real, args)
    else:
        print(f"[real models] not found in {real}; skipped")


if __name__ == "__main__":
    main()
