"""``cli.py doctor``: what is installed, what is missing, and which workflows can run.

The doctor is a list of checks (:data:`CHECKS`); each prints its own lines and returns a :class:`Finding` list
(``ok``/``note``/``problem``). Add a check by appending a function to the list. The model check ends with a
verdict per shipped workflow and the exact download command; the exit status is 1 when nothing can run (no
torch, or no workflow has its files), else 0. Works without torch (it says so).
"""
from __future__ import annotations

import ctypes.util
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shlex
from dataclasses import dataclass, field
from typing import Callable

from ..nodes import comfy_adapter as adapter
from . import model_files


@dataclass
class Finding:
    level: str  # "ok", "note" or "problem"
    text: str


@dataclass
class Report:
    """What the checks found; ``runnable`` lists the workflows whose files are all present."""

    findings: list[Finding]
    torch_ok: bool = False
    runnable: list[str] | None = None
    verdicts: list = field(default_factory=list)

    def add(self, level: str, text: str) -> None:
        self.findings.append(Finding(level, text))
        marks = {"ok": "[ok]", "note": "[..]", "problem": "[!!]"}
        print(f"  {marks[level]} {text}")


# import name → distribution names (versions are read from the metadata: importing pyrender would bind PyOpenGL's
# platform for the whole process, and importing everything is slow)
DISTRIBUTIONS = {"cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
                 "huggingface_hub": ("huggingface-hub",)}


