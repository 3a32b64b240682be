"""The sample inputs the templates use, where ComfyUI's file loaders find them.

The pack ships ``example_workflows/inputs/`` (a drawn reference image, a driving video, an SMPL motion file, all
made by this project). The templates name them ``motionguide/<file>``, a sub-folder of ComfyUI's input folder, so
their first Run works: when ComfyUI loads the pack, :func:`install_sample_inputs` copies each sample there if no
file of that name exists yet (a user's file of the same name is never replaced). Outside ComfyUI (tests, the
command line) nothing is copied anywhere; :func:`sample_input` lets the headless loaders read ``motionguide/<file>``
straight from the pack instead.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from . import comfy_adapter as adapter

logger = logging.getLogger(__name__)

SAMPLES_DIR = adapter.PACK_ROOT / "example_workflows" / "inputs"
SUBFOLDER = "motionguide"  # under ComfyUI's input folder; templates name the files "motionguide/<file>"


def sample_names() -> list[str]:
    """The shipped sample files (names only)."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.is_file() and not p.name.startswith("."))


def sample_input(name) -> Path | None:
    """The shipped file behind a template's ``motionguide/<file>`` value, else None. Read-only: the pack's own
    file, never a path the user typed."""
    if not isinstance(name, str):
        return None
    parts = Path(name.replace("\\", "/")).parts
    if len(parts) != 2 or parts[0] != SUBFOLDER or parts[1] not in sample_names():
        return None
    return SAMPLES_DIR / parts[1]


def _copy_new(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` only when ``target`` does not exist, atomically (temp file + a link that fails
    on an existing name), so a user's file is never replaced, even by a race."""
    if target.exists() or target.is_symlink():
        return False
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temp)
        try:
            os.link(temp, target)  # fails with FileExistsError instead of overwriting
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if target.exists():
                return False
            os.replace(temp, target)
            return True
        return True
    finally:
        temp.unlink(missing_ok=True)


def install_sample_inputs(input_dir: str | os.PathLike | None = None) -> list[Path]:
    """Copy the samples into ``<ComfyUI input>/motionguide/`` where absent; returns the files written.

    Without ``input_dir`` it runs only inside ComfyUI (``folder_paths`` importable) and does nothing elsewhere, so
    importing the pack in tests or the command line never writes into a folder of the current directory. Never
    raises: a read-only input folder costs the samples, not the pack (one log line)."""
    if input_dir is None:
        folder_paths = adapter._comfy_module("folder_paths")
        if folder_paths is None:
            return []
        try:
            input_dir = folder_paths.get_input_directory()
        except Exception as exc:  # noqa: BLE001 - an odd ComfyUI build must not stop the pack from loading
            logger.info("[MotionGuide] sample inputs not installed: no input folder (%s)", exc)
            return []
    target_dir = Path(input_dir) / SUBFOLDER
    written = []
    try:
        names = sample_names()
        if names:
            target_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            if _copy_new(SAMPLES_DIR / name, target_dir / name):
                written.append(target_dir / name)
    except OSError as exc:
        logger.info("[MotionGuide] sample inputs not copied into %s (%s); the templates' samples are in %s.",
                    target_dir, exc, SAMPLES_DIR)
        return written
    if written:
        logger.info("[MotionGuide] copied %d sample input(s) for the templates into %s", len(written), target_dir)
    return written
