"""``motionguide batch``: queue a list of jobs through one API-format workflow on one or more ComfyUI servers.

    python cli.py batch workflow_api.json jobs.csv --server 127.0.0.1:8188 --server 10.0.0.5:8188 --out renders/

For each job: upload its files (``POST /upload/image``), queue the bound prompt (``POST /prompt`` with our
``client_id`` and ``prompt_id``; any ``node_errors`` fail the job), follow it over ``/ws`` until ``executing`` with
``node: null``, read ``/history/{id}`` and download every output file via ``/view`` into ``OUT/<job id>/``.
One job runs per server at a time. ``OUT/batch_state.json`` (or ``--state``, locked for the run; changes go to an
append-only journal beside it, see :class:`BatchState`) records every job; a rerun skips
finished jobs and picks up a prompt an interrupted run left on a server (via ``/history`` and ``/queue``) instead
of queuing it again. Connection failures, 5xx answers and dropped websockets are retried ``--retries`` times with
exponential backoff, paced per server by a :class:`CircuitBreaker` that takes a dead server out (and fails the
batch fast when none is left); validation errors, node exceptions, interrupts and timeouts fail only their job.
Exit code: 0 all jobs done, 1 some failed, 2 the workflow/job list/state could not be used.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import sys
import uuid
from pathlib import Path

import aiohttp

from .jobs import (Job, JobError, WorkflowError, load_workflow, parse_bindings, parse_overrides, prepare_jobs,
                         read_job_list, rename_upload)
from .server import (CircuitBreaker, ComfyServer, JobFailed, TransientError, format_execution_error, normalise_url,
                     output_files)
from ..pipelines.output_paths import make_readable
from .state import (DONE, FAILED, QUEUED, BatchState, StateLock, publish_no_clobber, remove_partial_downloads,
                    temp_path_for)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", help="API-format workflow JSON (ComfyUI: Workflow > Export (API))")
    parser.add_argument("jobs", help="job list: CSV with a header row, or JSON lines (.jsonl)")
    parser.add_argument("--server", action="append", default=[], metavar="URL",
                        help="ComfyUI server (repeat for several; one job runs on each at a time). "
                             "Default 127.0.0.1:8188")
    parser.add_argument("--out", default="batch_outputs", help="folder for outputs, one sub-folder per job id")
    parser.add_argument("--state", default=None, help="resumable state file (default: OUT/batch_state.json); one "
                                                      "client at a time may use it")
    parser.add_argument("--bind", action="append", default=[], metavar="FIELD=NODE.INPUT",
                        help="send job field FIELD to NODE.INPUT (NODE: id or unique title); repeat to add targets")
    parser.add_argument("--bindings", default=None, help="JSON file {field: 'NODE.INPUT' | [..] | {targets, upload}}")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override for every job (a job's own overrides win)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries of transient failures per job (default 3); a server failing this many times "
                             "+ 1 in a row counts as down")
    parser.add_argument("--backoff", type=float, default=2.0,
                        help="first retry delay in seconds, doubled with each failure of the same server in a row")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a job may run before it is cancelled")
    parser.add_argument("--poll", type=float, default=5.0,
                        help="seconds of websocket silence before asking /queue and /history (a prompt in neither was "
                             "deleted and is queued again)")
    parser.add_argument("--include-previews", action="store_true", help="also download temp (preview) outputs")
    parser.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_batch(args))
    except KeyboardInterrupt:
        logger.warning("stopped; rerun the same command to resume (finished jobs are skipped)")
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="motionguide batch", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    return run(args)


def _bindings_spec(args, workflow_bindings: dict) -> dict:
    import json

    spec = dict(workflow_bindings)
    if args.bindings:
        try:
            spec.update(json.loads(Path(args.bindings).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkflowError(f"--bindings {args.bindings}: {exc}") from None
    cli: dict[str, list[str]] = {}
    for item in args.bind:
        name, eq, target = item.partition("=")
        if not eq or not name.strip() or not target.strip():
            raise WorkflowError(f"--bind {item!r} is not FIELD=NODE.INPUT")
        cli.setdefault(name.strip(), []).append(target.strip())
    spec.update(cli)
    return spec


class _Progress:
    """A tqdm bar over jobs when stderr is a terminal (and tqdm is installed), else log lines."""

    def __init__(self, total: int, disabled: bool):
        self.bar = None
        self.status: dict[str, str] = {}
        if not disabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="job", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass
        self.total, self.count = total, 0

    def job_finished(self, text: str) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.write(text, file=sys.stderr)
        else:
            logger.info("[%d/%d] %s", self.count, self.total, text)

    def server_status(self, server: str, text: str) -> None:
        self.status[server] = text
        if self.bar is not None:
            self.bar.set_postfix_str(" | ".join(self.status.values()), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Lost(TransientError):
    """Our prompt vanished from the server (restart): queue it again."""


class BatchRunner:
    def __init__(self, args, state: BatchState, servers: list[ComfyServer], jobs: list[Job], progress: _Progress):
        self.args, self.state, self.servers, self.progress = args, state, servers, progress
        self.shared: asyncio.Queue = asyncio.Queue()
        self.own: dict[str, collections.deque] = {s.url: collections.deque() for s in servers}
        self.remaining = len(jobs)
        self.alive = {s.url for s in servers}
        self.missing: dict[str, set[str] | None] = {}
        self.attempts: dict[str, int] = collections.Counter()
        self.uploaded: dict[tuple[str, str], str] = {}
        self.results: dict[str, tuple[str, str]] = {}
        self.breakers = {s.url: CircuitBreaker(s.url, args.retries, args.backoff) for s in servers}
        self.reasons: dict[str, str] = {}  # server -> why it takes no jobs
        self.finished = asyncio.Event()
        self.class_types = {n["class_type"] for n in jobs[0].prompt.values()} if jobs else set()
        for job in jobs:  # a prompt an earlier run left on a server goes back to that server first
            entry = state.job(job.id)
            if entry.get("status") in (QUEUED, FAILED) and entry.get("prompt_id") and entry.get("server") in self.own:
                self.own[entry["server"]].append(job)
            else:
                self.shared.put_nowait(job)

    async def run(self) -> None:
        if self.remaining:
            await asyncio.gather(*(self.worker(s) for s in self.servers))

    async def _next(self, server: ComfyServer) -> Job | None:
        if self.own[server.url]:
            return self.own[server.url].popleft()
        return await self.shared.get()

    def _finish(self, job: Job, status: str, message: str = "") -> None:
        self.results[job.id] = (status, message)
        if status == FAILED:
            self.state.update(job.id, status=FAILED, error=message, content_hash=job.content_hash, row=job.row)
            self.progress.job_finished(f"FAILED {job.id} (row {job.row}): {message}")
        else:
            self.progress.job_finished(f"done {job.id}: {message}")
        self.remaining -= 1
        if self.remaining == 0:
            self.finished.set()
            for _ in self.servers:
                self.shared.put_nowait(None)

    async def worker(self, server: ComfyServer) -> None:
        breaker = self.breakers[server.url]
        while self.remaining:
            job = await self._next(server)
            if job is None:
                return
            try:
                if not await self._server_can_run(server, job):
                    return
                saved = await self.execute(server, job)
                breaker.success()
                self._finish(job, DONE, f"{len(saved)} file(s) in {Path(self.args.out) / job.id}")
            except JobFailed as exc:
                breaker.success()  # the server answered; the job itself failed
                self._finish(job, FAILED, str(exc))
            except _Lost as exc:  # the server is fine: queue the job again (it counts as one of its retries)
                if self._retry_later(server, job, exc, self.args.backoff):
                    await asyncio.sleep(self.args.backoff)
            except TransientError as exc:
                delay = breaker.failure(exc)
                if breaker.open:
                    if not self._unusable(server, job, breaker.reason()) or not await self._wait_until_back(server):
                        return
                    continue
                if self._retry_later(server, job, exc, delay):
                    await asyncio.sleep(delay)  # this server cools down; another may take the job meanwhile
            except Exception as exc:  # a full disk, a bug: this job fails, the batch goes on
                logger.exception("%s: unexpected error", job.id)
                self._finish(job, FAILED, f"unexpected {type(exc).__name__}: {exc}")
            finally:
                self.progress.server_status(server.url, f"{server.url}: idle")

    def _retry_later(self, server: ComfyServer, job: Job, exc: TransientError, delay: float) -> bool:
        """Hand the job back for another try after ``delay`` on this server, or fail it when out of retries."""
        self.attempts[job.id] += 1
        n = self.attempts[job.id]
        if n > self.args.retries:
            if isinstance(exc, _Lost):
                self._finish(job, FAILED, f"lost {n} times (--retries {self.args.retries}): {exc}")
            else:
                self._finish(job, FAILED, f"gave up after {n} attempts; last: {exc}")
            return False
        logger.warning("%s on %s: %s; retry %d/%d in %.1f s", job.id, server, exc, n, self.args.retries, delay)
        self.progress.server_status(server.url, f"{server.url}: retrying in {delay:.0f}s")
        self.shared.put_nowait(job)
        return True

    def _unusable(self, server: ComfyServer, job: Job, reason: str) -> bool:
        """Take ``server`` out of the batch: True when other servers take its jobs, else every job left fails now."""
        self.alive.discard(server.url)
        self.reasons[server.url] = reason
        if self.alive:
            logger.error("%s; its jobs go to the other servers", reason)
            self.shared.put_nowait(job)
            while self.own[server.url]:  # prompts an earlier run left here: another server runs them afresh
                self.shared.put_nowait(self.own[server.url].popleft())
            return True
        if len(self.reasons) > 1:
            reason = "no server left: " + "; ".join(self.reasons.values())
        self._finish(job, FAILED, reason)
        waiting = [self.own[s.url].popleft() for s in self.servers for _ in range(len(self.own[s.url]))]
        while not self.shared.empty():
            waiting.append(self.shared.get_nowait())
        for job in waiting:
            if job is not None:
                self._finish(job, FAILED, reason)
        return False

    async def _wait_until_back(self, server: ComfyServer) -> bool:
        """Probe a server whose breaker opened every cool-down; True once it answers (and it takes jobs again)."""
        breaker = self.breakers[server.url]
        while self.remaining and self.alive:
            self.progress.server_status(server.url, f"{server.url}: down, next try in {breaker.cooldown:.0f}s")
            try:
                await asyncio.wait_for(self.finished.wait(), breaker.cooldown)
                return False
            except asyncio.TimeoutError:
                pass
            if not (self.remaining and self.alive):
                break
            try:
                await server.get_json("/queue")
            except TransientError as exc:
                breaker.failure(exc)
                continue
            breaker.success()
            self.alive.add(server.url)
            self.reasons.pop(server.url, None)
            logger.warning("%s answers again; it takes jobs again", server)
            return True
        return False

    async def _server_can_run(self, server: ComfyServer, job: Job) -> bool:
        """False (and the job handed on) when this server lacks node classes the workflow uses."""
        if self.missing.get(server.url) is None:
            try:
                classes = await server.node_classes()
            except TransientError:
                return True  # unreachable now: the job's own requests will report it and be retried
            self.missing[server.url] = set() if classes is None else self.class_types - classes
        missing = self.missing[server.url]
        if not missing:
            return True
        self._unusable(server, job, f"{server.url} lacks node types {', '.join(sorted(missing))} "
                                    "(install the packs that provide them)")
        return False

    # ----------------------------------------------------------------------------------------- one job

    async def execute(self, server: ComfyServer, job: Job) -> list[str]:
        deadline = asyncio.get_running_loop().time() + self.args.timeout
        entry = self.state.job(job.id)
        prompt_id = None
        resumable = entry.get("server") == server.url and entry.get("content_hash") == job.content_hash
        if entry.get("status") == QUEUED and resumable:
            old = entry.get("prompt_id")
            # queue first, then history: a prompt finishing between the two questions is still found
            if await server.in_queue(old):
                logger.info("%s: following prompt %s queued by an earlier run on %s", job.id, old, server)
                prompt_id = old
            else:
                hist = await server.history(old)
                if hist is not None:
                    logger.info("%s: prompt %s from an earlier run is finished on %s", job.id, old, server)
                    return await self.collect(server, job, old, hist)
        elif entry.get("status") == FAILED and resumable and entry.get("prompt_id"):
            # a job that failed after its prompt ran (downloads cut): fetch what the server kept, never run it again
            hist = await server.history(entry["prompt_id"])
            if hist is not None and (hist.get("status") or {}).get("status_str") != "error" and hist.get("outputs"):
                logger.info("%s: prompt %s from an earlier run finished on %s; fetching its outputs", job.id,
                            entry["prompt_id"], server)
                return await self.collect(server, job, entry["prompt_id"], hist)
        socket = _Socket(server)
        await socket.connect()
        try:
            if prompt_id is None:
                await self._upload_files(server, job)
                prompt_id = str(uuid.uuid4())
                self.state.update(job.id, status=QUEUED, server=server.url, prompt_id=prompt_id,
                                  content_hash=job.content_hash, row=job.row, error=None)
                await self.state.sync()  # on disk before the server has it: a rerun follows it, never queues twice
                self.progress.server_status(server.url, f"{server.url}: {job.id} queued")
                await server.queue_prompt(job.prompt, prompt_id)
            try:
                hist = await self.follow(server, job, prompt_id, socket, deadline)
            except _Timeout:
                await server.cancel(prompt_id)
                raise JobFailed(
                    f"no result within --timeout {self.args.timeout:g} s (prompt {prompt_id} on {server}); "
                    "cancelled it on the server"
                ) from None
        finally:
            await socket.close()
        return await self.collect(server, job, prompt_id, hist)

    async def _upload_files(self, server: ComfyServer, job: Job) -> None:
        for name, (path, planned) in job.uploads.items():
            key = (server.url, planned)
            if key not in self.uploaded:
                if not path.is_file():
                    raise JobFailed(f"{name} file vanished before upload: {path}")
                self.uploaded[key] = await server.upload(path, planned)
            if self.uploaded[key] != planned:
                rename_upload(job, name, self.uploaded[key])

    async def follow(self, server: ComfyServer, job: Job, prompt_id: str, socket: "_Socket", deadline: float) -> dict:
        """Read websocket messages for our prompt until it is done; return its /history entry."""
        loop = asyncio.get_running_loop()
        drops = 0
        check_at = loop.time() + self.args.poll
        while True:
            now = loop.time()
            if now >= deadline:
                raise _Timeout()
            if now >= check_at:
                # nothing about our prompt for --poll s (other users' status messages do not count): still
                # waiting or running, or did we miss the end, or was it deleted?
                hist = await self._where_is(server, prompt_id)
                if hist is not None:
                    return hist
                check_at = loop.time() + self.args.poll
            msg = await socket.receive(max(0.0, min(check_at, deadline) - loop.time()))
            if msg is None:
                continue
            if msg == "closed":
                drops += 1
                if drops > self.args.retries:
                    raise TransientError(f"websocket to {server} dropped {drops} times")
                logger.warning("%s: websocket to %s dropped; reconnecting", job.id, server)
                await asyncio.sleep(min(self.args.backoff * 2 ** (drops - 1), 30.0))
                await socket.connect()
                check_at = loop.time()  # ask at once what became of it meanwhile
                continue
            kind, data = msg.get("type"), msg.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            check_at = loop.time() + self.args.poll
            if kind == "executing":
                if data.get("node") is None:
                    return await self._final_history(server, prompt_id)
                self.progress.server_status(server.url, f"{server.url}: {job.id} node {data.get('node')}")
            elif kind == "progress":
                self.progress.server_status(
                    server.url, f"{server.url}: {job.id} node {data.get('node')} {data.get('value')}/{data.get('max')}"
                )
            elif kind == "execution_error":
                raise JobFailed(format_execution_error(data))
            elif kind == "execution_interrupted":
                raise JobFailed(
                    f"interrupted on {server} at node {data.get('node_id')} ({data.get('node_type')}): "
                    "someone pressed Cancel or called /interrupt"
                )

    async def _where_is(self, server: ComfyServer, prompt_id: str) -> dict | None:
        """None while the prompt is queued or running, its history once finished; :class:`_Lost` when neither.

        The queue is asked first: a prompt that finishes between the two questions is then found in the history.
        """
        if await server.in_queue(prompt_id):
            return None
        hist = await server.history(prompt_id)
        if hist is not None:
            return hist
        raise _Lost(f"prompt {prompt_id} was removed from the queue of {server} before it ran to the end "
                    "(someone cleared the queue or deleted it, or the server restarted)")

    async def _final_history(self, server: ComfyServer, prompt_id: str) -> dict:
        for _ in range(20):
            hist = await server.history(prompt_id)
            if hist is not None:
                return hist
            await asyncio.sleep(0.1)
        raise TransientError(f"prompt {prompt_id} finished but {server} has no /history entry for it")

    async def collect(self, server: ComfyServer, job: Job, prompt_id: str, hist: dict) -> list[str]:
        status = hist.get("status") or {}
        if status.get("status_str") == "error":
            for event, data in status.get("messages", []):
                if event == "execution_error":
                    raise JobFailed(format_execution_error(data))
                if event == "execution_interrupted":
                    raise JobFailed(f"interrupted on {server} at node {data.get('node_id')} ({data.get('node_type')})")
            raise JobFailed(f"prompt {prompt_id} failed on {server} (history status 'error')")
        files = output_files(hist.get("outputs") or {}, self.args.include_previews)
        if not files:
            raise JobFailed(
                f"prompt {prompt_id} finished on {server} without output files: does the workflow end in a save node "
                "(SaveImage, SaveVideo, VHS_VideoCombine)?"
                + ("" if self.args.include_previews else " Previews need --include-previews.")
            )
        dest_dir = Path(self.args.out) / job.id
        saved = []
        for _nid, entry in files:
            name = Path(entry["filename"]).name
            tmp = temp_path_for(dest_dir, name)
            try:
                await self._download(server, entry, tmp, prompt_id)
                make_readable(tmp)
                saved.append(str(publish_no_clobber(tmp, dest_dir / name)))
            finally:
                if tmp.exists():
                    tmp.unlink()
        self.state.update(job.id, status=DONE, server=server.url, prompt_id=prompt_id, content_hash=job.content_hash,
                          row=job.row, outputs=saved, error=None)
        return saved


    async def _download(self, server: ComfyServer, entry: dict, tmp: Path, prompt_id: str) -> None:
        """One output file, retried ``--retries`` times with backoff when the transfer breaks off; then the job
        fails saying a rerun fetches it (the prompt is finished: it is never queued again)."""
        for attempt in range(self.args.retries + 1):
            try:
                await server.download(entry, tmp)
                return
            except TransientError as exc:
                if attempt == self.args.retries:
                    raise JobFailed(f"{exc} ({attempt + 1} tries); prompt {prompt_id} finished on {server}: rerun "
                                    "the same command to fetch its outputs from /history without running it "
                                    "again") from None
                delay = min(self.args.backoff * 2 ** attempt, 30.0)
                logger.warning("%s; retry %d/%d in %.1f s", exc, attempt + 1, self.args.retries, delay)
                await asyncio.sleep(delay)


class _Timeout(Exception):
    pass


class _Socket:
    """The websocket of one job; ``receive`` gives a dict, None on a quiet spell, or "closed"."""

    def __init__(self, server: ComfyServer):
        self.server, self.ws = server, None

    async def connect(self) -> None:
        await self.close()
        try:
            self.ws = await self.server.connect_ws()
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            raise TransientError(f"websocket to {self.server}: {type(exc).__name__}: {exc}") from exc

    async def receive(self, timeout: float):
        import json

        try:
            msg = await self.ws.receive(timeout=timeout)
        except asyncio.TimeoutError:
            return None
        except (aiohttp.ClientError, ConnectionError):
            return "closed"
        if msg.type == aiohttp.WSMsgType.TEXT:
            try:
                return json.loads(msg.data)
            except ValueError:
                return {}
        if msg.type == aiohttp.WSMsgType.BINARY:  # preview frames
            return {}
        return "closed"

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        self.ws = None


async def run_batch(args) -> int:
    try:
        prompt, workflow_bindings = load_workflow(args.workflow)
        bindings = parse_bindings(_bindings_spec(args, workflow_bindings), prompt)
        global_overrides = parse_overrides(list(args.set))
        jobs = read_job_list(args.jobs)
    except (WorkflowError, JobError) as exc:
        logger.error("%s", exc)
        return 2
    if not jobs:
        logger.error("job list %s has no jobs", args.jobs)
        return 2
    prepare_jobs(jobs, prompt, bindings, global_overrides)
    urls = [normalise_url(u) for u in (args.server or ["127.0.0.1:8188"])]
    if len(set(urls)) != len(urls):
        logger.error("the same --server is given twice: %s", ", ".join(urls))
        return 2
    state_path = Path(args.state) if args.state else Path(args.out) / "batch_state.json"
    lock = StateLock(state_path)
    try:
        lock.acquire()  # before reading: a second client must not even start from the same state
        state = BatchState.load(state_path, uuid.uuid4().hex)
        state.start()
    except (ValueError, OSError) as exc:  # in use (StateInUse), wrong shape, unwritable, no locks
        lock.release()
        logger.error("%s", exc if isinstance(exc, ValueError) else f"state file {state_path}: {exc}")
        return 2
    try:
        removed = remove_partial_downloads(Path(args.out))  # the state is ours now: no other client downloads
        if removed:
            logger.info("removed %d partial download(s) left by an earlier run under %s", removed, args.out)
        return await _run_jobs(args, jobs, urls, state)
    finally:
        state.close()
        lock.release()


async def _run_jobs(args, jobs: list[Job], urls: list[str], state: BatchState) -> int:
    bad = [j for j in jobs if j.error]
    skipped = [j for j in jobs if not j.error and state.is_done(j.id, j.content_hash)]
    todo = [j for j in jobs if not j.error and not state.is_done(j.id, j.content_hash)]
    progress = _Progress(len(jobs), args.no_progress)
    for job in skipped:
        progress.job_finished(f"skip {job.id}: finished in an earlier run")
    for job in bad:
        progress.job_finished(f"FAILED {job.id}: {job.error}")
    async with aiohttp.ClientSession() as session:
        # every single network wait (a request, the websocket handshake) is bounded by --timeout as well
        servers = [ComfyServer(u, session, state.client_id, request_timeout=min(60.0, args.timeout)) for u in urls]
        runner = BatchRunner(args, state, servers, todo, progress)
        if progress.bar is not None:
            from tqdm.contrib.logging import logging_redirect_tqdm

            with logging_redirect_tqdm():  # log lines print above the bar instead of through it
                await runner.run()
        else:
            await runner.run()
    progress.close()
    status = {j.id: runner.results.get(j.id, ("", ""))[0] for j in todo}
    failed = [(j, j.error) for j in bad] + [(j, runner.results[j.id][1]) for j in todo if status[j.id] == FAILED]
    done = sum(1 for j in todo if status[j.id] == DONE)
    logger.info("batch: %d done, %d skipped (already done), %d failed; state in %s",
                done, len(skipped), len(failed), state.path)
    for job, message in failed:
        logger.error("job %s (row %d) failed: %s", job.id, job.row, message)
    return 1 if failed else 0
