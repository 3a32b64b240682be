"""HMR2 estimator benchmark: crop preprocessing vs network time, measured side by side in one run.

    /work/main/.venv/bin/python bench/hmr2.py [--full] [--frames 16]

Prints crops/s at 1280×720 (plain and anti-aliased), the windowed-blur speed-up over blurring the whole frame
(the reference's way, same pixels), tiny-network frames/s through the whole estimator, and with ``--full`` the
ViT-H forward time per crop (random weights; 2.7 GB of RAM) and the share of preprocessing in a frame.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv

cli.load_pack()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from motionguide.headless.tiny_models.hmr2 import build_tiny_hmr2  # noqa: E402
from motionguide.pipelines.smpl.estimate.hmr2 import HMR2Estimator  # noqa: E402
from motionguide.pipelines.smpl.estimate.hmr2_geometry import antialias_sigma, crop_affine, crop_person  # noqa: E402
from motionguide.pipelines.smpl.estimate.hmr2_vit import HMR2Config, HMR2Network  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402


def timed(fn, repeat):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="also time the full ViT-H network on CPU")
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(720, 1280, 3), dtype=np.uint8)
    center = np.array([640.0, 360.0])

    small, large = 400.0, 700.0  # crop sides: no blur (≤ 563 px) and anti-aliased (σ ≈ 0.87)
    t_plain = timed(lambda: crop_person(frame, center, small), 20)
    t_blur = timed(lambda: crop_person(frame, center, large), 10)

    def whole_frame_blur():
        sigma = antialias_sigma(large)
        blurred = gaussian_filter(frame.astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)
        return cv2.warpAffine(blurred, crop_affine(center, large), (256, 256), flags=cv2.INTER_LINEAR)

    t_whole = timed(whole_frame_blur, 5)
    print(f"crop 1280x720 → 256², no blur:        {1 / t_plain:8.1f} crops/s")
    print(f"crop 1280x720 → 256², anti-aliased:   {1 / t_blur:8.1f} crops/s")
    print(f"windowed blur vs whole-frame blur:    {t_whole / t_blur:8.2f}× faster (same pixels)")

    with tempfile.TemporaryDirectory() as tmp:
        estimator = HMR2Estimator.from_checkpoint(build_tiny_hmr2(Path(tmp) / "tiny.ckpt"), batch_size=8)
        frames = np.repeat(frame[None], args.frames, axis=0)
        boxes = [np.array([500.0, 150.0, 780.0, 650.0])] * args.frames
        t_tiny = timed(lambda: estimator.estimate(frames, boxes), 2)
        print(f"tiny network, whole estimator:        {args.frames / t_tiny:8.1f} frames/s ({args.frames} frames)")

    if args.full:
        with torch.device("meta"):
            network = HMR2Network(HMR2Config())
        network = network.to_empty(device="cpu").eval()
        for p in network.parameters():
            torch.nn.init.normal_(p, 0.0, 0.02)
        x = torch.randn(1, 3, 256, 256)
        t_net = timed(lambda: network(x), 2)
        n_params = sum(p.numel() for p in network.parameters())
        print(f"ViT-H HMR2 forward (CPU, fp32, 1 crop): {t_net:8.2f} s/crop  ({n_params / 1e6:.0f}M params, "
              f"{torch.get_num_threads()} threads)")
        print(f"preprocessing share of a frame:         {t_blur / (t_blur + t_net) * 100:8.2f} %")


if __name__ == "__main__":
    main()
