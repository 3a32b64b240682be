"""Loading the built-in Anny body and its one-time derived cache (docs/architecture.md, *Model files*, *Reference
algorithms*).

The ``anny`` package ships every asset of its default body; on first use it derives data (minutes, ~1.7 GB peak
memory) and caches it. The cache lives in ``ANNY_CACHE_DIR`` when that variable is set, else in ComfyUI's
``models/anny/`` (the folder the caller passes). After a build only the compact file (~50 MB) is kept: a folder
holding just it loads in seconds. Only the default licence-free configuration is ever built (``anny`` rig and
topology, default phenotypes); ``anny.models.smpl`` and Anny's download helper are never touched.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .quiet import quiet_logger, quiet_warp

logger = logging.getLogger(__name__)

ENV = "ANNY_CACHE_DIR"
COMPACT_PREFIX = "build_compact_model_data_"
EXPECTED_BUILD_S = 60  # a 2-core CPU: ~40 s on an idle machine, several minutes under heavy load
EXPECTED_CACHE_MB = 50
ANNY_VERSION = "0.6.2"
SUBFOLDER = "motionguide-anny-v1"  # everything the build writes lives here (anny adds its own v<N>/ below it)
MANIFEST = "manifest.json"  # what the build wrote: state, kept file, its size and sha256
REBUILD_COMMAND = "python cli.py anny"
# The one cache per machine for the command line, the demo and the tests (ComfyUI keeps models/anny).
MACHINE_CACHE = Path.home() / ".cache" / "anny"

_BODIES: dict[str, object] = {}
_LOCK = threading.Lock()


class AnnyUnavailable(RuntimeError):
    """The ``anny`` package is missing or broken (the reason is the message)."""


def anny_status() -> tuple[bool, str]:
    """(usable, reason): whether ``anny`` imports; the reason says what is wrong and how to fix it."""
    try:
        import anny  # noqa: F401
    except ImportError as exc:
        return False, (f"the 'anny' package is not installed ({exc}); run: pip install anny=={ANNY_VERSION} "
                       "(or scripts/setup_env.sh)")
    except Exception as exc:  # noqa: BLE001 - a broken install must not take the pack down
        return False, f"the 'anny' package is broken ({type(exc).__name__}: {exc}); reinstall anny=={ANNY_VERSION}"
    return True, ""


def cache_dir(default: str | os.PathLike | None = None) -> Path:
    """``$ANNY_CACHE_DIR`` if set, else ``default`` (ComfyUI's ``models/anny``), else ``~/.cache/anny``."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return Path(env).expanduser()
    if default is not None:
        return Path(default).expanduser()
    return MACHINE_CACHE


def cache_root(directory: str | os.PathLike) -> Path:
    """The build's own subfolder of the cache folder: everything MotionGuide writes there, nothing else."""
    return Path(directory) / SUBFOLDER


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256) of ``path``; ~0.1 s for the 51 MB compact file, a few % of loading the body."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        return {"state": "unreadable"}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {"state": "unreadable"}
    return data if isinstance(data, dict) else {"state": "unreadable"}


def _write_manifest(root: Path, data: dict) -> None:
    tmp = root / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, root / MANIFEST)


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()} \
        if root.is_dir() else set()


def verify_cache(directory: str | os.PathLike) -> tuple[Path | None, str]:
    """``(compact file, "")`` when the cache in ``directory`` is complete and matches the size and hash recorded
    when it was built; ``(None, "")`` when nothing was built; ``(None, reason)`` when it is damaged."""
    root = cache_root(directory)
    manifest = _read_manifest(root)
    if manifest is None:
        return None, ""
    if manifest.get("state") == "building":
        return None, "an earlier build was interrupted"
    files = manifest.get("files") if manifest.get("state") == "built" else None
    if not isinstance(files, list) or len(files) != 1 or not isinstance(files[0], dict):
        return None, f"its record {root / MANIFEST} is unreadable"
    entry = files[0]
    relative = str(entry.get("path", ""))
    path = root / relative
    if not relative or ".." in Path(relative).parts or not path.name.startswith(COMPACT_PREFIX):
        return None, f"its record {root / MANIFEST} is unreadable"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return None, f"{path} is not the file the build wrote (a link or a folder)"
    if not path.exists():
        return None, f"{path} is missing"
    size, digest = file_digest(path)
    if size != entry.get("size"):
        return None, f"{path} has {size} bytes, the build wrote {entry.get('size')} (truncated or replaced)"
    if digest != entry.get("sha256"):
        return None, f"{path} does not match the hash recorded when it was built (corrupted or replaced)"
    return path, ""


