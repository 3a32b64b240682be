"""web/motionguide.js: valid JavaScript, and its hooks behave with a stub ComfyUI ``app`` (needs ``node``)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "web" / "motionguide.js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not installed; cannot check the JS extension")

# The extension imports ../../scripts/app.js as ComfyUI serves it from /extensions/<pack>/; mirror that layout.
HARNESS = r"""
import { registered } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import * as ext from "./motionguide.js";

const out = {};
out.registeredName = registered[0]?.name;
function makeType() { function T() {} T.prototype.onExecuted = function () { this.coreSawOutput = true; }; return T; }
const Pose = makeType();
await registered[0].beforeRegisterNodeDef(Pose, { name: "MotionGuideDrawPose", category: "MotionGuide/pose" });
const Core = makeType();
await registered[0].beforeRegisterNodeDef(Core, { name: "KSampler", category: "sampling" });

const node = new Pose(); node.size = [200, 100]; node.onNodeCreated();
out.colour = [node.color, node.bgcolor];
const core = new Core(); core.onNodeCreated?.();
out.coreColour = core.color ?? null;

node.onExecuted({ images: [1, 2, 3].map(i => ({ filename: `p${i}.png`, subfolder: "", type: "temp" })), fps: [25] });
out.coreSawOutput = node.coreSawOutput === true;
out.startIndex = node.imageIndex;
out.frames = [ext.advanceFrame(node), ext.advanceFrame(node), ext.advanceFrame(node)];
const menu = []; node.getExtraMenuOptions(null, menu);
out.menu = menu.map(m => m.content);
menu[0].callback();
out.pausedFrame = ext.advanceFrame(node);
out.fps = [ext.previewFps({ fps: [25] }), ext.previewFps({}), ext.previewFps({ fps: 0 }), ext.previewFps({ fps: 500 })];
out.stage = [ext.stageOf("MotionGuide/smpl"), ext.stageOf("image/upscaling")];
const drawn = []; const ctx = { save() {}, restore() {}, fillText(t) { drawn.push(t); } };
node.onDrawForeground(ctx);
out.label = drawn;
out.timerRunning = node.motionguideTimer !== null;
node.onRemoved();
out.timerAfterRemove = node.motionguideTimer;
node.onExecuted({ images: [{ filename: "one.png" }] });
out.singleFrameTimer = node.motionguideTimer;

// Preview Image: animated only when a MotionGuide node feeds it
const Preview = makeType();
await registered[0].beforeRegisterNodeDef(Preview, { name: "PreviewImage", category: "image" });
const nodes = { 7: { type: "MotionGuideDrawPose" }, 8: { type: "LoadImage" } };
const graph = { links: new Map([[1, { origin_id: 7 }], [2, { origin_id: 8 }]]), getNodeById: (id) => nodes[id] };
const fromPack = new Preview(); fromPack.graph = graph; fromPack.inputs = [{ name: "images", link: 1 }];
const fromCore = new Preview(); fromCore.graph = graph; fromCore.inputs = [{ name: "images", link: 2 }];
const four = { images: [1, 2, 3, 4].map(i => ({ filename: `f${i}.png` })) };
fromPack.onExecuted(four); fromCore.onExecuted(four);
out.preview = [fromPack.motionguideFrames, fromPack.imageIndex, fromCore.motionguideTimer ?? null,
               fromCore.imageIndex ?? null, fromPack.coreSawOutput === true, fromPack.color ?? null];
fromPack.onRemoved();

// Templates browser order: the pack's list sorted by TEMPLATE_ORDER, other packs untouched, the API wrapped once
out.templateOrder = ext.TEMPLATE_ORDER;
const shuffled = [...ext.TEMPLATE_ORDER].reverse().concat(["zz extra"]);
const client = { calls: 0, async getWorkflowTemplates() { this.calls += 1; return { other: ["b", "a"], pack: [...shuffled] }; } };
await registered[0].setup?.();
ext.orderPackTemplates(client); ext.orderPackTemplates(client);
out.orderedTemplates = await client.getWorkflowTemplates();
out.templateCalls = client.calls;
out.apiWrapped = api.getWorkflowTemplates.motionguideOrdered === true;
console.log(JSON.stringify(out));
"""

APP_STUB = "export const registered = []; export const app = { registerExtension(e) { registered.push(e); } };\n"
API_STUB = "export const api = { async getWorkflowTemplates() { return {}; } };\n"


@needs_node
def test_extension_is_valid_javascript(tmp_path):
    copy = tmp_path / "motionguide.mjs"  # .mjs: parse as an ES module like the browser does
    copy.write_text(EXTENSION.read_text())
    result = subprocess.run([NODE, "--check", str(copy)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@needs_node
def test_extension_hooks_with_stub_app(tmp_path):
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "app.js").write_text(APP_STUB)
    (tmp_path / "scripts" / "api.js").write_text(API_STUB)
    ext_dir = tmp_path / "extensions" / "motionguide"
    ext_dir.mkdir(parents=True)
    shutil.copy(EXTENSION, ext_dir / "motionguide.js")
    (ext_dir / "harness.js").write_text(HARNESS)
    result = subprocess.run([NODE, str(ext_dir / "harness.js")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["registeredName"] == "MotionGuide.Previews"
    assert out["colour"] == ["#2f6f4f", "#1f4733"] and out["coreColour"] is None  # only the pack's nodes
    assert out["coreSawOutput"] is True  # the original onExecuted (core image preview) still runs
    assert out["startIndex"] == 0 and out["frames"] == [1, 2, 0]
    assert out["menu"] == ["Pause preview frames"] and out["pausedFrame"] == 0
    assert out["fps"] == [25, 8, 8, 60]
    assert out["stage"] == ["smpl", ""]
    assert out["label"] == ["1/3 (paused)"]
    assert out["timerRunning"] is True and out["timerAfterRemove"] is None and out["singleFrameTimer"] is None
    # [frames, index] when fed by the pack; core-fed previews untouched (no timer, grid view); core hook still runs
    assert out["preview"] == [4, 0, None, None, True, None]
    sys.path.insert(0, str(ROOT / "scripts"))
    from workflow_specs import WORKFLOWS

    assert out["templateOrder"] == [spec.file_name for spec in WORKFLOWS]  # the main MimicMotion template first
    assert out["orderedTemplates"] == {"other": ["b", "a"], "pack": [*out["templateOrder"], "zz extra"]}
    assert out["templateCalls"] == 1 and out["apiWrapped"] is True
