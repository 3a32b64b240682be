"""What both renderers produce: per-pixel depth, camera-space normal and body-part label, plus mesh helpers.

The renderers differ in how they find the visible surface; everything after (colours, normalisation, the
skeleton's visibility test) works on these buffers, so the two backends give the same maps by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SurfaceBuffers:
    """The visible surface of a chunk of frames, on one device.

    Attributes:
        depth (`torch.FloatTensor` of shape `(B, H, W)`): camera z in metres, 0 for background.
        normal (`torch.FloatTensor` of shape `(B, H, W, 3)`): unit normals in the OpenCV camera frame
            (x right, y down, z forward), 0 for background.
        label (`torch.LongTensor` of shape `(B, H, W)`): body part 0..23 of the visible face, -1 for background
            (all 0 when the mesh has no labels).
    """

    depth: torch.Tensor
    normal: torch.Tensor
    label: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.depth > 0


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

    Labelling faces rather than interpolating vertex colours is what keeps part borders sharp: every pixel gets
    exactly one palette colour.
    """
    faces = torch.as_tensor(faces, dtype=torch.int64)
    if vertex_labels is None:
        return torch.zeros(faces.shape[0], dtype=torch.int64, device=faces.device)
    vertex_labels = torch.as_tensor(vertex_labels, dtype=torch.int64, device=faces.device)
    a, b, c = vertex_labels[faces].unbind(-1)
    return torch.where((b == c) & (a != b), b, a)


def interpolate_surface(face_index: torch.Tensor, bary: torch.Tensor, depth: torch.Tensor,
                        normals: torch.Tensor, faces: torch.Tensor, labels_of_faces: torch.Tensor) -> SurfaceBuffers:
    """Surface buffers from rasteriser fragments.

    Args:
        face_index (`(B, H, W)` int64, -1 background), bary (`(B, H, W, 3)`), depth (`(B, H, W)`).
        normals (`(B, V, 3)`): vertex normals of the same frames.
        faces (`(F, 3)`), labels_of_faces (`(F,)`).
    """
    batch, height, width = face_index.shape
    device = face_index.device
    normal_out = torch.zeros(batch, height, width, 3, dtype=torch.float32, device=device)
    label_out = torch.full((batch, height, width), -1, dtype=torch.int64, device=device)
    frame, row, col = (face_index >= 0).nonzero(as_tuple=True)
    if len(frame):
        face = face_index[frame, row, col]
        corners = faces.to(device)[face]  # (N, 3)
        corner_normals = normals[frame[:, None], corners]  # (N, 3, 3)
        n = (corner_normals * bary[frame, row, col][..., None]).sum(1)
        normal_out[frame, row, col] = torch.nn.functional.normalize(n, dim=-1, eps=1e-12)
        label_out[frame, row, col] = labels_of_faces.to(device)[face]
    return SurfaceBuffers(depth=depth, normal=normal_out, label=label_out)


def render_surface_torch(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int],
                         labels_of_faces: torch.Tensor, *, cull_backfaces: bool = True) -> SurfaceBuffers:
    """Surface buffers of a chunk with the torch rasteriser, on ``vertices.device``."""
    from .torch_raster import rasterize

    faces = faces.to(vertices.device)
    fragments = rasterize(vertices, faces, K, size, cull_backfaces=cull_backfaces)
    normals = vertex_normals(vertices.float(), faces)
    return interpolate_surface(fragments.face_index, fragments.bary, fragments.depth, normals, faces,
                               labels_of_faces)
