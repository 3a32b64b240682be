"""pyrender (OpenGL) backend producing the same surface buffers as the torch rasteriser.

Only imported when this backend is asked for: it imports OpenGL, and which OpenGL platform PyOpenGL binds is
fixed for the whole process by ``PYOPENGL_PLATFORM`` at its first import. We therefore choose it lazily, before
that first import, and never override a value the user (or another node) already set:

- EGL when a GPU driver is present (``/dev/nvidia*`` or a DRI render node) and libEGL loads;
- OSMesa (software, needs PyOpenGL ≥ 3.1.5) otherwise; EGL on Mesa's llvmpipe as a last resort.

ComfyUI runs nodes in a worker thread and EGL contexts are bound to the thread that made them, so a renderer is
created, used and deleted inside one :class:`PyrenderSurfaceRenderer` ``with`` block, never cached.

Two passes per frame, both with ``RenderFlags.FLAT`` (vertex colours written unlit, no sRGB):
1. the shared-vertex mesh coloured with its normals (``n·0.5 + 0.5``, OpenGL camera axes) → normals + depth;
2. the unshared mesh coloured per face with its index + 1 in 24-bit RGB → the visible face per pixel; labels
   follow from it as in the torch rasteriser (the face's label, or per pixel from the barycentrics of the pixel
   centre's ray in that face, :func:`.surface.ray_barycentrics`).

Where the platform has framebuffer objects (EGL) pyrender draws into a 4× multisampled framebuffer and resolves
it: edge pixels then get covered by samples off the pixel centre (silhouette IoU ~0.99 against the rasteriser)
and blended colours. :func:`_offscreen_renderer` gives that framebuffer a single sample, so EGL and OSMesa (which
draws into its own single-sample buffer) both sample exactly at pixel centres, like the torch rasteriser.
"""
from __future__ import annotations

import ctypes.util
import glob
import logging
import os
import sys

import numpy as np
import torch

from .surface import SurfaceBuffers, pixel_part_labels, ray_barycentrics, vertex_normals

logger = logging.getLogger(__name__)

_MAX_FACES = 2 ** 24 - 1  # face index + 1 coded in 24-bit RGB
_probe_result: str | None = None
_probed = False


# The system packages (Debian/Ubuntu names) each headless platform needs; on NVIDIA machines the driver ships
# its own libEGL vendor library, so libegl1 (the dispatcher) is all EGL needs there.
INSTALL_LINES = {
    "egl": "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri",
    "osmesa": "apt-get install libosmesa6",
}


def install_hint(platform: str | None = None) -> str:
    """What to install for ``platform`` (``egl``/``osmesa``; None: either), as a sentence."""
    if platform in INSTALL_LINES:
        return f"install it with `{INSTALL_LINES[platform]}`"
    return f"install `{INSTALL_LINES['osmesa']}` (CPU) or `{INSTALL_LINES['egl']}` (GPU/EGL)"


def _gpu_driver_present() -> bool:
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/dri/renderD*"))


