"""``cli.py models download``: fetch registry files from their official Hugging Face repos, only when asked.

Each file is downloaded with ``huggingface_hub`` (progress bars; an interrupted transfer resumes, within the run and
on the next run) into a staging folder next to its destination, then checked (the sha256 Hugging Face publishes for
large files, else the size; and the header check of :mod:`.model_files`) and moved into place with one atomic
rename. A good file already in place is never touched. Gated repos (SVD-XT 1.1) need an accepted licence and a
token, which ``huggingface_hub`` reads from ``HF_TOKEN`` or ``hf auth login``; MotionGuide never stores it.
Entries without a ``download`` spec (SMPL: licence; HMR2: a tarball) are printed as manual steps.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from ..batch.jobs import file_digest as sha256_of
from . import model_files

logger = logging.getLogger(__name__)

STAGING = ".motionguide-download"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(Exception):
    """A download that cannot go on; the message says why and what to do."""


def select(names: list[str], workflow: str | None = None) -> list[dict]:
    """Registry entries for ids, file names or groups in ``names`` and for the missing groups of ``workflow``."""
    entries = model_files.registry()
    chosen: list[dict] = []
    for name in names:
        hits = [e for e in entries if name in (e["id"], e["name"])] or [
            next((e for e in entries if e["group"] == name and e.get("download")),
                 next((e for e in entries if e["group"] == name), None))]
        if hits == [None]:
            known = ", ".join(e["id"] for e in entries)
            raise DownloadError(f"unknown model '{name}': use one of {known} (or a group such as svd, mimicmotion).")
        chosen += [e for e in hits if e not in chosen]
    if workflow is not None:
        workflows = model_files.shipped_workflows()
        if workflow not in workflows:
            raise DownloadError(f"unknown workflow '{workflow}': one of {', '.join(workflows)}.")
        verdict = model_files.verdicts(model_files.check_all(), {workflow: workflows[workflow]})[0]
        for members in verdict.missing.values():
            pick = next((e for e in members if e.get("download")), members[0])
            if pick not in chosen:
                chosen.append(pick)
    return chosen


def _destinations(entry: dict) -> list[tuple[str, Path]]:
    """(file in the repo, local path) for every file of the entry."""
    target = model_files.target_path(entry)
    files = entry["download"]["files"]
    if entry.get("kind") == "diffusers_folder":
        return [(f, target / f) for f in files]
    return [(files[0], target)]


# Failures to reach the server at all (no network, DNS, refused, proxy): nothing was transferred for these.
_UNREACHABLE_NAMES = {"ConnectError", "ConnectTimeout", "ProxyError", "OfflineModeIsEnabled", "NameResolutionError"}


def _unreachable(exc: BaseException) -> str | None:
    """The low-level reason when ``exc`` (or what caused it) says the server could not be reached, else None."""
    import socket

    seen: BaseException | None = exc
    for _ in range(8):  # a short cause chain; never loop on a cycle
        if seen is None:
            return None
        if isinstance(seen, (socket.gaierror, ConnectionRefusedError)) or type(seen).__name__ in _UNREACHABLE_NAMES:
            return str(seen) or type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def _partial_bytes(staging: Path | None) -> int:
    if staging is None or not staging.is_dir():
        return 0
    return sum(p.stat().st_size for p in staging.rglob("*.incomplete") if p.is_file())


def _explain_http_error(exc: Exception, repo: str, filename: str, endpoint: str | None = None,
                        staging: Path | None = None) -> str:
    from huggingface_hub import get_token
    from huggingface_hub.errors import GatedRepoError, RemoteEntryNotFoundError, RepositoryNotFoundError

    page = f"https://huggingface.co/{repo}"
    if isinstance(exc, GatedRepoError):
        if get_token() is None:
            return (f"{repo} is gated and no Hugging Face token was found: accept its licence at {page} while logged "
                    "in, then run `hf auth login` (or set HF_TOKEN) and the same command again. The token is read "
                    "by huggingface_hub and never stored by MotionGuide.")
        return (f"{repo} is gated and your token has no access to it yet: accept its licence at {page} with the "
                "account of that token, then run the same command again.")
    if isinstance(exc, RemoteEntryNotFoundError):
        return f"{filename} is not in {repo} (renamed upstream?): see {page} and place the file by hand."
    if isinstance(exc, RepositoryNotFoundError):
        return f"{repo} was not found (or is private): see {page}."
    reason = _unreachable(exc)
    if reason is not None:
        host = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        partial = _partial_bytes(staging)
        kept = (f"the {partial / 1e6:.1f} MB that arrived before are kept and the next run resumes from there" if partial
                else "nothing was downloaded")
        return (f"{host} could not be reached ({reason}): the network is unreachable from here (offline, DNS, firewall "
                f"or proxy), so {repo}/{filename} was not fetched; {kept}. Run the same command again once the "
                "machine is online, or download the file by hand and place it where the line above says.")
    return f"{repo}/{filename} could not be downloaded ({type(exc).__name__}: {exc}); run the same command again " \
           "to resume."


def fetch_file(repo: str, filename: str, destination: Path, *, expected_size: int | None = None,
               revision: str = "main", endpoint: str | None = None) -> str:
    """Download one file to ``destination`` (atomic, checked); returns what was done, in words."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    if destination.is_file() and model_files.file_problem(destination) is None:
        size = destination.stat().st_size
        note = "" if expected_size in (None, size) else f"; {size} bytes, not the official {expected_size}: left alone"
        return f"kept {destination} (already present and readable; never overwritten{note})"
    staging = destination.parent / STAGING
    try:
        meta = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision, endpoint=endpoint))
        staged = Path(hf_hub_download(repo, filename, revision=revision, local_dir=staging, endpoint=endpoint))
    except Exception as exc:  # noqa: BLE001 - HTTP statuses, and network failures (the partial file stays to resume)
        raise DownloadError(_explain_http_error(exc, repo, filename, endpoint, staging)) from exc
    etag = (meta.etag or "").strip('"').lower()
    problem = None
    if _SHA256.match(etag):
        actual = sha256_of(staged)
        if actual != etag:
            problem = f"sha256 mismatch: Hugging Face publishes {etag}, the download has {actual}"
    size = staged.stat().st_size
    for label, wanted in (("Hugging Face", meta.size), ("the registry", expected_size)):
        if problem is None and wanted is not None and size != wanted:
            problem = f"size mismatch: {label} says {wanted} bytes, the download has {size}"
    problem = problem or model_files.file_problem(staged)
    if problem:
        staged.unlink()
        raise DownloadError(f"{repo}/{filename}: {problem}. The bad download was deleted; run the same command "
                            "again (a repeated mismatch means the upstream file changed: report it).")
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, destination)  # same folder tree, so one atomic rename
    return f"downloaded {destination} ({size / 1e6:.1f} MB, {'sha256' if _SHA256.match(etag) else 'size'} checked)"


