"""Command line: run workflows headless, check the installation, run the demo, queue batches on ComfyUI servers.

    python cli.py run WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--targets NODES] [--models-dir DIR]
    python cli.py doctor [--models-dir DIR]
    python cli.py demo [--models-dir DIR] [--smoke]
    python cli.py batch ...            (queue jobs on ComfyUI servers over HTTP; see `batch --help`)
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

from . import comfy_adapter as adapter

logger = logging.getLogger("motionguide.cli")

PACK_ROOT = adapter.PACK_ROOT

def node_classes() -> dict[str, type]:
    """The pack's nodes plus stand-ins for the core/VHS file nodes (the pack wins on a name clash)."""
    import importlib

    from .core_standins import STANDIN_CLASSES

    pack = importlib.import_module(__package__.rpartition(".")[0])
    return {**STANDIN_CLASSES, **pack.NODE_CLASS_MAPPINGS}


def _apply_dirs(args) -> None:
    if getattr(args, "models_dir", None):
        adapter.set_models_dir(args.models_dir)
    if getattr(args, "input_dir", None):
        os.environ["MOTIONGUIDE_INPUT_DIR"] = str(Path(args.input_dir).resolve())
    if getattr(args, "output_dir", None):
        os.environ["MOTIONGUIDE_OUTPUT_DIR"] = str(Path(args.output_dir).resolve())
    if getattr(args, "temp_dir", None):
        os.environ["MOTIONGUIDE_TEMP_DIR"] = str(Path(args.temp_dir).resolve())


TEMP_MARKER = ".motionguide-temp"  # a temp folder holding this file is ours to clear


def fresh_temp_directory() -> tuple[Path, bool]:
    """ComfyUI's temp semantics for a headless run: previews go to the temp folder, which is emptied when a run
    starts (ComfyUI empties its own at server start). Returns (folder, emptied). The default folder
    (``<system temp>/motionguide``) and folders this tool created (they hold ``TEMP_MARKER``) are emptied; a
    non-empty folder of someone else's (``--temp-dir``) is used as it is, with a warning."""
    import shutil

    folder = adapter.temp_directory()
    ours = (folder / TEMP_MARKER).is_file() or folder == adapter.default_temp_directory()
    if folder.is_dir() and ours:
        for entry in folder.iterdir():
            if entry.name == TEMP_MARKER:
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
            except OSError as exc:  # another user's file in a shared /tmp folder: leave it
                logger.debug("could not remove %s: %s", entry, exc)
    elif folder.is_dir() and any(folder.iterdir()):
        logger.warning("Temp folder %s was not made by MotionGuide; previews are added to it and it is not emptied.",
                       folder)
        return folder, False
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TEMP_MARKER).write_text("MotionGuide previews; emptied at the start of every cli.py run/demo\n")
    return folder, True


def announce_folders() -> None:
    """Say where a headless run reads and writes, before it starts (and empty the previews folder)."""
    temp, emptied = fresh_temp_directory()
    print(f"inputs: {adapter.input_directory()} (--input-dir, or give a file path with --set)\n"
          f"outputs: {adapter.output_directory()} (--output-dir)\n"
          f"previews: {temp} (--temp-dir; {'emptied at the start of every run' if emptied else 'kept: not ours'})",
          file=sys.stderr)


def report_failure(exc: BaseException, verbose: bool = False) -> int:
    """What ``run`` and ``demo`` print for a failed workflow (exit code 2), instead of a traceback."""
    import traceback

    from .workflow_runner import NodeExecutionError

    print(f"error: {exc}", file=sys.stderr)
    if isinstance(exc, NodeExecutionError):
        if verbose and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        else:
            print("  (`python cli.py -v ...` shows the full traceback; `python cli.py doctor` checks the model files)",
                  file=sys.stderr)
    return 2


def _print_progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def execute(workflow: dict, targets: list[str] | None = None):
    """Run a workflow with progress on stderr and Ctrl-C mapped to the pack's Cancel."""
    from .workflow_runner import NodeExecutionError, run_workflow

    adapter.progress_listener = _print_progress
    previous = signal.signal(signal.SIGINT, lambda *_: adapter.request_interrupt())
    started = time.perf_counter()

    def announce(node_id, class_type):
        print(f"[{time.perf_counter() - started:7.1f}s] node {node_id}: {class_type}", file=sys.stderr)

    try:
        return run_workflow(workflow, node_classes(), targets=targets, on_node=announce)
    except NodeExecutionError as exc:
        if isinstance(exc.__cause__, adapter.Interrupted):  # Ctrl-C inside a node is a cancel, not a node failure
            raise exc.__cause__ from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        adapter.progress_listener = None
        adapter.clear_interrupt()


