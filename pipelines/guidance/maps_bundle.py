"""The guidance-map bundle (socket ``MOTIONGUIDE_GUIDANCE_MAPS``): rendered body maps plus the conventions they
were made with, so a geometry adapter reads exactly what it was trained on.

A bundle is a plain dict::

    {"maps": {"depth": [F,H,W,1], "normal": [F,H,W,3], "semantic": [F,H,W,3], "mask": [F,H,W,1]},  # float 0..1
     "frames": F, "width": W, "height": H,
     "semantic_palette": "motionguide-lr-v1", "depth_normalisation": "per-clip",
     "reference_frame": True}   # frame 0 is the reference image's body (as the pose maps' frame 0)

The sampler reads every map the way it reads pose maps: 8-bit (``round(255·x)``, what a PNG of the map holds),
at the working size, frame-aligned with the pose maps (frame 0 = the reference). An adapter that reads the
``skeleton`` map gets the pose maps themselves when the bundle has no skeleton.
"""
from __future__ import annotations

import torch

from ..render.maps import DEPTH_NORMALISATION, SEMANTIC_PALETTE_ID
from .geometry_adapter import MAP_CHANNELS, AdapterConfig

RENDERED_MAPS = ("depth", "normal", "semantic", "mask")
BUNDLE_KEYS = ("maps", "frames", "width", "height", "semantic_palette", "depth_normalisation", "reference_frame")


def guidance_bundle(maps: dict[str, torch.Tensor], *, reference_frame: bool,
                    semantic_palette: str = SEMANTIC_PALETTE_ID,
                    depth_normalisation: str = DEPTH_NORMALISATION) -> dict:
    """A bundle from rendered maps (name → ``[F,H,W]`` or ``[F,H,W,C]`` float 0..1; no copies are made)."""
    out = {}
    for name, x in maps.items():
        if name not in MAP_CHANNELS:
            raise ValueError(f"Unknown guidance map {name!r}; known: {list(MAP_CHANNELS)}.")
        out[name] = x[..., None] if x.ndim == 3 else x
    first = next(iter(out.values()))
    frames, height, width = (int(n) for n in first.shape[:3])
    for name, x in out.items():
        if tuple(x.shape[:3]) != (frames, height, width):
            raise ValueError(f"Guidance map {name!r} is {tuple(x.shape[:3])}, the others {(frames, height, width)}.")
    return {"maps": out, "frames": frames, "width": width, "height": height, "semantic_palette": semantic_palette,
            "depth_normalisation": depth_normalisation, "reference_frame": bool(reference_frame)}


def check_bundle(bundle, source: str = "guidance_maps") -> dict:
    """The bundle, or a ``ValueError`` saying what is wrong with it and where it should come from."""
    if not isinstance(bundle, dict) or any(k not in bundle for k in BUNDLE_KEYS) or not isinstance(
            bundle["maps"], dict):
        raise ValueError(f"{source} must be the guidance_maps output of Render SMPL Maps (a dict with "
                         f"{list(BUNDLE_KEYS)}), got {type(bundle).__name__}.")
    return bundle


def adapter_inputs(bundle: dict, config: AdapterConfig, pose_maps: torch.Tensor | None = None, *,
                   source: str = "the geometry adapter") -> dict[str, torch.Tensor]:
    """The maps an adapter reads, checked against what it was trained on and against the pose maps.

    Args:
        bundle (`dict`): a guidance-map bundle (:func:`guidance_bundle`).
        config (`AdapterConfig`): the adapter's config.
        pose_maps (`torch.Tensor` uint8 ``[F,3,H,W]``, *optional*): the sampler's pose maps; the maps must have
            their frame count and size, and they stand in for a ``skeleton`` map the bundle lacks.

    Returns:
        name → uint8 ``[F,H,W,C]`` for every map in ``config.maps``.
    """
    check_bundle(bundle)
    for key, ours in (("semantic_palette", config.semantic_palette),
                      ("depth_normalisation", config.depth_normalisation)):
        if bundle[key] != ours:
            raise ValueError(f"{source} was trained on {key.replace('_', ' ')} {ours!r}, but the connected guidance "
                             f"maps use {bundle[key]!r}. Render the maps with this version of Render SMPL Maps, or "
                             "use an adapter trained on these maps.")
    maps = dict(bundle["maps"])
    if "skeleton" in config.maps and "skeleton" not in maps and pose_maps is not None:
        maps["skeleton"] = pose_maps.permute(0, 2, 3, 1)
    missing = [name for name in config.maps if name not in maps]
    if missing:
        raise ValueError(f"{source} was trained on maps {list(config.maps)}, but {missing} are not in the connected "
                         f"guidance maps ({sorted(maps)}). Connect Render SMPL Maps' guidance_maps output.")
    out = {}
    for name in config.maps:
        x = maps[name]
        if pose_maps is not None:
            frames, height, width = pose_maps.shape[0], pose_maps.shape[2], pose_maps.shape[3]
            if x.shape[0] != frames:
                hint = (" Connect the reference's SMPL (Set Body Shape / Estimate SMPL on the reference image) to "
                        "Render SMPL Maps' reference_motion so the maps get the reference as frame 0, like the pose "
                        "maps." if x.shape[0] + 1 == frames and not bundle.get("reference_frame") else "")
                raise ValueError(f"The guidance maps have {x.shape[0]} frames but the pose maps have {frames} "
                                 f"(frame 0 = the reference pose); render both from the same motion.{hint}")
            if tuple(x.shape[1:3]) != (height, width):
                raise ValueError(f"The guidance maps are {x.shape[2]}×{x.shape[1]} but the pose maps are "
                                 f"{width}×{height}; give Render SMPL Maps the same width and height as Draw Pose "
                                 "Maps (Fit Reference Image's).")
        if x.dtype != torch.uint8:
            x = (x.detach().cpu().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
        out[name] = x[..., :MAP_CHANNELS[name]].contiguous()
    return out
