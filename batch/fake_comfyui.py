"""A small fake ComfyUI server (aiohttp) for the batch client's tests and bench (`bench/batch.py`).

It speaks the HTTP/WS API with the message shapes recorded from ComfyUI 0.3.64 (research/comfyui.md §2):
``/upload/image``, ``/prompt`` (200, 400 with ``error`` + ``node_errors``, 200 with partial ``node_errors``),
``/ws`` (status, execution_start, execution_cached, progress_state, executing, progress, executed,
execution_success, execution_error, execution_interrupted, executing null), ``/history/{id}``, ``/view``,
``/queue``, ``/interrupt``, ``/object_info``. Prompts run one at a time, like ComfyUI's single worker.

What a prompt does is chosen by its seed: ``server.behaviour[seed] = "error" | "interrupt" | "hang" |
"drop_ws" | "slow" | "vanish" | "cleared"``. "vanish": the first run of that seed disappears as in a server restart;
"cleared": each of its prompts is deleted from the queue right after it was queued, as another user's "Clear
queue" would; the websocket stays open and silent (unless ``chatter`` sends everyone status messages, as a busy
shared server does). ``pause()`` keeps queued
prompts waiting (the server busy with someone else's job) until ``resume()``; ``delete_queued()`` deletes pending
prompts like ComfyUI's ``POST /queue {"delete": [...]}`` / ``{"clear": true}``. The server runs on 127.0.0.1 on a
free port in a thread of its own, and stops itself after ``lifetime`` seconds if a test forgets to.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
import uuid

from aiohttp import WSMsgType, web

DEFAULT_CLASSES = {
    "LoadImage": {"required": {"image": [["a.png"], {"image_upload": True}]}},
    "VHS_LoadVideo": {"required": {"video": [["d.mp4"], {}]}},
    "FakeSampler": {"required": {"seed": ["INT", {"min": 0}], "steps": ["INT", {"min": 1, "max": 100}]}},
    "SaveImage": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
    "PreviewImage": {"required": {"images": ["IMAGE"]}},
    "VHS_VideoCombine": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
}
OUTPUT_CLASSES = {"SaveImage", "PreviewImage", "VHS_VideoCombine"}
FILE_INPUTS = {"LoadImage": "image", "VHS_LoadVideo": "video"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def output_bytes(prompt_id: str, node_id: str, seed) -> bytes:
    """What a fake save node writes: depends on the run, so tests can check the right bytes arrived."""
    return f"FAKE-OUTPUT prompt={prompt_id} node={node_id} seed={seed}\n".encode() * 50


class FakeComfyUI:
    def __init__(self, classes: dict | None = None, object_info: bool = True, step_delay: float = 0.005,
                 lifetime: float = 60.0, chatter: float = 0.0):
        self.classes = dict(DEFAULT_CLASSES if classes is None else classes)
        self.serve_object_info = object_info
        self.step_delay = step_delay
        self.lifetime = lifetime
        self.chatter = chatter  # > 0: a status message to every socket this often (other users' queue activity)
        self.behaviour: dict[int, str] = {}
        self.fail_next_prompts = 0  # answer this many /prompt calls with HTTP 500
        self.cut_next_views = 0  # close this many /view downloads half-way through the body
        # records for assertions
        self.prompts: list[dict] = []  # {"prompt_id", "client_id", "prompt"}
        self.uploads: dict[str, bytes] = {}
        self.interrupts: list[dict] = []
        self.max_queue_len = 0
        self.dropped: set[str] = set()
        self.vanished: set[int] = set()
        self.cleared: list[str] = []  # prompt ids deleted from the queue before they ran
        # state
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.history: dict[str, dict] = {}
        self.queue: list[tuple[int, str]] = []
        self.running: str | None = None
        self.sockets: dict[str, list[web.WebSocketResponse]] = {}
        self.counter = itertools.count(1)
        self.file_counter = itertools.count(1)
        self.interrupt_flag = False
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None
        self._wakeup: asyncio.Event | None = None
        self._paused = False

    # ------------------------------------------------------------------------------------ lifecycle

    def _call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> "FakeComfyUI":
        self._thread.start()
        self._call(self._start())
        self._loop.call_soon_threadsafe(self._loop.call_later, self.lifetime, self._loop.stop)
        return self

    async def _start(self):
        self._wakeup = asyncio.Event()
        app = web.Application()
        app.router.add_post("/upload/image", self.upload)
        app.router.add_post("/prompt", self.post_prompt)
        app.router.add_get("/ws", self.ws)
        app.router.add_get("/history/{prompt_id}", self.get_history)
        app.router.add_get("/view", self.view)
        app.router.add_get("/queue", self.get_queue)
        app.router.add_post("/queue", self.post_queue)
        app.router.add_post("/interrupt", self.interrupt)
        app.router.add_get("/object_info", self.object_info)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await self._listen()
        self._worker = asyncio.ensure_future(self._work())
        if self.chatter > 0:
            self._chat = asyncio.ensure_future(self._chatter())

    async def _chatter(self):
        while True:
            await asyncio.sleep(self.chatter)
            for client_id in list(self.sockets):
                await self._send(client_id, "status", {"status": {"exec_info": {"queue_remaining": len(self.queue)}}})

    async def _listen(self):
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    def refuse_connections(self) -> None:
        """Stop listening (clients get 'connection refused'); running prompts go on."""
        async def stop():
            await self._site.stop()
            for socks in self.sockets.values():
                for ws in list(socks):
                    await ws.close()
        self._call(stop())

    def accept_connections(self) -> None:
        self._call(self._listen())

    def pause(self) -> None:
        """Leave queued prompts pending (as while someone else's long job runs)."""
        self._paused = True

    def resume(self) -> None:
        async def wake():
            self._paused = False
            self._wakeup.set()
        self._call(wake())

    def delete_queued(self, prompt_ids=None) -> list[str]:
        """Delete pending prompts (all when ``prompt_ids`` is None), as another user's Clear queue does."""
        async def delete():
            return self._delete(prompt_ids)
        return self._call(delete())

    def _delete(self, prompt_ids=None) -> list[str]:
        gone = [p for _, p in self.queue if prompt_ids is None or p in prompt_ids]
        self.queue = [(n, p) for n, p in self.queue if p not in gone]
        self.cleared.extend(gone)
        return gone

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown():
            self._worker.cancel()
            if self.chatter > 0:
                self._chat.cancel()
            await self._runner.cleanup()
        try:
            self._call(shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------------------------ endpoints

    async def object_info(self, request):
        if not self.serve_object_info:
            return web.Response(status=404)
        return web.json_response({k: {"input": v, "name": k} for k, v in self.classes.items()})

    async def upload(self, request):
        form = await request.post()
        f = form["image"]
        name = f.filename
        data = f.file.read()
        if name in self.uploads and self.uploads[name] != data and form.get("overwrite") not in ("true", "1"):
            stem, dot, ext = name.rpartition(".")
            name = next(f"{stem} ({i}).{ext}" for i in itertools.count(1) if f"{stem} ({i}).{ext}" not in self.uploads)
        self.uploads[name] = data
        return web.json_response({"name": name, "subfolder": form.get("subfolder", ""), "type": form.get("type", "input")})

    async def post_prompt(self, request):
        if self.fail_next_prompts > 0:
            self.fail_next_prompts -= 1
            return web.Response(status=500, text="500 Internal Server Error")
        body = await request.json()
        prompt = body.get("prompt")
        if not isinstance(prompt, dict):
            return web.json_response({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "", "extra_info": {}}, "node_errors": {}}, status=400)
        for nid, node in prompt.items():
            if node.get("class_type") not in self.classes:
                return web.json_response({
                    "error": {"type": "invalid_prompt",
                              "message": f"Cannot execute because node {node.get('class_type')} does not exist.",
                              "details": f"Node ID '#{nid}'", "extra_info": {}},
                    "node_errors": {}}, status=400)
        node_errors = self._validate(prompt)
        outputs = [nid for nid, n in prompt.items() if n["class_type"] in OUTPUT_CLASSES]
        good = [o for o in outputs if not (self._upstream(prompt, o) & set(node_errors))]
        if not good:
            return web.json_response({
                "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                          "details": "", "extra_info": {}},
                "node_errors": node_errors}, status=400)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        number = next(self.counter)
        self.prompts.append({"prompt_id": prompt_id, "client_id": body.get("client_id"), "prompt": prompt, "number": number})
        self.queue.append((number, prompt_id))
        self.max_queue_len = max(self.max_queue_len, len(self.queue) + (self.running is not None))
        self._pending = getattr(self, "_pending", {})
        self._pending[prompt_id] = (prompt, body.get("client_id"), good)
        self._wakeup.set()
        seed = next((n["inputs"].get("seed") for n in prompt.values() if n["class_type"] == "FakeSampler"), None)
        action = self.behaviour.get(seed)
        if action == "cleared":
            self._delete([prompt_id])  # before the worker can take it: it never runs, nothing is sent
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    def _validate(self, prompt: dict) -> dict:
        errors = {}
        for nid, node in prompt.items():
            cls, inputs, found = node["class_type"], node.get("inputs", {}), []
            if cls == "FakeSampler":
                steps = inputs.get("steps")
                if isinstance(steps, int) and steps > 100:
                    found.append({"type": "value_bigger_than_max", "message": "Value bigger than max",
                                  "details": f"steps {steps} bigger than max of 100",
                                  "extra_info": {"input_name": "steps", "input_config": ["INT", {"max": 100}], "received_value": steps}})
            if cls in FILE_INPUTS:
                name = inputs.get(FILE_INPUTS[cls])
                if name not in self.uploads:
                    found.append({"type": "custom_validation_failed", "message": "Custom validation failed for node",
                                  "details": f"{FILE_INPUTS[cls]} - Invalid file: {name}",
                                  "extra_info": {"input_name": FILE_INPUTS[cls]}})
            if found:
                errors[nid] = {"errors": found, "dependent_outputs": [], "class_type": cls}
        return errors

    def _upstream(self, prompt, nid, seen=None) -> set:
        seen = set() if seen is None else seen
        if nid in seen:
            return seen
        seen.add(nid)
        for v in prompt[nid].get("inputs", {}).values():
            if isinstance(v, list) and len(v) == 2 and v[0] in prompt:
                self._upstream(prompt, v[0], seen)
        return seen

    async def ws(self, request):
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.setdefault(client_id, []).append(ws)
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": len(self.queue)}}, "sid": client_id}})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and json.loads(msg.data).get("type") == "feature_flags":
                    await ws.send_json({"type": "feature_flags", "data": {}})
        finally:
            self.sockets[client_id].remove(ws)
        return ws

    async def get_history(self, request):
        pid = request.match_info["prompt_id"]
        return web.json_response({pid: self.history[pid]} if pid in self.history else {})

    async def view(self, request):
        q = request.query
        key = (q.get("type", "output"), q.get("subfolder", ""), q.get("filename", ""))
        if key not in self.files:
            return web.Response(status=404)
        body = self.files[key]
        if self.cut_next_views > 0:  # the connection drops mid-body: the client sees a ClientPayloadError
            self.cut_next_views -= 1
            resp = web.StreamResponse(headers={"Content-Length": str(len(body))})
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
            request.transport.close()
            return resp
        return web.Response(body=body, content_type="application/octet-stream")

    async def get_queue(self, request):
        def item(number, pid):
            prompt, cid, outs = self._pending[pid]
            return [number, pid, prompt, {"client_id": cid}, outs]
        running = [item(*r) for r in ([self._running_item] if self.running else [])]
        return web.json_response({"queue_running": running, "queue_pending": [item(n, p) for n, p in self.queue]})

    async def post_queue(self, request):
        body = await request.json()
        if body.get("delete"):
            self._delete(body["delete"])
        if body.get("clear"):
            self._delete()
        return web.Response(status=200)

    async def interrupt(self, request):
        body = await request.json() if request.can_read_body else {}
        self.interrupts.append(body)
        if not body.get("prompt_id") or body.get("prompt_id") == self.running:
            self.interrupt_flag = True
        return web.Response(status=200)

    # ------------------------------------------------------------------------------------ execution

    async def _send(self, client_id, kind, data):
        for ws in list(self.sockets.get(client_id, [])):
            if not ws.closed:
                try:
                    await ws.send_json({"type": kind, "data": data})
                except ConnectionError:
                    pass

    async def _work(self):
        while True:
            while not self.queue or self._paused:
                self._wakeup.clear()
                await self._wakeup.wait()
            number, pid = self.queue.pop(0)
            self.running, self._running_item, self.interrupt_flag = pid, (number, pid), False
            try:
                await self._execute(pid)
            finally:
                self.running = None

    async def _execute(self, pid):
        prompt, cid, good = self._pending[pid]
        messages, outputs = [], {}
        ts = lambda: int(time.time() * 1000)  # noqa: E731

        async def send(kind, data, record=False):
            if record:
                messages.append([kind, data])
            await self._send(cid, kind, data)

        await send("status", {"status": {"exec_info": {"queue_remaining": len(self.queue) + 1}}})
        await send("execution_start", {"prompt_id": pid, "timestamp": ts()}, True)
        await send("execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": ts()}, True)
        to_run = set().union(*(self._upstream(prompt, o) for o in good))
        status = "success"
        for nid in sorted(to_run, key=lambda n: int(n) if n.isdigit() else 0):
            cls, inputs = prompt[nid]["class_type"], prompt[nid]["inputs"]
            await send("progress_state", {"prompt_id": pid, "nodes": {nid: {"value": 0, "max": 1, "state": "running", "node_id": nid, "prompt_id": pid, "display_node_id": nid, "parent_node_id": None, "real_node_id": nid}}})
            await send("executing", {"node": nid, "display_node": nid, "prompt_id": pid})
            if cls == "FakeSampler":
                seed = inputs.get("seed")
                action = self.behaviour.get(seed)
                steps = int(inputs.get("steps", 3))
                if action == "slow":
                    steps = max(steps, 40)
                if action == "vanish" and seed not in self.vanished:  # a server restart: prompt and socket gone
                    self.vanished.add(seed)
                    for ws in list(self.sockets.get(cid, [])):
                        await ws.close()
                    return
                for step in range(1, steps + 1):
                    if action == "drop_ws" and step == 2 and pid not in self.dropped:
                        self.dropped.add(pid)
                        for ws in list(self.sockets.get(cid, [])):
                            await ws.close()
                    if action == "hang":
                        while not self.interrupt_flag:
                            await asyncio.sleep(0.01)
                    if self.interrupt_flag or action == "interrupt":
                        data = {"prompt_id": pid, "node_id": nid, "node_type": cls, "executed": [], "timestamp": ts()}
                        await send("execution_interrupted", data, True)
                        status = "error"
                        break
                    if action == "error":
                        data = {"prompt_id": pid, "node_id": nid, "node_type": cls, "executed": [],
                                "exception_message": "boom: sampler diverged at step 1\n", "exception_type": "ValueError",
                                "traceback": ["Traceback ...\n"], "current_inputs": {"seed": [str(seed)]},
                                "current_outputs": {}, "timestamp": ts()}
                        await send("execution_error", data, True)
                        status = "error"
                        break
                    await asyncio.sleep(self.step_delay * (10 if action == "slow" else 1))
                    await send("progress", {"value": step, "max": steps, "prompt_id": pid, "node": nid})
                if status == "error":
                    break
            elif cls in OUTPUT_CLASSES:
                seed = next((n["inputs"].get("seed") for n in prompt.values() if "seed" in n["inputs"]), None)
                kind = "temp" if cls == "PreviewImage" else "output"
                ext = ".mp4" if cls == "VHS_VideoCombine" else ".png"
                name = f"{inputs.get('filename_prefix', 'ComfyUI')}_{next(self.file_counter):05d}_{ext}"
                self.files[(kind, "", name)] = output_bytes(pid, nid, seed)
                entry = {"filename": name, "subfolder": "", "type": kind}
                ui = {"gifs": [dict(entry, format="video/h264-mp4")]} if ext == ".mp4" else {"images": [entry]}
                outputs[nid] = ui
                await send("executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": pid})
        if status == "success":
            await send("execution_success", {"prompt_id": pid, "timestamp": ts()}, True)
        self.history[pid] = {
            "prompt": [self._running_item[0], pid, prompt, {"client_id": cid}, good],
            "outputs": outputs if status == "success" else {},
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid} for nid in outputs},
        }
        await send("status", {"status": {"exec_info": {"queue_remaining": len(self.queue)}}})
        await send("executing", {"node": None, "prompt_id": pid})


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung server); stops after ``lifetime`` s."""

    def __init__(self, lifetime: float = 30.0):
        self.lifetime = lifetime
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _hold(self, reader, writer):
        self.connections += 1
        try:  # read everything, answer nothing; hang up when the lifetime ends
            await asyncio.wait_for(reader.read(-1), max(0.0, self._until - time.monotonic()))
        except (asyncio.TimeoutError, ConnectionError):
            pass
        writer.close()

    def __enter__(self) -> "SilentServer":
        self._thread.start()
        start = asyncio.start_server(self._hold, "127.0.0.1", self.port)
        self._until = time.monotonic() + self.lifetime
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.call_later, self.lifetime + 2, self._loop.stop)
        return self

    def __exit__(self, *exc):
        async def shutdown():
            self._server.close()
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
