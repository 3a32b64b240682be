"""What the batch client must never lose: the resumable state file and the downloaded outputs.

Both are written atomically (a temp file in the same folder, fsynced, then moved into place), so a crash leaves
either the old file or the new one. Outputs never replace an existing file: a name that is taken with other
bytes gets a `` (1)`` suffix; the same bytes are recognised and reused (a resumed download).
"""
from __future__ import annotations

import filecmp
import json
import os
import tempfile
import time
from pathlib import Path

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
            except json.JSONDecodeError as exc:
                raise ValueError(f"state file {path} is not valid JSON ({exc}); move it away to start afresh") from None
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"state file {path} has version {data.get('version')}, expected {STATE_VERSION}")
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
