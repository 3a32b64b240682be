"""Running a workflow from the command line: the node classes it may use, progress on stderr, Ctrl-C as Cancel,
and the files it wrote. Shared by ``cli.py run`` and the demo."""
from __future__ import annotations

import signal
import sys
import time

from ..nodes import comfy_adapter as adapter


def node_classes() -> dict[str, type]:
    """The pack's nodes plus stand-ins for the core/VHS file nodes (the pack wins on a name clash)."""
    import importlib

    from .core_standins import STANDIN_CLASSES

    pack = importlib.import_module(__package__.rpartition(".")[0])
    return {**STANDIN_CLASSES, **pack.NODE_CLASS_MAPPINGS}


def _print_progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def execute(workflow: dict, targets: list[str] | None = None):
    """Run a workflow with progress on stderr and Ctrl-C mapped to the pack's Cancel."""
    from .workflow_runner import run_workflow

    adapter.progress_listener = _print_progress
    previous = signal.signal(signal.SIGINT, lambda *_: adapter.request_interrupt())
    started = time.perf_counter()

    def announce(node_id, class_type):
        print(f"[{time.perf_counter() - started:7.1f}s] node {node_id}: {class_type}", file=sys.stderr)

    try:
        return run_workflow(workflow, node_classes(), targets=targets, on_node=announce)
    finally:
        signal.signal(signal.SIGINT, previous)
        adapter.progress_listener = None
        adapter.clear_interrupt()


def written_files(result) -> list[str]:
    """Files the workflow saved as outputs (previews in the temp folder are left out)."""
    files = []
    for ui in result.ui.values():
        for key in ("gifs", "images", "files"):
            for entry in ui.get(key, []) or []:
                if isinstance(entry, dict) and "filename" in entry and entry.get("type", "output") == "output":
                    files.append(str(adapter.output_directory() / entry.get("subfolder", "") / entry["filename"]))
    return files
