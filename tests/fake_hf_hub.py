"""A tiny stand-in for the Hugging Face Hub's file endpoint on 127.0.0.1 (``HF_ENDPOINT``), for download tests.

Serves ``/{repo}/resolve/{revision}/{path}`` (HEAD and GET, with ``Range``) with the headers huggingface_hub reads
(``X-Repo-Commit``, ``ETag``/``X-Linked-Etag`` = sha256, ``X-Linked-Size``). Scenarios: gated repos (401 with
``X-Error-Code: GatedRepo``), a file whose first GET is cut halfway (``cut``), and a file whose bytes do not match
its published sha256 (``lie``). Every request is logged as (method, path, Range header).
"""
from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self):
        self.files: dict[tuple[str, str], bytes] = {}
        self.published: dict[tuple[str, str], bytes] = {}  # what the sha256 header describes
        self.gated: set[str] = set()
        self.cut: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_HEAD(self):
                hub._serve(self, body=False)

            def do_GET(self):
                hub._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo: str, path: str, data: bytes, *, published: bytes | None = None) -> None:
        self.files[(repo, path)] = data
        self.published[(repo, path)] = data if published is None else published

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler, body: bool) -> None:
        self.requests.append((handler.command, handler.path, handler.headers.get("Range")))
        match = re.match(r"^/(?:models/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", unquote(handler.path.split("?")[0]))
        if match is None:
            return self._reply(handler, 404, {"X-Error-Code": "RepoNotFound"}, b"{}")
        repo, _, path = match.groups()
        if repo in self.gated:
            return self._reply(handler, 401, {"X-Error-Code": "GatedRepo", "X-Error-Message":
                                              f"Access to model {repo} is restricted."}, b'{"error": "gated"}', body)
        key = (repo, path)
        if key not in self.files:
            return self._reply(handler, 404, {"X-Error-Code": "EntryNotFound"}, b"{}", body)
        data = self.files[key]
        sha = hashlib.sha256(self.published[key]).hexdigest()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"',
                   "X-Linked-Size": str(len(data)), "Accept-Ranges": "bytes"}
        start = 0
        ranged = handler.headers.get("Range")
        if ranged and body:
            start = int(re.match(r"bytes=(\d+)-", ranged).group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        status = 206 if start else 200
        if body and key in self.cut:
            self.cut.discard(key)  # cut once: send half of the body, then drop the connection
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data) - start))
            handler.end_headers()
            handler.wfile.write(data[start:start + (len(data) - start) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return None
        return self._reply(handler, status, headers, data[start:], body)

    @staticmethod
    def _reply(handler, status, headers, payload, body=True):
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if body:
            handler.wfile.write(payload)
