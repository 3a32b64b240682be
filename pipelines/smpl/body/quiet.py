"""Keeping the built-in body's libraries (anny, NVIDIA Warp) out of the console unless they have something to say.

Anny logs a dozen INFO lines per cache build (blend shapes, bone counts); Warp prints a banner when it starts and,
from its C library, a CUDA warning on every machine without an NVIDIA driver. Neither helps a user: the first are
held back to warnings while the body is built, the second is replaced by one line of ours.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable

logger = logging.getLogger(__name__)

# What Warp's C library prints on a machine without an NVIDIA driver (replaced by one line of ours).
WARP_NO_DRIVER = "Could not find or load the NVIDIA CUDA driver"


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.WARNING):
    """Raise logger ``name`` to ``level`` for the duration, unless someone set its level on purpose."""
    log = logging.getLogger(name)
    if log.level != logging.NOTSET:
        yield
        return
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(logging.NOTSET)


def run_capturing_output(fn: Callable[[], object]) -> str:
    """Run ``fn`` with the process's stdout and stderr (file descriptors 1 and 2, so output from C libraries too)
    sent to a temporary file; returns what was written there."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                fn()
            finally:
                with contextlib.suppress(Exception):  # C stdio buffers: flush them into the sink, not the console
                    import ctypes

                    ctypes.CDLL(None).fflush(None)
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
        finally:
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        return sink.read().decode("utf-8", errors="replace")


def quiet_warp() -> None:
    """Start Warp (Anny skins with it) without its banner and, on a machine without an NVIDIA driver, with one line
    of ours instead of its C-level CUDA warning. Other output it prints is passed on to stderr unchanged, and a log
    level the user chose is kept."""
    try:
        import warp
    except Exception:  # noqa: BLE001 - no warp (Anny then skins with torch): nothing to quiet
        return
    config = getattr(warp, "config", None)
    if config is not None and getattr(config, "log_level", None) == getattr(warp, "LOG_INFO", 20):
        config.log_level = getattr(warp, "LOG_WARNING", 30)
    if getattr(getattr(warp, "context", None), "runtime", None) is not None or not callable(getattr(warp, "init", None)):
        return  # already started (its messages, if any, are out)
    try:
        printed = run_capturing_output(warp.init)
    except Exception as exc:  # noqa: BLE001 - Warp failing to start is Anny's to report when it skins
        logger.debug("Warp did not start here: %s", exc)
        return
    rest = [line for line in printed.splitlines() if line.strip() and WARP_NO_DRIVER not in line]
    if WARP_NO_DRIVER in printed:
        logger.info("Warp (the built-in body's skinning) found no NVIDIA driver and runs on the CPU.")
    if rest:
        sys.stderr.write("\n".join(rest) + "\n")