def _clean_staging(destinations: list[Path]) -> None:
    """Remove staging folders that hold no partial download any more."""
    for staging in {d.parent / STAGING for d in destinations}:
        if staging.is_dir() and not any(p.suffix == ".incomplete" for p in staging.rglob("*")):
            shutil.rmtree(staging, ignore_errors=True)


def download(entries: list[dict], *, revision: str = "main", endpoint: str | None = None, say=print) -> int:
    """Download every entry that has a source; returns 0 when all asked-for files are in place, else 1."""
    failed = 0
    for entry in entries:
        check = model_files.check_entry(entry)
        if check.ok:
            say(f"[ok] {entry['id']}: {check.path} is present and good; nothing to do.")
            continue
        spec = entry.get("download")
        if not spec:
            say(f"[manual] {entry['id']}: download {entry['name']} by hand into {check.path.parent} — from "
                f"{entry['source']} ({entry.get('licence', 'see source')}).")
            failed += 1
            continue
        say(f"[..] {entry['id']}: from https://huggingface.co/{spec['repo']} into {model_files.target_path(entry)}"
            + (" (gated: needs an accepted licence and a token)" if spec.get("gated") else ""))
        destinations = _destinations(entry)
        try:
            for filename, destination in destinations:
                size = entry.get("size") if entry.get("kind") != "diffusers_folder" else None
                say("     " + fetch_file(spec["repo"], filename, destination, expected_size=size,
                                         revision=revision, endpoint=endpoint))
        except DownloadError as exc:
            say(f"[!!] {entry['id']}: {exc}")
            failed += 1
            continue
        finally:
            _clean_staging([d for _, d in destinations])
        after = model_files.check_entry(entry)
        say(f"[{'ok' if after.ok else '!!'}] {entry['id']}: {after.status}: {after.path} {after.detail}".rstrip())
        failed += not after.ok
    return 1 if failed else 0


def add_arguments(parser) -> list:
    """Adds ``list`` and ``download`` under ``parser``; returns both sub-parsers (for shared options)."""
    sub = parser.add_subparsers(dest="models_command", required=True)
    listing = sub.add_parser("list", help="every registry model: status, where it goes, and how to get it")
    listing.set_defaults(models_handler=cmd_list)
    get = sub.add_parser("download", help="download model files from their official Hugging Face repos (opt-in)")
    get.add_argument("names", nargs="*", help="model ids, file names or groups (see `models list`)")
    get.add_argument("--workflow", help="download what this shipped workflow still misses (e.g. mimicmotion_pose_video)")
    get.add_argument("--revision", default="main", help="repo revision (branch, tag or commit; default main)")
    get.set_defaults(models_handler=cmd_download)
    return [listing, get]


def cmd_list(args) -> int:
    for check in model_files.check_all():
        spec = check.entry.get("download")
        how = f"models download {check.entry['id']}" if spec else f"manual: {check.entry['source']}"
        print(f"{check.entry['id']:<20} {check.status:<10} {check.path}  [{how}]")
    return 0


def cmd_download(args) -> int:
    if not args.names and not args.workflow:
        print("error: name the models (see `cli.py models list`) or pass --workflow NAME.")
        return 2
    try:
        entries = select(args.names, args.workflow)
    except DownloadError as exc:
        print(f"error: {exc}")
        return 2
    if not entries:
        print(f"nothing to download: {args.workflow} has all its files.")
        return 0
    return download(entries, revision=args.revision)