def choose_platform() -> str | None:
    """The OpenGL platform PyOpenGL will use: the user's ``PYOPENGL_PLATFORM`` if set, else our choice (also
    written to the environment, since PyOpenGL reads it there). None when no headless platform can load."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current:
        return current
    if "OpenGL" in sys.modules:
        # Someone imported PyOpenGL already without a platform: it bound its default (GLX on Linux), which
        # we cannot change any more; pyrender will fail clearly if that has no display.
        return None
    has_egl = ctypes.util.find_library("EGL") is not None
    has_osmesa = ctypes.util.find_library("OSMesa") is not None
    if has_egl and _gpu_driver_present():
        choice = "egl"
    elif has_osmesa:
        choice = "osmesa"
    elif has_egl:
        choice = "egl"
    else:
        return None
    os.environ["PYOPENGL_PLATFORM"] = choice
    logger.info("[MotionGuide] pyrender will use PYOPENGL_PLATFORM=%s", choice)
    return choice


def _import_pyrender():
    platform = choose_platform()
    if platform is None and "PYOPENGL_PLATFORM" not in os.environ:
        raise RuntimeError(
            f"no headless OpenGL library found ({install_hint()}), or PyOpenGL was imported before "
            "PYOPENGL_PLATFORM could be set")
    # pyrender 0.1.45 still uses np.infty, removed in numpy 2; restore the alias only when it is missing.
    if not hasattr(np, "infty"):
        np.infty = np.inf
    from ..smpl.body.quiet import quiet_logger

    with quiet_logger("OpenGL.acceleratesupport"):  # "No OpenGL_accelerate module loaded": optional, not news
        import pyrender

    return pyrender


_single_sample_classes = None


def _offscreen_renderer(pyrender, width: int, height: int):
    """A ``pyrender.OffscreenRenderer`` whose offscreen framebuffer has one sample per pixel (no MSAA).

    Subclasses only this instance's renderer: pyrender itself and other users of it are left untouched.
    """
    global _single_sample_classes
    if _single_sample_classes is None:
        from OpenGL import GL
        from pyrender.renderer import Renderer

        class SingleSampleRenderer(Renderer):
            def _configure_main_framebuffer(self):
                fresh = self._main_fb is None or self._main_fb_dims != (self.viewport_width, self.viewport_height)
                super()._configure_main_framebuffer()
                if fresh:
                    # Re-specify the "multisample" buffers with 0 samples: rasterisation then samples pixel
                    # centres only and the resolve blit becomes a plain copy.
                    for buffer, fmt in ((self._main_cb_ms, GL.GL_RGBA), (self._main_db_ms, GL.GL_DEPTH_COMPONENT24)):
                        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
                        GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, 0, fmt, self.viewport_width,
                                                            self.viewport_height)

        class SingleSampleOffscreenRenderer(pyrender.OffscreenRenderer):
            def _create(self):
                super()._create()
                self._renderer = SingleSampleRenderer(self.viewport_width, self.viewport_height)

        _single_sample_classes = SingleSampleOffscreenRenderer
    return _single_sample_classes(width, height)


def unavailable_reason() -> str | None:
    """None when pyrender can render here, else a sentence saying why not (probed once per process)."""
    global _probe_result, _probed
    if _probed:
        return _probe_result
    try:
        pyrender = _import_pyrender()
        renderer = _offscreen_renderer(pyrender, 8, 8)
        renderer.delete()
        _probe_result = None
    except ModuleNotFoundError as exc:
        if exc.name not in ("pyrender", "OpenGL"):
            raise
        _probe_result = (f"pyrender unavailable: {exc} (scripts/setup_env.sh installs it; by hand: "
                         "pip install --no-deps pyrender==0.1.45)")
    except Exception as exc:  # noqa: BLE001 - any failure of a system library means "not available"
        platform = os.environ.get("PYOPENGL_PLATFORM")
        hint = "" if "apt-get" in str(exc) else f" (PYOPENGL_PLATFORM={platform}: {install_hint(platform)})"
        _probe_result = f"pyrender unavailable: {type(exc).__name__}: {exc}{hint}"
    _probed = True
    return _probe_result


def is_available() -> bool:
    return unavailable_reason() is None


class PyrenderSurfaceRenderer:
    """Renders surface buffers with pyrender; use as a context manager inside the calling thread.

    Args:
        size (`tuple[int, int]`): (width, height).
        faces (`torch.LongTensor` of shape `(F, 3)`).
        labels_of_faces (`torch.LongTensor` of shape `(F,)`): part per face.
        cull_backfaces (`bool`, *optional*, defaults to `True`): as in the torch rasteriser.
        vertex_labels (`torch.LongTensor` of shape `(V,)`, *optional*): label pixels per pixel
            (:func:`.surface.pixel_part_labels`) instead of per face; ``part_weights`` (`(V, P)`) are its soft weights.
    """

    def __init__(self, size: tuple[int, int], faces: torch.Tensor, labels_of_faces: torch.Tensor, *,
                 cull_backfaces: bool = True, vertex_labels: torch.Tensor | None = None,
                 part_weights: torch.Tensor | None = None):
        self.width, self.height = int(size[0]), int(size[1])
        self.faces = torch.as_tensor(faces, dtype=torch.int64).cpu()
        self._faces_np = self.faces.numpy().astype(np.uint32)
        if len(self.faces) > _MAX_FACES:
            raise ValueError(f"pyrender backend codes at most {_MAX_FACES} faces, got {len(self.faces)}.")
        self.labels_of_faces = torch.as_tensor(labels_of_faces, dtype=torch.int64).cpu()
        self.vertex_labels = None if vertex_labels is None else torch.as_tensor(vertex_labels, dtype=torch.int64).cpu()
        self.part_weights = None if part_weights is None else torch.as_tensor(part_weights, dtype=torch.float32).cpu()
        index = np.arange(1, len(self.faces) + 1, dtype=np.int64)
        codes = np.ones((len(index), 4), dtype=np.float32)
        for channel, shift in enumerate((16, 8, 0)):
            codes[:, channel] = ((index >> shift) & 255) / 255.0
        self._face_codes = np.repeat(codes, 3, axis=0)  # one colour per unshared corner
        self.cull_backfaces = cull_backfaces
        self._renderer = None

    def __enter__(self):
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        import pyrender

        self._pyrender = pyrender
        self._renderer = _offscreen_renderer(pyrender, self.width, self.height)
        self._flags = pyrender.RenderFlags.FLAT
        if not self.cull_backfaces:
            self._flags |= pyrender.RenderFlags.SKIP_CULL_FACES
        return self

    def __exit__(self, *exc_info):
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None

    def _render(self, positions, colours, indices, camera):
        pyrender = self._pyrender
        primitive = pyrender.Primitive(positions=positions, color_0=colours, indices=indices, mode=4)
        scene = pyrender.Scene(bg_color=np.zeros(4), ambient_light=np.zeros(3))
        scene.add(pyrender.Mesh([primitive]))
        scene.add(camera, pose=np.eye(4))
        return self._renderer.render(scene, flags=self._flags)

    def render(self, vertices: torch.Tensor, K: torch.Tensor, *, normals: bool = True,
               labels: bool = True) -> SurfaceBuffers:
        """Surface buffers (on CPU) of a chunk: vertices `(B, V, 3)` OpenCV camera space, K `(B, 3, 3)`."""
        if self._renderer is None:
            raise RuntimeError("PyrenderSurfaceRenderer.render called outside its `with` block.")
        pyrender = self._pyrender
        vertices = vertices.detach().float().cpu()
        batch = vertices.shape[0]
        K = torch.as_tensor(K, dtype=torch.float32).cpu().expand(batch, 3, 3)
        # OpenCV → OpenGL camera is the rotation diag(1, -1, -1): a mirror (y only) would flip the winding.
        flip = torch.tensor([1.0, -1.0, -1.0])
        gl_vertices = (vertices * flip).numpy()
        if normals:
            gl_colours = (vertex_normals(vertices, self.faces) * flip * 0.5 + 0.5).numpy()
            alpha = np.ones((batch, gl_colours.shape[1], 1), np.float32)
            gl_colours = np.concatenate([gl_colours, alpha], -1)
        else:
            gl_colours = np.ones((batch, vertices.shape[1], 4), np.float32)
        z = vertices[..., 2]
        in_front = z[z > 1e-3]
        znear = float(in_front.min()) * 0.5 if len(in_front) else 0.05
        zfar = float(in_front.max()) * 2.0 + 1.0 if len(in_front) else 100.0

        plane = self.height * self.width
        pixels, depths, normal_values, face_values = [], [], [], []
        for b in range(batch):
            fx, fy, cx, cy = (float(K[b, 0, 0]), float(K[b, 1, 1]), float(K[b, 0, 2]), float(K[b, 1, 2]))
            # OpenGL samples pixel i at i + 0.5; OpenCV puts pixel centres on integers.
            camera = pyrender.IntrinsicsCamera(fx, fy, cx + 0.5, cy + 0.5, znear=znear, zfar=zfar)
            colour, depth = self._render(gl_vertices[b], gl_colours[b], self._faces_np, camera)
            covered = np.flatnonzero(depth.reshape(-1) > 0)
            pixels.append(covered + b * plane)
            depths.append(depth.reshape(-1)[covered])
            if normals:
                normal_values.append(colour.reshape(-1, 3)[covered])
            if labels:
                unshared = gl_vertices[b][self._faces_np].reshape(-1, 3)
                rgb = self._render(unshared, self._face_codes, None, camera)[0].reshape(-1, 3)[covered].astype(np.int64)
                face_values.append((rgb[:, 0] << 16) + (rgb[:, 1] << 8) + rgb[:, 2] - 1)

        pixel = torch.from_numpy(np.concatenate(pixels)).long()
        normal = label = face = None
        if normals:
            n_gl = torch.from_numpy(np.concatenate(normal_values)).float() / 255.0 * 2.0 - 1.0
            normal = torch.nn.functional.normalize(n_gl * flip, dim=-1, eps=1e-12)
        shape = (batch, self.height, self.width)
        if labels:
            face = torch.from_numpy(np.concatenate(face_values)).clamp(0, len(self.faces) - 1)
            if self.vertex_labels is None:
                label = self.labels_of_faces[face]
            else:
                bary = ray_barycentrics(vertices, self.faces, K, shape, pixel, face)
                label = pixel_part_labels(self.faces, self.vertex_labels, face, bary, self.part_weights)
        return SurfaceBuffers(shape=shape, pixel=pixel, depth=torch.from_numpy(np.concatenate(depths)),
                              normal=normal, label=label, face=face)
