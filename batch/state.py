"""What the batch client must never lose: the resumable state file and the downloaded outputs.

The state is a snapshot written atomically (a temp file in the same folder, fsynced, then moved into place) plus an
append-only journal of the changes since (:class:`BatchState`); one client at a time holds it (:class:`StateLock`).
Outputs are written the same atomic way and never replace an existing file: a name that is taken with other bytes
gets a `` (1)`` suffix; the same bytes are recognised and reused (a resumed download).
"""
from __future__ import annotations

import asyncio
import copy
import errno
import filecmp
import json
import logging
import os
import queue
import socket
import tempfile
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

from ..pipelines.output_paths import make_readable

logger = logging.getLogger(__name__)

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


def remove_partial_downloads(out_dir: Path) -> int:
    """Remove the hidden ``.<name>.<random>.part`` files (from :func:`temp_path_for`) that a killed client left in
    the job folders under ``out_dir``; call it once the state file is ours. Returns how many were removed."""
    removed = 0
    for job_dir in (p for p in Path(out_dir).glob("*") if p.is_dir() and not p.is_symlink()):
        for part in job_dir.glob(".*.part"):
            if part.is_file() and not part.is_symlink():
                _unlink_quietly(part)
                removed += 1
    return removed


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


_LOCK_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}


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
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _LOCK_HELD:
                raise OSError(exc.errno, f"cannot lock {self.path} ({exc.strerror}): does this filesystem support "
                                         "file locks? Put --out or --state on a local disk") from None
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
        try:
            check_entry_shape(job_id, entry)
        except ValueError as exc:
            raise bad(str(exc)) from None


def check_entry_shape(job_id: str, entry) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"job {job_id!r} is {_json_type(entry)}, expected an object")
    for key, types in ENTRY_TYPES.items():
        if key in entry and (not isinstance(entry[key], types) or isinstance(entry[key], bool)):
            raise ValueError(f"job {job_id!r}: {key!r} is {_json_type(entry[key])}")


