"""``python cli.py dataset build VIDEOS_DIR OUT_DIR`` and ``python cli.py train CONFIG.yaml``.

Training needs ``accelerate`` and ``peft`` (``requirements-train.txt``; ``scripts/setup_env.sh`` installs them).
Several GPUs: ``accelerate launch cli.py train CONFIG.yaml`` (accelerate's own launcher; also for several machines).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..nodes import comfy_adapter as adapter
from .execute import _print_progress

logger = logging.getLogger("motionguide.cli")

ADAPTERS_FOLDER = "motionguide_adapters"
DWPOSE_FILES = ("yolox_l.onnx", "dw-ll_ucoco_384.onnx")


def _apply_models_dir(args) -> None:
    if getattr(args, "models_dir", None):
        adapter.set_models_dir(args.models_dir)


def _first_file(key: str, name: str) -> Path | None:
    for base in adapter.model_folder_paths(key):
        if (base / name).is_file():
            return base / name
    return None


def _default_hmr2() -> Path | None:
    for base in adapter.model_folder_paths("hmr2"):
        if base.is_dir():
            files = sorted(p for p in base.rglob("*") if p.suffix in (".ckpt", ".pt", ".pth", ".safetensors"))
            if files:
                return files[0]
    return None


def cmd_dataset_build(args) -> int:
    from ..pipelines.smpl.body.anny_cache import AnnyUnavailable, load_anny_body
    from ..pipelines.training.dataset_build import BuildOptions, build_dataset

    _apply_models_dir(args)
    detector = Path(args.detector) if args.detector else _first_file("dwpose", DWPOSE_FILES[0])
    pose_model = Path(args.pose_model) if args.pose_model else _first_file("dwpose", DWPOSE_FILES[1])
    if detector is None or pose_model is None:
        folders = ", ".join(str(p) for p in adapter.model_folder_paths("dwpose"))
        print(f"error: DWPose files {DWPOSE_FILES} not found in {folders}. Download them (python cli.py models "
              "download dwpose) or pass --detector / --pose-model.", file=sys.stderr)
        return 1
    hmr2 = Path(args.hmr2) if args.hmr2 else _default_hmr2()
    motion_dir = Path(args.motion_dir) if args.motion_dir else None
    if hmr2 is None and motion_dir is None:
        print("warning: no HMR2 checkpoint (models/hmr2/) and no --motion-dir: no clip has a body motion, so every "
              "clip will be skipped. Give motion files per clip (--motion-dir) or an HMR2 checkpoint (--hmr2).",
              file=sys.stderr)
    try:
        body = load_anny_body(adapter.model_folder_paths("anny")[0],
                              callback=lambda d, t: _print_progress(d, t, "Anny cache"))
    except (AnnyUnavailable, PermissionError) as exc:
        print(f"error: the built-in body is unavailable: {exc}", file=sys.stderr)
        return 1
    options = BuildOptions(detector=detector, pose_model=pose_model, motion_dir=motion_dir, hmr2=hmr2,
                           width=args.width, height=args.height, max_frames=args.max_frames,
                           every_nth=args.every_nth, device=args.device)
    from tqdm import tqdm

    bar = tqdm(unit="video", desc="dataset")

    def progress(done, total, name):
        bar.total = total
        bar.n = done
        bar.set_postfix_str(name)
        bar.refresh()

    try:
        report = build_dataset(args.videos_dir, args.out_dir, options, body, callback=progress)
    except (FileNotFoundError, ValueError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    print(f"built {len(report['built'])} clips, {len(report['skipped_existing'])} already there, "
          f"{len(report['failed'])} skipped (see {Path(args.out_dir) / 'report.json'})")
    for failure in report["failed"]:
        print(f"  skipped {failure['video']}: {failure['reason']}")
    return 0 if report["built"] or report["skipped_existing"] else 1


def cmd_train(args) -> int:
    from ..pipelines.training.config import load_config
    from ..pipelines.training.trainer import Trainer

    _apply_models_dir(args)
    try:
        config = load_config(args.config)
        if not config.export_dir:
            config.export_dir = str(adapter.model_folder_paths(ADAPTERS_FOLDER)[0])
        result = Trainer(config).train()
    except KeyboardInterrupt:
        print("interrupted: run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result["adapter"] is not None:
        print(f"trained {result['steps']} steps; adapter: {result['adapter']} (Load Geometry Adapter lists "
              f"files in models/{ADAPTERS_FOLDER}/)")
    return 0


def add_arguments(sub, dirs) -> None:
    dataset = sub.add_parser("dataset", help="make a training dataset from videos (see `dataset build --help`)")
    dsub = dataset.add_subparsers(dest="dataset_command", required=True)
    build = dsub.add_parser("build", help="DWPose → body motion → smoothing → maps per video, one folder per "
                                          "clip")
    build.add_argument("videos_dir", help="folder of videos (.mp4, .mov, .webm, …)")
    build.add_argument("out_dir", help="dataset folder (made if missing; finished clips are skipped on a rerun)")
    build.add_argument("--motion-dir", help="motion files named after the videos (<stem>.npz/.pkl/.pt/.npy or a "
                                            "folder of HMR2 .npy): used instead of estimating the motion")
    build.add_argument("--hmr2", help="HMR2 checkpoint (default: the first file in models/hmr2/)")
    build.add_argument("--detector", help="DWPose detector ONNX (default models/dwpose/yolox_l.onnx)")
    build.add_argument("--pose-model", help="DWPose pose ONNX (default models/dwpose/dw-ll_ucoco_384.onnx)")
    build.add_argument("--width", type=int, default=0, help="resize + centre-crop frames to this width first")
    build.add_argument("--height", type=int, default=0, help="… and this height (both or neither)")
    build.add_argument("--max-frames", type=int, default=0, help="read at most this many frames per video")
    build.add_argument("--every-nth", type=int, default=1, help="keep every n-th frame")
    build.add_argument("--device", default="cpu", help="cpu or cuda (DWPose, HMR2, renderer)")
    dirs(build, inputs=False)
    build.set_defaults(handler=cmd_dataset_build)

    train = sub.add_parser("train", help="train a geometry adapter (accelerate; `accelerate launch cli.py train` "
                                         "for several GPUs)")
    train.add_argument("config", help="training YAML (see models_config/train_adapter.yaml)")
    dirs(train, inputs=False)
    train.set_defaults(handler=cmd_train)
