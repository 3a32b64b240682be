"""Names for new output files: inside the output folder, numbered like ComfyUI's (``prefix_00001.ext``)."""
from __future__ import annotations

import os
from pathlib import Path


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
