"""The pack's import graph reads as its architecture (docs/architecture.md, *Layers*): no import cycles, ``nodes/``
and ``pipelines/``
never import the tools built on them (``headless/``, ``batch/``), and ``pipelines/`` never imports ComfyUI or the
node layer. Every ``import`` statement counts, including the ones inside functions; ``importlib`` calls with a
computed name are not followed."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nodes", "pipelines", "headless", "batch")
COMFY_MODULES = ("comfy", "comfy_extras", "comfy_execution", "folder_paths", "server", "execution")


def pack_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name (relative to the pack root; ``""`` is the root itself) -> file."""
    found = {"": root / "__init__.py"}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(root: Path, packages=PACKAGES) -> list[tuple[str, str, int, str]]:
    """``(importer, imported, line, how)`` for every import: ``imported`` is a pack module name for relative imports
    and ``"abs:<name>"`` for absolute ones."""
    modules = pack_modules(root, packages)
    edges = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        base = name.split(".") if name else []
        if not is_package:
            base = base[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges += [(name, f"abs:{alias.name}", node.lineno, f"import {alias.name}") for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                edges.append((name, f"abs:{node.module}", node.lineno, f"from {node.module} import ..."))
            elif isinstance(node, ast.ImportFrom):
                parent = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(parent + (node.module.split(".") if node.module else []))
                how = f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}"
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    edges.append((name, sub if sub in modules else target, node.lineno, how))
    return edges


def import_cycles(edges) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself), via Tarjan."""
    graph: dict[str, set[str]] = {}
    for importer, imported, _line, _how in edges:
        if not imported.startswith("abs:"):
            graph.setdefault(importer, set()).add(imported)
            graph.setdefault(imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _describe(edges, group) -> str:
    members = set(group)
    ties = dict.fromkeys(f"{a} line {line}: {how}" for a, b, line, how in edges if a in members and b in members)
    return " <-> ".join(group) + " (" + "; ".join(ties) + ")"


def layering_problems(edges) -> list[str]:
    problems = []
    for importer, imported, line, how in edges:
        layer = importer.split(".")[0]
        target = imported.split(".")[0]
        where = f"{importer.replace('.', '/')}.py line {line}: {how}"
        if layer in ("nodes", "pipelines") and target in ("headless", "batch"):
            problems.append(f"{where} (nodes/ and pipelines/ must not import the tools built on them)")
        if layer == "pipelines" and (target == "nodes" or imported == ""):
            problems.append(f"{where} (pipelines/ must not import the node layer)")
        if layer == "pipelines" and imported.startswith("abs:") and imported[4:].split(".")[0] in COMFY_MODULES:
            problems.append(f"{where} (pipelines/ must stay free of ComfyUI)")
    return problems


def test_pack_has_no_import_cycles():
    edges = imports(ROOT)
    pairs = {(a, b) for a, b, *_ in edges}
    assert {("", "nodes.registry"), ("headless.cli", "nodes.comfy_adapter"), ("batch.client", "batch.jobs"),
            ("nodes.pose", "pipelines.dwpose.draw"), ("pipelines.mimicmotion.loading", "pipelines.weights")} <= pairs
    cycles = import_cycles(edges)
    assert not cycles, "import cycles: " + "\n".join(_describe(edges, group) for group in cycles)


def test_layers_import_only_downwards():
    problems = layering_problems(imports(ROOT))
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_cycle_and_a_wrong_direction(tmp_path):
    (tmp_path / "__init__.py").write_text("from .nodes.a import A\n")
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "nodes" / "a.py").write_text("def f():\n    from ..headless import b\n")
    (tmp_path / "headless" / "b.py").write_text("from ..nodes import a\nfrom . import c\n")
    (tmp_path / "headless" / "c.py").write_text("import json\n")
    (tmp_path / "pipelines" / "p.py").write_text("import comfy.utils\nfrom ..nodes.a import f\n")
    edges = imports(tmp_path)
    assert import_cycles(edges) == [["headless.b", "nodes.a"]]
    assert layering_problems(edges) == [
        "nodes/a.py line 2: from ..headless import b (nodes/ and pipelines/ must not import the tools built on them)",
        "pipelines/p.py line 1: import comfy.utils (pipelines/ must stay free of ComfyUI)",
        "pipelines/p.py line 2: from ..nodes.a import f (pipelines/ must not import the node layer)",
    ]


def test_shared_option_constants_import_nothing():
    # nodes/ reads pipelines/options.py at import; it must not pull numpy/torch/OpenCV into the pack's import.
    assert [(b, line) for a, b, line, _how in imports(ROOT) if a == "pipelines.options"] == []


# Rooms inside pipelines/smpl/: a body model knows nothing of sequences; sequences (motion) know bodies; estimators
# make sequences. render/ may use smpl/, never the reverse (the renderer is built on the body, not under it).
SMPL_ROOM_ORDER = ("body", "motion", "estimate")


def room(module: str) -> str:
    """``pipelines.smpl.motion.sequence`` → ``smpl.motion``; ``pipelines.render.maps`` → ``render``;
    ``pipelines.pinhole`` → ``pinhole``; modules outside ``pipelines`` → ``""``."""
    parts = module.split(".")
    if parts[0] != "pipelines" or len(parts) < 2:
        return ""
    if parts[1] == "smpl" and len(parts) > 3:
        return f"smpl.{parts[2]}"
    return parts[1]


def pipeline_room_problems(edges) -> list[str]:
    problems = []
    for importer, imported, line, how in edges:
        a, b = room(importer), room(imported)
        if not a or not b or a == b:
            continue
        where = f"{importer.replace('.', '/')}.py line {line}: {how}"
        if a.startswith("smpl") and b == "render":
            problems.append(f"{where} (smpl/ must not import render/: render is built on smpl)")
        if a.startswith("smpl.") and b.startswith("smpl."):
            rank_a, rank_b = (SMPL_ROOM_ORDER.index(x.split(".")[1]) for x in (a, b))
            if rank_b > rank_a:
                problems.append(f"{where} (smpl rooms import downwards only: {' ← '.join(SMPL_ROOM_ORDER)})")
    rooms = [(room(a), room(b), line, how) for a, b, line, how in edges if room(a) and room(b) and room(a) != room(b)]
    for group in import_cycles(rooms):
        problems.append("pipelines/ rooms import each other: " + " <-> ".join(group))
    return problems


def test_pipeline_rooms_import_one_way():
    problems = pipeline_room_problems(imports(ROOT))
    assert not problems, "\n".join(problems)


def test_the_room_check_catches_smpl_importing_render_and_a_room_loop():
    edges = [("pipelines.smpl.estimate.nlf", "pipelines.render.smpl_render", 3, "from ...render import x"),
             ("pipelines.smpl.body.anny_body", "pipelines.smpl.motion.sequence", 4, "from ..motion import y"),
             ("pipelines.dwpose.draw", "pipelines.video.io", 5, "from ..video import io"),
             ("pipelines.video.io", "pipelines.dwpose.draw", 6, "from ..dwpose import draw")]
    problems = pipeline_room_problems(edges)
    assert problems[0].endswith("(smpl/ must not import render/: render is built on smpl)")
    assert "smpl rooms import downwards only" in problems[1]
    assert problems[2] == "pipelines/ rooms import each other: dwpose <-> video"
    assert len(problems) == 3


TEST_ONLY_MODULES = {p.stem for p in (ROOT / "tests").glob("*.py")} | {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}


def shipped_files_reaching_tests(root: Path) -> list[str]:
    """Shipped files (everything outside ``tests/``) that put ``tests/`` on ``sys.path`` or import a module that
    only ``tests/`` holds: shipped code must run from a copy of the pack without its tests."""
    found = []
    for path in sorted(root.rglob("*.py")):
        here = []
        rel = path.relative_to(root)
        if rel.parts[0] in ("tests", ".venv", ".cache") or rel.parts[0].startswith("."):
            continue
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("insert", "append", "extend")
                    and ast.get_source_segment(source, node.func.value) == "sys.path"
                    and "tests" in ast.get_source_segment(source, node)):
                here.append((node.lineno, f"{rel} line {node.lineno}: puts tests/ on sys.path"))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in TEST_ONLY_MODULES:
                    here.append((node.lineno, f"{rel} line {node.lineno}: imports {node.module} from tests/"))
            elif isinstance(node, ast.Import):
                here += [(node.lineno, f"{rel} line {node.lineno}: imports {a.name} from tests/") for a in node.names
                         if a.name.split(".")[0] in TEST_ONLY_MODULES]
        found += [text for _line, text in sorted(here)]
    return found


def test_shipped_code_never_reaches_into_tests():
    found = shipped_files_reaching_tests(ROOT)
    assert not found, "\n".join(found)


def test_the_tests_dir_check_catches_a_path_edit_and_an_import(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "b.py").write_text(
        "import sys\nsys.path.insert(0, str(ROOT / 'tests'))\nfrom tiny_models.svd import x\nimport json\n")
    (tmp_path / "tests" / "t.py").write_text("import sys\nsys.path.insert(0, 'tests')\n")
    assert shipped_files_reaching_tests(tmp_path) == ["bench/b.py line 2: puts tests/ on sys.path",
                                           "bench/b.py line 3: imports tiny_models.svd from tests/"]


def files_citing_the_design_notes(root: Path) -> list[str]:
    """Files of the repository (code, docs, scripts, workflows) that cite the numbered sections of a design note kept
    outside the repository. The pack's own architecture doc is ``docs/architecture.md``; point there or at the code."""
    marker = "DESIGN " + "§"  # split so this file does not cite it
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix not in (".py", ".md", ".sh", ".json", ".txt", ".toml", ".js", ".yaml", ".yml", ".cfg"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if marker in line:
                found.append(f"{rel} line {number}")
    return found


def test_no_file_cites_design_notes_outside_the_repository():
    found = files_citing_the_design_notes(ROOT)
    assert not found, "cite docs/architecture.md (with a section name) or the code instead:\n" + "\n".join(found)


def test_the_design_citation_check_catches_one(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "a.py").write_text('"""Tiles (DESIGN ' + '§5)."""\n')
    (tmp_path / "README.md").write_text("fine\nsee DESIGN " + "§2\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "b.py").write_text("# DESIGN " + "§1\n")
    assert files_citing_the_design_notes(tmp_path) == ["README.md line 2", "pipelines/a.py line 1"]
    assert (ROOT / "docs" / "architecture.md").is_file()
