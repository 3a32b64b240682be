"""A z-buffer triangle rasteriser in plain torch: any device, any thread, batched over frames, no system libraries.

Conventions (shared with the pyrender backend):

- Vertices are in the OpenCV camera frame: x right, y down, z forward, metres; the camera sits at the origin.
- Pixel ``(row j, column i)`` is sampled at its centre, which is image point ``(u, v) = (i, j)`` of the pinhole
  ``u = fx·x/z + cx``, ``v = fy·y/z + cy`` (OpenCV's convention: integer coordinates are pixel centres).
- A face is front-facing when its normal ``(v1 − v0) × (v2 − v0)`` points towards the camera. SMPL's faces are
  wound that way (outward normals); back faces are culled by default, as OpenGL does.

How it works, per chunk of frames:

1. Project every face; drop faces behind the near plane, degenerate ones and (optionally) back faces.
2. Enumerate the (face, pixel) pairs inside each face's pixel bounding box (``repeat_interleave``).
3. Edge functions give the screen-space barycentrics of each pair; ``1/z`` is affine in screen space, so the
   depth of a pair is one more affine evaluation.
4. A single ``scatter_reduce('amin')`` over an int64 key ``(float bits of z) << 32 | face`` is the z-buffer and
   picks the winning face in the same pass (ties go to the lower face index, so results are deterministic).
5. Only at the winning pixels: perspective-correct barycentrics ``b_i ∝ l_i / z_i``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Pairs of (face, pixel) processed at once; bounds the temporary memory to ~100 bytes per pair.
DEFAULT_MAX_PAIRS = 4_000_000
_EMPTY_KEY = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """What is visible at each pixel.

    Attributes:
        face_index (`torch.LongTensor` of shape `(B, H, W)`): winning face, -1 for background.
        depth (`torch.FloatTensor` of shape `(B, H, W)`): camera z of the surface in metres, 0 for background.
        bary (`torch.FloatTensor` of shape `(B, H, W, 3)`): perspective-correct barycentrics of the winning face,
            0 for background.
    """

    face_index: torch.Tensor
    depth: torch.Tensor
    bary: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.face_index >= 0


def _as_batched_intrinsics(K: torch.Tensor, batch: int, device, dtype) -> torch.Tensor:
    K = torch.as_tensor(K, device=device, dtype=dtype)
    if K.ndim == 2:
        K = K.expand(batch, 3, 3)
    if K.shape != (batch, 3, 3):
        raise ValueError(f"K must be [3,3] or [{batch},3,3], got {tuple(K.shape)}.")
    return K


def face_setup(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int], *,
               cull_backfaces: bool = True, znear: float = 1e-3):
    """Per-face screen-space coefficients.

    Args:
        vertices (`torch.Tensor` of shape `(B, V, 3)`): camera-space vertices.
        faces (`torch.LongTensor` of shape `(F, 3)`).
        K (`torch.Tensor` of shape `(B, 3, 3)`).
        size (`tuple[int, int]`): (width, height).

    Returns:
        coeffs (`(B, F, 9)`): ``u2, v2, A0, B0, A1, B1, 1/z2, 1/z0 − 1/z2, 1/z1 − 1/z2`` so that, with
        ``du = u − u2, dv = v − v2``: ``l0 = A0·du + B0·dv``, ``l1 = A1·du + B1·dv``, ``l2 = 1 − l0 − l1`` and
        ``1/z = 1/z2 + l0·(1/z0 − 1/z2) + l1·(1/z1 − 1/z2)``.
        bbox (`(B, F, 4)` int64): ``x0, x1, y0, y1`` inclusive pixel bounds, clipped to the image.
        keep (`(B, F)` bool): faces that can cover a pixel.
    """
    width, height = size
    tri = vertices[:, faces]  # (B, F, 3 corners, 3 xyz)
    x, y, z = tri.unbind(-1)
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    keep = (z > znear).all(-1)
    z_safe = torch.where(z > znear, z, torch.ones_like(z))
    u = fx * x / z_safe + cx  # (B, F, 3)
    v = fy * y / z_safe + cy

    if cull_backfaces:
        normal = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
        keep &= (normal * tri[:, :, 0]).sum(-1) < 0

    u0, u1, u2 = u.unbind(-1)
    v0, v1, v2 = v.unbind(-1)
    # l0 is the edge function of edge (1→2) and l1 of edge (2→0), both normalised to 1 at their opposite corner;
    # with the origin at corner 2, which lies on both edges, they are linear (no constant term).
    area = (u1 - u2) * (v0 - v2) - (v1 - v2) * (u0 - u2)
    keep &= area.abs() > 1e-12
    inv_area = 1.0 / torch.where(keep, area, torch.ones_like(area))
    a0, b0 = -(v1 - v2) * inv_area, (u1 - u2) * inv_area
    a1, b1 = (v0 - v2) * inv_area, -(u0 - u2) * inv_area
    iz = 1.0 / z_safe
    coeffs = torch.stack([u2, v2, a0, b0, a1, b1, iz[..., 2], iz[..., 0] - iz[..., 2], iz[..., 1] - iz[..., 2]], -1)

    x0 = torch.ceil(u.amin(-1)).clamp(min=0)
    x1 = torch.floor(u.amax(-1)).clamp(max=width - 1)
    y0 = torch.ceil(v.amin(-1)).clamp(min=0)
    y1 = torch.floor(v.amax(-1)).clamp(max=height - 1)
    keep &= (x1 >= x0) & (y1 >= y0)
    # Faces reaching far outside the image are clipped above; non-finite bounds only come from dropped faces.
    bbox = torch.stack([x0, x1, y0, y1], -1).nan_to_num(0.0, 0.0, 0.0).to(torch.int64)
    return coeffs, bbox, keep


def _barycentrics(coeffs: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    """Screen barycentrics ``(l0, l1, l2)`` and ``1/z`` of points ``(px, py)`` for faces with ``coeffs`` (N, 9)."""
    du = px - coeffs[:, 0]
    dv = py - coeffs[:, 1]
    l0 = coeffs[:, 2] * du + coeffs[:, 3] * dv
    l1 = coeffs[:, 4] * du + coeffs[:, 5] * dv
    l2 = 1.0 - l0 - l1
    inv_z = coeffs[:, 6] + l0 * coeffs[:, 7] + l1 * coeffs[:, 8]
    return l0, l1, l2, inv_z


def rasterize(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int], *,
              cull_backfaces: bool = True, znear: float = 1e-3, max_pairs: int = DEFAULT_MAX_PAIRS) -> Fragments:
    """Rasterise a batch of meshes that share their faces.

    Args:
        vertices (`torch.Tensor` of shape `(B, V, 3)`): OpenCV camera-space vertices, metres. The device of this
            tensor is the device the work runs on.
        faces (`torch.LongTensor` of shape `(F, 3)`): triangle corner indices.
        K (`torch.Tensor` of shape `(3, 3)` or `(B, 3, 3)`): pinhole intrinsics, OpenCV pixel convention.
        size (`tuple[int, int]`): output (width, height).
        cull_backfaces (`bool`, *optional*, defaults to `True`): drop faces whose normal points away from the camera.
        znear (`float`, *optional*, defaults to 1e-3): faces with a corner closer than this are dropped.
        max_pairs (`int`, *optional*): (face, pixel) candidates evaluated at once; lower it to save memory.

    Returns:
        [`Fragments`] with `(B, H, W)` face index, depth and `(B, H, W, 3)` barycentrics.
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be [B,V,3], got {tuple(vertices.shape)}.")
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive (width, height), got {size}.")
    device = vertices.device
    vertices = vertices.float()
    faces = torch.as_tensor(faces, device=device, dtype=torch.int64)
    batch, num_faces = vertices.shape[0], faces.shape[0]
    K = _as_batched_intrinsics(K, batch, device, torch.float32)
    plane = height * width

    coeffs, bbox, keep = face_setup(vertices, faces, K, (width, height), cull_backfaces=cull_backfaces, znear=znear)
    coeffs = coeffs.reshape(-1, 9)
    bbox = bbox.reshape(-1, 4)
    candidates = keep.reshape(-1).nonzero().squeeze(1)  # flat (frame·F + face) ids
    box_w = bbox[candidates, 1] - bbox[candidates, 0] + 1
    box_h = bbox[candidates, 3] - bbox[candidates, 2] + 1
    counts = box_w * box_h

    keys = torch.full((batch * plane,), _EMPTY_KEY, dtype=torch.int64, device=device)
    # Split the candidate faces into groups of at most max_pairs pixel tests (one huge face is its own group).
    ends = torch.cumsum(counts, 0)
    start = 0
    done_pairs = 0
    while start < len(candidates):
        stop = int(torch.searchsorted(ends, done_pairs + max_pairs, right=True))
        stop = max(stop, start + 1)
        group = slice(start, stop)
        flat = candidates[group]
        n_pairs = counts[group]
        pair_face = torch.repeat_interleave(torch.arange(len(flat), device=device), n_pairs)
        offsets = torch.cumsum(n_pairs, 0) - n_pairs
        local = torch.arange(int(n_pairs.sum()), device=device) - offsets[pair_face]
        bw = box_w[group][pair_face]
        px = bbox[flat, 0][pair_face] + local % bw
        py = bbox[flat, 2][pair_face] + torch.div(local, bw, rounding_mode="floor")
        c = coeffs[flat][pair_face]
        l0, l1, l2, inv_z = _barycentrics(c, px.float(), py.float())
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (inv_z > 0)
        face_flat = flat[pair_face][inside]
        frame = torch.div(face_flat, num_faces, rounding_mode="floor")
        face = face_flat - frame * num_faces
        depth = 1.0 / inv_z[inside]
        # Positive float32 bits sort like the floats, so (bits << 32 | face) sorts by depth, then face.
        key = (depth.view(torch.int32).to(torch.int64) << 32) | face
        pixel = frame * plane + py[inside] * width + px[inside]
        keys.scatter_reduce_(0, pixel, key, reduce="amin", include_self=True)
        done_pairs = int(ends[stop - 1])
        start = stop

    covered = keys != _EMPTY_KEY
    face_index = torch.full((batch * plane,), -1, dtype=torch.int64, device=device)
    depth_out = torch.zeros(batch * plane, dtype=torch.float32, device=device)
    bary_out = torch.zeros(batch * plane, 3, dtype=torch.float32, device=device)
    pixel = covered.nonzero().squeeze(1)
    if len(pixel):
        face = keys[pixel] & 0xFFFFFFFF
        frame = torch.div(pixel, plane, rounding_mode="floor")
        rem = pixel - frame * plane
        py = torch.div(rem, width, rounding_mode="floor")
        px = rem - py * width
        c = coeffs[frame * num_faces + face]
        l0, l1, l2, inv_z = _barycentrics(c, px.float(), py.float())
        iz2 = c[:, 6]
        weighted = torch.stack([l0 * (iz2 + c[:, 7]), l1 * (iz2 + c[:, 8]), l2 * iz2], -1)
        bary_out[pixel] = weighted / inv_z[:, None]
        depth_out[pixel] = 1.0 / inv_z
        face_index[pixel] = face
    return Fragments(
        face_index=face_index.view(batch, height, width),
        depth=depth_out.view(batch, height, width),
        bary=bary_out.view(batch, height, width, 3),
    )