def compact_files(directory: str | os.PathLike) -> list[Path]:
    """The verified compact file of the cache in ``directory`` (an empty list when absent or damaged)."""
    path, _ = verify_cache(directory)
    return [path] if path is not None else []


def is_built(directory: str | os.PathLike) -> bool:
    return bool(compact_files(directory))


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"The Anny cache folder {directory} is not writable ({exc.strerror or exc}). Make it "
                              f"writable, or set {ENV} to a writable folder (the one-time build keeps "
                              f"~{EXPECTED_CACHE_MB} MB there).") from exc


def prune(root: Path, before: set[str], keep: Path) -> int:
    """Delete the files the build created under ``root`` (those not in ``before``) except ``keep``; returns the
    bytes freed. Only names from that difference are touched, never a pattern: the cache folder may be shared."""
    freed = 0
    for relative in sorted(_files_under(root) - before):
        path = root / relative
        if path == keep or path.name == MANIFEST:
            continue
        freed += path.lstat().st_size
        path.unlink()
    return freed


def _discard(root: Path, manifest: dict | None) -> None:
    """Remove what an earlier build recorded as its own: its kept file, or everything an interrupted build
    created (files not present when it started). Anything else in the folder is left alone."""
    if not manifest:
        return
    if manifest.get("state") == "building" and isinstance(manifest.get("before"), list):
        for relative in sorted(_files_under(root) - set(map(str, manifest["before"])) - {MANIFEST}):
            (root / relative).unlink()
    for entry in manifest.get("files") or []:
        relative = str(entry.get("path", "")) if isinstance(entry, dict) else ""
        path = root / relative
        if relative and ".." not in Path(relative).parts and (path.is_file() or path.is_symlink()):
            path.unlink()
    with contextlib.suppress(FileNotFoundError):
        (root / MANIFEST).unlink()


def _legacy_compact(directory: Path) -> Path | None:
    """A compact file of the layout before the build had its own subfolder (``<folder>/v<N>/``), if whole."""
    for path in sorted(Path(directory).glob(f"v*/{COMPACT_PREFIX}*.safetensors")):
        if path.is_file() and not path.is_symlink() and _safetensors_whole(path):
            return path
    return None


def _safetensors_whole(path: Path) -> bool:
    """Whether the header parses and its tensors end exactly at the end of the file."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            length = int.from_bytes(handle.read(8), "little")
            if length <= 0 or 8 + length > size or length > 100_000_000:
                return False
            header = json.loads(handle.read(length))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        return bool(ends) and 8 + length + max(ends) == size
    except (OSError, ValueError, TypeError, KeyError, IndexError, RecursionError, AttributeError):
        return False


def _record(root: Path, compact: Path) -> None:
    size, digest = file_digest(compact)
    _write_manifest(root, {"state": "built", "anny_version": ANNY_VERSION,
                           "files": [{"path": compact.relative_to(root).as_posix(), "size": size,
                                      "sha256": digest}]})


def _adopt_legacy(folder: Path, root: Path) -> Path | None:
    """Copy a whole compact file of the old layout into the build's subfolder (the old file is left in place)."""
    legacy = _legacy_compact(folder)
    if legacy is None:
        return None
    try:
        target = root / legacy.parent.name / legacy.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(legacy, tmp)
        os.replace(tmp, target)
        _record(root, target)
    except OSError:
        return None
    logger.warning("Using the Anny body cache %s (copied to %s; the old file can be deleted).", legacy, target)
    return target


@contextlib.contextmanager
def _anny_cache_path(directory: Path):
    """Point anny at ``directory`` for the duration (restoring whatever it used before)."""
    import anny.paths

    before = anny.paths.get_anny_cache_path()
    anny.paths.set_anny_cache_path(directory)
    try:
        yield
    finally:
        anny.paths.set_anny_cache_path(before)


