"""Job lists for the batch client: parsing, field bindings, overrides, and the prompt each job queues.

Pure functions over API-format workflows (``{node_id: {"class_type", "inputs", "_meta"}}``); nothing here talks to
a server. A job is a row of a CSV file or a line of a JSON-lines file:

    id, reference, video, motion, seed, overrides, <NODE.INPUT columns>, <custom bound fields>

``reference``/``video``/``motion`` are files: they are uploaded and the name the server gives them is written into
the bound node input. ``seed`` goes to every ``seed``/``noise_seed`` widget unless bound explicitly. ``overrides``
is ``NODE.INPUT=VALUE`` pairs separated by ``;`` (CSV) or a list of such strings / a ``{node: {input: value}}``
object (JSON lines). NODE is a node id or a node's unique title; VALUE is parsed as JSON when it can be.

Bindings (field -> node inputs) come from ``--bind``/``--bindings`` or a wrapper workflow
``{"prompt": {...}, "bindings": {...}}``; without them the conventions in :func:`convention_targets` apply.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

FILE_FIELDS = ("reference", "video", "motion")
RESERVED_FIELDS = ("id", "seed", "overrides") + FILE_FIELDS
SEED_INPUTS = ("seed", "noise_seed")

# Loader node class -> input that takes the file name, per file field. Titles break ties between several loaders.
FILE_LOADERS = {
    "reference": {"LoadImage": "image", "LoadImageMask": "image"},
    "video": {"VHS_LoadVideo": "video", "VHS_LoadVideoFFmpeg": "video", "LoadVideo": "file"},
    "motion": {"MotionGuideLoadSMPLMotion": None},  # None: the node's first plain string input
}
TITLE_HINTS = {"reference": ("reference", "ref"), "video": ("driving", "video"), "motion": ("motion",)}


class JobError(ValueError):
    """A problem with one job (bad row, missing file, bad override); the job fails, the batch goes on."""


class WorkflowError(ValueError):
    """A problem with the workflow itself; no job can run."""


@dataclass
class Binding:
    targets: list[tuple[str, str]]  # (node id, input name)
    upload: bool = False


@dataclass
class Job:
    row: int  # 1-based line/row number in the job list, for messages
    fields: dict = field(default_factory=dict)  # field name -> raw value (files as resolved Path)
    overrides: list[tuple[str, str, object]] = field(default_factory=list)  # (node ref, input, value)
    explicit_id: str | None = None
    id: str = ""
    content_hash: str = ""
    prompt: dict | None = None  # the API prompt to queue, upload names filled in
    uploads: dict = field(default_factory=dict)  # field -> (local Path, name on server before upload)
    error: str | None = None


# ----------------------------------------------------------------------------------------------- workflow


def load_workflow(path: str | Path) -> tuple[dict, dict]:
    """Read an API-format workflow; return ``(prompt, bindings_spec)``.

    Accepts a bare API prompt or ``{"prompt": {...}, "bindings": {...}}``. A UI-format file (``nodes``/``links``)
    is refused with the remedy, because its positional ``widgets_values`` cannot be mapped reliably.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"workflow {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WorkflowError(f"workflow {path} must be a JSON object, got {type(data).__name__}")
    if "nodes" in data and "links" in data:
        raise WorkflowError(
            f"workflow {path} is in UI format; in ComfyUI use Workflow > Export (API) and pass that file instead"
        )
    bindings = {}
    if "prompt" in data and isinstance(data["prompt"], dict):
        bindings = data.get("bindings") or {}
        data = data["prompt"]
    for node_id, node in data.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs", {}), dict):
            raise WorkflowError(f"workflow {path}: entry {node_id!r} is not an API-format node (class_type, inputs)")
    if not data:
        raise WorkflowError(f"workflow {path} has no nodes")
    return data, bindings


def find_node(prompt: dict, ref: str) -> str:
    """Node id for ``ref``: an id, or a title (``_meta.title``) that exactly one node carries."""
    if ref in prompt:
        return ref
    titled = [nid for nid, node in prompt.items() if node.get("_meta", {}).get("title") == ref]
    if len(titled) == 1:
        return titled[0]
    if len(titled) > 1:
        raise JobError(f"node title {ref!r} is shared by nodes {', '.join(titled)}; use a node id")
    raise JobError(f"the workflow has no node with id or title {ref!r} (ids: {', '.join(sorted(prompt, key=_id_key))})")


def _id_key(node_id: str):
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def parse_target(text: str) -> tuple[str, str]:
    """``"12.image"`` or ``"Reference Image.image"`` -> (node ref, input). The input is after the last dot."""
    node, dot, name = str(text).strip().rpartition(".")
    if not dot or not node or not name:
        raise JobError(f"{text!r} is not NODE.INPUT (e.g. 3.seed or 'My Sampler.steps')")
    return node, name


