"""``cli.py demo``: the full MimicMotion workflow on the shipped sample, real weights when present.

Without the real weights it builds tiny random models in the real file layouts (the test builders in
``headless/tiny_models/``) and runs a loudly labelled smoke run at a small size: the video shows noise, and proves
only that every stage of the graph runs end to end.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..nodes import comfy_adapter as adapter

logger = logging.getLogger(__name__)

PACK_ROOT = adapter.PACK_ROOT
SAMPLE_INPUTS = PACK_ROOT / "example_workflows" / "inputs"
DEMO_WORKFLOW = PACK_ROOT / "headless" / "workflows_api" / "mimicmotion_pose_video.json"
SMOKE_MODELS = PACK_ROOT / ".cache" / "smoke_models"
REAL_MODELS_NEEDED = (("svd_xt_1_1", "svd_xt_1_1_single"), ("mimicmotion_1_1",), ("yolox_l",), ("dwpose_ll_384",))

# Small enough for the tiny models on a CPU (total downsampling 16): 128×192, 13 frames, 3 steps.
SMOKE_OVERRIDES = {
    ("2", "frame_load_cap"): 12,
    ("3", "resolution"): 128,
    ("9", "steps"): 3,
    ("9", "tile_size"): 8,
    ("9", "tile_overlap"): 2,
    ("11", "filename_prefix"): "MotionGuide_demo_SMOKE",
}


def missing_real_models() -> list[str]:
    """Ids of the real model files the demo needs that are not found (any alternative in a group counts)."""
    from .model_files import model_report

    present = {model_id for model_id, ok, _ in model_report() if ok}
    return [" or ".join(group) for group in REAL_MODELS_NEEDED if not present.intersection(group)]


def build_smoke_models(directory: Path = SMOKE_MODELS) -> Path:
    """Tiny DWPose/SVD/MimicMotion files in a ComfyUI-style models folder; built once, then reused."""
    stamp = directory / ".complete"
    if stamp.exists():
        return directory
    from .tiny_models.dwpose import build_tiny_dwpose
    from .tiny_models.svd import MIMICMOTION_NAME, SVD_FOLDER_NAME, build_tiny_mimicmotion, build_tiny_svd

    build_tiny_dwpose(directory / "dwpose")
    svd = build_tiny_svd(directory / "diffusers" / SVD_FOLDER_NAME)
    build_tiny_mimicmotion(directory / "mimicmotion" / MIMICMOTION_NAME, svd)
    stamp.write_text("tiny random models for the smoke demo\n")
    return directory


def _banner(lines: list[str]) -> None:
    width = max(len(line) for line in lines) + 4
    print("\n" + "#" * width, file=sys.stderr)
    for line in lines:
        print(f"# {line.ljust(width - 4)} #", file=sys.stderr)
    print("#" * width + "\n", file=sys.stderr)


def run_demo(smoke: bool = False, output_dir: Path | None = None) -> int:
    from .execute import announce_folders, execute, print_written
    from .workflow_runner import load_workflow

    missing = missing_real_models()
    smoke = smoke or bool(missing)
    workflow = load_workflow(DEMO_WORKFLOW)
    if smoke:
        reason = f"real weights not found ({', '.join(missing)})" if missing else "--smoke was given"
        _banner(["SMOKE RUN: " + reason + ".",
                 "Using tiny RANDOM models in the real file layouts: the video shows noise, not an animation.",
                 "It proves the whole graph (DWPose, align, draw, SVD sampler, decode, video) runs end to end.",
                 "The random detector finds no real person, so 'Align pose: no driving frame has a usable",
                 "person' below is expected here (with the real DWPose files it means what it says).",
                 f"For a real animation, place the model files under {adapter.fallback_models_dir()}",
                 "(`python cli.py doctor` checks them; `python cli.py models download --workflow "
                 "mimicmotion_pose_video` fetches them on request)."])
        adapter.set_models_dir(build_smoke_models())
        for (node_id, name), value in SMOKE_OVERRIDES.items():
            workflow[node_id]["inputs"][name] = value
    os.environ.setdefault("MOTIONGUIDE_INPUT_DIR", str(SAMPLE_INPUTS))
    if output_dir is not None:
        os.environ["MOTIONGUIDE_OUTPUT_DIR"] = str(output_dir.resolve())
    announce_folders()
    started = time.perf_counter()
    result = execute(workflow)
    label = "SMOKE RUN (tiny random models) " if smoke else ""
    print(f"{label}finished in {time.perf_counter() - started:.1f}s")
    files = print_written(result)
    for path in guidance_previews():
        print(f"wrote {path} (3D guidance: pose maps | depth | normals | body parts)")
    return 0 if files else 1


def sample_reference_keypoints() -> tuple[np.ndarray, tuple[int, int]]:
    """OpenPose-18 keypoints of the shipped sample reference (drawn by scripts/make_sample_inputs.py from a known
    skeleton, so they are exact) and its size."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_motionguide_samples", PACK_ROOT / "scripts" / "make_sample_inputs.py")
    samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(samples)
    j = samples.skeleton(0.0, wave=0.0, step=0.0)
    head = j["neck"] - [0, 38]
    points = [head + [0, 6], j["neck"], j["r_shoulder"], j["r_elbow"], j["r_wrist"], j["l_shoulder"], j["l_elbow"],
              j["l_wrist"], j["r_hip"], j["r_knee"], j["r_ankle"], j["l_hip"], j["l_knee"], j["l_ankle"],
              head + [-10, 2], head + [10, 2], head + [-26, 4], head + [26, 4]]
    # the drawing's "l" side is at +x (image right): a person facing the camera has their left there
    return np.concatenate([np.array(points, np.float32), np.ones((18, 1), np.float32)], 1), (samples.W, samples.H)


def guidance_previews() -> list[Path]:
    """The sample motion on the built-in body shaped to the sample reference, written beside the video."""
    from ..nodes.smpl import load_builtin_body
    from ..pipelines.render.guidance_preview import guidance_preview, write_preview
    from ..pipelines.smpl.body.anny_cache import AnnyUnavailable
    from ..pipelines.smpl.body.phenotype import PHENOTYPE_LABELS
    from ..pipelines.smpl.motion.sequence import load_sequence

    try:
        body = load_builtin_body()
    except (RuntimeError, AnnyUnavailable, PermissionError) as exc:
        print(f"3D guidance previews skipped: {exc}", file=sys.stderr)
        return []
    keypoints, size = sample_reference_keypoints()
    motion = load_sequence(SAMPLE_INPUTS / "motionguide_motion.npz")
    started = time.perf_counter()
    result = guidance_preview(body, motion, keypoints, size)
    shape = ", ".join(f"{label} {float(v):.2f}" for label, v in zip(PHENOTYPE_LABELS, result["phenotype"]))
    print(f"3D guidance: the sample motion on the built-in body shaped to the reference ({shape}) in "
          f"{time.perf_counter() - started:.1f}s")
    return write_preview(result, adapter.output_directory(), "MotionGuide_demo_3D_guidance")
