"""ComfyUI's ``/object_info`` for the pack (node ids, names, categories, inputs, outputs) equals the committed
snapshot, so a refactor cannot change what users' saved workflows bind to without someone noticing."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_object_info_snapshot", ROOT / "scripts" / "make_object_info_snapshot.py")
snapshot_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(snapshot_script)


def test_object_info_matches_snapshot():
    expected = json.loads(snapshot_script.SNAPSHOT.read_text())
    live = snapshot_script.live_object_info()
    stale = snapshot_script.differences(expected, live)
    assert not stale, (
        "the nodes' /object_info differs from tests/data/object_info_snapshot.json:\n  " + "\n  ".join(stale)
        + "\nIf the change is intended (a new node or input), regenerate it with "
          "`python scripts/make_object_info_snapshot.py` and commit the JSON.")


def test_snapshot_covers_every_node_and_reports_a_change():
    expected = json.loads(snapshot_script.SNAPSHOT.read_text())
    import motionguide

    assert sorted(expected) == sorted(row[1] for row in motionguide.NODE_TABLE)
    changed = json.loads(json.dumps(expected))
    changed["MotionGuideSampler"]["input"]["required"]["steps"][1]["default"] = -1
    del changed["MotionGuideDecode"]
    assert snapshot_script.differences(expected, changed) == [
        "/MotionGuideDecode: removed (was " + json.dumps(expected["MotionGuideDecode"])[:200] + ")",
        "/MotionGuideSampler/input/required/steps/1/default: was "
        + json.dumps(expected["MotionGuideSampler"]["input"]["required"]["steps"][1]["default"]) + ", now -1",
    ]
