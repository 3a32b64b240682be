"""Guidance maps from camera-space meshes: depth, normal, semantic parts, mask and a shaded preview.

Geometry first: :func:`render_maps` takes vertices already in the OpenCV camera frame (x right, y down,
z forward, metres), the faces, the intrinsics and per-vertex part labels; it knows nothing about SMPL
parameters. Frames are rendered in chunks on the chosen device and copied to CPU outputs as they finish, so a
long sequence never holds more than one chunk on the device.

Map conventions (every value in 0..1, background 0):

- **depth**: ``floor + (1 − floor)·(far − z)/(far − near)`` with near/far the closest/farthest vertex depth over
  the *whole sequence* (no per-frame flicker): the nearest surface is 1, the farthest ``floor`` (0.1 by default,
  so the body never fades into the background).
- **normal**: camera-space unit normals as ``n·0.5 + 0.5`` in the usual normal-map axes (red = right,
  green = up, blue = towards the camera), i.e. the OpenCV camera normal rotated 180° about x. A surface facing
  the camera is (0.5, 0.5, 1.0) → (128, 128, 255).
- **semantic**: one colour per SMPL part (:data:`PART_PALETTE`), taken from the visible *face's* label, so part
  borders stay sharp (no interpolated colours).
- **mask**: depth > 0.
- **preview**: a clay render, light grey shaded by the angle to the camera.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..options import RENDER_BACKENDS as BACKENDS
from ..options import check_choice
from .surface import SurfaceBuffers, face_labels, render_surface_torch

ALL_MAPS = ("depth", "normal", "semantic", "mask", "preview")

# SMPL part colours: OpenCV's VIRIDIS colormap at 10·label (RGB), the palette Champ's semantic maps use.
# Index = SMPL joint whose skinning weight is largest on the vertex (0 pelvis, 1 left hip, ... 23 right hand).
PART_PALETTE = torch.tensor([
    [68, 1, 84], [71, 16, 99], [72, 29, 111], [71, 42, 122], [69, 55, 129], [65, 66, 135],
    [61, 78, 138], [56, 89, 140], [51, 99, 141], [46, 109, 142], [42, 118, 142], [39, 128, 142],
    [35, 137, 142], [32, 146, 140], [30, 156, 137], [33, 165, 133], [40, 174, 128], [53, 183, 121],
    [70, 192, 111], [90, 200, 100], [112, 207, 87], [137, 213, 72], [162, 218, 55], [189, 223, 38],
], dtype=torch.uint8)
SMPL_PART_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
CLAY_COLOUR = (0.8, 0.8, 0.8)
DEFAULT_DEPTH_FLOOR = 0.1


# ------------------------------------------------------------------------------------------------------------
# Colours (pure functions on surface buffers)

def depth_range(vertices: torch.Tensor, znear: float = 1e-3) -> tuple[float, float]:
    """(near, far): the smallest and largest vertex depth in front of the camera over all frames.

    Every visible surface point lies in this range (it is a convex combination of vertices), so it normalises
    the depth of a whole sequence without rendering it twice.
    """
    z = vertices[..., 2]
    z = z[torch.isfinite(z) & (z > znear)]
    if z.numel() == 0:
        return 1.0, 2.0
    return float(z.min()), float(z.max())


def depth_to_image(depth: torch.Tensor, near: float, far: float, floor: float = DEFAULT_DEPTH_FLOOR) -> torch.Tensor:
    """`(B, H, W)` metres → `(B, H, W)` in 0..1: near = 1, far = ``floor``, background 0."""
    span = far - near
    if span <= 1e-6:  # a single depth (e.g. one flat surface): everything is "nearest"
        value = torch.ones_like(depth)
    else:
        value = floor + (1.0 - floor) * ((far - depth) / span).clamp(0.0, 1.0)
    return torch.where(depth > 0, value, torch.zeros_like(value))


def normal_to_image(normal: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """OpenCV-camera unit normals `(..., 3)` → normal-map colours (x right, y up, z towards the camera)."""
    flip = torch.tensor([0.5, -0.5, -0.5], device=normal.device)
    colour = normal * flip + 0.5
    return colour if mask is None else colour * mask[..., None]


def labels_to_image(label: torch.Tensor, palette: torch.Tensor = PART_PALETTE) -> torch.Tensor:
    """Part labels `(...)` (-1 background) → palette colours `(..., 3)` in 0..1."""
    colours = torch.cat([torch.zeros(1, 3, dtype=torch.uint8), palette]).to(label.device).float() / 255.0
    return colours[(label + 1).clamp(0, len(palette))]


def shaded_preview(normal: torch.Tensor, mask: torch.Tensor | None = None, colour=CLAY_COLOUR) -> torch.Tensor:
    """Clay shading with a light at the camera: ``colour·(0.3 + 0.7·cosθ)``, θ between normal and view ray."""
    shade = 0.3 + 0.7 * (-normal[..., 2]).clamp(min=0.0)
    if mask is not None:
        shade = shade * mask
    return shade[..., None] * torch.tensor(colour, device=normal.device)


# ------------------------------------------------------------------------------------------------------------
# Backends

def choose_backend(backend: str, device: torch.device) -> str:
    """Resolve ``auto`` to the torch rasteriser: on GPUs, and on CPU too, where it measured faster than
    pyrender/OSMesa for a body at 512×768 (``bench/render.py``: ~1.6–1.8× on 2 otherwise idle cores; on a
    heavily shared CPU OSMesa's own threads cope better) and it needs no process-wide OpenGL platform choice.
    ``pyrender`` stays available on request."""
    check_choice("renderer", backend, BACKENDS)
    return "torch" if backend == "auto" else backend


class _TorchSurfaceRenderer:
    def __init__(self, size, faces, labels_of_faces, cull_backfaces, device):
        self.size, self.cull_backfaces, self.device = size, cull_backfaces, device
        self.faces = faces.to(device)
        self.labels_of_faces = labels_of_faces.to(device)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def render(self, vertices, K, *, normals: bool = True, labels: bool = True):
        return render_surface_torch(vertices.to(self.device), self.faces, K.to(self.device), self.size,
                                    self.labels_of_faces, cull_backfaces=self.cull_backfaces, normals=normals,
                                    labels=labels)


def surface_renderer(backend: str, size, faces, labels_of_faces, *, cull_backfaces: bool = True,
                     device: torch.device | str = "cpu"):
    """A context manager whose ``render(vertices (B,V,3), K (B,3,3), normals=, labels=)`` returns
    :class:`SurfaceBuffers` (normals/labels only when asked for)."""
    backend = choose_backend(backend, torch.device(device))
    if backend == "pyrender":
        from .pyrender_backend import PyrenderSurfaceRenderer, unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"renderer 'pyrender' is {reason.removeprefix('pyrender ')}. Install the system "
                               "OpenGL libraries named there, or pick renderer 'torch'.")
        return PyrenderSurfaceRenderer(size, faces, labels_of_faces, cull_backfaces=cull_backfaces)
    return _TorchSurfaceRenderer(size, faces, labels_of_faces, cull_backfaces, torch.device(device))


# ------------------------------------------------------------------------------------------------------------
# The whole sequence

def colourise(surface: SurfaceBuffers, maps, near: float, far: float, depth_floor: float) -> dict[str, torch.Tensor]:
    """Map values at the covered pixels of one chunk (same device): `(N,)` or `(N, 3)` each."""
    out = {}
    if "depth" in maps:
        out["depth"] = depth_to_image(surface.depth, near, far, depth_floor)
    if "normal" in maps:
        out["normal"] = normal_to_image(surface.normal)
    if "semantic" in maps:
        out["semantic"] = labels_to_image(surface.label)
    if "mask" in maps:
        out["mask"] = torch.ones_like(surface.depth)
    if "preview" in maps:
        out["preview"] = shaded_preview(surface.normal)
    return out


def render_maps(vertices: torch.Tensor, faces, K, size: tuple[int, int], *, vertex_labels=None,
                maps=ALL_MAPS, backend: str = "auto", device: torch.device | str = "cpu", chunk_size: int = 16,
                depth_floor: float = DEFAULT_DEPTH_FLOOR, near_far: tuple[float, float] | None = None,
                cull_backfaces: bool = True, callback: Callable[[int, int], None] | None = None,
                keep_surface: bool = False) -> dict[str, torch.Tensor]:
    """Render guidance maps for a sequence of meshes.

    Args:
        vertices (`torch.Tensor` of shape `(T, V, 3)`): OpenCV camera-space vertices in metres (any device;
            chunks are moved to ``device``).
        faces (`torch.LongTensor` of shape `(F, 3)`): outward-wound triangles.
        K (`torch.Tensor` of shape `(3, 3)` or `(T, 3, 3)`): intrinsics in pixels, OpenCV convention.
        size (`tuple[int, int]`): (width, height) of the maps.
        vertex_labels (`torch.LongTensor` of shape `(V,)`, *optional*): part per vertex (0..23); all 0 when None.
        maps (`Iterable[str]`, *optional*): any of :data:`ALL_MAPS`.
        backend (`str`, *optional*, defaults to `"auto"`): ``auto``, ``torch`` or ``pyrender``.
        device (`torch.device`, *optional*, defaults to CPU): where the torch rasteriser runs.
        chunk_size (`int`, *optional*, defaults to 16): frames rendered at once; bounds device memory.
        depth_floor (`float`, *optional*, defaults to 0.1): depth value of the farthest surface.
        near_far (`tuple[float, float]`, *optional*): depth normalisation range; the sequence's vertex range
            when None.
        callback (`Callable[[int, int], None]`, *optional*): ``callback(frames_done, total)`` after each chunk
            (the node's progress bar, which also raises on Cancel).
        keep_surface (`bool`, *optional*): also return the raw ``depth_m`` (metres) and ``label`` buffers.

    Returns:
        `dict[str, torch.Tensor]` on CPU: ``depth``/``mask`` `(T, H, W)`, ``normal``/``semantic``/``preview``
        `(T, H, W, 3)`, float32 in 0..1.
    """
    maps = tuple(maps)
    unknown = set(maps) - set(ALL_MAPS)
    if unknown:
        raise ValueError(f"Unknown maps {sorted(unknown)}; choose from {ALL_MAPS}.")
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be [T,V,3], got {tuple(vertices.shape)}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}.")
    width, height = int(size[0]), int(size[1])
    frames = vertices.shape[0]
    faces = torch.as_tensor(faces, dtype=torch.int64)
    K = torch.as_tensor(K, dtype=torch.float32)
    if K.shape == (3, 3):
        K = K.expand(frames, 3, 3)
    if K.shape != (frames, 3, 3):
        raise ValueError(f"K must be [3,3] or [{frames},3,3], got {tuple(K.shape)}.")
    labels_of_faces = face_labels(faces, None if vertex_labels is None else torch.as_tensor(vertex_labels).cpu())
    near, far = near_far if near_far is not None else depth_range(vertices)

    shapes = {"depth": (frames, height, width), "mask": (frames, height, width),
              "normal": (frames, height, width, 3), "semantic": (frames, height, width, 3),
              "preview": (frames, height, width, 3)}
    out = {name: torch.zeros(shapes[name], dtype=torch.float32) for name in maps}
    if keep_surface:
        out["depth_m"] = torch.zeros(frames, height, width, dtype=torch.float32)
        out["label"] = torch.full((frames, height, width), -1, dtype=torch.int64)
    need_normals = bool({"normal", "preview"} & set(maps))
    need_labels = "semantic" in maps or keep_surface
    with surface_renderer(backend, (width, height), faces, labels_of_faces, cull_backfaces=cull_backfaces,
                          device=device) as renderer:
        for start in range(0, frames, chunk_size):
            stop = min(start + chunk_size, frames)
            surface = renderer.render(vertices[start:stop], K[start:stop], normals=need_normals,
                                      labels=need_labels)
            # Outputs start at zero (background); only the covered pixels are written.
            pixel = surface.pixel.cpu() + start * height * width
            values = colourise(surface, maps, near, far, depth_floor)
            if keep_surface:
                values["depth_m"], values["label"] = surface.depth, surface.label
            for name, value in values.items():
                flat = out[name].view(-1, 3) if out[name].ndim == 4 else out[name].view(-1)
                flat[pixel] = value.to("cpu", flat.dtype)
            del surface, values
            if callback is not None:
                callback(stop, frames)
    return out
