"""Builds ComfyUI's node mappings from the pack's node table, one module at a time.

A module that fails to import (a missing optional dependency, say) disables only its own nodes, with the
reason logged once, as comfyui_controlnet_aux does; the rest of the pack still loads.
"""
from __future__ import annotations

import importlib
import logging

logger = logging.getLogger(__name__)

# Filled by build_mappings: node id -> reason it could not be loaded.
UNAVAILABLE: dict[str, str] = {}


def build_mappings(package: str, table: list[tuple[str, str, str]]):
    classes: dict[str, type] = {}
    names: dict[str, str] = {}
    modules: dict[str, object] = {}
    failures: dict[str, str] = {}
    for module_name, node_id, display_name in table:
        if module_name not in modules and module_name not in failures:
            try:
                modules[module_name] = importlib.import_module(f"{package}.{module_name}")
            except Exception as exc:  # one broken dependency costs one module, not the pack
                failures[module_name] = f"{type(exc).__name__}: {exc}"
        if module_name in failures:
            UNAVAILABLE[node_id] = failures[module_name]
            continue
        cls = getattr(modules[module_name], node_id, None)
        if cls is None:
            UNAVAILABLE[node_id] = f"nodes/{module_name}.py defines no class {node_id}"
            continue
        classes[node_id] = cls
        names[node_id] = display_name
    for module_name, reason in failures.items():
        logger.warning("[MotionGuide] nodes/%s.py not loaded (%s); its nodes are unavailable.", module_name, reason)
    return classes, names
