"""Cooperation with ComfyUI's memory manager, against fake ``comfy.model_management`` /
``comfy.model_patcher`` modules that keep the same books as the real ones: models load through
``load_models_gpu``, sit in ``current_loaded_models``, and ComfyUI may unload them between runs.
The same flow against a real ComfyUI checkout is in ``test_memory_real_comfyui.py``.
"""
import sys
import types

import numpy as np
import pytest
import torch

from motionguide.nodes import comfy_adapter as adapter

SAMPLER_ARGS = dict(steps=2, cfg_min=2.0, cfg_max=2.0, seed=5, fps=7, motion_bucket=127, noise_aug=0.0, tile_size=4,
                    tile_overlap=2)


class FakeComfy:
    """Enough of ComfyUI's model management to watch what the pack asks of it."""

    def __init__(self):
        self.calls = []
        self.partial = False  # like --novram: load_models_gpu leaves plain layers where they are
        self.patchers = []
        fake = self

        class ModelPatcher:
            def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
                self.model, self.load_device, self.offload_device, self.size = model, load_device, offload_device, size
                # the real one writes bookkeeping attributes on the model, e.g. ``device``
                self.model.device = offload_device
                self.model.model_loaded_weight_memory = 0
                fake.patchers.append(self)

            def partially_unload(self, device_to, memory_to_free=0):  # the real one moves single layers
                self.model.to(device_to)
                return memory_to_free

        class LoadedModel:
            def __init__(self, patcher):
                self.model = patcher

            def model_unload(self, memory_to_free=None, unpatch_weights=True):
                fake.calls.append(("unload", self.model.model.label))
                self.model.model.to(self.model.offload_device)
                self.model.model.model_loaded_weight_memory = 0
                return True

        mm = types.ModuleType("comfy.model_management")
        mm.current_loaded_models = []

        def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                            force_full_load=False):
            fake.calls.append(("load", tuple(m.model.label for m in models), force_full_load))
            for patcher in models:
                entry = next((e for e in mm.current_loaded_models if e.model is patcher), None)
                if entry is None:
                    entry = LoadedModel(patcher)
                    if not fake.partial:
                        patcher.model.to(patcher.load_device)
                    patcher.model.model_loaded_weight_memory = patcher.size
                else:
                    mm.current_loaded_models.remove(entry)
                mm.current_loaded_models.insert(0, entry)

        def unload_all_models():
            while mm.current_loaded_models:
                mm.current_loaded_models.pop().model_unload()

        mm.load_models_gpu = load_models_gpu
        mm.unload_all_models = unload_all_models
        mm.free_memory = lambda required, device, keep_loaded=(): fake.calls.append(("free", int(required)))
        mm.get_torch_device = lambda: torch.device("cpu")
        mm.unet_offload_device = lambda: torch.device("cpu")
        mm.intermediate_device = lambda: torch.device("cpu")
        mm.soft_empty_cache = lambda: None
        mm.throw_exception_if_processing_interrupted = lambda: None
        patcher_module = types.ModuleType("comfy.model_patcher")
        patcher_module.ModelPatcher = ModelPatcher
        comfy = types.ModuleType("comfy")
        comfy.__path__ = []  # a package without comfy.utils: progress uses the plain fallback
        comfy.model_management, comfy.model_patcher = mm, patcher_module
        self.mm, self.comfy, self.patcher_module = mm, comfy, patcher_module

    def install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "comfy", self.comfy)
        monkeypatch.setitem(sys.modules, "comfy.model_management", self.mm)
        monkeypatch.setitem(sys.modules, "comfy.model_patcher", self.patcher_module)
        monkeypatch.setitem(sys.modules, "folder_paths", None)  # model files still come from the test models dir
        monkeypatch.delenv("MOTIONGUIDE_NO_COMFY", raising=False)
        return self

    def loaded_labels(self):
        return [e.model.model.label for e in self.mm.current_loaded_models]

    def loads(self):
        return [c[1] for c in self.calls if c[0] == "load"]


@pytest.fixture()
def fake_comfy(monkeypatch):
    return FakeComfy().install(monkeypatch)


def _where(module):
    return next(module.parameters()).device.type


# ---------------------------------------------------------------------------------------------------- the handle


