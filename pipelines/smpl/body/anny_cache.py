"""Loading the built-in Anny body and its one-time derived cache (DESIGN §4, §7a).

The ``anny`` package ships every asset of its default body; on first use it derives data (minutes, ~1.7 GB peak
memory) and caches it. The cache lives in ``ANNY_CACHE_DIR`` when that variable is set, else in ComfyUI's
``models/anny/`` (the folder the caller passes). After a build only the compact file (~50 MB) is kept: a folder
holding just it loads in seconds. Only the default licence-free configuration is ever built (``anny`` rig and
topology, default phenotypes); ``anny.models.smpl`` and Anny's download helper are never touched.
"""
from __future__ import annotations

import contextlib
import logging
import os
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
    return Path.home() / ".cache" / "anny"


def compact_files(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob(f"v*/{COMPACT_PREFIX}*.safetensors"))


def is_built(directory: str | os.PathLike) -> bool:
    return bool(compact_files(Path(directory)))


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


def prune(directory: Path) -> int:
    """Delete everything but the compact files under ``directory/v*``; returns the bytes freed."""
    freed = 0
    for path in Path(directory).glob("v*/*.safetensors"):
        if not path.name.startswith(COMPACT_PREFIX):
            freed += path.stat().st_size
            path.unlink()
    return freed


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


def load_anny_body(directory: str | os.PathLike | None = None, *,
                   callback: Callable[[int, int], None] | None = None):
    """The default Anny body as an :class:`.anny_body.AnnyBody`, building the cache on first use.

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
        building = not is_built(folder)
        if building:
            _check_writable(folder)
            logger.warning("Building the Anny body cache in %s once: about %d s on a 2-core CPU (longer on a busy "
                           "machine), ~1.7 GB memory; %d MB kept afterwards.", folder, EXPECTED_BUILD_S,
                           EXPECTED_CACHE_MB)
        stop = threading.Event()
        ticker = None
        if building and callback is not None:
            ticker = threading.Thread(target=_ticker, args=(callback, EXPECTED_BUILD_S, stop), daemon=True)
            ticker.start()
        started = time.monotonic()
        try:
            import anny
            import torch

            from .anny_body import AnnyBody

            quiet_warp()  # one line of ours instead of Warp's banner and CUDA warning
            # normal tensors even when a node loads it inside ComfyUI's inference mode: the shape fit needs
            # autograd through these buffers later; anny's INFO lines (a dozen per build) held back
            with _anny_cache_path(folder), torch.inference_mode(False), quiet_logger("anny"):
                module = anny.Anny(rig="anny", topology="anny", local_changes="none", facial_actions="none",
                                   phenotypes="default")
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
        if building:
            freed = prune(folder)
            logger.warning("Built the Anny body cache in %.0f s (kept %s, freed %.0f MB).",
                           time.monotonic() - started, ", ".join(p.name for p in compact_files(folder)), freed / 1e6)
            if callback is not None:
                callback(100, 100)
        with torch.inference_mode(False):
            body = AnnyBody(module, source=f"anny {getattr(anny, '__version__', '?')} (cache {folder})")
        _BODIES[key] = body
        logger.info("Loaded %r", body)
        return body
