"""Every node of the pack is documented where ComfyUI shows it: DESCRIPTION, input tooltips, output tooltips,
category, and a help page ``web/docs/<NodeId>.md`` that mentions each input. Every NODE_TABLE row must load."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import motionguide
from motionguide.nodes import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "web" / "docs"
NODE_IDS = [row[1] for row in motionguide.NODE_TABLE]
STAGES = {"loaders", "pose", "smpl", "sampling", "video"}


def test_every_node_table_row_loaded():
    assert registry.UNAVAILABLE == {}, "nodes that did not load: " + "; ".join(
        f"{k}: {v}" for k, v in registry.UNAVAILABLE.items())
    assert sorted(motionguide.NODE_CLASS_MAPPINGS) == sorted(NODE_IDS)
    assert set(motionguide.NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_IDS)


def _node(node_id):
    cls = motionguide.NODE_CLASS_MAPPINGS.get(node_id)
    if cls is None:
        pytest.fail(f"{node_id} is not loaded: {registry.UNAVAILABLE.get(node_id, 'missing from NODE_CLASS_MAPPINGS')}")
    return cls


def _inputs(cls):
    spec = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, entry in (spec.get(section) or {}).items():
            yield section, name, entry


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_metadata(node_id):
    cls = _node(node_id)
    assert cls.__name__ == node_id
    assert isinstance(getattr(cls, "DESCRIPTION", None), str) and cls.DESCRIPTION.strip(), f"{node_id}.DESCRIPTION is empty"
    category = getattr(cls, "CATEGORY", "")
    assert category.startswith("MotionGuide/") and category.split("/")[1] in STAGES, f"{node_id}.CATEGORY = {category!r}"
    assert callable(getattr(cls, cls.FUNCTION, None)), f"{node_id}.FUNCTION {cls.FUNCTION!r} is not a method"
    returns = tuple(cls.RETURN_TYPES)
    tooltips = tuple(getattr(cls, "OUTPUT_TOOLTIPS", ()))
    assert len(tooltips) == len(returns), f"{node_id}: {len(tooltips)} OUTPUT_TOOLTIPS for {len(returns)} RETURN_TYPES"
    assert all(isinstance(t, str) and t.strip() for t in tooltips), f"{node_id}: empty output tooltip"
    if hasattr(cls, "RETURN_NAMES"):
        assert len(cls.RETURN_NAMES) == len(returns)
    untipped = []
    for section, name, entry in _inputs(cls):
        opts = entry[1] if isinstance(entry, (list, tuple)) and len(entry) > 1 and isinstance(entry[1], dict) else {}
        if not str(opts.get("tooltip", "")).strip():
            untipped.append(f"{section}.{name}")
        kind = entry[0] if isinstance(entry, (list, tuple)) else entry
        if kind in ("INT", "FLOAT") and not opts.get("forceInput"):
            missing = [k for k in ("default", "min", "max", "step") if k not in opts]
            assert not missing, f"{node_id}.{name} ({kind}) lacks {missing}"
    assert not untipped, f"{node_id}: inputs without a tooltip: {untipped}"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_help_page(node_id):
    cls = _node(node_id)
    page = DOCS / f"{node_id}.md"
    assert page.is_file(), f"missing help page {page.relative_to(ROOT)}"
    text = page.read_text(encoding="utf-8")
    assert len(text.strip()) > 80 and text.lstrip().startswith("#"), f"{page.name} is too short or has no title"
    unmentioned = [name for _, name, _ in _inputs(cls) if not re.search(rf"\b{re.escape(name)}\b", text)]
    assert not unmentioned, f"{page.name} does not mention inputs {unmentioned}"


def test_generated_node_reference_is_current():
    """docs/nodes.md is generated from the node classes; a node change must regenerate it."""
    import importlib.util

    script = ROOT / "scripts" / "make_node_reference.py"
    spec = importlib.util.spec_from_file_location("make_node_reference", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "nodes.md").read_text() == module.build(), \
        "docs/nodes.md is stale: run python scripts/make_node_reference.py"


def test_help_pages_are_also_where_the_frontend_looks_first():
    """ComfyUI's frontend asks for web/docs/<id>/<locale>.md before web/docs/<id>.md: the English copy is there
    (so an English UI gets the page without a 404 first), identical to the page, and no copy is left over."""
    import importlib.util

    script = ROOT / "scripts" / "make_node_reference.py"
    spec = importlib.util.spec_from_file_location("make_node_reference", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    copies = module.locale_copies()
    assert copies, "no help pages"
    for path, text in copies.items():
        assert path.is_file() and path.read_text(encoding="utf-8") == text, \
            f"{path.relative_to(ROOT)} is missing or stale: run python scripts/make_node_reference.py"
    folders = {p.parent for p in copies}
    leftovers = [p for p in (ROOT / "web" / "docs").iterdir() if p.is_dir() and p not in folders]
    assert not leftovers, f"help folders without a page: {leftovers}"
