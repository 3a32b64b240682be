"""Node: Load Geometry Adapter (a trained adapter that lets MimicMotion read Render SMPL Maps' guidance maps).

Thin: it finds the file in ``models/motionguide_adapters/`` and loads it strictly and safely; the work is in
``pipelines/guidance/geometry_adapter.py``.
"""
from __future__ import annotations

import logging

from . import comfy_adapter as adapter
from . import sockets
from .model_check import with_other_missing_files

logger = logging.getLogger(__name__)

FOLDER = "motionguide_adapters"
ADAPTER_DEFAULT = "geometry_adapter.safetensors"
HOW_TO_GET_ONE = ("Train one with `python cli.py train CONFIG.yaml` (README: 'Training a geometry adapter') and put "
                  "the .safetensors file (its config is inside) into models/motionguide_adapters/.")


def adapter_choices() -> list[str]:
    return adapter.list_model_files(FOLDER, [".safetensors"]) or [ADAPTER_DEFAULT]


def adapter_path(name: str):
    try:
        return adapter.resolve_model_path(FOLDER, name)
    except FileNotFoundError as exc:
        folders = ", ".join(str(p) for p in adapter.model_folder_paths(FOLDER))
        raise FileNotFoundError(f"Geometry adapter '{name}' was not found in {folders}. {HOW_TO_GET_ONE}") from exc


class MotionGuideLoadGeometryAdapter:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "adapter_file": (adapter_choices(), {"tooltip": "A geometry adapter (.safetensors) in "
                             "models/motionguide_adapters/, made by `python cli.py train CONFIG.yaml`. Its config "
                             "(maps it reads, base model, map conventions) is stored inside the file."}),
        }}

    RETURN_TYPES = (sockets.MOTIONGUIDE_GEOMETRY_ADAPTER,)
    RETURN_NAMES = ("geometry_adapter",)
    OUTPUT_TOOLTIPS = ("The adapter's encoders and config; connect it to the Pose-Guided Sampler's geometry_adapter "
                       "together with Render SMPL Maps' guidance_maps.",)
    FUNCTION = "load"
    CATEGORY = "MotionGuide/loaders"
    DESCRIPTION = ("Loads a geometry adapter: small encoders that let MimicMotion read rendered depth, normal, "
                   "body-part and mask maps besides the skeleton. Train one with `python cli.py train`.")

    @classmethod
    def VALIDATE_INPUTS(cls, adapter_file):
        if adapter_file is None:  # linked from another node
            return True
        try:
            adapter_path(str(adapter_file))
        except FileNotFoundError as exc:
            return with_other_missing_files(str(exc), str(adapter_file))
        return True

    def load(self, adapter_file):
        from ..pipelines.guidance.geometry_adapter import load_adapter

        path = adapter_path(adapter_file)
        geometry_adapter = load_adapter(path)  # float32 on the CPU; the sampler attaches a copy in its dtype
        geometry_adapter.__dict__["source"] = path.name  # named in the sampler's messages
        config = geometry_adapter.config
        logger.info("[MotionGuide] geometry adapter %s: maps %s, base model %s, width %d", path.name,
                    list(config.maps), config.base_model, config.out_channels)
        return (geometry_adapter,)
