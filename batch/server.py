"""One ComfyUI server as the batch client sees it: upload, queue, follow over websocket, history, download.

Only ComfyUI's public HTTP/WS API is used (shapes in ``research/comfyui.md`` §2). Failures are sorted into
:class:`TransientError` (retry: connection refused/reset, 5xx, dropped websocket) and
:class:`JobFailed` (do not retry: validation errors, node exceptions, interrupts, timeouts).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

import aiohttp

logger = logging.getLogger(__name__)


class TransientError(RuntimeError):
    """The server could not be reached or failed on its side; the same request may work later."""


class JobFailed(RuntimeError):
    """The job itself failed on the server (validation, execution, interrupt, timeout)."""


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def format_prompt_error(body: dict) -> str:
    """A /prompt 400 (or 200 with node_errors) as readable lines, one per node input."""
    lines = []
    err = body.get("error")
    if isinstance(err, dict):
        head = err.get("message", "")
        if err.get("details"):
            head += f" ({err['details']})"
        lines.append(f"{err.get('type', 'error')}: {head}")
    elif err:
        lines.append(str(err))
    for nid, entry in sorted((body.get("node_errors") or {}).items()):
        cls = entry.get("class_type", "?")
        for e in entry.get("errors", []):
            info = e.get("extra_info") or {}
            where = f"node {nid} ({cls})"
            if info.get("input_name"):
                where += f" input {info['input_name']!r}"
            detail = e.get("details") or ""
            text = f"{where}: {e.get('type', 'error')}: {e.get('message', '')}"
            lines.append(text + (f" - {detail}" if detail else ""))
    return "\n".join(lines) or json.dumps(body)[:500]


def format_execution_error(data: dict) -> str:
    msg = str(data.get("exception_message", "")).strip()
    return (
        f"node {data.get('node_id')} ({data.get('node_type')}) raised {data.get('exception_type', 'an error')}: {msg}"
    )


def output_files(outputs: dict, include_temp: bool = False) -> list[tuple[str, dict]]:
    """Every file entry in a history ``outputs`` dict: ``(node_id, {filename, subfolder, type})``.

    Any list of dicts with a ``filename`` counts (``images``, ``gifs``, ``videos``, ``audio``, ...); ``temp`` files
    are previews and are skipped unless asked for.
    """
    files = []
    for nid, ui in sorted(outputs.items()):
        if not isinstance(ui, dict):
            continue
        for entries in ui.values():
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if isinstance(entry, dict) and entry.get("filename"):
                    if entry.get("type", "output") == "temp" and not include_temp:
                        continue
                    files.append((nid, entry))
    return files


class CircuitBreaker:
    """Whether one server is worth another try: counts its transient failures in a row, whatever the job.

    Each failure doubles the wait before the server's next try (``backoff``, ``2 * backoff``, ... up to 60 s); after
    ``retries + 1`` failures in a row (the patience one job used to get on its own) the breaker opens: the server is
    down, its jobs go elsewhere or, with no server left, fail at once. An open breaker is probed again every
    :attr:`cooldown` seconds; any answer from the server closes it.
    """

    MAX_DELAY = 60.0

    def __init__(self, url: str, retries: int, backoff: float, clock=time.monotonic):
        self.url, self.threshold, self.backoff, self.clock = url, retries + 1, backoff, clock
        self.failures, self.since, self.last = 0, 0.0, ""

    def failure(self, exc: BaseException) -> float:
        """Record a failure; the seconds to wait before this server's next try."""
        if self.failures == 0:
            self.since = self.clock()
        self.failures += 1
        self.last = str(exc)
        return self._delay(self.failures)

    def success(self) -> None:
        self.failures = 0

    @property
    def open(self) -> bool:
        return self.failures >= self.threshold

    @property
    def cooldown(self) -> float:
        return self._delay(self.failures + 1)

    def _delay(self, n: int) -> float:
        return min(self.backoff * 2 ** (n - 1), self.MAX_DELAY)

    def reason(self) -> str:
        return (f"server {self.url} is down: {self.failures} connection failures in a row over "
                f"{self.clock() - self.since:.1f} s (last: {self.last}); start it (or fix --server) and rerun the "
                "same command to resume")


