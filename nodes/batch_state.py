"""What the batch client must never lose: the resumable state file and the downloaded outputs.

Both are written atomically (a temp file in the same folder, fsynced, then moved into place), so a crash leaves
either the old file or the new one. Outputs never replace an existing file: a name that is taken with other
bytes gets a `` (1)`` suffix; the same bytes are recognised and reused (a resumed download).
"""
from __future__ import annotations

import filecmp
import json
import os
import socket
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

from ..pipelines.output_paths import make_readable

STATE_VERSION = 1
DONE, FAILED, QUEUED = "done", "failed", "queued"


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def temp_path_for(dest_dir: Path, name: str) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
    os.close(fd)
    return Path(tmp)


def publish_no_clobber(tmp: Path, dest: Path) -> Path:
    """Move ``tmp`` to ``dest`` or, if that name is taken by different bytes, to ``dest (n)``; return the path.

    A hard link publishes atomically and fails if the name exists, so two writers can never overwrite each other;
    filesystems without hard links fall back to an existence check plus ``os.replace``.
    """
    stem, suffix = dest.stem, dest.suffix
    candidate = dest
    for n in range(1, 10000):
        if candidate.exists():
            if candidate.is_file() and filecmp.cmp(candidate, tmp, shallow=False):
                _unlink_quietly(tmp)
                return candidate
        else:
            try:
                os.link(tmp, candidate)
                _unlink_quietly(tmp)
                return candidate
            except FileExistsError:
                continue  # lost a race: look again under the same name
            except OSError:
                if not candidate.exists():
                    os.replace(tmp, candidate)
                    return candidate
        candidate = dest.with_name(f"{stem} ({n}){suffix}")
    raise FileExistsError(f"no free name for {dest}")


class StateInUse(ValueError):
    """Another batch client holds the state file."""


class StateLock:
    """One client per state file: an exclusive lock on ``<state>.lock`` that the holder keeps for its whole run.

    The operating system drops the lock when the holder exits, however it exits, so a crash leaves no stale lock.
    The file also names the holder (pid, host, start time) for the message the next client prints. The lock file
    itself stays (deleting it would let two clients lock two different files of the same name).
    """

    _REGION = 1 << 20  # Windows locks a byte range: lock one beyond the holder text, so the text stays readable

    def __init__(self, state_path: Path):
        self.path = Path(str(state_path) + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            self._lock(fd)
        except OSError:
            os.close(fd)
            raise StateInUse(
                f"state file {str(self.path)[:-5]} is in use by another batch client ({self._holder()}); wait for "
                "it to finish (or stop it), or give this batch its own --out or --state"
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, holder.encode() + b"\n")
        self._fd = fd

    def _lock(self, fd: int) -> None:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, self._REGION, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _holder(self) -> str:
        for _ in range(20):  # the holder writes its name just after it got the lock
            try:
                info = json.loads(self.path.read_text(encoding="utf-8"))
                return f"pid {info['pid']} on {info['host']}, started {info['started']}"
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.05)
        return f"holder unknown: {self.path} names none"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> "StateLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# the fields of a job entry that the client reads, and the JSON types they may have (None: not set)
ENTRY_TYPES = {"status": (str,), "content_hash": (str,), "server": (str, type(None)), "prompt_id": (str, type(None)),
               "row": (int,), "outputs": (list,), "error": (str, type(None)), "updated": (str,)}
_JSON_NAMES = {dict: "a JSON object", list: "a JSON list", str: "a JSON string", int: "a JSON number",
               float: "a JSON number", bool: "a JSON boolean", type(None): "JSON null"}


def _json_type(value) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def check_state_shape(path: Path, data) -> None:
    """Raise ValueError naming ``path`` unless ``data`` has the shape :class:`BatchState` reads."""
    def bad(what: str):
        return ValueError(f"state file {path} is not a batch state file: {what}; move it away to start afresh "
                          "(or pass --state NEW_FILE)")

    if not isinstance(data, dict):
        raise bad(f"it holds {_json_type(data)}, expected an object with version, client_id and jobs")
    missing = [k for k in ("version", "client_id", "jobs") if k not in data]
    if missing:
        raise bad(f"missing {', '.join(map(repr, missing))}")
    if data["version"] != STATE_VERSION:
        raise bad(f"version {data['version']!r}, expected {STATE_VERSION}")
    if not isinstance(data["client_id"], str) or not data["client_id"]:
        raise bad(f"'client_id' is {_json_type(data['client_id'])}, expected a non-empty string")
    if not isinstance(data["jobs"], dict):
        raise bad(f"'jobs' is {_json_type(data['jobs'])}, expected an object")
    for job_id, entry in data["jobs"].items():
        if not isinstance(entry, dict):
            raise bad(f"job {job_id!r} is {_json_type(entry)}, expected an object")
        for key, types in ENTRY_TYPES.items():
            if key in entry and (not isinstance(entry[key], types) or isinstance(entry[key], bool)):
                raise bad(f"job {job_id!r}: {key!r} is {_json_type(entry[key])}")


class BatchState:
    """The state file: ``{"version", "client_id", "jobs": {job_id: {status, content_hash, server, prompt_id, row,
    outputs, error, updated}}}``."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path, new_client_id: str) -> "BatchState":
        path = Path(path)
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"state file {path} is not valid JSON ({exc}); move it away to start afresh") from None
            check_state_shape(path, data)
        else:
            data = {"version": STATE_VERSION, "client_id": new_client_id, "jobs": {}}
        return cls(path, data)

    @property
    def client_id(self) -> str:
        return self.data["client_id"]

    def job(self, job_id: str) -> dict:
        return self.data["jobs"].get(job_id, {})

    def is_done(self, job_id: str, content_hash: str) -> bool:
        entry = self.job(job_id)
        return entry.get("status") == DONE and entry.get("content_hash") == content_hash

    def update(self, job_id: str, **fields) -> None:
        entry = self.data["jobs"].setdefault(job_id, {})
        entry.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.save()

    def save(self) -> None:
        write_json_atomic(self.path, self.data)