def _written_files(result, kind: str = "output") -> list[str]:
    """Files the workflow saved as outputs (``kind="temp"``: its previews in the temp folder)."""
    files = []
    for ui in result.ui.values():
        for key in ("gifs", "images", "files"):
            for entry in ui.get(key, []) or []:
                if isinstance(entry, dict) and "filename" in entry and entry.get("type", "output") == kind:
                    files.append(str(adapter.directory_of_type(kind) / entry.get("subfolder", "") / entry["filename"]))
    return files


def print_written(result) -> list[str]:
    files = _written_files(result)
    for path in files:
        print(f"wrote {path}")
    previews = _written_files(result, "temp")
    if previews:
        print(f"previews: {len(previews)} files in {adapter.temp_directory()} (emptied at the next run)")
    return files


# ------------------------------------------------------------------------------------------------------------
# run


RUN_FAILURES = (ValueError, RuntimeError, OSError)  # WorkflowError, NodeExecutionError, missing files, disk errors


def cmd_run(args) -> int:
    from .workflow_runner import load_workflow, set_input

    _apply_dirs(args)
    try:
        workflow = load_workflow(args.workflow)
        classes = node_classes()
        for assignment in args.set or []:
            set_input(workflow, assignment, classes)
        announce_folders()
        result = execute(workflow, targets=[t for t in args.targets.split(",") if t] if args.targets else None)
    except RUN_FAILURES as exc:
        return report_failure(exc, args.verbose)
    except adapter.Interrupted:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"ran {len(result.order)} nodes")
    print_written(result)
    return 0


# ------------------------------------------------------------------------------------------------------------
# doctor


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
        return getattr(module, "__version__", "installed")
    except Exception as exc:  # report, never crash the doctor
        return f"NOT AVAILABLE ({type(exc).__name__}: {exc})"


def _cuda_device_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _opengl_backends() -> list[str]:
    import ctypes.util

    found = []
    for name, lib in (("EGL", "EGL"), ("OSMesa", "OSMesa"), ("GLX/libGL", "GL")):
        found.append(f"{name}: {'found' if ctypes.util.find_library(lib) else 'missing'}")
    return found


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def model_report() -> list[tuple[str, bool, str]]:
    """(model id, present, detail) for every registry entry, with the exact expected path(s)."""
    rows = []
    for entry in adapter.model_registry()["models"]:
        folders = adapter.model_folder_paths(entry["folder"])
        names = [entry["name"], *entry.get("alternatives", [])]
        hit = next((base / n for base in folders for n in names if (base / n).exists()), None)
        if hit is None:
            expected = folders[0] / entry["name"]
            size = f", {entry['size'] / 1e9:.2f} GB" if entry.get("size") else ""
            optional = " (optional)" if entry.get("optional") else ""
            rows.append((entry["id"], False, f"missing{optional}: {expected}{size} — from {entry['source']}"))
            continue
        detail = f"{hit} ({_size(hit) / 1e6:.1f} MB)"
        missing_parts = [f for f in entry.get("required_files", []) if not (hit / f).exists()]
        if missing_parts:
            rows.append((entry["id"], False, f"incomplete: {hit} lacks {', '.join(missing_parts)}"))
            continue
        if entry.get("size") and hit.is_file() and hit.stat().st_size != entry["size"]:
            detail += f" — size differs from the official {entry['size']} bytes (a conversion?)"
        rows.append((entry["id"], True, detail))
    return rows


