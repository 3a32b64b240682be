"""The model files of the registry, checked for real: found where, and whether each weight file is the file.

A file counts as good only when its header reads (safetensors header and length, the zip directory of a
``torch.save``/``.npz``/``.ckpt``, a pickle opcode, an ONNX protobuf) and it is not a Git-LFS pointer or an HTML
page saved under the file's name. Entries sharing a ``group`` in ``models_config/models.json`` stand in for each
other (SVD folder or single file; MimicMotion 1.1 or 1.0). Workflows need groups, read from their model-file
inputs, so each workflow gets a verdict. Used by ``cli.py doctor``, ``cli.py models`` and the demo.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..nodes import comfy_adapter as adapter
from ..nodes.model_check import MODEL_INPUTS  # (node class, input name) → registry folders of the file named there

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
WORKFLOWS_DIR = adapter.PACK_ROOT / "headless" / "workflows_api"


@dataclass
class ModelCheck:
    """One registry entry: ``status`` is ``ok``, ``missing``, ``broken`` or ``incomplete``."""

    entry: dict
    status: str
    path: Path
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Verdict:
    """One workflow: the groups it needs, and for each missing group the registry entries that would do."""

    workflow: str
    needs: list[str]
    missing: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.missing


# ------------------------------------------------------------------------------------------------------------
# One file


def _read_head(path: Path, n: int = 64) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _zip_problem(path: Path, size: int) -> str | None:
    """A zip (torch.save, .npz, Lightning .ckpt) ends with its central directory; a cut download does not."""
    with open(path, "rb") as f:
        f.seek(max(size - 65_557, 0))
        tail = f.read()
    return None if b"PK\x05\x06" in tail else "zip archive without its end record: truncated (incomplete download?)"


def _safetensors_problem(path: Path, size: int) -> str | None:
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            return "too short for a safetensors file"
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > min(size - 8, 100_000_000):
            return "not a safetensors file (header length out of range)"
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "not a safetensors file (header is not JSON)"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and "data_offsets" in v]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        return f"truncated safetensors file: {size} of {expected} bytes (incomplete download?)"
    if not ends:
        return "safetensors file without tensors"
    return None


def _onnx_problem(path: Path) -> str | None:
    try:
        import onnx
    except ImportError:  # the magic alone: field 1 (ir_version) varint
        return None if _read_head(path, 1) == b"\x08" else "not an ONNX file (no ModelProto header)"
    try:
        onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError types
        return f"not a readable ONNX file ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def file_problem(path: Path) -> str | None:
    """None when ``path`` looks like the weight file its extension says, else what is wrong with it."""
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    head = _read_head(path)
    if head.startswith(LFS_POINTER):
        return f"a Git-LFS pointer ({size} bytes), not the file: fetch the real file (git lfs pull, or download it)"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html")):
        return "an HTML page saved under the file's name (a web page, not the file)"
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _safetensors_problem(path, size)
    if suffix in (".pth", ".pt", ".ckpt", ".bin", ".npz"):
        if head.startswith(b"PK\x03\x04"):
            return _zip_problem(path, size)
        if suffix != ".npz" and head[:1] == b"\x80":  # legacy (non-zip) torch pickle
            return None
        return "neither a zip archive nor a pickle"
    if suffix == ".pkl":
        return None if head[:1] in (b"\x80", b"(", b"}") else "not a pickle file"
    if suffix == ".onnx":
        return _onnx_problem(path)
    return None


# ------------------------------------------------------------------------------------------------------------
# Registry entries


def registry() -> list[dict]:
    return adapter.model_registry()["models"]


def target_path(entry: dict) -> Path:
    """Where the entry's file (or folder) belongs: the first folder ComfyUI searches for its key."""
    return adapter.model_folder_paths(entry["folder"])[0] / entry["name"]


def _weights_of(entry: dict, hit: Path) -> list[tuple[str, Path | None]]:
    """(wanted name, found path or None) for every weight file of a folder entry (alternatives per slot)."""
    out = []
    for slot in entry.get("weight_files", []):
        names = [slot] if isinstance(slot, str) else slot
        out.append((names[0], next((hit / n for n in names if (hit / n).is_file()), None)))
    return out


def check_entry(entry: dict) -> ModelCheck:
    folders = adapter.model_folder_paths(entry["folder"])
    names = [entry["name"], *entry.get("alternatives", [])]
    hit = next((base / n for base in folders for n in names if (base / n).exists()), None)
    if hit is None:
        return ModelCheck(entry, "missing", folders[0] / entry["name"])
    if hit.is_dir():
        lacking = [f for f in entry.get("required_files", []) if not (hit / f).is_file()]
        lacking += [name for name, found in _weights_of(entry, hit) if found is None]
        if lacking:
            return ModelCheck(entry, "incomplete", hit, "lacks " + ", ".join(lacking))
        for _, found in _weights_of(entry, hit):
            problem = file_problem(found)
            if problem:
                return ModelCheck(entry, "broken", hit, f"{found.relative_to(hit)}: {problem}")
        size = sum(p.stat().st_size for p in hit.rglob("*") if p.is_file())
        return ModelCheck(entry, "ok", hit, f"{size / 1e6:.1f} MB")
    problem = file_problem(hit)
    if problem:
        return ModelCheck(entry, "broken", hit, problem)
    size = hit.stat().st_size
    detail = f"{size / 1e6:.1f} MB"
    if entry.get("size") and size != entry["size"]:
        detail += f", not the official {entry['size']} bytes (a conversion?)"
    return ModelCheck(entry, "ok", hit, detail)


def check_all() -> list[ModelCheck]:
    return [check_entry(entry) for entry in registry()]


def model_report() -> list[tuple[str, bool, str]]:
    """(model id, good, detail) for every registry entry (the demo's choice between real and smoke models)."""
    return [(c.entry["id"], c.ok, f"{c.status}: {c.path} {c.detail}".strip()) for c in check_all()]


# ------------------------------------------------------------------------------------------------------------
# Workflows


def workflow_needs(workflow: dict) -> list[str]:
    """Registry groups a workflow's model-file inputs name (values that are not registry files need nothing,
    e.g. a built-in body)."""
    by_name = {(e["folder"], e["name"]): e["group"] for e in registry()}
    by_name.update({(e["folder"], alt): e["group"] for e in registry() for alt in e.get("alternatives", [])})
    groups: list[str] = []
    for node in workflow.values():
        if not isinstance(node, dict):
            continue
        for (class_type, input_name), folders in MODEL_INPUTS.items():
            value = node.get("inputs", {}).get(input_name) if node.get("class_type") == class_type else None
            if not isinstance(value, str):
                continue
            group = next((by_name[(f, value)] for f in folders if (f, value) in by_name), None)
            if group is not None and group not in groups:
                groups.append(group)
    return groups


def shipped_workflows() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(WORKFLOWS_DIR.glob("*.json"))}


def verdicts(checks: list[ModelCheck], workflows: dict[str, dict] | None = None) -> list[Verdict]:
    good = {c.entry["group"] for c in checks if c.ok}
    out = []
    for name, workflow in (shipped_workflows() if workflows is None else workflows).items():
        needs = workflow_needs(workflow)
        verdict = Verdict(name, needs)
        for group in needs:
            if group not in good:
                verdict.missing[group] = [c.entry for c in checks if c.entry["group"] == group]
        out.append(verdict)
    return out


def group_label(entries: list[dict]) -> str:
    """'stable-video-diffusion-img2vid-xt-1-1 (diffusers/) or svd_xt_1_1.safetensors (checkpoints/)'."""
    return " or ".join(f"{e['name']} ({e['folder']}/)" for e in entries)