def parse_value(text):
    """A CSV/command-line value: JSON when it parses (numbers, true/false, lists, quoted strings), else the text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(spec) -> list[tuple[str, str, object]]:
    """Overrides as ``"a.b=1; c.d=x"``, a list of such strings, or ``{node: {input: value}}``."""
    if spec is None or spec == "":
        return []
    if isinstance(spec, dict):
        out = []
        for node, inputs in spec.items():
            if not isinstance(inputs, dict):
                raise JobError(f"overrides for node {node!r} must be an object {{input: value}}, got {inputs!r}")
            out.extend((str(node), str(name), value) for name, value in inputs.items())
        return out
    items = spec if isinstance(spec, list) else [s for s in str(spec).split(";") if s.strip()]
    out = []
    for item in items:
        key, eq, value = str(item).partition("=")
        if not eq:
            raise JobError(f"override {item!r} is not NODE.INPUT=VALUE")
        node, name = parse_target(key)
        out.append((node, name, parse_value(value.strip())))
    return out


# ----------------------------------------------------------------------------------------------- bindings


def parse_bindings(spec: dict, prompt: dict) -> dict[str, Binding]:
    """``{field: "12.image" | ["3.seed", "9.seed"] | {"targets": [...], "upload": bool}}`` -> bindings."""
    out = {}
    for name, value in (spec or {}).items():
        upload = name in FILE_FIELDS
        if isinstance(value, dict):
            upload = bool(value.get("upload", upload))
            value = value.get("targets", [])
        targets = [value] if isinstance(value, str) else list(value)
        if not targets:
            raise WorkflowError(f"binding {name!r} names no node inputs")
        try:
            resolved = [(find_node(prompt, node), inp) for node, inp in map(parse_target, targets)]
        except JobError as exc:
            raise WorkflowError(f"binding {name!r}: {exc}") from None
        out[name] = Binding(resolved, upload)
    return out


def convention_targets(prompt: dict, name: str) -> Binding:
    """Where a field goes when no binding names it.

    * ``seed``: every plain ``seed``/``noise_seed`` input.
    * ``reference``/``video``/``motion``: the one loader node of a known class (FILE_LOADERS); with several,
      the one whose title holds a hint word ("reference", "driving", "motion").
    """
    if name == "seed":
        targets = [
            (nid, inp)
            for nid, node in prompt.items()
            for inp, val in node.get("inputs", {}).items()
            if inp in SEED_INPUTS and not isinstance(val, list)
        ]
        if not targets:
            raise JobError("the job sets a seed but the workflow has no seed/noise_seed input; "
                           "bind it with --bind seed=NODE.INPUT")
        return Binding(sorted(targets, key=lambda t: _id_key(t[0])))
    if name not in FILE_LOADERS:
        raise JobError(
            f"job field {name!r} has no binding; name the column NODE.INPUT for an override "
            f"or pass --bind {name}=NODE.INPUT"
        )
    loaders = FILE_LOADERS[name]
    candidates = sorted((nid for nid, node in prompt.items() if node["class_type"] in loaders), key=_id_key)
    if len(candidates) > 1:
        hinted = [
            nid
            for nid in candidates
            if any(h in prompt[nid].get("_meta", {}).get("title", "").lower() for h in TITLE_HINTS[name])
        ]
        if len(hinted) == 1:
            candidates = hinted
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise JobError(
            f"cannot tell which node receives {name!r}: loader nodes of {sorted(loaders)} found: {found}; "
            f"pass --bind {name}=NODE.INPUT"
        )
    nid = candidates[0]
    node = prompt[nid]
    inp = loaders[node["class_type"]]
    if inp is None:
        strings = [k for k, v in node.get("inputs", {}).items() if isinstance(v, str)]
        if not strings:
            raise JobError(f"node {nid} ({node['class_type']}) has no file-name input for {name!r}; pass --bind")
        inp = strings[0]
    return Binding([(nid, inp)], upload=True)


# ----------------------------------------------------------------------------------------------- job lists


def read_job_list(path: str | Path) -> list[Job]:
    """CSV (header row) or JSON lines (``.jsonl``/``.ndjson``/``.json``, one object per line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WorkflowError(f"job list not found: {path}") from None
    base = path.parent
    jobs: list[Job] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            job = Job(row=lineno)
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise JobError(f"line {lineno} is not a JSON object")
                _fill_job(job, obj, base)
            except (JobError, json.JSONDecodeError) as exc:
                job.error = f"line {lineno}: {exc}"
            jobs.append(job)
    else:
        rows = csv.DictReader(text.splitlines())
        for rowno, row in enumerate(rows, 2):  # header is row 1
            job = Job(row=rowno)
            cleaned = {k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""}
            if None in row:
                job.error = f"row {rowno} has more cells than the header"
            else:
                try:
                    _fill_job(job, cleaned, base, from_csv=True)
                except JobError as exc:
                    job.error = f"row {rowno}: {exc}"
            jobs.append(job)
    return jobs


def _fill_job(job: Job, obj: dict, base: Path, from_csv: bool = False) -> None:
    for key, value in obj.items():
        if key == "id":
            job.explicit_id = str(value)
        elif key == "overrides":
            job.overrides.extend(parse_overrides(value))
        elif key == "seed":
            job.fields["seed"] = int(parse_value(value)) if str(value).lstrip("-").isdigit() else _bad_seed(value)
        elif "." in key and key not in FILE_FIELDS:  # a NODE.INPUT column
            node, name = parse_target(key)
            job.overrides.append((node, name, parse_value(value) if from_csv else value))
        else:
            job.fields[key] = parse_value(value) if from_csv and key not in FILE_FIELDS else value
    for name in FILE_FIELDS:
        if name in job.fields:
            job.fields[name] = _resolve_file(job.fields[name], base, name)


def _bad_seed(value):
    raise JobError(f"seed {value!r} is not an integer")


def _resolve_file(value, base: Path, name: str) -> Path:
    p = Path(str(value)).expanduser()
    if not p.is_absolute():
        p = base / p
    if not p.is_file():
        raise JobError(f"{name} file not found: {p}")
    return p


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def upload_name(path: Path, digest: str) -> str:
    """Content-addressed name, so identical files share one upload and different files never collide."""
    return f"mg_{digest[:12]}_{path.name}"


def prepare_jobs(jobs: list[Job], prompt: dict, bindings: dict[str, Binding], global_overrides=()) -> None:
    """Build each job's prompt, id and content hash in place; mark bad rows and duplicates with ``job.error``."""
    seen_hash: dict[str, Job] = {}
    seen_id: dict[str, Job] = {}
    digests: dict[Path, str] = {}
    for job in jobs:
        if job.error:
            job.id = job.explicit_id or f"row{job.row}"
            continue
        try:
            _build_prompt(job, prompt, bindings, list(global_overrides), digests)
        except JobError as exc:
            job.id = job.explicit_id or f"row{job.row}"
            job.error = f"row {job.row}: {exc}"
            continue
        job.id = job.explicit_id or _default_id(job)
        if not _safe_id(job.id):
            job.error = f"row {job.row}: job id {job.id!r} must be letters, digits, '-', '_' or '.' (it names a folder)"
        elif job.content_hash in seen_hash:
            first = seen_hash[job.content_hash]
            job.error = f"row {job.row}: duplicate of job {first.id!r} (row {first.row}): same inputs and settings"
        elif job.id in seen_id:
            job.error = f"row {job.row}: duplicate job id {job.id!r} (first used on row {seen_id[job.id].row})"
        if job.error:
            continue
        seen_hash[job.content_hash] = job
        seen_id[job.id] = job


def _safe_id(job_id: str) -> bool:
    return bool(job_id) and job_id not in (".", "..") and all(c.isalnum() or c in "-_." for c in job_id)


def _default_id(job: Job) -> str:
    stem = next((Path(job.fields[n]).stem for n in FILE_FIELDS if n in job.fields), "job")
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40] or "job"
    return f"{stem}-{job.content_hash[:8]}"


