#!/usr/bin/env python3
"""Write the example workflows from one description each: the UI-format file for ComfyUI's templates browser
(``example_workflows/<file_name>.json`` + a ``.jpg`` thumbnail drawn from the graph; the templates browser shows
the file name as the title) and its API-format twin (``headless/workflows_api/<name>.json``, what the runner, the CLI
and the batch client execute; the UI file names it in ``extra.motionguide_api_twin``).

The description (``workflow_specs.py``) names nodes, links, the values that differ from the node defaults,
positions and a Markdown note; everything else is read from the nodes' own ``INPUT_TYPES``, so the files follow
the nodes. Rerun after changing a node's inputs:

    python scripts/make_example_workflows.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from workflow_specs import WORKFLOWS, Spec  # noqa: E402

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
VIRTUAL = {"MarkdownNote", "Note"}
NODE_WIDTH = 300
STAGE_COLOURS = {  # the same colours web/motionguide.js gives the pack's nodes
    "loaders": ("#2f4f6f", "#1f3347"), "pose": ("#2f6f4f", "#1f4733"), "smpl": ("#5f3f7f", "#3d2952"),
    "sampling": ("#7f5f2f", "#523d1f"), "video": ("#6f2f3f", "#471f29"),
}


def is_widget(entry) -> bool:
    kind = entry[0]
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    return (isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES) and not opts.get("forceInput")


def input_specs(cls):
    spec = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, entry in (spec.get(section) or {}).items():
            yield section, name, tuple(entry) if isinstance(entry, (list, tuple)) else (entry,)


def default_value(entry):
    kind = entry[0]
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    if "default" in opts:
        return opts["default"]
    if isinstance(kind, (list, tuple)):
        return kind[0] if kind else ""
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


def widget_extras(entry) -> list:
    """UI-only widget values the frontend stores after a widget (seed control, upload button)."""
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    extras = []
    if opts.get("control_after_generate"):
        extras.append("fixed")  # examples are reproducible; users switch to randomize
    if opts.get("image_upload") or opts.get("video_upload"):
        extras.append("image")
    return extras


def node_height(cls) -> int:
    """A height the frontend's ``computeSize`` never undercuts (ComfyUI's loader takes the larger of the stored and
    the computed size): title-less body of 20 px per socket row, 24 px per widget, plus margins. Storing more would
    leave an empty area under the widgets; nodes that show an image or video get an explicit size instead."""
    widgets = sockets = 0
    for _, _, entry in input_specs(cls):
        if is_widget(entry):
            widgets += 1 + len(widget_extras(entry))
        else:
            sockets += 1
    rows = max(sockets, len(cls.RETURN_TYPES))
    return 20 * rows + 24 * widgets + (14 if widgets else 6)


def api_workflow(spec: Spec, classes: dict) -> dict:
    """Every widget input set (spec value, else the node default), optional ones too, as ComfyUI's graphToPrompt
    writes them; socket inputs only where the spec links them."""
    out = {}
    for node in spec.nodes:
        cls = classes[node.type]
        inputs = {}
        for section, name, entry in input_specs(cls):
            if name in node.inputs:
                inputs[name] = list(node.inputs[name]) if isinstance(node.inputs[name], tuple) else node.inputs[name]
            elif is_widget(entry):
                inputs[name] = default_value(entry)
            elif section == "required":
                raise ValueError(f"{spec.name}: node {node.id} ({node.type}) needs a link for {name!r}")
        unknown = set(node.inputs) - {n for _, n, _ in input_specs(cls)}
        if unknown:
            raise ValueError(f"{spec.name}: node {node.id} ({node.type}) has no inputs {sorted(unknown)}")
        inputs.update(node.extra)
        out[str(node.id)] = {"class_type": node.type, "inputs": inputs, "_meta": {"title": node.title or node.type}}
    return out


def _output_names(cls) -> list[str]:
    return list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)


def ui_workflow(spec: Spec, api: dict, classes: dict, models: dict) -> dict:
    links, nodes = [], []
    outputs: dict[int, list[dict]] = {}
    for node in spec.nodes:
        cls = classes[node.type]
        outputs[node.id] = [{"name": n, "type": t, "links": [], "slot_index": i}
                            for i, (n, t) in enumerate(zip(_output_names(cls), cls.RETURN_TYPES))]
    for order, node in enumerate(spec.nodes):
        cls = classes[node.type]
        values = api[str(node.id)]["inputs"]
        inputs, widgets = [], []
        for _, name, entry in input_specs(cls):
            value = values.get(name)
            linked = isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            if is_widget(entry):
                widgets.append(default_value(entry) if linked or name not in values else value)
                widgets.extend(widget_extras(entry))
                if not linked:
                    continue
            if linked or not is_widget(entry):
                kind = "COMBO" if isinstance(entry[0], (list, tuple)) else entry[0]
                slot = {"name": name, "type": kind, "link": None}
                if is_widget(entry):
                    slot["widget"] = {"name": name}
                if linked:
                    link_id = len(links) + 1
                    src, src_slot = int(value[0]), value[1]
                    links.append([link_id, src, src_slot, node.id, len(inputs), outputs[src][src_slot]["type"]])
                    outputs[src][src_slot]["links"].append(link_id)
                    slot["link"] = link_id
                inputs.append(slot)
        category = getattr(cls, "CATEGORY", "")
        stage = category.split("/")[1] if category.startswith("MotionGuide/") else ""
        entry = {"id": node.id, "type": node.type, "pos": list(node.pos), "size": list(node.size or (NODE_WIDTH, node_height(cls))),
                 "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs[node.id],
                 "properties": {"Node name for S&R": node.type}, "widgets_values": widgets}
        if node.type.startswith("VHS_"):  # VideoHelperSuite saves its widgets by name
            entry["widgets_values"] = {k: v for k, v in values.items() if not isinstance(v, list)}
            entry["properties"]["cnr_id"] = "comfyui-videohelpersuite"
        elif node.type.startswith("MotionGuide"):
            entry["properties"]["cnr_id"] = "motionguide"
        else:
            entry["properties"]["cnr_id"] = "comfy-core"
        if node.title:
            entry["title"] = node.title
        if stage in STAGE_COLOURS:
            entry["color"], entry["bgcolor"] = STAGE_COLOURS[stage]
        wanted = [models[m] for m in node.models if m in models]
        if wanted:
            entry["properties"]["models"] = wanted
        nodes.append(entry)
    note_id = max(n.id for n in spec.nodes) + 1
    nodes.append({"id": note_id, "type": "MarkdownNote", "pos": list(spec.note_pos), "size": [420, 520], "flags": {},
                  "order": len(nodes), "mode": 0, "inputs": [], "outputs": [], "title": "About this workflow",
                  "properties": {}, "widgets_values": [spec.note.strip() + "\n\n" + models_note(spec)], "color": "#432",
                  "bgcolor": "#653"})
    return {"id": spec.uuid, "revision": 0, "last_node_id": note_id, "last_link_id": len(links), "nodes": nodes,
            "links": links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.6, "offset": [40, 40]}, "motionguide_api_twin": spec.name},
            "version": 0.4}


FRONTEND_CHECKABLE = (".safetensors", ".sft")  # the only files ComfyUI's missing-models dialog can find or download
MODEL_URLS = {  # direct file URLs, for the entries the frontend can check
    "svd_xt_1_1_single":
        "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt-1-1/resolve/main/svd_xt_1_1.safetensors",
}


def model_entries() -> dict:
    """Registry id -> ``{name, url, directory}`` for ``properties.models``, only for models the frontend can verify:
    a single ``.safetensors``/``.sft`` file with a direct Hugging Face URL. Anything else (``.pth``, ``.onnx``,
    ``.pkl``, diffusers folders) would open a Missing Models dialog even when installed; those go in the note."""
    from motionguide.nodes import comfy_adapter as adapter

    out = {}
    for entry in adapter.model_registry()["models"]:
        url = MODEL_URLS.get(entry["id"])
        if url and entry["name"].endswith(FRONTEND_CHECKABLE) and url.endswith("/" + entry["name"]):
            out[entry["id"]] = {"name": entry["name"], "url": url, "directory": entry["folder"]}
    return out


def models_note(spec: Spec) -> str:
    """The note's model section: every model file the workflow's nodes read, where it goes, where it comes from."""
    from motionguide.nodes import comfy_adapter as adapter

    registry = {e["id"]: e for e in adapter.model_registry()["models"]}
    wanted = list(dict.fromkeys(m for node in spec.nodes for m in node.models))
    lines = ["## Model files", "", "Put them under ComfyUI's `models/` folder (from the ComfyUI folder, `python "
             "custom_nodes/motionguide/cli.py doctor` checks them; a Run also lists every missing one):", ""]
    for model_id in wanted:
        entry = registry[model_id]
        slash = "/" if entry.get("kind") == "diffusers_folder" else ""
        lines.append(f"* `models/{entry['folder']}/{entry['name']}{slash}`: {entry['source']}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int, font: float) -> list[str]:
    import cv2

    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][0] > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + [line]


def thumbnail_footer(spec: Spec) -> str:
    """What a newcomer needs before the first Run, on the card itself (the browser shows no other text)."""
    from motionguide.nodes import comfy_adapter as adapter

    registry = {e["id"]: e for e in adapter.model_registry()["models"]}
    folders = list(dict.fromkeys(registry[m]["folder"] for node in spec.nodes for m in node.models))
    return "model files: " + (", ".join(f"{f}/" for f in folders) if folders else "none")


def draw_thumbnail(spec: Spec, ui: dict, path: Path, size=(512, 512)) -> None:
    """A square card (the templates browser shows square thumbnails): the title, a diagram of the graph (one box per
    node coloured by stage, a line per link) and the model folders it needs."""
    import cv2
    import numpy as np

    boxes = {n["id"]: (n["pos"], n["size"], n.get("bgcolor", "#353535"), n.get("title", n["type"]))
             for n in ui["nodes"] if n["type"] not in VIRTUAL}
    xs = [p[0] for p, _, _, _ in boxes.values()] + [p[0] + s[0] for p, s, _, _ in boxes.values()]
    ys = [p[1] for p, _, _, _ in boxes.values()] + [p[1] + s[1] for p, s, _, _ in boxes.values()]
    margin, title_font = 12, 0.7
    title = _wrap(spec.title, size[0] - 2 * margin, title_font)
    top, bottom = 14 + 28 * len(title), 34  # title lines above the diagram, the model line below
    scale = min((size[0] - 2 * margin) / (max(xs) - min(xs)),
                (size[1] - top - bottom - 2 * margin) / (max(ys) - min(ys)))
    ox, oy = min(xs), min(ys)
    # centred vertically in the space between title and footer
    spare = size[1] - top - bottom - 2 * margin - (max(ys) - min(ys)) * scale

    def at(x, y):
        return int(margin + (x - ox) * scale), int(top + margin + spare / 2 + (y - oy) * scale)

    def bgr(hex_colour):
        h = hex_colour.lstrip("#")
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
        return b, g, r

    img = np.full((size[1], size[0], 3), (32, 28, 26), np.uint8)
    for i, line in enumerate(title):
        cv2.putText(img, line, (margin, 30 + 28 * i), cv2.FONT_HERSHEY_SIMPLEX, title_font, (235, 235, 235), 1,
                    cv2.LINE_AA)
    cv2.putText(img, thumbnail_footer(spec), (margin, size[1] - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 220, 200),
                1, cv2.LINE_AA)
    for _, src, _, dst, _, _ in ui["links"]:
        (sp, ss, _, _), (dp, _, _, _) = boxes[src], boxes[dst]
        cv2.line(img, at(sp[0] + ss[0], sp[1] + 20), at(dp[0], dp[1] + 20), (150, 150, 150), 1, cv2.LINE_AA)
    for (pos, sz, colour, title) in boxes.values():
        p0, p1 = at(*pos), at(pos[0] + sz[0], pos[1] + sz[1])
        cv2.rectangle(img, p0, p1, bgr(colour), -1)
        cv2.rectangle(img, p0, p1, (200, 200, 200), 1)
        label, font = title.replace("MotionGuide", ""), 0.3
        while len(label) > 3 and cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][0] > p1[0] - p0[0] - 5:
            label = label[:-1]  # clip to the box
        cv2.putText(img, label, (p0[0] + 3, p0[1] + 11), cv2.FONT_HERSHEY_SIMPLEX, font, (240, 240, 240), 1,
                    cv2.LINE_AA)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> int:
    import cli

    cli.load_pack()
    from motionguide.headless.execute import node_classes

    classes = node_classes()
    models = model_entries()
    ui_dir, api_dir = ROOT / "example_workflows", ROOT / "headless" / "workflows_api"
    api_dir.mkdir(parents=True, exist_ok=True)
    for spec in WORKFLOWS:
        missing = sorted({n.type for n in spec.nodes} - set(classes))
        if missing:
            print(f"skip {spec.name}: nodes not available: {', '.join(missing)}")
            continue
        api = api_workflow(spec, classes)
        ui = ui_workflow(spec, api, classes, models)
        (api_dir / f"{spec.name}.json").write_text(json.dumps(api, indent=1) + "\n")
        (ui_dir / f"{spec.file_name}.json").write_text(json.dumps(ui, indent=1) + "\n")
        draw_thumbnail(spec, ui, ui_dir / f"{spec.file_name}.jpg")
        print(f"wrote {spec.name}: {len(api)} nodes, {len(ui['links'])} links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