class ComfyServer:
    """HTTP + websocket access to one ComfyUI server, with failures mapped to Transient/JobFailed."""

    def __init__(self, url: str, session: aiohttp.ClientSession, client_id: str, request_timeout: float = 60.0):
        self.url = normalise_url(url)
        self.session = session
        self.client_id = client_id
        self.request_timeout = request_timeout  # every single wait on the network is bounded by this
        self.timeout = aiohttp.ClientTimeout(total=request_timeout)
        # big uploads/downloads may take long in total; only a stalled connection counts as a failure
        self.transfer_timeout = aiohttp.ClientTimeout(total=None, sock_connect=request_timeout,
                                                      sock_read=request_timeout)

    def __str__(self) -> str:
        return self.url

    async def _request(self, method: str, path: str, timeout: aiohttp.ClientTimeout | None = None, **kw):
        try:
            async with self.session.request(method, self.url + path, timeout=timeout or self.timeout, **kw) as resp:
                body = await resp.read()
                if resp.status >= 500:
                    raise TransientError(f"{self.url}{path}: HTTP {resp.status} {body[:200].decode(errors='replace')}")
                return resp.status, body
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, ConnectionError) as exc:
            raise TransientError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from exc

    async def get_json(self, path: str, **kw):
        status, body = await self._request("GET", path, **kw)
        if status != 200:
            raise TransientError(f"{self.url}{path}: HTTP {status}")
        return json.loads(body)

    async def node_classes(self) -> set[str] | None:
        """Node classes the server offers, or None when it does not say (no /object_info)."""
        status, body = await self._request("GET", "/object_info")
        if status != 200:
            return None
        return set(json.loads(body))

    async def upload(self, path: Path, name: str) -> str:
        """POST /upload/image (ComfyUI uses it for videos and other files too); returns the stored name."""
        with open(path, "rb") as f:  # streamed: driving videos can be large
            form = aiohttp.FormData()
            form.add_field("type", "input")
            form.add_field("overwrite", "false")  # names are content-addressed: same name means same bytes
            form.add_field("image", f, filename=name, content_type="application/octet-stream")
            status, body = await self._request("POST", "/upload/image", timeout=self.transfer_timeout, data=form)
        if status != 200:
            reason = body[:200].decode(errors="replace")
            raise JobFailed(f"upload of {path} refused by {self.url}: HTTP {status} {reason}")
        info = json.loads(body)
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    async def queue_prompt(self, prompt: dict, prompt_id: str) -> None:
        payload = {"prompt": prompt, "client_id": self.client_id, "prompt_id": prompt_id}
        status, body = await self._request("POST", "/prompt", json=payload)
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            data = {"error": body[:300].decode(errors="replace")}
        if status != 200:
            raise JobFailed(f"rejected by {self.url}:\n{format_prompt_error(data)}")
        if data.get("node_errors"):
            # ComfyUI runs the valid branches and still answers 200; a half-run job is a failed job.
            await self.cancel(prompt_id)
            raise JobFailed(f"rejected by {self.url} (some outputs invalid):\n{format_prompt_error(data)}")

    async def history(self, prompt_id: str) -> dict | None:
        data = await self.get_json(f"/history/{prompt_id}")
        return data.get(prompt_id)

    async def in_queue(self, prompt_id: str) -> bool:
        data = await self.get_json("/queue")
        for key in ("queue_running", "queue_pending"):
            for item in data.get(key, []):
                if len(item) > 1 and item[1] == prompt_id:
                    return True
        return False

    async def cancel(self, prompt_id: str) -> None:
        """Stop our prompt whether running or pending; best effort (the server may be gone)."""
        for path, payload in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                await self._request("POST", path, json=payload)
            except TransientError as exc:
                logger.debug("cancel %s on %s: %s", prompt_id, self.url, exc)

    async def connect_ws(self):
        """The websocket, its opening handshake bounded by the request timeout (aiohttp's own default is the
        session's 300 s)."""
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        return await asyncio.wait_for(
            self.session.ws_connect(ws_url, heartbeat=30, timeout=aiohttp.ClientWSTimeout(ws_close=5)),
            self.request_timeout)

    async def download(self, entry: dict, dest_tmp: Path) -> int:
        """GET /view into ``dest_tmp`` (streamed); returns bytes written."""
        params = {"filename": entry["filename"], "subfolder": entry.get("subfolder", ""),
                  "type": entry.get("type", "output")}
        written = 0
        try:
            async with self.session.get(self.url + "/view", params=params, timeout=self.transfer_timeout) as resp:
                if resp.status >= 500:
                    raise TransientError(f"{self.url}/view {entry['filename']}: HTTP {resp.status}")
                if resp.status != 200:
                    raise JobFailed(f"output {entry['filename']} not served by {self.url}: HTTP {resp.status}")
                expected = resp.content_length
                with open(dest_tmp, "wb") as f:
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        f.write(chunk)
                        written += len(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                if expected is not None and written != expected:
                    raise TransientError(f"{entry['filename']}: got {written} of {expected} bytes")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError,
                ConnectionError) as exc:  # a body cut mid-way is a ClientPayloadError: transient, retried
            raise TransientError(f"download of {entry['filename']} from {self.url} broke off: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from exc
        return written