def test_outside_comfyui_handles_are_plain_moves(monkeypatch):
    fake = FakeComfy()  # importable but switched off, as in tests and the command line
    monkeypatch.setitem(sys.modules, "comfy", fake.comfy)
    monkeypatch.setitem(sys.modules, "comfy.model_management", fake.mm)
    monkeypatch.setitem(sys.modules, "comfy.model_patcher", fake.patcher_module)
    monkeypatch.setenv("MOTIONGUIDE_NO_COMFY", "1")
    module = torch.nn.Linear(3, 2)
    handle = adapter.managed_model(module, "cpu", "meta")
    assert handle.size_bytes == (3 * 2 + 2) * 4
    handle.load()
    assert _where(module) == "cpu" and handle.patcher is None and not handle.is_managed()
    handle.release()  # outside ComfyUI the end of a run offloads
    assert _where(module) == "meta"
    other = torch.nn.Linear(3, 2)
    adapter.managed_model(other, "cpu", "meta").offload()
    assert _where(other) == "meta"
    assert fake.calls == [] and fake.patchers == [] and fake.mm.current_loaded_models == []


def test_inside_comfyui_the_handle_loads_through_the_manager_once_wrapped(fake_comfy):
    module = torch.nn.Linear(4, 4)
    handle = adapter.managed_model(module, "cpu", "meta", size_bytes=1234, label="MotionGuide test")
    handle.load()
    handle.load()
    assert len(fake_comfy.patchers) == 1 and handle.patcher is fake_comfy.patchers[0]
    assert isinstance(handle.patcher, fake_comfy.patcher_module.ModelPatcher)
    assert handle.patcher.model.module is module and handle.patcher.size == 1234
    assert handle.patcher.load_device == torch.device("cpu") and handle.patcher.offload_device == torch.device("meta")
    assert fake_comfy.calls == [("load", ("MotionGuide test",), True)] * 2  # full loads only
    assert fake_comfy.loaded_labels() == ["MotionGuide test"] and handle.is_managed()
    handle.release()  # inside ComfyUI the manager decides when it goes
    assert handle.is_managed() and _where(module) == "cpu"
    # partial unloads would leave plain torch layers on two devices: refused, so ComfyUI unloads whole
    assert handle.patcher.partially_unload(torch.device("meta"), 10) == 0 and _where(module) == "cpu"
    handle.offload()
    assert fake_comfy.calls[-1] == ("unload", "MotionGuide test")
    assert not handle.is_managed() and fake_comfy.mm.current_loaded_models == [] and _where(module) == "meta"


def test_a_model_comfyui_unloaded_is_loaded_again(fake_comfy):
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    handle_a = adapter.managed_model(a, "cpu", "cpu", label="a")
    handle_b = adapter.managed_model(b, "cpu", "cpu", label="b")
    handle_a.load()
    handle_b.load()
    assert fake_comfy.loaded_labels() == ["b", "a"]
    fake_comfy.mm.unload_all_models()
    assert not handle_a.is_managed() and not handle_b.is_managed()
    handle_a.load()
    assert fake_comfy.loaded_labels() == ["a"] and len(fake_comfy.patchers) == 2


def test_a_partial_load_by_comfyui_is_completed(fake_comfy):
    fake_comfy.partial = True
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    handle = adapter.managed_model(module, "meta", "cpu")  # meta stands in for the GPU
    handle.load()
    assert handle.is_managed() and {t.device.type for t in module.state_dict().values()} == {"meta"}


# ---------------------------------------------------------------------------------------------------- the nodes


def _images(frames, seed, h=64, w=64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(frames, h, w, 3, generator=g) * 255).round() / 255


def _load_model(memory_mode):
    from motionguide.nodes.sampling import MotionGuideLoadModel

    (model,) = MotionGuideLoadModel().load(svd_base="stable-video-diffusion-img2vid-xt-1-1",
                                           mimicmotion_checkpoint="MimicMotion_1-1.pth", precision="fp32",
                                           memory_mode=memory_mode)
    return model


PART_LABELS = {f"MotionGuide {n}" for n in ("image_encoder", "vae", "pose_net", "unet")}


