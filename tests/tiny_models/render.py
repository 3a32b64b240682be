"""Procedural closed meshes with known geometry for the renderer tests (pytest-free builders).

All meshes are wound outward (``(v1 − v0) × (v2 − v0)`` points out of the solid) and returned as float32
vertices (V, 3) and int64 faces (F, 3) torch tensors, in the OpenCV camera frame (z forward, y down).
"""
from __future__ import annotations

import math

import torch


def uv_sphere(radius: float = 1.0, centre=(0.0, 0.0, 3.0), rings: int = 48, segments: int = 96):
    """A closed UV sphere."""
    verts = [[0.0, -radius, 0.0]]
    for i in range(1, rings):
        theta = math.pi * i / rings
        for j in range(segments):
            phi = 2 * math.pi * j / segments
            verts.append([radius * math.sin(theta) * math.cos(phi), -radius * math.cos(theta),
                          radius * math.sin(theta) * math.sin(phi)])
    verts.append([0.0, radius, 0.0])
    faces = []
    last = len(verts) - 1

    def ring(i, j):
        return 1 + (i - 1) * segments + (j % segments)

    for j in range(segments):
        faces.append([0, ring(1, j), ring(1, j + 1)])
        faces.append([last, ring(rings - 1, j + 1), ring(rings - 1, j)])
    for i in range(1, rings - 1):
        for j in range(segments):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [[a, c, b], [b, c, d]]
    v = torch.tensor(verts, dtype=torch.float32)
    f = torch.tensor(faces, dtype=torch.int64)
    return v + torch.tensor(centre, dtype=torch.float32), orient_outward_faces(v, f)


def box(size=(1.0, 1.0, 1.0), centre=(0.0, 0.0, 3.0), divisions: int = 8):
    """A closed axis-aligned box whose faces are subdivided into ``divisions``² quads (shared vertices)."""
    sx, sy, sz = (s / 2 for s in size)
    index: dict[tuple, int] = {}
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    n = divisions

    def vertex(p):
        key = tuple(round(c, 9) for c in p)
        if key not in index:
            index[key] = len(verts)
            verts.append(list(p))
        return index[key]

    half = (sx, sy, sz)

    def point(axis, sign, a1, a2, ii, jj):
        p = [0.0, 0.0, 0.0]
        p[axis] = sign * half[axis]
        p[a1] = -half[a1] + 2 * half[a1] * ii / n
        p[a2] = -half[a2] + 2 * half[a2] * jj / n
        return p

    # each side: a fixed axis and sign, subdivided along the two other axes
    for axis in range(3):
        for sign in (-1.0, 1.0):
            a1, a2 = [k for k in range(3) if k != axis]
            for i in range(n):
                for j in range(n):
                    q = [vertex(point(axis, sign, a1, a2, i + di, j + dj)) for di, dj in ((0, 0), (1, 0), (1, 1),
                                                                                        (0, 1))]
                    faces += [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]
    v = torch.tensor(verts, dtype=torch.float32)
    f = orient_outward_faces(v, torch.tensor(faces, dtype=torch.int64))
    return v + torch.tensor(centre, dtype=torch.float32), f


def plane(width: float = 1.0, height: float = 1.0, z: float = 3.0, divisions: int = 4, facing_camera: bool = True):
    """A flat rectangle at depth ``z`` (an open mesh), wound to face the camera (normal −z) or away from it."""
    verts, faces = [], []
    for j in range(divisions + 1):
        for i in range(divisions + 1):
            verts.append([-width / 2 + width * i / divisions, -height / 2 + height * j / divisions, z])
    for j in range(divisions):
        for i in range(divisions):
            a = j * (divisions + 1) + i
            b, c, d = a + 1, a + divisions + 1, a + divisions + 2
            faces += [[a, b, d], [a, d, c]]
    v = torch.tensor(verts, dtype=torch.float32)
    f = torch.tensor(faces, dtype=torch.int64)
    n = torch.cross(v[f[0, 1]] - v[f[0, 0]], v[f[0, 2]] - v[f[0, 0]], dim=0)
    if (n[2] < 0) != facing_camera:
        f = f[:, [0, 2, 1]]
    return v, f


def signed_volume(vertices: torch.Tensor, faces: torch.Tensor) -> float:
    tri = vertices[faces].double()
    return float((tri[:, 0] * torch.cross(tri[:, 1], tri[:, 2], dim=-1)).sum() / 6.0)


def orient_outward_faces(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Faces of a convex mesh around the origin, each flipped if needed so its normal points away from it."""
    tri = vertices[faces]
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    inward = (normal * tri.mean(1)).sum(-1) < 0
    return torch.where(inward[:, None], faces[:, [0, 2, 1]], faces)


def intrinsics(width: int, height: int, focal: float) -> torch.Tensor:
    """Pinhole K with the principal point at the image centre ((W−1)/2, (H−1)/2 in OpenCV pixel centres)."""
    return torch.tensor([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def merge(*meshes):
    """Concatenate (vertices, faces) pairs into one mesh."""
    verts, faces, offset = [], [], 0
    for v, f in meshes:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return torch.cat(verts), torch.cat(faces)
