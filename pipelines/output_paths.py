"""New output files: names inside the output folder, numbered like ComfyUI's (``prefix_00001.ext``), and atomic
writing that never replaces an existing file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


MAX_COUNTER = 10 ** 6


def unique_path(directory: str | os.PathLike, prefix: str, extension: str,
                check_cancel: Callable[[], None] | None = None) -> Path:
    """``directory/<prefix>_00001<extension>`` with the first counter not taken; never an existing file, folder or
    symbolic link (a dangling one included).

    ``prefix`` may hold sub-folders (created). A prefix that points outside ``directory`` (``../x``, an absolute
    path) is a ``ValueError``, as in ComfyUI's own save nodes, and so is a sub-folder blocked by a file or a broken
    symbolic link of the same name (the error names it). ``check_cancel`` is called every 1000 names.
    """
    root = Path(directory).resolve()
    bad = next((c for c in str(prefix) if ord(c) < 32 or c == "\x7f"), None)
    if bad is not None:
        raise ValueError(f"filename_prefix {prefix!r} holds the control character {bad!r} (U+{ord(bad):04X}), which "
                         "no file name may hold; remove it.")
    stem = Path(os.path.normpath(root / (str(prefix).strip() or "MotionGuide")))
    if root not in stem.parents:
        raise ValueError(f"filename_prefix {prefix!r} points outside the output folder {root}.")
    make_folder(stem.parent, root, prefix)
    for counter in range(1, MAX_COUNTER):
        path = stem.parent / f"{stem.name}_{counter:05d}{extension}"
        if not os.path.lexists(path):
            return path
        if check_cancel is not None and counter % 1000 == 0:
            check_cancel()
    raise FileExistsError(f"{stem}_*{extension}: all {MAX_COUNTER - 1} numbered names are taken; "
                          "choose another filename_prefix.")


def make_folder(folder: Path, root: Path, prefix: str = "") -> None:
    """Create ``folder`` (inside ``root``) and its parents; a part that exists as something other than a folder, or
    a symbolic link that leads out of ``root``, is a ``ValueError`` naming it (not mkdir's bare
    ``FileExistsError``)."""
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        if os.path.lexists(current) and not current.is_dir():
            kind = "a broken symbolic link" if current.is_symlink() else "a file"
            raise ValueError(f"Cannot save into {folder}: '{current}' is {kind}, not a folder. Rename or remove it, "
                             f"or choose another filename_prefix (now {prefix!r}).")
        if current.is_symlink() and root not in current.resolve().parents and current.resolve() != root:
            raise ValueError(f"filename_prefix {prefix!r} points outside the output folder {root}: '{current}' is a "
                             f"symbolic link to {current.resolve()}.")
        current.mkdir(exist_ok=True)


def save_new(directory: str | os.PathLike, prefix: str, extension: str, write: Callable[[Path], T],
             attempts: int = 5, check_cancel: Callable[[], None] | None = None) -> T:
    """``write(unique_path(...))``, choosing the next free name again when another writer took the chosen one
    meanwhile (``write`` raised ``FileExistsError`` and the name now exists), at most ``attempts`` times. Any other
    error, a ``FileExistsError`` about another file included, is raised at once."""
    for _ in range(attempts):
        path = unique_path(directory, prefix, extension, check_cancel)
        try:
            return write(path)
        except FileExistsError:
            if not os.path.lexists(path):
                raise
        if check_cancel is not None:
            check_cancel()
    raise FileExistsError(f"Another writer took every name chosen for {prefix!r} in {directory} ({attempts} "
                          "attempts); try again or choose another filename_prefix.")


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
    if os.path.lexists(path) and not overwrite:
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


@contextlib.contextmanager
def file_set() -> Iterator[list[Path]]:
    """A save of several files that succeeds whole or leaves nothing: append each path (file or folder) to the
    yielded list as soon as it exists; if the block fails (a full disk, Cancel) they are all removed, newest first,
    and the error is raised."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in reversed(written):
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
        raise