def test_sampler_parts_are_managed_and_survive_comfyui_unloading_them(use_models_dir, tiny_svd_dir,
                                                                       tiny_mimicmotion_path, fake_comfy):
    from motionguide.nodes.sampling import MotionGuideSampler
    from motionguide.nodes.video import MotionGuideDecode

    model = _load_model("keep_loaded")
    assert set(model.part_handles) == set(model.PARTS) and fake_comfy.calls == []  # nothing moves at load time
    reference, poses = _images(1, 0), _images(6, 1)
    (first,) = MotionGuideSampler().sample(model, reference, poses, **SAMPLER_ARGS)
    assert set(fake_comfy.loaded_labels()) == PART_LABELS  # keep_loaded: all stay, in ComfyUI's books
    assert all(load[0] in PART_LABELS for load in fake_comfy.loads())
    assert all(c[2] is True for c in fake_comfy.calls if c[0] == "load")
    assert {p.model.module for p in fake_comfy.patchers} == {getattr(model, n) for n in model.PARTS}
    fake_comfy.mm.unload_all_models()  # another node needed the memory
    assert fake_comfy.mm.current_loaded_models == []
    (second,) = MotionGuideSampler().sample(model, reference, poses, **SAMPLER_ARGS)
    torch.testing.assert_close(second["samples"], first["samples"], rtol=0, atol=0)
    assert set(fake_comfy.loaded_labels()) == PART_LABELS and len(fake_comfy.patchers) == 4  # wrapped once
    fake_comfy.mm.unload_all_models()
    fake_comfy.calls.clear()
    frames, _ = MotionGuideDecode().decode(model, first, chunk_size=4, drop_reference_frame=True)
    assert frames.shape == (5, 64, 64, 3) and fake_comfy.loads() == [("MotionGuide vae",)]


def test_memory_modes_inside_comfyui(use_models_dir, tiny_svd_dir, tiny_mimicmotion_path, fake_comfy):
    from motionguide.nodes.sampling import MotionGuideSampler

    reference, poses = _images(1, 0), _images(6, 1)
    results = {}
    for mode in ("keep_loaded", "offload_after_run", "sequential_offload"):
        fake_comfy.mm.unload_all_models()
        fake_comfy.calls.clear()
        model = _load_model(mode)
        (latent,) = MotionGuideSampler().sample(model, reference, poses, **SAMPLER_ARGS)
        results[mode] = latent["samples"]
        loads = [label for (label,) in fake_comfy.loads()]
        if mode == "keep_loaded":
            assert set(fake_comfy.loaded_labels()) == PART_LABELS
        else:  # offloaded through the manager, so ComfyUI's books show nothing of ours
            assert fake_comfy.loaded_labels() == []
            unloaded = {c[1] for c in fake_comfy.calls if c[0] == "unload"}
            assert unloaded == set(loads)
        assert set(loads) == PART_LABELS
        if mode == "sequential_offload":  # one part at a time: each leaves before the next comes
            # (here the compute and offload devices are both the CPU, so the UNet is not streamed block by block)
            events = [(c[0], c[1][0] if c[0] == "load" else c[1]) for c in fake_comfy.calls if c[0] != "free"]
            assert events == [(kind, label) for label in loads for kind in ("load", "unload")]
    torch.testing.assert_close(results["offload_after_run"], results["keep_loaded"], rtol=0, atol=0)
    torch.testing.assert_close(results["sequential_offload"], results["keep_loaded"], rtol=0, atol=0)


def test_hmr2_is_managed_inside_comfyui_and_offloaded_outside(use_models_dir, hmr2_tiny_checkpoint, monkeypatch):
    from motionguide.nodes import smpl_estimate

    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (2, 120, 160, 3)).astype(np.float32) / 255)
    person = [0.0] * 54
    person[0:3], person[30:33], person[3:6] = [40, 10, 0.9], [100, 110, 0.9], [70, 60, 0.9]
    pose = [{"people": [{"pose_keypoints_2d": person}], "canvas_width": 160, "canvas_height": 120}] * 2
    args = dict(images=images, pose_keypoint=pose, estimator="hmr2_tiny.ckpt", precision="fp32", batch_size=2)
    smpl_estimate._NETWORK_CACHE.clear()
    (outside,) = smpl_estimate.MotionGuideEstimateSMPL().estimate(**args)
    ((network, handle),) = smpl_estimate._NETWORK_CACHE.values()
    assert handle.module is network and handle.patcher is None

    fake = FakeComfy().install(monkeypatch)
    (inside,) = smpl_estimate.MotionGuideEstimateSMPL().estimate(**args)
    assert fake.loaded_labels() == ["MotionGuide HMR2"]  # stays loaded until ComfyUI needs the room
    assert fake.patchers[0].model.module is network
    fake.mm.unload_all_models()
    (again,) = smpl_estimate.MotionGuideEstimateSMPL().estimate(**args)
    assert fake.loaded_labels() == ["MotionGuide HMR2"] and len(fake.patchers) == 1
    for result in (inside, again):
        np.testing.assert_allclose(result["transl"], outside["transl"], rtol=1e-6)
    smpl_estimate._NETWORK_CACHE.clear()