def cmd_doctor(args) -> int:
    _apply_dirs(args)
    import platform

    print(f"MotionGuide doctor — Python {platform.python_version()} on {platform.platform()}")
    try:
        import torch

        cuda = torch.cuda.is_available()
        devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if cuda else "none"
        print(f"torch {torch.__version__}; CUDA available: {cuda} (devices: {devices}; built for CUDA {torch.version.cuda})")
    except ImportError as exc:
        print(f"torch: NOT AVAILABLE ({exc})")
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        print(f"onnxruntime {onnxruntime.__version__}; providers: {', '.join(providers)}")
        if "CUDAExecutionProvider" not in providers:
            print("  note: no CUDAExecutionProvider — DWPose runs on the CPU (install onnxruntime-gpu matching your CUDA).")
        elif not _cuda_device_present():
            print("  note: CUDAExecutionProvider is listed but no CUDA device is usable here — DWPose falls back to the CPU.")
    except ImportError as exc:
        print(f"onnxruntime: NOT AVAILABLE ({exc})")
    print("OpenGL for pyrender: " + "; ".join(_opengl_backends())
          + f"; PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM', '(unset)')}")
    for name in ("diffusers", "transformers", "smplx", "trimesh", "pyrender", "cv2", "numpy", "safetensors"):
        print(f"{name}: {_version(name)}")
    from .registry import UNAVAILABLE

    import importlib

    pack = importlib.import_module(__package__.rpartition(".")[0])
    print(f"nodes loaded: {len(pack.NODE_CLASS_MAPPINGS)}/{len(pack.NODE_TABLE)}")
    for node_id, reason in UNAVAILABLE.items():
        print(f"  unavailable: {node_id}: {reason}")
    print("model folders: " + "; ".join(f"{k}={', '.join(map(str, adapter.model_folder_paths(k)))}"
                                        for k in [*adapter.MODEL_FOLDERS, *adapter.SHARED_FOLDERS]))
    for model_id, present, detail in model_report():
        print(f"  [{'ok' if present else '--'}] {model_id}: {detail}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# demo


def cmd_demo(args) -> int:
    from .demo import run_demo

    _apply_dirs(args)
    try:
        return run_demo(smoke=args.smoke, output_dir=Path(args.output_dir) if args.output_dir else None)
    except RUN_FAILURES as exc:
        return report_failure(exc, args.verbose)
    except adapter.Interrupted:
        print("interrupted", file=sys.stderr)
        return 130


# ------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py", description="MotionGuide command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def dirs(p, inputs=True):
        p.add_argument("--models-dir", help="ComfyUI-style models directory (default: $MOTIONGUIDE_MODELS_DIR, "
                                            "ComfyUI/models when installed in custom_nodes, else ./models)")
        if inputs:
            p.add_argument("--input-dir", help="where input files (images, videos) are read from (default ./input); "
                                               "a --set value may also be the path of your own file")
            p.add_argument("--output-dir", help="where outputs are written (default ./output)")
            p.add_argument("--temp-dir", help="where previews go, emptied at the start of every run "
                                              "(default: $MOTIONGUIDE_TEMP_DIR, else <system temp>/motionguide)")

    run = sub.add_parser("run", help="run an API-format workflow headless")
    run.add_argument("workflow", help="API-format workflow JSON (ComfyUI: Workflow > Export (API))")
    run.add_argument("--set", action="append", metavar="NODE.INPUT=VALUE",
                     help="override an input (repeatable); NODE is a node id or its title, e.g. "
                          "--set \"Pose-Guided Sampler.seed=7\" or --set \"Reference image.image=/path/me.png\"")
    run.add_argument("--targets", help="comma-separated node ids or titles to compute; only they and the nodes "
                                       "they need are checked and run (default: all nodes)")
    dirs(run)
    run.set_defaults(handler=cmd_run)

    doctor = sub.add_parser("doctor", help="check torch/CUDA, onnxruntime, OpenGL and the model files")
    dirs(doctor, inputs=False)
    doctor.set_defaults(handler=cmd_doctor)

    demo = sub.add_parser("demo", help="animate the shipped sample with real weights when present, else a "
                                       "labelled smoke run on tiny models; writes a video")
    demo.add_argument("--smoke", action="store_true", help="use the tiny models even when real weights exist")
    dirs(demo)
    demo.set_defaults(handler=cmd_demo)

    try:
        from . import batch_client
    except ImportError as exc:  # aiohttp missing: the rest of the CLI still works
        logger.debug("batch client unavailable: %s", exc)
    else:
        batch = sub.add_parser("batch", help="queue a job list on ComfyUI servers over HTTP")
        batch_client.add_arguments(batch)
        batch.set_defaults(handler=batch_client.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.handler(args)
