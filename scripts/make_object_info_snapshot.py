#!/usr/bin/env python3
"""Write ``tests/data/object_info_snapshot.json``: what ComfyUI's ``/object_info`` shows for every node of the
pack (id, display name, category, description, inputs with types/options/defaults, outputs), read from the node
classes with empty model and input folders, so file lists do not depend on the machine.

    python scripts/make_object_info_snapshot.py            # rewrite the snapshot after an intended change
    python scripts/make_object_info_snapshot.py --check    # exit 1 and print the differences if it is stale

``tests/test_object_info_snapshot.py`` fails when the live classes differ from the snapshot.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests" / "data" / "object_info_snapshot.json"


def node_info(node_id: str, cls, display_name: str) -> dict:
    """One node as ComfyUI's server describes it (``server.py`` ``node_info``), minus ``python_module``, which
    names the folder the pack was installed in."""
    spec = cls.INPUT_TYPES()
    outputs = list(cls.RETURN_TYPES)
    info = {
        "input": spec,
        "input_order": {section: list(entries) for section, entries in spec.items()},
        "output": outputs,
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(outputs))),
        "output_name": list(getattr(cls, "RETURN_NAMES", outputs)),
        "name": node_id,
        "display_name": display_name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    for flag in ("DEPRECATED", "EXPERIMENTAL"):
        if getattr(cls, flag, False):
            info[flag.lower()] = True
    return json.loads(json.dumps(info))  # tuples -> lists, as the HTTP answer has them


def live_object_info() -> dict:
    """Every loaded node of the pack, with empty model and input folders."""
    sys.path.insert(0, str(ROOT))
    import cli

    pack = cli.load_pack()
    adapter = sys.modules[f"{cli.PACKAGE}.nodes.comfy_adapter"]
    with tempfile.TemporaryDirectory() as empty:
        saved = os.environ.get("MOTIONGUIDE_INPUT_DIR")
        os.environ["MOTIONGUIDE_INPUT_DIR"] = empty
        adapter.set_models_dir(empty)
        try:
            return {node_id: node_info(node_id, cls, pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, node_id))
                    for node_id, cls in sorted(pack.NODE_CLASS_MAPPINGS.items())}
        finally:
            adapter.set_models_dir(None)
            if saved is None:
                os.environ.pop("MOTIONGUIDE_INPUT_DIR", None)
            else:
                os.environ["MOTIONGUIDE_INPUT_DIR"] = saved


def differences(expected, actual, path: str = "") -> list[str]:
    """Readable differences between two JSON values, one line each, with the JSON path where they differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in expected.keys() | actual.keys():
            where = f"{path}/{key}"
            if key not in actual:
                lines.append(f"{where}: removed (was {json.dumps(expected[key])[:200]})")
            elif key not in expected:
                lines.append(f"{where}: added ({json.dumps(actual[key])[:200]})")
            else:
                lines += differences(expected[key], actual[key], where)
        return sorted(lines)
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [line for i, (e, a) in enumerate(zip(expected, actual)) for line in differences(e, a, f"{path}/{i}")]
    if expected != actual:
        return [f"{path}: was {json.dumps(expected)[:200]}, now {json.dumps(actual)[:200]}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the snapshot is stale")
    args = parser.parse_args(argv)
    live = live_object_info()
    if args.check:
        stale = differences(json.loads(SNAPSHOT.read_text()), live)
        print("\n".join(stale) or "snapshot is current")
        return 1 if stale else 0
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps(live, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT} ({len(live)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
