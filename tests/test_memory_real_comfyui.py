"""The pack's models in a real ComfyUI's memory manager (opt-in, ~15 s): in a subprocess with ComfyUI on the path
(CPU mode), load the tiny motion model, sample, find our parts in ``current_loaded_models``, let ComfyUI unload
everything, sample again (same latents), decode; then the same for HMR2 and the offload-after-run mode.

Set ``MOTIONGUIDE_COMFYUI=/path/to/ComfyUI`` and optionally ``MOTIONGUIDE_COMFYUI_PYTHON`` (its venv's python with
the pack's requirements; default: ``venv/bin/python`` next to the checkout when present, else this python).
No server is started.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from real_comfyui import COMFY, SKIP_REASON, comfy_env, comfy_python, is_checkout

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not is_checkout("comfy", "model_management.py"), reason=SKIP_REASON)

SCRIPT = r'''
import json, sys
comfy_root, pack_root, models = sys.argv[1:4]
sys.path.insert(0, comfy_root)
from comfy.cli_args import args
args.cpu = True  # before comfy.model_management is imported: it picks the device at import
import comfy.model_management as mm
import folder_paths
import torch

sys.path.insert(0, pack_root)
import cli
cli.load_pack()
from motionguide.nodes import comfy_adapter as adapter
from motionguide.nodes.sampling import MotionGuideLoadModel, MotionGuideSampler
from motionguide.nodes.video import MotionGuideDecode
from motionguide.nodes import smpl_estimate

assert adapter.in_comfyui()
for key in ("diffusers", "mimicmotion", "hmr2"):
    folder_paths.add_model_folder_path(key, f"{models}/{key}")

def ours_loaded(handles):
    loaded = [e.model for e in mm.current_loaded_models]
    return sorted(name for name, h in handles.items() if h.patcher is not None and any(p is h.patcher for p in loaded))

g = torch.Generator().manual_seed(0)
reference = (torch.rand(1, 64, 64, 3, generator=g) * 255).round() / 255
poses = (torch.rand(6, 64, 64, 3, generator=g) * 255).round() / 255
sampler_args = dict(steps=2, cfg_min=2.0, cfg_max=2.0, seed=3, fps=7, motion_bucket=127, noise_aug=0.0, tile_size=4,
                    tile_overlap=2)
report = {}
(model,) = MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                       mimicmotion_checkpoint="MimicMotion_1-1.pth", precision="fp32",
                                       memory_mode="keep_loaded")
report["device"] = str(model.device)
(first,) = MotionGuideSampler().sample(model, reference, poses, **sampler_args)
report["loaded_after_run"] = ours_loaded(model.part_handles)
report["patcher_class"] = [type(h.patcher).__mro__[1].__module__ + "." + type(h.patcher).__mro__[1].__name__
                           for h in model.part_handles.values()][0]
report["loaded_bytes"] = sum(h.patcher.loaded_size() for h in model.part_handles.values())
report["model_bytes"] = sum(h.size_bytes for h in model.part_handles.values())
mm.unload_all_models()
report["loaded_after_unload"] = ours_loaded(model.part_handles)
report["bytes_after_unload"] = sum(h.patcher.loaded_size() for h in model.part_handles.values())
(second,) = MotionGuideSampler().sample(model, reference, poses, **sampler_args)
report["same_latents"] = bool(torch.equal(first["samples"], second["samples"]))
report["loaded_after_second_run"] = ours_loaded(model.part_handles)
mm.free_memory(1e30, mm.get_torch_device())
frames, _ = MotionGuideDecode().decode(model, second, chunk_size=4, drop_reference_frame=True)
report["frames"] = list(frames.shape)
report["loaded_after_decode"] = ours_loaded(model.part_handles)

(lean,) = MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                      mimicmotion_checkpoint="MimicMotion_1-1.pth", precision="fp32",
                                      memory_mode="offload_after_run")
(third,) = MotionGuideSampler().sample(lean, reference, poses, **sampler_args)
report["offload_after_run_loaded"] = ours_loaded(lean.part_handles)
report["offload_after_run_same"] = bool(torch.equal(first["samples"], third["samples"]))

person = [0.0] * 54
person[0:3], person[30:33], person[3:6] = [40, 10, 0.9], [100, 110, 0.9], [70, 60, 0.9]
pose = [{"people": [{"pose_keypoints_2d": person}], "canvas_width": 160,
         "canvas_height": 120}] * 2
images = torch.rand(2, 120, 160, 3, generator=g)
hmr_args = dict(images=images, pose_keypoint=pose, estimator="hmr2_tiny.ckpt", precision="fp32", batch_size=2)
(seq1,) = smpl_estimate.MotionGuideEstimateSMPL().estimate(**hmr_args)
((network, handle),) = smpl_estimate._NETWORK_CACHE.values()
report["hmr2_loaded"] = ours_loaded({"hmr2": handle})
mm.unload_all_models()
report["hmr2_after_unload"] = ours_loaded({"hmr2": handle})
(seq2,) = smpl_estimate.MotionGuideEstimateSMPL().estimate(**hmr_args)
report["hmr2_same"] = bool((seq1["transl"] == seq2["transl"]).all())
report["hmr2_loaded_again"] = ours_loaded({"hmr2": handle})
print("REPORT " + json.dumps(report))
'''


def test_comfyui_loads_unloads_and_reloads_our_models(models_dir, tiny_svd_dir, tiny_mimicmotion_path,
                                                       hmr2_tiny_checkpoint, tmp_path):
    env = comfy_env()
    # the tiny models gain nothing from threads, and spinning OpenMP threads made this 50× slower on a busy 2-core box
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([comfy_python(), "-c", SCRIPT, str(Path(COMFY).resolve()), str(ROOT), str(models_dir)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    parts = ["image_encoder", "pose_net", "unet", "vae"]
    assert report["device"] == "cpu"
    assert report["patcher_class"] == "comfy.model_patcher.ModelPatcher"
    assert report["loaded_after_run"] == parts
    assert report["loaded_bytes"] == report["model_bytes"] > 0
    assert report["loaded_after_unload"] == [] and report["bytes_after_unload"] == 0
    assert report["same_latents"] is True and report["loaded_after_second_run"] == parts
    assert report["frames"] == [5, 64, 64, 3] and report["loaded_after_decode"] == ["vae"]
    assert report["offload_after_run_loaded"] == [] and report["offload_after_run_same"] is True
    assert report["hmr2_loaded"] == ["hmr2"] and report["hmr2_after_unload"] == []
    assert report["hmr2_same"] is True and report["hmr2_loaded_again"] == ["hmr2"]