class BatchState:
    """The state file ``{"version", "client_id", "jobs": {job_id: {status, content_hash, server, prompt_id, row,
    outputs, error, updated}}}`` plus its journal ``<state>.journal``.

    An update costs the same whatever the number of jobs: it changes the dict in memory and hands one JSON line to
    a writer thread, which appends it to the journal (one fsync for all the lines waiting) off the event loop. Now
    and then (every ``COMPACT_MIN_LINES`` lines, or as many lines as there are jobs, whichever is more) the writer
    folds the journal into a new snapshot and empties it, so that cost stays O(1) per update on average. Loading
    reads the snapshot, then replays the journal; a last line that a crash cut short is ignored.
    """

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.journal_path = Path(str(path) + ".journal")
        self.data = data
        self._writer: _JournalWriter | None = None

    @classmethod
    def load(cls, path: Path, new_client_id: str) -> "BatchState":
        """Read the state (snapshot + journal) without writing anything; a fresh state when there is none."""
        path = Path(path)
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"state file {path} is not valid JSON ({exc}); move it away to start afresh") from None
            check_state_shape(path, data)
            state = cls(path, data)
            state._replay_journal()
        else:
            state = cls(path, {"version": STATE_VERSION, "client_id": new_client_id, "jobs": {}})
            if state.journal_path.exists():
                logger.warning("ignoring %s: its state file %s is gone", state.journal_path, path)
        return state

    def _replay_journal(self) -> None:
        try:
            text = self.journal_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        lines = text.split("\n")
        torn = lines.pop()  # "" when the journal ends with a newline, else the line a crash cut short
        if torn:
            logger.warning("%s: ignoring its last line, cut short by a crash (%d bytes)", self.journal_path, len(torn))
        if not lines:
            return
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("client_id") != self.client_id:
            logger.warning("ignoring %s: it belongs to another state file (client id %r, not %r)",
                           self.journal_path, header.get("client_id") if isinstance(header, dict) else None,
                           self.client_id)
            return
        jobs = self.data["jobs"]
        for lineno, line in enumerate(lines[1:], 2):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not (isinstance(record, dict) and isinstance(record.get("job"), str)
                    and isinstance(record.get("set"), dict)):
                raise ValueError(
                    f"state journal {self.journal_path} line {lineno} is corrupt ({line[:80]!r}); delete the journal "
                    f"to go back to the state of {self.path} alone (jobs recorded only in the journal run again)"
                )
            entry = jobs.setdefault(record["job"], {})
            entry.update(record["set"])
            try:
                check_entry_shape(record["job"], entry)
            except ValueError as exc:
                raise ValueError(f"state journal {self.journal_path} line {lineno}: {exc}; delete the journal to go "
                                 f"back to the state of {self.path} alone") from None

    @property
    def client_id(self) -> str:
        return self.data["client_id"]

    def job(self, job_id: str) -> dict:
        return self.data["jobs"].get(job_id, {})

    def is_done(self, job_id: str, content_hash: str) -> bool:
        entry = self.job(job_id)
        return entry.get("status") == DONE and entry.get("content_hash") == content_hash

    def start(self) -> None:
        """Write a fresh snapshot (folding in any journal) and start the writer; hold the :class:`StateLock` first."""
        self._writer = _JournalWriter(self.path, self.journal_path, copy.deepcopy(self.data))
        self._writer.compact()
        self._writer.start()

    def update(self, job_id: str, **fields) -> None:
        """Record ``fields`` for ``job_id``; returns at once (``await sync()`` when it must be on disk first)."""
        fields["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.data["jobs"].setdefault(job_id, {}).update(fields)
        self._writer.put(("set", job_id, dict(fields)))

    async def sync(self) -> None:
        """Wait until every update so far is on disk (raises the writer's error, e.g. a full disk)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def resolve(error):
            if not done.done():
                done.set_exception(error) if error else done.set_result(None)

        self._writer.put(("sync", lambda error: loop.call_soon_threadsafe(resolve, error)))
        await done

    def close(self) -> None:
        """Flush, fold the journal into the snapshot, remove the journal, stop the writer."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.put(("stop",))
        writer.join()
        if writer.error is not None:
            logger.error("state file %s could not be written: %s", self.path, writer.error)


COMPACT_MIN_LINES = 1000


class _JournalWriter(threading.Thread):
    """The only thread that writes the state files; keeps its own copy of the state to write snapshots from."""

    def __init__(self, path: Path, journal_path: Path, data: dict):
        super().__init__(name=f"batch-state-{path.name}", daemon=True)
        self.path, self.journal_path, self.data = path, journal_path, data
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.lines = 0
        self.error: BaseException | None = None
        self._journal = None

    def put(self, item: tuple) -> None:
        self.queue.put(item)

    def run(self) -> None:
        stop = False
        while not stop:
            items = [self.queue.get()]
            while True:  # everything waiting goes out with one write and one fsync
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            lines, waiters = [], []
            for item in items:
                if item[0] == "set":
                    _, job_id, fields = item
                    self.data["jobs"].setdefault(job_id, {}).update(fields)
                    lines.append(json.dumps({"job": job_id, "set": fields}, sort_keys=True) + "\n")
                elif item[0] == "sync":
                    waiters.append(item[1])
                else:
                    stop = True
            try:
                if self.error is not None:  # an earlier write failed: only a whole snapshot is sure to be right
                    self.compact()
                elif lines:
                    self._journal.write("".join(lines))
                    self._journal.flush()
                    os.fsync(self._journal.fileno())
                    self.lines += len(lines)
                    if self.lines >= max(COMPACT_MIN_LINES, len(self.data["jobs"])):
                        self.compact()
                if stop:
                    self.compact(final=True)
                self.error = None
            except Exception as exc:  # a full disk: every sync() reports it; the next round retries
                self.error = exc
            for waiter in waiters:
                waiter(self.error)

    def compact(self, final: bool = False) -> None:
        """Snapshot first, then the journal emptied: a crash between the two only replays lines already in it."""
        write_json_atomic(self.path, self.data)
        _fsync_folder(self.path.parent)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if final:
            _unlink_quietly(self.journal_path)
            return
        self._journal = open(self.journal_path, "w", encoding="utf-8")
        self._journal.write(json.dumps({"journal": STATE_VERSION, "client_id": self.data["client_id"]}) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self.lines = 0


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open folders and needs no such step)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
