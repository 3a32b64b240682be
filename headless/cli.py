"""Command line: run workflows headless, check the installation, run the demo, queue batches on ComfyUI servers.

    python cli.py run WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--targets NODES] [--models-dir DIR]
    python cli.py doctor [--models-dir DIR]
    python cli.py models {list,download} [NAME ...] [--workflow W] [--models-dir DIR]
    python cli.py anny [--models-dir DIR]        (build once, or check, the built-in body's cache)
    python cli.py nodes [--inputs]               (the pack's nodes: id, display name, category, inputs)
    python cli.py demo [--models-dir DIR] [--smoke]
    python cli.py batch ...            (queue jobs on ComfyUI servers over HTTP; see `batch --help`)
    python cli.py dataset build VIDEOS_DIR OUT_DIR [--motion-dir DIR]   (training data, one folder per clip)
    python cli.py train CONFIG.yaml    (train a geometry adapter; `accelerate launch cli.py train` for several GPUs)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..nodes import comfy_adapter as adapter
from .execute import _print_progress, announce_folders, execute, node_classes, print_written, report_failure

logger = logging.getLogger("motionguide.cli")

PACK_ROOT = adapter.PACK_ROOT

def _apply_dirs(args) -> None:
    if getattr(args, "models_dir", None):
        adapter.set_models_dir(args.models_dir)
    if getattr(args, "input_dir", None):
        os.environ["MOTIONGUIDE_INPUT_DIR"] = str(Path(args.input_dir).resolve())
    if getattr(args, "output_dir", None):
        os.environ["MOTIONGUIDE_OUTPUT_DIR"] = str(Path(args.output_dir).resolve())
    if getattr(args, "temp_dir", None):
        os.environ["MOTIONGUIDE_TEMP_DIR"] = str(Path(args.temp_dir).resolve())


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


def cmd_doctor(args) -> int:
    from . import doctor

    _apply_dirs(args)
    return doctor.run()


def cmd_models(args) -> int:
    _apply_dirs(args)
    return args.models_handler(args)


def cmd_anny(args) -> int:
    """Build (once) or check the built-in body's cache."""
    _apply_dirs(args)
    from ..pipelines.smpl.body.anny_cache import AnnyUnavailable, cache_dir, cache_root, is_built
    from ..pipelines.smpl.body.loaders import ANNY, body_loader

    loader = body_loader(ANNY)
    folder = cache_dir(adapter.body_folder(loader.folder))
    if is_built(folder) and not args.load:
        print(f"Anny body cache ok in {cache_root(folder)} (size and hash verified)")
        return 0
    try:
        body = loader.load(adapter.body_folder(loader.folder),
                           callback=lambda done, total: _print_progress(done, total, "Anny cache"))
    except (AnnyUnavailable, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"\nAnny body ready: {body!r}")
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


# ------------------------------------------------------------------------------------------------------------
# nodes


def cmd_nodes(args) -> int:
    """Every node of the pack: id, display name, category (and its inputs with --inputs); unavailable ones too."""
    import importlib

    from ..nodes.registry import UNAVAILABLE

    pack = importlib.import_module(__package__.rpartition(".")[0])
    names = dict((node_id, name) for _, node_id, name in pack.NODE_TABLE)
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        print(f"{node_id:34} {names.get(node_id, node_id):32} {getattr(cls, 'CATEGORY', '')}")
        if args.inputs:
            spec = cls.INPUT_TYPES()
            for section in ("required", "optional"):
                for name, entry in (spec.get(section) or {}).items():
                    kind = entry[0] if isinstance(entry, (list, tuple)) else entry
                    kind = "choice" if isinstance(kind, (list, tuple)) else kind
                    print(f"    {name} ({kind}{', optional' if section == 'optional' else ''})")
    for node_id, reason in UNAVAILABLE.items():
        print(f"{node_id:34} UNAVAILABLE: {reason}")
    print(f"{len(pack.NODE_CLASS_MAPPINGS)} nodes; each has a help page in web/docs/<id>.md "
          "(docs/nodes.md lists every input and output)")
    return 0


class SuggestingParser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for a misspelt option or command (every option of every command is a
    candidate: the error is raised by the top parser)."""

    def _all_options(self) -> set[str]:
        options: set[str] = set()
        for action in self._actions:
            options.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    if isinstance(sub, SuggestingParser):
                        options |= sub._all_options()
        return options

    def error(self, message: str):
        import difflib

        hints = []
        if message.startswith("unrecognized arguments:"):
            known = sorted(self._all_options())
            for token in message.partition(":")[2].split():
                if token.startswith("-"):
                    close = difflib.get_close_matches(token.partition("=")[0], known, n=1, cutoff=0.6)
                    if close:
                        hints.append(f"{token.partition('=')[0]}: did you mean {close[0]}?")
        elif "invalid choice:" in message:
            wrong = message.split("invalid choice:", 1)[1].split("'")[1] if "'" in message else ""
            for action in self._actions:
                if action.choices and wrong:
                    close = difflib.get_close_matches(wrong, [str(c) for c in action.choices], n=1, cutoff=0.5)
                    if close:
                        hints.append(f"did you mean {close[0]!r}?")
                        break
        super().error(message + "".join(f"\n  {hint}" for hint in hints))


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(prog="cli.py", description="MotionGuide command line.")
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

    models = sub.add_parser("models", help="list the model files, or download them from their official sources "
                                           "(opt-in: nothing is ever downloaded unless you run this)")
    from . import models_download

    for command in models_download.add_arguments(models):
        dirs(command, inputs=False)
    models.set_defaults(handler=cmd_models)

    anny = sub.add_parser("anny", help="build (once, ~1 min), check or repair the built-in body's cache: "
                                       "~/.cache/anny, ComfyUI's models/anny when the pack is in ComfyUI, "
                                       "$ANNY_CACHE_DIR when set")
    anny.add_argument("--load", action="store_true", help="also load the body when the cache exists")
    dirs(anny, inputs=False)
    anny.set_defaults(handler=cmd_anny)

    nodes = sub.add_parser("nodes", help="list the pack's nodes (id, display name, category)")
    nodes.add_argument("--inputs", action="store_true", help="also list each node's inputs")
    nodes.set_defaults(handler=cmd_nodes)

    demo = sub.add_parser("demo", help="animate the shipped sample with real weights when present, else a "
                                       "labelled smoke run on tiny models; writes a video")
    demo.add_argument("--smoke", action="store_true", help="use the tiny models even when real weights exist")
    dirs(demo)
    demo.set_defaults(handler=cmd_demo)

    from . import training

    training.add_arguments(sub, dirs)

    try:
        from ..batch import client as batch_client
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