def _version(module_name: str) -> str | None:
    if importlib.util.find_spec(module_name) is None:
        return None
    for dist in DISTRIBUTIONS.get(module_name, (module_name,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "installed"


def check_torch(report: Report) -> None:
    print("torch")
    try:
        import torch
    except ImportError as exc:
        report.add("problem", f"torch is not installed for this Python ({exc}): nothing can run. Run "
                              "`bash scripts/setup_env.sh` (creates .venv) or install torch into ComfyUI's Python.")
        return
    report.torch_ok = True
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        report.add("ok", f"torch {torch.__version__}, CUDA {torch.version.cuda}: {names}")
    else:
        report.add("note", f"torch {torch.__version__} without a usable CUDA device: everything runs on the CPU "
                           "(fine for tests and the smoke demo; a real video needs an NVIDIA GPU)")


def check_onnxruntime(report: Report) -> None:
    print("onnxruntime (Detect Pose)")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        report.add("problem", f"onnxruntime is not installed ({exc}): Detect Pose cannot run. "
                              "`pip install onnxruntime-gpu` (NVIDIA) or `pip install onnxruntime` (CPU only).")
        return
    from ..pipelines.dwpose import runtime

    providers = ort.get_available_providers()
    report.add("ok", f"onnxruntime {ort.__version__}; providers: {', '.join(providers)}")
    if not runtime.cuda_wanted("auto"):
        report.add("ok", "no CUDA device: DWPose runs on the CPU (CUDA is not probed)")
        return
    problem = runtime.cuda_provider_problem(ort)
    if problem:
        report.add("note", f"DWPose will run on the CPU: {problem}")
    else:
        report.add("ok", "DWPose can run on CUDAExecutionProvider")


def check_opengl(report: Report) -> None:
    print("OpenGL (only for Render SMPL Maps with renderer = pyrender; the default torch rasteriser needs none)")
    found = {name: ctypes.util.find_library(lib) is not None for name, lib in (("EGL", "EGL"), ("OSMesa", "OSMesa"))}
    libraries = "; ".join(f"{name}: {'found' if ok else 'missing'}" for name, ok in found.items())
    if importlib.util.find_spec("pyrender") is None:
        report.add("note", f"{libraries}; pyrender not installed (optional)")
        return
    from ..pipelines.render import pyrender_backend

    reason = pyrender_backend.unavailable_reason()  # renders one tiny frame on the platform it picks
    if reason is None:
        report.add("ok", f"{libraries}; pyrender renders with PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM')}")
    else:
        report.add("note", f"{libraries}; {reason}")


def check_packages(report: Report) -> None:
    print("Python packages")
    required = ("numpy", "safetensors", "diffusers", "transformers", "cv2", "scipy", "einops", "smplx", "trimesh")
    versions = {name: _version(name) for name in (*required, "pyrender", "huggingface_hub")}
    lacking = [name for name in required if versions[name] is None]
    report.add("problem" if lacking else "ok", ", ".join(f"{n} {versions[n] or 'MISSING'}" for n in required))
    if lacking:
        report.add("problem", "install the requirements: `pip install -r requirements.txt` (in ComfyUI's Python) or "
                              "`bash scripts/setup_env.sh`")
    report.add("ok" if versions["pyrender"] else "note", f"pyrender {versions['pyrender'] or 'not installed (optional)'}"
               f"; huggingface_hub {versions['huggingface_hub'] or 'not installed (needed by `models download`)'}")


def check_nodes(report: Report) -> None:
    print("Nodes")
    pack = importlib.import_module(adapter.__package__.rpartition(".")[0])
    from ..nodes.registry import UNAVAILABLE

    loaded, total = len(pack.NODE_CLASS_MAPPINGS), len(pack.NODE_TABLE)
    report.add("ok" if loaded == total else "problem", f"{loaded}/{total} nodes loaded")
    for node_id, reason in UNAVAILABLE.items():
        report.add("problem", f"unavailable: {node_id}: {reason}")


def check_builtin_body(report: Report) -> None:
    print("Built-in body (Anny: the default body model, no SMPL file needed)")
    from ..pipelines.smpl.body.anny_cache import REBUILD_COMMAND, anny_status, cache_dir, verify_cache

    usable, reason = anny_status()
    if not usable:
        report.add("problem", f"unavailable: {reason}; SMPL files still work (Load Body Model)")
        return
    folder = cache_dir(adapter.anny_cache_folder())
    compact, problem = verify_cache(folder)
    if compact is not None:
        report.add("ok", f"anny {_version('anny')}; cache {compact} ({compact.stat().st_size / 1e6:.0f} MB)")
    elif problem:
        report.add("problem", f"anny {_version('anny')}; the cache in {folder} is damaged ({problem}): the next "
                              f"use rebuilds it (~1 min), or run `{REBUILD_COMMAND}` now")
    else:
        report.add("note", f"anny {_version('anny')}; cache not built yet in {folder}: the first use builds it "
                           "(~1 min), or run `python cli.py anny` now")


def download_command(names: list[str]) -> str:
    """The exact command, with this pack's cli.py and the models directory in use."""
    command = ["python", str(adapter.PACK_ROOT / "cli.py"), "models", "download", *names]
    if not adapter.in_comfyui():
        command += ["--models-dir", str(adapter.fallback_models_dir())]
    return shlex.join(command)


def check_models(report: Report) -> None:
    print("Model files (" + "; ".join(f"{k}: {', '.join(map(str, adapter.model_folder_paths(k)))}"
                                      for k in [*adapter.MODEL_FOLDERS, *adapter.SHARED_FOLDERS]) + ")")
    checks = model_files.check_all()
    by_group: dict[str, list[model_files.ModelCheck]] = {}
    for check in checks:
        by_group.setdefault(check.entry["group"], []).append(check)
    for group, members in by_group.items():
        good = [c for c in members if c.ok]
        alternatives = " | ".join(c.entry["name"] for c in members) if len(members) > 1 else ""
        if good:
            c = good[0]
            report.add("ok", f"{group}: {c.path} ({c.detail})" + (f" [one of: {alternatives}]" if alternatives else ""))
        for c in members:
            if c.status in ("broken", "incomplete"):
                report.add("problem", f"{group}: {c.status}: {c.path}: {c.detail}")
        if not good:
            optional = ""
            if all(c.entry.get("optional") for c in members):
                optional = (" (optional: only to use SMPL bodies; the built-in Anny body needs no file)"
                            if all(c.entry["folder"] == "smpl" for c in members) else " (optional)")
            wanted = " or ".join(f"{c.path}" + (f" ({c.entry['size'] / 1e9:.2f} GB)" if c.entry.get("size") else "")
                                 for c in members)
            report.add("note", f"{group}: missing{optional}: {wanted} — from {members[0].entry['source']}")

    print("Workflows")
    verdicts = report.verdicts = model_files.verdicts(checks)
    report.runnable = [v.workflow for v in verdicts if v.ready] if report.torch_ok else []
    downloadable: list[str] = []
    for verdict in verdicts:
        if verdict.ready:
            report.add("ok" if report.torch_ok else "problem",
                       f"ready: {verdict.workflow}" + ("" if report.torch_ok else " (files present, but no torch)"))
            continue
        report.add("problem", f"missing for {verdict.workflow}: " + "; ".join(
            model_files.group_label(entries) for entries in verdict.missing.values()))
        for entries in verdict.missing.values():
            first = next((e for e in entries if e.get("download")), None)
            if first and first["id"] not in downloadable:
                downloadable.append(first["id"])
    manual = {e["id"]: e for v in verdicts for es in v.missing.values() for e in es if not any(
        x.get("download") for x in es)}
    if downloadable:
        print(f"\nDownload what is missing (opt-in; SVD-XT 1.1 is gated: accept its licence on Hugging Face and log "
              f"in first):\n  {download_command(downloadable)}")
    for entry in manual.values():
        print(f"Manual download (licence): {entry['name']} into {model_files.target_path(entry).parent} — "
              f"from {entry['source']}")


CHECKS: list[Callable[[Report], None]] = [check_torch, check_onnxruntime, check_opengl, check_packages, check_nodes,
                                          check_builtin_body, check_models]


def run(checks: list[Callable[[Report], None]] | None = None) -> int:
    print(f"MotionGuide doctor — Python {platform.python_version()} on {platform.platform()}")
    report = Report([])
    for check in CHECKS if checks is None else checks:
        check(report)
    runnable = report.runnable or []
    blocked = [v.workflow for v in report.verdicts if v.workflow not in runnable]
    summary = "; ".join(part for part in (f"ready: {', '.join(runnable)}" if runnable else "",
                                          f"not ready: {', '.join(blocked)}" if blocked else "") if part)
    if runnable:
        print(f"\nVerdict: {summary}")
        return 0
    print(f"\nVerdict: nothing can run yet ({summary or 'no torch'}; see the [!!] lines above).")
    return 1
