"""What a geometry adapter costs in the sampler: the same run with and without an adapter, side by side.

Tiny SVD + MimicMotion files (headless/tiny_models/svd.py) unless ``--svd``/``--checkpoint`` name real ones; the
adapter reads depth, normal, semantic and mask (Champ's encoder widths, the UNet's conv_in width). Rows alternate
(plain, adapter, plain, adapter, …) so load drift hits both; the best of ``--repeats`` runs is reported, and the
adapter's share: its once-per-run encoder pass over every frame, and the additions per UNet call.

    /work/main/.venv/bin/python bench/geometry_adapter.py [--frames 16] [--size 64x112] [--steps 3] [--device cuda]
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
import torch  # noqa: E402
from motionguide.headless.tiny_models.svd import build_tiny_mimicmotion, build_tiny_svd  # noqa: E402
from motionguide.pipelines.guidance.geometry_adapter import AdapterConfig, GeometryAdapter, GeometryGuidance  # noqa: E402
from motionguide.pipelines.mimicmotion.loading import load_motion_model  # noqa: E402
from motionguide.pipelines.mimicmotion.sampler import MimicMotionPipeline, SamplerOptions  # noqa: E402

MAPS = ("depth", "normal", "semantic", "mask")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="64x112", help="WIDTHxHEIGHT")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tile", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--unet-batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--svd", help="an SVD-XT 1.1 folder (default: tiny files)")
    parser.add_argument("--checkpoint", help="MimicMotion_1-1.pth (default: tiny files)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    dtype = getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        svd = args.svd or build_tiny_svd(Path(tmp) / "svd")
        checkpoint = args.checkpoint or build_tiny_mimicmotion(Path(tmp) / "mm.pth", svd)
        model = load_motion_model(svd, checkpoint, dtype=dtype, device=args.device)
    width_in = model.unet.conv_in.out_channels
    g = torch.Generator().manual_seed(0)
    reference = (torch.rand(1, 3, height, width, generator=g) * 255).to(torch.uint8)
    poses = (torch.rand(args.frames, 3, height, width, generator=g) * 255).to(torch.uint8)
    maps = {m: (torch.rand(args.frames, height, width, 3, generator=g) * 255).to(torch.uint8) for m in MAPS}
    adapter = GeometryAdapter(AdapterConfig(maps=MAPS, out_channels=width_in))
    params = sum(p.numel() for p in adapter.parameters())
    pipe = MimicMotionPipeline(model)
    run = dict(num_inference_steps=args.steps, tile_size=args.tile, tile_overlap=min(2, args.tile - 1), seed=0,
               options=SamplerOptions(unet_batch=args.unet_batch))

    def timed(guidance):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = pipe(reference, poses, guidance=guidance, **run)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    timed(None)  # warm-up (kernels, allocator)
    plain, guided, same = [], [], True
    for _ in range(args.repeats):
        t, base = timed(None)
        plain.append(t)
        t, out = timed([GeometryGuidance(adapter, maps, model=model)])
        guided.append(t)
        same = same and torch.equal(out.latents, base.latents)
    # the adapter's own once-per-run pass over every frame
    module = GeometryGuidance(adapter, maps, model=model)
    start = time.perf_counter()
    module.prepare(model.device, model.dtype, model.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    encode = time.perf_counter() - start
    print(f"device {args.device} {args.dtype}, {args.frames} frames at {width}×{height}, {args.steps} steps, tile "
          f"{args.tile}, unet_batch {args.unet_batch}, {base.unet_calls} UNet calls; adapter {len(MAPS)} maps, "
          f"{params / 1e6:.2f} M parameters, conv_in width {width_in}")
    print(f"sampler without adapter: {min(plain):.3f} s (best of {args.repeats})")
    print(f"sampler with adapter:    {min(guided):.3f} s  ratio {min(guided) / min(plain):.3f}")
    print(f"adapter encoder pass over all frames: {encode:.3f} s; zero-initialised adapter bit-identical: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
