"""Guidance maps from camera-space meshes: depth, normal, semantic parts, mask and a shaded preview.

Geometry first: :func:`render_maps` takes vertices already in the OpenCV camera frame (x right, y down,
z forward, metres), the faces, the intrinsics and per-vertex part labels; it knows nothing about SMPL
parameters. Frames are rendered in chunks on the chosen device and copied to CPU outputs as they finish, so a
long sequence never holds more than one chunk on the device.

Map conventions (every value in 0..1, background 0):

- **depth** (:data:`DEPTH_NORMALISATION` ``"per-clip"``): ``floor + (1 − floor)·(far − z)/(far − near)``, z the
  camera-space depth in metres of the surface at the pixel centre, and near/far the smallest/largest z of any
  mesh vertex in front of the camera (z > 1 mm) over *every frame rendered in one call* — the clip, including
  the reference frame when one is prepended (:func:`.smpl_render.render_sequence_maps`) — so a frame depends on
  the other frames only through this one range, and values do not flicker from frame to frame. The
  nearest point of the clip is 1, the farthest ``floor`` (0.1, so the body never fades into the background),
  background 0; a clip with a single depth is all 1. An 8-bit copy holds ``round(255·value)``.
- **normal**: camera-space unit normals as ``n·0.5 + 0.5`` in the usual normal-map axes (red = right,
  green = up, blue = towards the camera), i.e. the OpenCV camera normal rotated 180° about x. A surface facing
  the camera is (0.5, 0.5, 1.0) → (128, 128, 255).
- **semantic** (:data:`SEMANTIC_PALETTE_ID` ``"motionguide-lr-v1"``): one colour per SMPL part
  (:data:`PART_PALETTE`); the part at a pixel is the argmax of the face corners' part weights (the body's
  summed skinning weights per part, or one-hot labels for meshes without them) interpolated at the pixel
  centre, among the corners' own parts (:func:`.surface.pixel_part_labels`), so borders are straight within
  each triangle and continuous across them (no sawtooth), and every pixel is exactly one palette colour.
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

# The map conventions, by the names a geometry adapter's config records (see pipelines/guidance/geometry_adapter.py).
SEMANTIC_PALETTE_ID = "motionguide-lr-v1"
DEPTH_NORMALISATION = "per-clip"

# SEMANTIC_PALETTE_ID: one RGB colour per SMPL part (index = the SMPL joint whose skinning weight is largest on the
# vertex; the built-in Anny body maps its bones onto the same 24 parts). Left and right are told apart and the
# palette is mirror-symmetric: a right part's colour is its left twin's with red and blue swapped, and the parts
# on the body's midline have red == blue. So left parts are warm (red > blue by ≥ 95), right parts cool, the
# midline purple/green/grey, and flipping an image horizontally maps its semantic map to the flipped body's by
# swapping the red and blue channels. Neighbouring parts differ by ≥ 70 in RGB. "Left" is the person's left.
# Never edit these values: adapters are trained on them; a new palette gets a new id.
PART_PALETTE = torch.tensor([
    [150, 60, 150],   # 0 pelvis
    [230, 40, 20],    # 1 left hip (thigh)
    [20, 40, 230],    # 2 right hip (thigh)
    [90, 190, 90],    # 3 spine1
    [255, 140, 0],    # 4 left knee (shin)
    [0, 140, 255],    # 5 right knee (shin)
    [120, 120, 120],  # 6 spine2
    [255, 230, 60],   # 7 left ankle (foot)
    [60, 230, 255],   # 8 right ankle (foot)
    [40, 100, 40],    # 9 spine3
    [150, 80, 0],     # 10 left foot (toes)
    [0, 80, 150],     # 11 right foot (toes)
    [190, 255, 190],  # 12 neck
    [255, 120, 150],  # 13 left collar
    [150, 120, 255],  # 14 right collar
    [240, 240, 240],  # 15 head
    [220, 0, 120],    # 16 left shoulder (upper arm)
    [120, 0, 220],    # 17 right shoulder (upper arm)
    [255, 170, 100],  # 18 left elbow (forearm)
    [100, 170, 255],  # 19 right elbow (forearm)
    [200, 255, 100],  # 20 left wrist (hand)
    [100, 255, 200],  # 21 right wrist (hand)
    [170, 0, 40],     # 22 left hand (fingers)
    [40, 0, 170],     # 23 right hand (fingers)
], dtype=torch.uint8)
SEMANTIC_PALETTES = {SEMANTIC_PALETTE_ID: PART_PALETTE}
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
    def __init__(self, size, faces, labels_of_faces, cull_backfaces, device, vertex_labels=None, part_weights=None):
        self.size, self.cull_backfaces, self.device = size, cull_backfaces, device
        self.faces = faces.to(device)
        self.labels_of_faces = labels_of_faces.to(device)
        self.vertex_labels = None if vertex_labels is None else torch.as_tensor(vertex_labels).to(device)
        self.part_weights = None if part_weights is None else torch.as_tensor(part_weights).float().to(device)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def render(self, vertices, K, *, normals: bool = True, labels: bool = True):
        return render_surface_torch(vertices.to(self.device), self.faces, K.to(self.device), self.size,
                                    self.labels_of_faces, cull_backfaces=self.cull_backfaces, normals=normals,
                                    labels=labels, vertex_labels=self.vertex_labels, part_weights=self.part_weights)


def surface_renderer(backend: str, size, faces, labels_of_faces, *, cull_backfaces: bool = True,
                     device: torch.device | str = "cpu", vertex_labels=None, part_weights=None):
    """A context manager whose ``render(vertices (B,V,3), K (B,3,3), normals=, labels=)`` returns
    :class:`SurfaceBuffers` (normals/labels only when asked for). Labels are the visible face's
    (``labels_of_faces``), or per pixel from ``vertex_labels`` (and soft ``part_weights``) when given
    (:func:`.surface.pixel_part_labels`)."""
    backend = choose_backend(backend, torch.device(device))
    if backend == "pyrender":
        from .pyrender_backend import PyrenderSurfaceRenderer, unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"renderer 'pyrender' is {reason.removeprefix('pyrender ')}. Install the system "
                               "OpenGL libraries named there, or pick renderer 'torch'.")
        return PyrenderSurfaceRenderer(size, faces, labels_of_faces, cull_backfaces=cull_backfaces,
                                       vertex_labels=vertex_labels, part_weights=part_weights)
    return _TorchSurfaceRenderer(size, faces, labels_of_faces, cull_backfaces, torch.device(device), vertex_labels,
                                 part_weights)


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
                part_weights=None, maps=ALL_MAPS, backend: str = "auto", device: torch.device | str = "cpu", chunk_size: int = 16,
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
        part_weights (`torch.Tensor` of shape `(V, 24)`, *optional*): soft part weights per vertex (the body's
            summed skinning weights); the semantic map then interpolates them instead of one-hot labels.
        maps (`Iterable[str]`, *optional*): any of :data:`ALL_MAPS`.
        backend (`str`, *optional*, defaults to `"auto"`): ``auto``, ``torch`` or ``pyrender``.
        device (`torch.device`, *optional*, defaults to CPU): where the torch rasteriser runs.
        chunk_size (`int`, *optional*, defaults to 16): frames rendered at once; bounds device memory.
        depth_floor (`float`, *optional*, defaults to 0.1): depth value of the farthest surface.
        near_far (`tuple[float, float]`, *optional*): depth normalisation range; when None the clip's vertex
            range over all ``T`` frames (:func:`depth_range`, the "per-clip" convention).
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
    vertex_labels = None if vertex_labels is None else torch.as_tensor(vertex_labels, dtype=torch.int64).cpu()
    labels_of_faces = face_labels(faces, vertex_labels)
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
                          device=device, vertex_labels=vertex_labels,
                          part_weights=None if vertex_labels is None else part_weights) as renderer:
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
