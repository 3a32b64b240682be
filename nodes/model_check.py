"""Every model file a workflow needs, checked when it is queued, and listed all at once.

Loader nodes check their own files in ``VALIDATE_INPUTS`` (ComfyUI validates every node of a prompt before running
any, and reports all failing nodes together). ComfyUI hands ``VALIDATE_INPUTS`` no view of the rest of the prompt,
so the pack registers an ``on_prompt`` handler (ComfyUI's hook for extensions, called with each queued prompt just
before it is validated) that remembers which model files the prompt lacks; each failing loader's message then
names its own file and lists every other missing one with its folder and source, so one Run tells a newcomer all
there is to download. The headless runner calls :func:`remember_prompt` the same way before it validates.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from . import comfy_adapter as adapter

logger = logging.getLogger(__name__)

# (node class, input name) → model folders the file named there is looked up in (the first that has it wins).
MODEL_INPUTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("MotionGuideLoadModel", "svd_base"): ("diffusers", "checkpoints"),
    ("MotionGuideLoadModel", "mimicmotion_checkpoint"): ("mimicmotion",),
    ("MotionGuideDetectPose", "detector"): ("dwpose",),
    ("MotionGuideDetectPose", "pose_model"): ("dwpose",),
    ("MotionGuideLoadSMPLModel", "model_file"): ("smpl",),
    ("MotionGuideEstimateSMPL", "estimator"): ("hmr2",),
    ("MotionGuideLoadDisPose", "dispose_file"): ("dispose",),
    ("MotionGuideLoadDisPose", "cmp_file"): ("cmp",),
    ("MotionGuideLoadDisPose", "sd15"): ("diffusers",),
    ("MotionGuideLoadGeometryAdapter", "adapter_file"): ("motionguide_adapters",),
}
# Files no one publishes: what to do instead of a download source.
MAKE_IT = {"motionguide_adapters": "train one with `python cli.py train CONFIG.yaml` (README: 'Training a geometry "
                                   "adapter')"}
# Values of model-file inputs that name no file (built-in body, a lookup by gender, "use the checkpoint's own").
NOT_FILES = {"anny (built-in)", "auto (by gender)", "(inside checkpoint)", ""}


@dataclass(frozen=True)
class MissingFile:
    node_id: str
    class_type: str
    input_name: str
    folder: str  # where it belongs (the first folder ComfyUI searches for its key)
    name: str
    source: str

    def line(self) -> str:
        return f"{self.folder}/{self.name} ({self.class_type} node {self.node_id}, input {self.input_name}): " \
               f"{self.source}"


def _folders_for(class_type: str, input_name: str, name: str) -> tuple[str, ...]:
    folders = MODEL_INPUTS[(class_type, input_name)]
    if (class_type, input_name) == ("MotionGuideLoadModel", "svd_base"):  # a single file or a diffusers folder
        return ("checkpoints",) if name.lower().endswith(".safetensors") else ("diffusers",)
    return folders


def _source(folder: str, name: str) -> str:
    try:
        entries = adapter.model_registry()["models"]
    except (OSError, KeyError, ValueError):
        entries = []
    for entry in entries:
        if entry["folder"] == folder and (entry["name"] == name or name in entry.get("alternatives", ())
                                          or Path(name).name == entry["name"]):
            return f"download from {entry['source']}"
    return MAKE_IT.get(folder, "place the file there, or pick another one")


def _found(folders: tuple[str, ...], name: str) -> bool:
    for key in folders:
        try:
            adapter.resolve_model_path(key, name)
            return True
        except FileNotFoundError:
            continue
    return False


def missing_model_files(prompt) -> list[MissingFile]:
    """Every model file named by a model-file input of ``prompt`` (API format) that is not found, in node order."""
    missing: list[MissingFile] = []
    seen: set[tuple[str, str]] = set()
    if not isinstance(prompt, dict):
        return missing
    for node_id, node in prompt.items():
        if not isinstance(node, dict):
            continue
        class_type = node.get("class_type")
        inputs = node.get("inputs") or {}
        for (cls_name, input_name) in MODEL_INPUTS:
            value = inputs.get(input_name) if class_type == cls_name else None
            if not isinstance(value, str) or value in NOT_FILES:
                continue
            folders = _folders_for(class_type, input_name, value)
            if (folders[0], value) in seen or _found(folders, value):
                continue
            seen.add((folders[0], value))
            folder = str(adapter.model_folder_paths(folders[0])[0])
            missing.append(MissingFile(str(node_id), class_type, input_name, folder, value, _source(folders[0], value)))
    return missing


_lock = threading.Lock()
_remembered: list[MissingFile] = []


def remember_prompt(prompt) -> list[MissingFile]:
    """Note the model files ``prompt`` lacks, for the messages of its loaders' checks (never raises)."""
    global _remembered
    try:
        found = missing_model_files(prompt)
    except Exception as exc:  # noqa: BLE001 - a check must never stop a prompt from being queued
        logger.debug("[MotionGuide] model-file check of the prompt failed: %s", exc)
        found = []
    with _lock:
        _remembered = found
    return found


def on_prompt(json_data):
    """ComfyUI ``on_prompt`` handler: remembers the queued prompt's missing model files; passes the data on as is."""
    if isinstance(json_data, dict):
        remember_prompt(json_data.get("prompt"))
    return json_data


_registered = False


def register_prompt_handler() -> None:
    """Inside ComfyUI, add :func:`on_prompt` to its server's prompt handlers (once); elsewhere nothing."""
    global _registered
    if _registered or adapter._comfy_module("folder_paths") is None:
        return
    server = adapter._comfy_module("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is None or not hasattr(instance, "add_on_prompt_handler"):
        return
    instance.add_on_prompt_handler(on_prompt)
    _registered = True


def summary(missing: list[MissingFile]) -> str:
    """The list of every missing file, with folders and sources (empty for none)."""
    if not missing:
        return ""
    lines = "\n".join(f"  - {m.line()}" for m in missing)
    return f"This workflow lacks {len(missing)} model file{'s' if len(missing) != 1 else ''} in all:\n{lines}"


def check_model_input(folders: tuple[str, ...], name) -> bool | str:
    """A ``VALIDATE_INPUTS`` verdict for a model-file input: True when found, else the message naming the file,
    the folders searched and its source, followed by every model file the queued workflow lacks when more than
    this one is missing."""
    if name is None or name in NOT_FILES:  # linked from another node, or no file
        return True
    last = None
    for key in folders:
        verdict = adapter.check_model_file(key, name)
        if verdict is True:
            return True
        last = last or verdict
    return with_other_missing_files(last, name)


def with_other_missing_files(message: str, name: str) -> str:
    """``message`` about the missing file ``name``, followed by every model file the queued workflow lacks when
    more than this one is missing."""
    with _lock:
        others = list(_remembered)
    if len(others) > 1 and any(m.name == name for m in others):
        return f"{message}\n{summary(others)}"
    return message
