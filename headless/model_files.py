"""Which model files of the registry are present, where each was found or is expected, and where to get it
(``cli.py doctor`` and the demo's choice between real weights and the smoke run)."""
from __future__ import annotations

from pathlib import Path

from ..nodes import comfy_adapter as adapter


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def model_report() -> list[tuple[str, bool, str]]:
    """(model id, present, detail) for every registry entry, with the exact expected path(s)."""
    rows = []
    for entry in adapter.model_registry()["models"]:
        folders = adapter.model_folder_paths(entry["folder"])
        names = [entry["name"], *entry.get("alternatives", [])]
        hit = next((base / n for base in folders for n in names if (base / n).exists()), None)
        if hit is None:
            expected = folders[0] / entry["name"]
            size = f", {entry['size'] / 1e9:.2f} GB" if entry.get("size") else ""
            optional = " (optional)" if entry.get("optional") else ""
            rows.append((entry["id"], False, f"missing{optional}: {expected}{size} — from {entry['source']}"))
            continue
        detail = f"{hit} ({_size(hit) / 1e6:.1f} MB)"
        missing_parts = [f for f in entry.get("required_files", []) if not (hit / f).exists()]
        if missing_parts:
            rows.append((entry["id"], False, f"incomplete: {hit} lacks {', '.join(missing_parts)}"))
            continue
        if entry.get("size") and hit.is_file() and hit.stat().st_size != entry["size"]:
            detail += f" — size differs from the official {entry['size']} bytes (a conversion?)"
        rows.append((entry["id"], True, detail))
    return rows