def _build_prompt(job: Job, prompt: dict, bindings: dict[str, Binding], global_overrides, digests) -> None:
    built = copy.deepcopy(prompt)
    for name, value in job.fields.items():
        binding = bindings.get(name) or convention_targets(prompt, name)
        if binding.upload:
            path = Path(value)
            if not path.is_file():
                raise JobError(f"{name} file not found: {path}")
            if path not in digests:
                digests[path] = file_digest(path)
            value = upload_name(path, digests[path])
            job.uploads[name] = (path, value)
        for nid, inp in binding.targets:
            _inputs_of(built, nid, f"field {name!r} -> {nid}.{inp}")[inp] = value
    for node, inp, value in list(global_overrides) + job.overrides:
        nid = find_node(prompt, node)
        inputs = _inputs_of(built, nid, f"override {node}.{inp}")
        current = inputs.get(inp)
        if isinstance(current, list) and len(current) == 2 and isinstance(current[0], str):
            raise JobError(f"override {node}.{inp}: that input is a link from node {current[0]}, not a value")
        inputs[inp] = value
    job.prompt = built
    job.content_hash = hashlib.sha256(json.dumps(built, sort_keys=True).encode()).hexdigest()


def _inputs_of(prompt: dict, nid: str, what: str) -> dict:
    inputs = prompt[nid].get("inputs")
    if not isinstance(inputs, dict):
        raise JobError(
            f"{what}: node {nid} ({prompt[nid]['class_type']}) has no \"inputs\" object in the workflow; export it "
            "again with Workflow > Export (API), or add \"inputs\": {} to that node"
        )
    return inputs


def rename_upload(job: Job, field_name: str, server_name: str) -> None:
    """The server stored the upload under another name: point the bound inputs at it."""
    _, planned = job.uploads[field_name]
    for node in job.prompt.values():
        for inp, val in node.get("inputs", {}).items():
            if val == planned:
                node["inputs"][inp] = server_name
