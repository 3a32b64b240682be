"""What both renderers produce: per-pixel depth, camera-space normal and body-part label, plus mesh helpers.

The renderers differ in how they find the visible surface; everything after (colours, normalisation, the
skeleton's visibility test) works on these buffers, so the two backends give the same maps by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SurfaceBuffers:
    """The visible surface of a chunk of frames, one entry per covered pixel, on one device.

    Attributes:
        shape (`tuple[int, int, int]`): (B, H, W).
        pixel (`torch.LongTensor` of shape `(N,)`): covered pixels as flat indices into B·H·W.
        depth (`torch.FloatTensor` of shape `(N,)`): camera z in metres.
        normal (`torch.FloatTensor` of shape `(N, 3)`, *optional*): unit normals in the OpenCV camera frame
            (x right, y down, z forward); None when not requested.
        label (`torch.LongTensor` of shape `(N,)`, *optional*): body part 0..23 at the pixel (all 0 for unlabelled
            meshes): the visible face's label, or with per-vertex labels the part that wins the interpolation of
            the face corners' one-hot labels (:func:`pixel_part_labels`); None when not requested.
        face (`torch.LongTensor` of shape `(N,)`, *optional*): the visible face, when labels were requested.

    Only covered pixels are stored: the body fills a small part of a frame, so every later step (colours,
    copies to the CPU) touches those pixels only. The dense ``*_map`` views are for tests and lookups.
    """

    shape: tuple[int, int, int]
    pixel: torch.Tensor
    depth: torch.Tensor
    normal: torch.Tensor | None = None
    label: torch.Tensor | None = None
    face: torch.Tensor | None = None

    def _dense(self, values, fill, trailing=()):
        batch, height, width = self.shape
        out = torch.full((batch * height * width, *trailing), fill, dtype=values.dtype, device=values.device)
        out[self.pixel] = values
        return out.view(batch, height, width, *trailing)

    @property
    def depth_map(self) -> torch.Tensor:
        """`(B, H, W)` metres, 0 for background."""
        return self._dense(self.depth, 0.0)

    @property
    def normal_map(self) -> torch.Tensor:
        """`(B, H, W, 3)`, 0 for background."""
        return self._dense(self.normal, 0.0, (3,))

    @property
    def label_map(self) -> torch.Tensor:
        """`(B, H, W)`, -1 for background."""
        return self._dense(self.label, -1)

    @property
    def mask(self) -> torch.Tensor:
        return self.depth_map > 0


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals.

    Args:
        vertices (`torch.Tensor` of shape `(B, V, 3)`).
        faces (`torch.LongTensor` of shape `(F, 3)`), wound so that ``(v1 − v0) × (v2 − v0)`` points outward.

    Returns:
        `torch.Tensor` of shape `(B, V, 3)`; zero for vertices used by no face.
    """
    faces = faces.to(vertices.device)
    tri = vertices[:, faces]  # (B, F, 3, 3)
    # The cross product's length is twice the area, which gives the area weighting for free.
    face_normal = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    for corner in range(3):
        normals.index_add_(1, faces[:, corner], face_normal)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def face_labels(faces: torch.Tensor, vertex_labels: torch.Tensor | None) -> torch.Tensor:
    """One label per face: the majority label of its corners, corner 0's label when all three differ.

    Used by the skeleton's visibility test (a joint is seen when the face in front of it belongs to its own
    parts); the semantic map labels pixels with :func:`pixel_part_labels` instead, whose borders are straight.
    """
    faces = torch.as_tensor(faces, dtype=torch.int64)
    if vertex_labels is None:
        return torch.zeros(faces.shape[0], dtype=torch.int64, device=faces.device)
    vertex_labels = torch.as_tensor(vertex_labels, dtype=torch.int64, device=faces.device)
    a, b, c = vertex_labels[faces].unbind(-1)
    return torch.where((b == c) & (a != b), b, a)


