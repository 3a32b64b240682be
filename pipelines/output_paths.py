"""New output files: names inside the output folder, numbered like ComfyUI's (``prefix_00001.ext``), and atomic
writing that never replaces an existing file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def unique_path(directory: str | os.PathLike, prefix: str, extension: str) -> Path:
    """``directory/<prefix>_00001<extension>`` with the first counter not taken; never an existing file or folder.

    ``prefix`` may hold sub-folders (created). A prefix that points outside ``directory`` (``../x``, an absolute
    path) is a ``ValueError``, as in ComfyUI's own save nodes.
    """
    root = Path(directory).resolve()
    stem = (root / (str(prefix).strip() or "MotionGuide")).resolve()
    if root not in stem.parents:
        raise ValueError(f"filename_prefix {prefix!r} points outside the output folder {root}.")
    stem.parent.mkdir(parents=True, exist_ok=True)
    counter = 1
    while True:
        path = stem.parent / f"{stem.name}_{counter:05d}{extension}"
        if not path.exists():
            return path
        counter += 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(path: str | os.PathLike) -> None:
    """mkstemp creates files 0600; give a finished file the permissions a plain open() would have."""
    os.chmod(path, 0o666 & ~_umask())


@contextlib.contextmanager
def new_file(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Write a file atomically: yields a temporary path beside ``path`` (same suffix) to write to; when the block ends
    without error it becomes ``path``, so the file appears whole or not at all. Without ``overwrite`` an existing
    ``path`` is never replaced (``FileExistsError``), even one that appears while writing. The temporary file is
    always removed."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; not overwriting it (choose another name).")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".tmp_", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        make_readable(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile
    finally:
        tmp.unlink(missing_ok=True)
