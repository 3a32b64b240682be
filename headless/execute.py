"""Running a workflow from the command line: the node classes it may use, where it reads and writes (previews in a
temp folder emptied per run), progress on stderr, Ctrl-C as Cancel, failures without a traceback, and the files it
wrote. Shared by ``cli.py run`` and the demo."""
from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

from ..nodes import comfy_adapter as adapter

logger = logging.getLogger("motionguide.cli")


def node_classes() -> dict[str, type]:
    """The pack's nodes plus stand-ins for the core/VHS file nodes (the pack wins on a name clash)."""
    import importlib

    from .core_standins import STANDIN_CLASSES

    pack = importlib.import_module(__package__.rpartition(".")[0])
    return {**STANDIN_CLASSES, **pack.NODE_CLASS_MAPPINGS}


_LAST_TENTH: dict[str, int] = {}


def _print_progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    bar = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}"
    if not sys.stderr.isatty():  # a log file (CI, nohup): one line per tenth, not one per update
        tenth = 10 * done // max(total, 1)
        if _LAST_TENTH.get(label) == tenth and done < total:
            return
        _LAST_TENTH[label] = tenth
        sys.stderr.write(bar + "\n")
    else:
        sys.stderr.write("\r" + bar + ("\n" if done >= total else ""))
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


def written_files(result, kind: str = "output") -> list[str]:
    """Files the workflow saved as outputs (``kind="temp"``: its previews in the temp folder)."""
    files = []
    for ui in result.ui.values():
        for key in ("gifs", "images", "files"):
            for entry in ui.get(key, []) or []:
                if isinstance(entry, dict) and "filename" in entry and entry.get("type", "output") == kind:
                    files.append(str(adapter.directory_of_type(kind) / entry.get("subfolder", "") / entry["filename"]))
    return files


def print_written(result) -> list[str]:
    files = written_files(result)
    for path in files:
        print(f"wrote {path}")
    previews = written_files(result, "temp")
    if previews:
        print(f"previews: {len(previews)} files in {adapter.temp_directory()} (emptied at the next run)")
    return files


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

    from ..nodes.model_check import MODEL_INPUTS
    from .workflow_runner import NodeExecutionError, WorkflowError

    if isinstance(exc, WorkflowError):
        print(f"error: {_without_repeats(exc)}", file=sys.stderr)
        return 2
    print(f"error: {exc}", file=sys.stderr)
    if isinstance(exc, NodeExecutionError):
        if verbose and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        else:
            # the model-file hint only where a model file can be the cause (a loader node), not for a bad image
            loader = exc.class_type in {cls for cls, _ in MODEL_INPUTS}
            print("  (`python cli.py -v ...` shows the full traceback"
                  + ("; `python cli.py doctor` checks the model files)" if loader else ")"), file=sys.stderr)
    return 2


def _without_repeats(exc) -> str:
    """A WorkflowError's text with the list of missing model files (which every failing loader's message carries)
    printed once, at the end."""
    summary_start = "\nThis workflow lacks "
    lines, summary = ["Workflow is invalid:"], ""
    for problem in exc.problems:
        text = str(problem)
        if summary_start in problem.message:
            head, _, rest = problem.message.partition(summary_start)
            summary = summary or summary_start.lstrip("\n") + rest
            text = str(type(problem)(problem.node_id, problem.class_type, problem.kind, head, problem.input_name))
        lines.append(f"  - {text}")
    return "\n".join(lines) + (f"\n{summary}" if summary else "")
