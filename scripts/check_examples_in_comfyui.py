#!/usr/bin/env python3
"""Check the example workflows and the canvas extension in a real ComfyUI, in headless Chromium.

For each ``example_workflows/*.json`` served by the running ComfyUI's templates endpoint: load it with
``app.loadGraphData`` (no Missing Models dialog may open: put the model files, tiny ones will do, on that server)
and compare ``app.graphToPrompt()`` (ComfyUI's own UI→API converter) with the API twin
``headless/workflows_api/<name>.json`` named in the file's ``extra.motionguide_api_twin``. Also checks that ``web/motionguide.js`` is loaded and colours/animates the
pack's nodes, and optionally saves a canvas screenshot per workflow (the README images).

Needs a ComfyUI with this pack in ``custom_nodes`` (and VideoHelperSuite for the long-video example),
``pip install playwright`` and a Chromium (Debian: ``apt-get install chromium``):

    python scripts/check_examples_in_comfyui.py http://127.0.0.1:8188 [--screenshots docs/images]

Not part of the test suite (it needs a browser and a server); exit code 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN_TEMPLATE = "MimicMotion, animate an image with a driving video"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage"]

HOOKS_PROBE = """() => {
    const n = LiteGraph.createNode("MotionGuideDrawPose"); app.graph.add(n);
    const core = LiteGraph.createNode("KSampler"); app.graph.add(core);
    n.onExecuted({images: [0, 1, 2].map(i => ({filename: `x${i}.png`, subfolder: "", type: "temp"}))});
    const r = {extension: app.extensions.some(e => e.name === "MotionGuide.Previews"), colour: n.color,
               core_colour: core.color ?? null, frames: n.motionguideFrames, playing: !!n.motionguideTimer};
    app.graph.remove(n); app.graph.remove(core);
    r.stopped_on_remove = n.motionguideTimer === null;
    return r;
}"""

FIT_CANVAS = """() => {
    const c = app.canvas; let x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
    for (const n of app.graph._nodes) {
        x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 40);
        x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    const W = c.canvas.width / window.devicePixelRatio - 80, H = c.canvas.height / window.devicePixelRatio - 140;
    const s = Math.min(1, W / (x1 - x0 + 40), H / (y1 - y0 + 40));
    c.low_quality_zoom_threshold = 0.1; c.ds.scale = s; c.ds.offset = [-x0 + 70 / s, -y0 + 100 / s]; c.setDirty(true, true);
    const r = c.canvas.getBoundingClientRect();
    return [r.left + 50, r.top + 80, (x1 - x0 + 40) * s + 40, (y1 - y0 + 40) * s + 40];
}"""


RUN_TINY = """async () => {
    const set = (id, name, v) => { app.graph.getNodeById(id).widgets.find(w => w.name === name).value = v; };
    set(2, "frame_load_cap", 4); set(2, "select_every_nth", 1); set(3, "resolution", 64);
    set(9, "steps", 1); set(9, "tile_size", 5); set(9, "tile_overlap", 1); set(8, "precision", "fp32");
    await app.queuePrompt(0, 1);
}"""


async def run_tiny(page, pack: str) -> bool:
    """Queue example (a) from the browser on a server with the tiny models; the pose-map preview must play."""
    ui = await page.evaluate("f => fetch(f).then(r => r.json())", f"/api/workflow_templates/{pack}/{MAIN_TEMPLATE}.json")
    await page.evaluate("wf => app.loadGraphData(wf)", ui)
    await page.wait_for_timeout(800)
    await page.evaluate(RUN_TINY)
    state = [0]
    for _ in range(240):
        await page.wait_for_timeout(500)
        state = await page.evaluate("() => { const n = app.graph.getNodeById(12); return [n.motionguideFrames ?? 0]; }")
        if state[0]:
            break
    seen = set()
    for _ in range(8):
        await page.wait_for_timeout(130)
        seen.add(await page.evaluate("() => app.graph.getNodeById(12).imageIndex"))
    ok = state[0] == 5 and len(seen) > 1
    print(f"run from the browser: pose-map preview {'plays' if ok else 'FAILED'} ({state[0]} frames, shown {sorted(seen)})")
    return ok


def compare(prompt: dict, api: dict) -> list[str]:
    diffs = [] if sorted(prompt) == sorted(api) else [f"node ids: browser {sorted(prompt)} vs API {sorted(api)}"]
    for node_id, node in api.items():
        got = prompt.get(node_id)
        if got is None:
            continue
        if got["class_type"] != node["class_type"]:
            diffs.append(f"node {node_id}: class {got['class_type']} vs {node['class_type']}")
        for name in sorted(set(node["inputs"]) | set(got["inputs"])):
            if got["inputs"].get(name, "<absent>") != node["inputs"].get(name, "<absent>"):
                diffs.append(f"node {node_id}.{name}: browser {got['inputs'].get(name, '<absent>')!r} "
                             f"vs API {node['inputs'].get(name, '<absent>')!r}")
    return diffs


async def check(url: str, screenshots: Path | None, tiny_run: bool = False) -> bool:
    from playwright.async_api import async_playwright

    ok = True
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=_chromium(), args=FLAGS)
        page = await browser.new_page(viewport={"width": 3000, "height": 1500})
        await page.goto(url)
        await page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=60000)
        await page.wait_for_timeout(2000)
        hooks = await page.evaluate(HOOKS_PROBE)
        hooks_ok = hooks["extension"] and hooks["colour"] and hooks["core_colour"] is None and hooks["frames"] == 3 \
            and hooks["playing"] and hooks["stopped_on_remove"]
        print(f"canvas extension: {'ok' if hooks_ok else 'FAILED'} {hooks}")
        ok &= bool(hooks_ok)
        pack = ROOT.name
        templates = await page.evaluate("fetch('/workflow_templates').then(r => r.json())")
        pack = next((k for k, v in templates.items() if MAIN_TEMPLATE in v), pack)
        for ui_path in sorted((ROOT / "example_workflows").glob("*.json")):
            name = json.loads(ui_path.read_text())["extra"]["motionguide_api_twin"]
            api_path = ROOT / "headless" / "workflows_api" / f"{name}.json"
            ui = await page.evaluate("f => fetch(f).then(r => r.json())",
                                     f"/api/workflow_templates/{pack}/{ui_path.stem}.json")
            await page.evaluate("wf => app.loadGraphData(wf)", ui)
            await page.wait_for_timeout(800)
            dialogs = await page.evaluate("() => Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText)")
            if any("Missing Models" in d for d in dialogs):  # the model files must be installed on that server
                print(f"{name}: a Missing Models dialog opened: {dialogs}")
                ok = False
            for _ in dialogs:
                await page.keyboard.press("Escape")
            prompt = await page.evaluate("async () => (await app.graphToPrompt()).output")
            diffs = compare(prompt, json.loads(api_path.read_text()))
            print(f"{name}: " + ("graphToPrompt == API twin" if not diffs else "MISMATCH\n  " + "\n  ".join(diffs)))
            ok &= not diffs
            if screenshots is not None:
                box = await page.evaluate(FIT_CANVAS)
                await page.wait_for_timeout(800)
                screenshots.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(screenshots / f"{name}.png"),
                                      clip={"x": box[0], "y": box[1], "width": min(box[2], 2900), "height": min(box[3], 1400)})
        if tiny_run:
            ok &= await run_tiny(page, pack)
        await browser.close()
    return ok


def _chromium() -> str:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found (Debian: apt-get install chromium)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="running ComfyUI, e.g. http://127.0.0.1:8188")
    parser.add_argument("--screenshots", type=Path, help="save a PNG of each workflow's canvas here")
    parser.add_argument("--run-tiny", action="store_true",
                        help="also queue example (a) at 64 px, 4 frames, 1 step (server with the tiny models, e.g. "
                             "`cli.py demo --smoke`'s) and check that its pose-map preview plays")
    args = parser.parse_args(argv)
    return 0 if asyncio.run(check(args.url, args.screenshots, args.run_tiny)) else 1


if __name__ == "__main__":
    sys.exit(main())
