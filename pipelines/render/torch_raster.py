"""A z-buffer triangle rasteriser in plain torch: any device, any thread, batched over frames, no system libraries.

Conventions (shared with the pyrender backend):

- Vertices are in the OpenCV camera frame: x right, y down, z forward, metres; the camera sits at the origin.
- Pixel ``(row j, column i)`` is sampled at its centre, which is image point ``(u, v) = (i, j)`` of the pinhole
  ``u = fx·x/z + cx``, ``v = fy·y/z + cy`` (OpenCV's convention: integer coordinates are pixel centres).
- A face is front-facing when its normal ``(v1 − v0) × (v2 − v0)`` points towards the camera. SMPL's faces are
  wound that way (outward normals); back faces are culled by default, as OpenGL does.

How it works, per chunk of frames:

1. Project every face; drop faces behind the near plane, degenerate ones and (optionally) back faces.
2. Enumerate the (face, pixel) pairs of each face: per row of its pixel bounding box, the span of columns where
   its barycentrics can be non-negative (``repeat_interleave`` twice: rows, then pixels).
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
_SPAN_SLACK = 1e-3  # pixels added to each end of a row span before the exact test
_FLAT_SLOPE = 1e-7  # barycentric change per pixel below which a row is treated as parallel to the edge


@dataclass
class Fragments:
    """What is visible, stored sparsely: one entry per covered pixel.

    Attributes:
        shape (`tuple[int, int, int]`): (B, H, W) of the rendered chunk.
        pixel (`torch.LongTensor` of shape `(N,)`): covered pixels as flat indices into B·H·W, ascending.
        face (`torch.LongTensor` of shape `(N,)`): the winning face at each of them.
        depth (`torch.FloatTensor` of shape `(N,)`): camera z of the surface in metres.
        bary (`torch.FloatTensor` of shape `(N, 3)`): perspective-correct barycentrics in the winning face.

    The dense ``*_map`` views (background -1 / 0) exist for tests and small images.
    """

    shape: tuple[int, int, int]
    pixel: torch.Tensor
    face: torch.Tensor
    depth: torch.Tensor
    bary: torch.Tensor

    def _dense(self, values, fill, trailing=()):
        out = torch.full((self.shape[0] * self.shape[1] * self.shape[2], *trailing), fill, dtype=values.dtype,
                         device=values.device)
        out[self.pixel] = values
        return out.view(*self.shape, *trailing)

    @property
    def face_map(self) -> torch.Tensor:
        return self._dense(self.face, -1)

    @property
    def depth_map(self) -> torch.Tensor:
        return self._dense(self.depth, 0.0)

    @property
    def bary_map(self) -> torch.Tensor:
        return self._dense(self.bary, 0.0, (3,))

    @property
    def mask(self) -> torch.Tensor:
        return self.face_map >= 0


def _as_batched_intrinsics(K: torch.Tensor, batch: int, device, dtype) -> torch.Tensor:
    K = torch.as_tensor(K, device=device, dtype=dtype)
    if K.ndim == 2:
        K = K.expand(batch, 3, 3)
    if K.shape != (batch, 3, 3):
        raise ValueError(f"K must be [3,3] or [{batch},3,3], got {tuple(K.shape)}.")
    return K



@dataclass
class _FaceTable:
    """Per face (flattened over frames), each a contiguous 1-D tensor.

    ``l0o, l1o``: screen barycentrics of edges (1→2) and (2→0) at the face's box origin ``(x0, y0)``;
    ``a*, b*``: their change per pixel in x and y; ``1/z = iz2 + l0·dz0 + l1·dz1`` (1/z is affine on screen);
    ``offset``: frame·H·W; ``face``: face index within the mesh; ``width, height``: box size in pixels.
    """

    l0o: torch.Tensor
    a0: torch.Tensor
    b0: torch.Tensor
    l1o: torch.Tensor
    a1: torch.Tensor
    b1: torch.Tensor
    iz2: torch.Tensor
    dz0: torch.Tensor
    dz1: torch.Tensor
    x0: torch.Tensor
    y0: torch.Tensor
    width: torch.Tensor
    height: torch.Tensor
    offset: torch.Tensor
    face: torch.Tensor

    def perspective_barycentrics(self, rows: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
        """Perspective-correct barycentrics `(N, 3)` and depth `(N,)` of faces ``rows`` at pixels (px, py)."""
        lx, ly = (px - self.x0[rows]).float(), (py - self.y0[rows]).float()
        l0 = self.a0[rows] * lx + self.b0[rows] * ly + self.l0o[rows]
        l1 = self.a1[rows] * lx + self.b1[rows] * ly + self.l1o[rows]
        iz2, dz0, dz1 = self.iz2[rows], self.dz0[rows], self.dz1[rows]
        inv_z = iz2 + l0 * dz0 + l1 * dz1
        # b_i ∝ l_i / z_i
        weighted = torch.stack([l0 * (iz2 + dz0), l1 * (iz2 + dz1), (1.0 - l0 - l1) * iz2], -1)
        return weighted / inv_z[:, None], 1.0 / inv_z


def _project_vertices(vertices: torch.Tensor, K: torch.Tensor, znear: float):
    """Per vertex `(B, V)` each: x, y, z, 1/z (1 where z ≤ znear), u, v (pixels)."""
    coords = vertices.transpose(1, 2).contiguous()  # (B, 3, V): one contiguous row per coordinate
    x, y, z = coords[:, 0], coords[:, 1], coords[:, 2]
    fx, fy, cx, cy = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None]
    iz = 1.0 / torch.where(z > znear, z, torch.ones_like(z))
    return x, y, z, iz, fx * x * iz + cx, fy * y * iz + cy


def _corner_coefficients(x, y, z, iz, u, v, size: tuple[int, int], cull_backfaces: bool, znear: float) -> dict:
    """The :class:`_FaceTable` columns (but offset and face) from each face's three corners (lists of 3 tensors
    of one shape: camera x, y, z, 1/z and pixels u, v); element-wise, so any subset of faces gives the same
    numbers as the whole mesh."""
    width, height = size
    keep = (z[0] > znear) & (z[1] > znear) & (z[2] > znear)
    if cull_backfaces:
        # (v1 − v0) × (v2 − v0) · v0 = det[v0, v1, v2] < 0: the normal points towards the camera.
        det = (x[0] * (y[1] * z[2] - z[1] * y[2]) - y[0] * (x[1] * z[2] - z[1] * x[2])
               + z[0] * (x[1] * y[2] - y[1] * x[2]))
        keep &= det < 0

    # l0 is the edge function of edge (1→2) and l1 of edge (2→0), both normalised to 1 at their opposite corner.
    area = (u[1] - u[2]) * (v[0] - v[2]) - (v[1] - v[2]) * (u[0] - u[2])
    keep &= area.abs() > 1e-12
    inv_area = 1.0 / torch.where(keep, area, torch.ones_like(area))
    a0, b0 = (v[2] - v[1]) * inv_area, (u[1] - u[2]) * inv_area
    a1, b1 = (v[0] - v[2]) * inv_area, (u[2] - u[0]) * inv_area

    x0 = torch.ceil(torch.minimum(torch.minimum(u[0], u[1]), u[2])).clamp(min=0)
    x1 = torch.floor(torch.maximum(torch.maximum(u[0], u[1]), u[2])).clamp(max=width - 1)
    y0 = torch.ceil(torch.minimum(torch.minimum(v[0], v[1]), v[2])).clamp(min=0)
    y1 = torch.floor(torch.maximum(torch.maximum(v[0], v[1]), v[2])).clamp(max=height - 1)
    keep &= (x1 >= x0) & (y1 >= y0)
    # Faces reaching far outside the image are clipped above; non-finite bounds only come from dropped faces,
    # which get an empty box (height 0) so that no pixel is enumerated for them.
    x0, x1, y0, y1 = (t.nan_to_num(0.0, 0.0, 0.0) for t in (x0, x1, y0, y1))
    y1 = torch.where(keep, y1, y0 - 1)
    du, dv = x0 - u[2], y0 - v[2]  # box origin relative to corner 2, which lies on both edges
    return {
        "l0o": a0 * du + b0 * dv, "a0": a0, "b0": b0, "l1o": a1 * du + b1 * dv, "a1": a1, "b1": b1,
        "iz2": iz[2], "dz0": iz[0] - iz[2], "dz1": iz[1] - iz[2],
        "x0": x0.to(torch.int64), "y0": y0.to(torch.int64), "width": (x1 - x0 + 1).to(torch.int64),
        "height": (y1 - y0 + 1).to(torch.int64)}


def face_setup(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int], *,
               cull_backfaces: bool = True, znear: float = 1e-3) -> _FaceTable:
    """Screen-space coefficients of every face of every frame.

    Args:
        vertices (`torch.Tensor` of shape `(B, V, 3)`): camera-space vertices.
        faces (`torch.LongTensor` of shape `(F, 3)`).
        K (`torch.Tensor` of shape `(B, 3, 3)`).
        size (`tuple[int, int]`): (width, height).

    Returns:
        `_FaceTable` with B·F rows, frame-major; faces that cannot cover a pixel (behind the camera, culled,
        degenerate, off screen) have an empty box.
    """
    width, height = size
    batch, num_faces = vertices.shape[0], faces.shape[0]
    corners = faces.t().contiguous()
    # Projected once per vertex, then gathered per corner (element-wise the same numbers as per corner).
    per_vertex = _project_vertices(vertices, K, znear)
    x, y, z, iz, u, v = ([values[:, corners[k]] for k in range(3)] for values in per_vertex)  # 3 × (B, F) each
    columns = _corner_coefficients(x, y, z, iz, u, v, size, cull_backfaces, znear)
    frame = torch.arange(batch, device=vertices.device)[:, None].expand(batch, num_faces)
    columns["offset"] = frame * (width * height)
    columns["face"] = torch.arange(num_faces, device=vertices.device).expand(batch, num_faces)
    return _FaceTable(**{name: value.reshape(-1).contiguous() for name, value in columns.items()})


def _row_spans(table: _FaceTable):
    """Per (face, box row): the columns ``[lo, hi]`` of the box where all three barycentrics can be ≥ 0.

    Each barycentric is linear along a row, ``g(lx) = c + a·lx``, so ``g ≥ 0`` bounds lx on one side. The
    bounds are widened by a hair (``_SPAN_SLACK`` px); the exact per-pixel test decides the pixels there.

    Returns:
        (row owner (E,) index into ``table``, row offset r (E,), lo (E,), count (E,)) for rows with pixels.
    """
    device = table.width.device
    owner = torch.repeat_interleave(torch.arange(len(table.width), device=device), table.height)
    first = torch.cumsum(table.height, 0) - table.height
    row = torch.arange(len(owner), device=device) - first[owner]
    r = row.float()
    a0, a1 = table.a0[owner], table.a1[owner]
    c0 = table.l0o[owner] + table.b0[owner] * r
    c1 = table.l1o[owner] + table.b1[owner] * r
    lo = torch.zeros_like(r)
    hi = (table.width[owner] - 1).float()
    for c, a in ((c0, a0), (c1, a1), (1.0 - c0 - c1, -(a0 + a1))):
        # An edge (nearly) parallel to the row: g is constant along it, so the row is all in or all out.
        flat = a.abs() < _FLAT_SLOPE
        root = -c / torch.where(flat, torch.ones_like(a), a)
        lo = torch.where(~flat & (a > 0), torch.maximum(lo, root - _SPAN_SLACK), lo)
        hi = torch.where(~flat & (a < 0), torch.minimum(hi, root + _SPAN_SLACK), hi)
        hi = torch.where(flat & (c < -_SPAN_SLACK), torch.full_like(hi, -1.0), hi)
    lo = torch.ceil(lo).to(torch.int64)
    count = (torch.floor(hi).to(torch.int64) - lo + 1).clamp(min=0)
    keep = count > 0
    return owner[keep], row[keep], lo[keep], count[keep]


def _scatter_spans(keys: torch.Tensor, table: _FaceTable, width: int, max_pairs: int) -> None:
    """Test the pixels of every face's row spans and keep the nearest per pixel in ``keys``.

    Pairs (face, pixel) are enumerated with ``repeat_interleave`` over the row spans (about half of the
    bounding-box pixels of a small triangle), at most ~max_pairs at a time. Big temporaries are updated in
    place: fresh multi-megabyte tensors cost page faults on every op. (Testing whole bounding boxes gives the
    same pixels with ~1.6× the CPU time; a fixed S×S grid per face by broadcasting was slower still.)
    """
    device = keys.device
    owner, row, lo, count = _row_spans(table)
    # Per row: barycentrics at lx = 0 of the box, and the output pixel of that point.
    c0 = table.l0o[owner] + table.b0[owner] * row.float()
    c1 = table.l1o[owner] + table.b1[owner] * row.float()
    row_pixel = table.offset[owner] + (table.y0[owner] + row) * width + table.x0[owner]
    ends = torch.cumsum(count, 0)
    start, done = 0, 0
    while start < len(count):
        stop = max(int(torch.searchsorted(ends, done + max_pairs, right=True)), start + 1)
        n_pairs = count[start:stop]
        entry = torch.repeat_interleave(torch.arange(start, stop, device=device), n_pairs)
        lx = torch.arange(int(ends[stop - 1]) - done, device=device)
        lx -= (ends[start:stop] - n_pairs - done)[entry - start]
        lx += lo[entry]
        face = owner[entry]
        lxf = lx.float()
        l0 = table.a0[face].mul_(lxf).add_(c0[entry])
        l1 = table.a1[face].mul_(lxf).add_(c1[entry])
        inside = (l0 >= 0) & (l1 >= 0) & ((l0 + l1) <= 1)
        inv_z = table.dz0[face].mul_(l0).addcmul_(table.dz1[face], l1).add_(table.iz2[face])
        inside &= inv_z > 0
        # Positive float32 bits sort like the floats, so (bits << 32 | face) sorts by depth, then face.
        key = inv_z.reciprocal_().view(torch.int32).to(torch.int64).bitwise_left_shift_(32)
        key.bitwise_or_(table.face[face])
        key.masked_fill_(~inside, _EMPTY_KEY)
        keys.scatter_reduce_(0, lx.add_(row_pixel[entry]), key, reduce="amin", include_self=True)
        done = int(ends[stop - 1])
        start = stop


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
        [`Fragments`]: the covered pixels with their face, depth and barycentrics.
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

    table = face_setup(vertices, faces, K, (width, height), cull_backfaces=cull_backfaces, znear=znear)
    keys = torch.full((batch * plane,), _EMPTY_KEY, dtype=torch.int64, device=device)
    _scatter_spans(keys, table, width, max_pairs)

    pixel = (keys != _EMPTY_KEY).nonzero().squeeze(1)
    face = keys[pixel] & 0xFFFFFFFF
    frame = torch.div(pixel, plane, rounding_mode="floor")
    rem = pixel - frame * plane
    py = torch.div(rem, width, rounding_mode="floor")
    bary, depth = table.perspective_barycentrics(frame * num_faces + face, rem - py * width, py)
    return Fragments(shape=(batch, height, width), pixel=pixel, face=face, depth=depth, bary=bary)


def sample_nearest(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int],
                   columns: torch.Tensor, rows: torch.Tensor, *, cull_backfaces: bool = True, znear: float = 1e-3,
                   frames_at_once: int = 16, stats: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`rasterize` puts at a few query pixels, without rasterising the rest of the image.

    The queries come in groups of nearby pixels (e.g. a joint's neighbourhood). Per frame and group, only the
    faces whose screen box meets the group's pixel box are set up and tested, with the same coefficients and
    the same per-pixel test as :func:`rasterize` (nearest depth wins, ties to the lower face index), so the work
    grows with the faces near the queries, not with the image area or the whole mesh.

    Args:
        vertices (`(B, V, 3)`), faces (`(F, 3)`), K (`(3, 3)` or `(B, 3, 3)`), size (`(width, height)`): as
            :func:`rasterize`.
        columns, rows (`torch.LongTensor` of shape `(B, G, S)`): query pixels, G groups of S; pixels outside
            the image find nothing.
        frames_at_once (`int`): frames whose (group, face) box tests are held in memory at once.
        stats (`dict`, *optional*): ``stats["pairs"]`` is increased by the (frame, group, face) candidates
            tested, the measure of the work (tests pin that it does not grow with the image).

    Returns:
        (face `(B, G, S)` int64, -1 where nothing covers the pixel; depth `(B, G, S)` metres, 0 there).
    """
    device = vertices.device
    vertices = vertices.float()
    faces = torch.as_tensor(faces, device=device, dtype=torch.int64)
    batch, groups, samples = columns.shape
    K = _as_batched_intrinsics(K, batch, device, torch.float32)
    per_vertex = _project_vertices(vertices, K, znear)
    num_vertices = vertices.shape[1]
    flat_vertex = [values.reshape(-1) for values in per_vertex]
    corners = faces.t().contiguous()
    u_corner = [per_vertex[4][:, corners[k]] for k in range(3)]
    v_corner = [per_vertex[5][:, corners[k]] for k in range(3)]
    u_min = torch.minimum(torch.minimum(u_corner[0], u_corner[1]), u_corner[2])  # (B, F)
    u_max = torch.maximum(torch.maximum(u_corner[0], u_corner[1]), u_corner[2])
    v_min = torch.minimum(torch.minimum(v_corner[0], v_corner[1]), v_corner[2])
    v_max = torch.maximum(torch.maximum(v_corner[0], v_corner[1]), v_corner[2])
    columns, rows = columns.to(device), rows.to(device)
    c_min, c_max = columns.amin(-1, keepdim=True).float(), columns.amax(-1, keepdim=True).float()  # (B, G, 1)
    r_min, r_max = rows.amin(-1, keepdim=True).float(), rows.amax(-1, keepdim=True).float()
    keys = torch.full((batch * groups * samples,), _EMPTY_KEY, dtype=torch.int64, device=device)
    for start in range(0, batch, frames_at_once):
        chunk = slice(start, min(start + frames_at_once, batch))
        # A face can cover integer column c only if u_min ≤ c ≤ u_max (its box is [ceil u_min, floor u_max]).
        near = u_min[chunk, None] <= c_max[chunk]
        near &= u_max[chunk, None] >= c_min[chunk]
        near &= v_min[chunk, None] <= r_max[chunk]
        near &= v_max[chunk, None] >= r_min[chunk]
        frame, group, face = near.nonzero(as_tuple=True)
        if stats is not None:
            stats["pairs"] = stats.get("pairs", 0) + len(face)
        if len(face) == 0:
            continue
        frame = frame + start
        index = [frame * num_vertices + faces[face, k] for k in range(3)]  # flat (frame, vertex) per corner
        x, y, z, iz, u, v = ([flat[i] for i in index] for flat in flat_vertex)
        table = _corner_coefficients(x, y, z, iz, u, v, size, cull_backfaces, znear)
        lx = columns[frame, group] - table["x0"][:, None]  # (N, S)
        row = rows[frame, group] - table["y0"][:, None]
        inside = (lx >= 0) & (lx < table["width"][:, None]) & (row >= 0) & (row < table["height"][:, None])
        lxf, rf = lx.float(), row.float()
        l0 = table["a0"][:, None] * lxf + (table["l0o"][:, None] + table["b0"][:, None] * rf)
        l1 = table["a1"][:, None] * lxf + (table["l1o"][:, None] + table["b1"][:, None] * rf)
        inside &= (l0 >= 0) & (l1 >= 0) & ((l0 + l1) <= 1)
        inv_z = table["dz0"][:, None] * l0 + table["dz1"][:, None] * l1 + table["iz2"][:, None]
        inside &= inv_z > 0
        key = inv_z.reciprocal().view(torch.int32).to(torch.int64).bitwise_left_shift(32) | face[:, None]
        key.masked_fill_(~inside, _EMPTY_KEY)
        target = (frame * groups + group)[:, None] * samples + torch.arange(samples, device=device)
        keys.scatter_reduce_(0, target.reshape(-1), key.reshape(-1), reduce="amin", include_self=True)
    hit = keys != _EMPTY_KEY
    face = torch.where(hit, keys & 0xFFFFFFFF, torch.full_like(keys, -1))
    bits = torch.where(hit, keys, torch.zeros_like(keys)).bitwise_right_shift(32).to(torch.int32)
    depth = bits.view(torch.float32)
    return face.view(batch, groups, samples), depth.view(batch, groups, samples)