def pixel_part_labels(faces: torch.Tensor, vertex_labels: torch.Tensor, face: torch.Tensor,
                      bary: torch.Tensor, part_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The body part at each pixel: the argmax over parts of the face corners' one-hot labels interpolated with
    the pixel's barycentrics (the part whose corners hold the largest barycentric weight).

    With ``part_weights`` (`(V, P)` per-vertex soft part weights, e.g. summed skinning weights) those are
    interpolated instead, among the corners' own parts: the border then follows the line where two parts'
    skinning weights are equal, which is smoother than the mesh's vertex labels (still straight within a
    triangle and continuous across triangles).

    Within a triangle whose corners carry two parts the border is the straight line where the lone corner's
    weight is 0.5, through the midpoints of its two edges; those lines join from triangle to triangle, so part
    borders are clean polylines instead of the sawtooth of one label per face. Ties (a pixel centre exactly on a
    border) go to the first corner holding a winning part.

    Args:
        faces (`(F, 3)`), vertex_labels (`(V,)` part per vertex), face (`(N,)` visible face per pixel),
        bary (`(N, 3)` barycentrics of the pixel in that face, summing to 1).
    """
    corners = faces[face]  # (N, 3)
    corner = vertex_labels[corners]  # (N, 3)
    if part_weights is None:
        same = corner[:, :, None] == corner[:, None, :]  # (N, 3, 3): corner j has corner i's part
        score = (same.to(bary.dtype) * bary[:, None, :]).sum(-1)  # (N, 3): weight of corner i's part
    else:
        weight = part_weights[corners[:, None, :], corner[:, :, None]].to(bary.dtype)  # (N, 3 parts, 3 corners)
        score = (weight * bary[:, None, :]).sum(-1)  # (N, 3): interpolated weight of corner i's part
    return corner.gather(1, score.argmax(-1, keepdim=True))[:, 0]


def ray_barycentrics(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, shape: tuple[int, int, int],
                     pixel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Barycentrics `(N, 3)` of where each pixel centre's viewing ray meets its face (perspective-correct by
    construction): ``b_i ∝ d·(v_j × v_k)`` with ``d = K⁻¹(u, v, 1)``. What the torch rasteriser computes from its
    edge functions, for renderers that only report the visible face (pyrender).

    Args:
        vertices (`(B, V, 3)`): OpenCV camera-space vertices; K (`(B, 3, 3)`); shape (`(B, H, W)`);
        pixel (`(N,)` flat indices into B·H·W); face (`(N,)`).
    """
    _, height, width = shape
    frame = torch.div(pixel, height * width, rounding_mode="floor")
    rest = pixel - frame * height * width
    row = torch.div(rest, width, rounding_mode="floor")
    col = rest - row * width
    dtype = torch.float64
    uv1 = torch.stack([col.to(dtype), row.to(dtype), torch.ones_like(col, dtype=dtype)], -1)
    K_inv = torch.linalg.inv(K.to(dtype))
    d = (K_inv[frame] @ uv1[..., None])[..., 0]  # (N, 3)
    tri = vertices.to(dtype)[frame[:, None], faces[face]]  # (N, 3 corners, 3)
    v0, v1, v2 = tri.unbind(1)
    w = torch.stack([(d * torch.cross(v1, v2, dim=-1)).sum(-1), (d * torch.cross(v2, v0, dim=-1)).sum(-1),
                     (d * torch.cross(v0, v1, dim=-1)).sum(-1)], -1)
    total = w.sum(-1, keepdim=True)
    total = torch.where(total.abs() > 1e-30, total, torch.ones_like(total))
    return (w / total).float()


def surface_from_fragments(fragments, vertices: torch.Tensor, faces: torch.Tensor,
                           labels_of_faces: torch.Tensor | None,
                           vertex_labels: torch.Tensor | None = None,
                           part_weights: torch.Tensor | None = None) -> SurfaceBuffers:
    """Surface buffers from rasteriser fragments: interpolated vertex normals, labels.

    Args:
        fragments ([`~torch_raster.Fragments`]): covered pixels with face and barycentrics.
        vertices (`(B, V, 3)`): the rasterised vertices; normals are computed when given (None skips them).
        faces (`(F, 3)`), labels_of_faces (`(F,)` or None to skip labels).
        vertex_labels (`(V,)`, *optional*): per-pixel labels by :func:`pixel_part_labels` instead of the face's.
        part_weights (`(V, P)`, *optional*): soft part weights for :func:`pixel_part_labels`.
    """
    normal = label = face = None
    if vertices is not None:
        normals = vertex_normals(vertices, faces)
        frame = torch.div(fragments.pixel, fragments.shape[1] * fragments.shape[2], rounding_mode="floor")
        corners = faces[fragments.face]  # (N, 3)
        corner_normals = normals[frame[:, None], corners]  # (N, 3, 3)
        n = (corner_normals * fragments.bary[..., None]).sum(1)
        normal = torch.nn.functional.normalize(n, dim=-1, eps=1e-12)
    if labels_of_faces is not None:
        face = fragments.face
        if vertex_labels is None:
            label = labels_of_faces[face]
        else:
            label = pixel_part_labels(faces, vertex_labels, face, fragments.bary, part_weights)
    return SurfaceBuffers(shape=fragments.shape, pixel=fragments.pixel, depth=fragments.depth, normal=normal,
                          label=label, face=face)


def render_surface_torch(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int],
                         labels_of_faces: torch.Tensor, *, cull_backfaces: bool = True, normals: bool = True,
                         labels: bool = True, vertex_labels: torch.Tensor | None = None,
                         part_weights: torch.Tensor | None = None) -> SurfaceBuffers:
    """Surface buffers of a chunk with the torch rasteriser, on ``vertices.device``."""
    from .torch_raster import rasterize

    vertices = vertices.float()
    faces = faces.to(vertices.device)
    fragments = rasterize(vertices, faces, K, size, cull_backfaces=cull_backfaces)
    return surface_from_fragments(fragments, vertices if normals else None, faces,
                                  labels_of_faces.to(vertices.device) if labels else None,
                                  None if vertex_labels is None or not labels else vertex_labels.to(vertices.device),
                                  None if part_weights is None or not labels else part_weights.to(vertices.device))