def _ticker(callback, expected_s: float, stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.wait(0.5):
        done = min(0.95, (time.monotonic() - start) / expected_s)
        callback(int(done * 100), 100)


def _build_module(root: Path):
    """anny's default body, its cache pointed at ``root`` (loads the compact file there, or builds it)."""
    import anny
    import torch

    quiet_warp()  # one line of ours instead of Warp's banner and CUDA warning
    # normal tensors even when a node loads it inside ComfyUI's inference mode: the shape fit needs
    # autograd through these buffers later; anny's INFO lines (a dozen per build) held back
    with _anny_cache_path(root), torch.inference_mode(False), quiet_logger("anny"):
        return anny.Anny(rig="anny", topology="anny", local_changes="none", facial_actions="none",
                         phenotypes="default")


def _built_compact(root: Path, before: set[str]) -> Path:
    created = [root / r for r in sorted(_files_under(root) - before)
               if Path(r).name.startswith(COMPACT_PREFIX) and Path(r).suffix == ".safetensors"]
    if len(created) != 1:
        raise RuntimeError(f"The Anny body build in {root} wrote {len(created)} compact files, expected one; "
                           f"delete {root} and run `{REBUILD_COMMAND}`.")
    return created[0]


def _damaged_error(folder: Path, problem: str) -> PermissionError:
    return PermissionError(f"The Anny body cache in {cache_root(folder)} is damaged ({problem}) and the folder is "
                           f"not writable, so it cannot be rebuilt. Make it writable and run `{REBUILD_COMMAND}`, "
                           f"or set {ENV} to a writable folder.")


def load_anny_body(directory: str | os.PathLike | None = None, *,
                   callback: Callable[[int, int], None] | None = None):
    """The default Anny body as an :class:`.anny_body.AnnyBody`, building the cache on first use.

    The cache is verified (size and sha256 recorded at build, ~0.1 s) before every first load in a process; a
    damaged, truncated or replaced cache is rebuilt (with a warning naming the file and the reason).

    Args:
        directory (`str` or `Path`, *optional*): cache folder (ComfyUI's ``models/anny``); ``$ANNY_CACHE_DIR``
            wins when set.
        callback (`callable`, *optional*): ``callback(done, total)`` progress while the cache is built.

    Raises:
        `AnnyUnavailable` when ``anny`` is missing or broken; `PermissionError` naming the folder and
        ``ANNY_CACHE_DIR`` when the cache must be built and the folder is not writable.
    """
    folder = cache_dir(directory)
    key = str(folder.resolve()) if folder.exists() else str(folder)
    with _LOCK:
        if key in _BODIES:
            return _BODIES[key]
        usable, reason = anny_status()
        if not usable:
            raise AnnyUnavailable(f"The built-in Anny body is unavailable: {reason}.")
        root = cache_root(folder)
        compact, problem = verify_cache(folder)
        if problem:
            logger.warning("The Anny body cache in %s cannot be used (%s): rebuilding it.", root, problem)
            try:
                _check_writable(root)
                _discard(root, _read_manifest(root))
            except (PermissionError, OSError) as exc:
                raise _damaged_error(folder, problem) from exc
        elif compact is None and root.parent.is_dir():
            compact = _adopt_legacy(folder, root)
        module = None
        if compact is not None:
            try:
                module = _build_module(root)
            except Exception as exc:  # noqa: BLE001 - anny's own reader: any failure means a cache to rebuild
                logger.warning("The Anny body cache %s could not be read (%s: %s): rebuilding it.", compact,
                               type(exc).__name__, exc)
                try:
                    _discard(root, _read_manifest(root))
                except OSError as err:
                    raise _damaged_error(folder, f"{type(exc).__name__}: {exc}") from err
        body = _wrap(module if module is not None else _build(folder, root, callback), folder)
        _BODIES[key] = body
        logger.info("Loaded %r", body)
        return body


def _build(folder: Path, root: Path, callback):
    _check_writable(root)
    logger.warning("Building the Anny body cache in %s once: about %d s on a 2-core CPU (longer on a busy machine), "
                   "~1.7 GB memory; %d MB kept afterwards.", root, EXPECTED_BUILD_S, EXPECTED_CACHE_MB)
    before = _files_under(root)
    _write_manifest(root, {"state": "building", "before": sorted(before)})
    before.add(MANIFEST)
    stop = threading.Event()
    ticker = None
    if callback is not None:
        ticker = threading.Thread(target=_ticker, args=(callback, EXPECTED_BUILD_S, stop), daemon=True)
        ticker.start()
    started = time.monotonic()
    try:
        module = _build_module(root)
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
    compact = _built_compact(root, before)
    freed = prune(root, before, keep=compact)
    _record(root, compact)
    logger.warning("Built the Anny body cache in %.0f s (kept %s, freed %.0f MB).", time.monotonic() - started,
                   compact.name, freed / 1e6)
    if callback is not None:
        callback(100, 100)
    return module


def _wrap(module, folder: Path):
    import anny
    import torch

    from .anny_body import AnnyBody

    with torch.inference_mode(False):
        return AnnyBody(module, source=f"anny {getattr(anny, '__version__', '?')} (cache {folder})")
