"""Torch rasteriser and guidance maps against analytic geometry (planes, spheres, boxes)."""
import math

import pytest
import torch
from motionguide.pipelines.render.maps import (
    PART_PALETTE,
    SEMANTIC_PALETTE_ID,
    SEMANTIC_PALETTES,
    SMPL_PART_NAMES,
    depth_range,
    depth_to_image,
    labels_to_image,
    normal_to_image,
    render_maps,
)
from motionguide.pipelines.render.surface import (
    face_labels,
    pixel_part_labels,
    ray_barycentrics,
    vertex_normals,
)
from motionguide.pipelines.render.torch_raster import rasterize
from tiny_models.render import box, intrinsics, merge, plane, uv_sphere

W, H = 161, 121  # odd sizes put a pixel centre exactly on the optical axis (cx = 80, cy = 60)
K = intrinsics(W, H, 300.0)


def test_plane_3m_depth_and_exact_coverage():
    v, f = plane(1.0, 1.0, z=3.0)
    out = render_maps(v[None], f, K, (W, H), backend="torch", keep_surface=True)
    depth = out["depth_m"][0]
    # 0.5 m at 3 m with f = 300 → ±50 px around (80, 60): columns 30..130 and rows 10..110 (edges on centres).
    covered = depth > 0
    rows, cols = covered.nonzero(as_tuple=True)
    assert (int(cols.min()), int(cols.max()), int(rows.min()), int(rows.max())) == (30, 130, 10, 110)
    assert int(covered.sum()) == 101 * 101
    assert torch.allclose(depth[covered], torch.full_like(depth[covered], 3.0), atol=1e-3)
    assert torch.equal(out["mask"][0] > 0, covered)


def test_camera_facing_normal_colour_is_128_128_255():
    v, f = plane(1.0, 1.0, z=3.0)
    out = render_maps(v[None], f, K, (W, H), backend="torch")
    mask = out["mask"][0] > 0
    colours = torch.round(out["normal"][0][mask] * 255)
    assert torch.all(colours == torch.tensor([128.0, 128.0, 255.0]))
    assert float(out["normal"][0][~mask].abs().max()) == 0.0  # background black


def test_tilted_plane_has_perspective_correct_depth_and_rotated_normal():
    angle = math.radians(40)
    v, f = plane(1.0, 1.0, z=0.0, divisions=1)
    rot = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    v = v @ rot.T + torch.tensor([0.0, 0.0, 3.0])
    normal = rot @ torch.tensor([0.0, 0.0, -1.0])
    out = render_maps(v[None], f, K, (W, H), backend="torch", keep_surface=True)
    depth = out["depth_m"][0]
    rows, cols = (depth > 0).nonzero(as_tuple=True)
    ray = torch.stack([(cols - 80.0) / 300.0, (rows - 60.0) / 300.0, torch.ones_like(cols, dtype=torch.float32)], -1)
    expected = float(normal @ torch.tensor([0.0, 0.0, 3.0])) / (ray @ normal)  # ray–plane intersection
    # Two big triangles spanning 30 cm of depth: affine (non perspective-correct) z would be off by centimetres.
    assert float((depth[rows, cols] - expected).abs().max()) < 1e-4
    colour = out["normal"][0][rows, cols]
    want = torch.tensor([normal[0], -normal[1], -normal[2]]) * 0.5 + 0.5
    assert torch.allclose(colour, want.expand_as(colour), atol=1e-5)


def test_sphere_silhouette_depth_and_sequence_normalisation():
    v, f = uv_sphere(0.3, (0.0, 0.0, 3.0))
    farther = v + torch.tensor([0.0, 0.0, 1.0])
    out = render_maps(torch.stack([v, farther]), f, K, (W, H), backend="torch", keep_surface=True)
    # the vertex (0, 0, 2.7) lies on the optical axis → pixel (60, 80)
    assert abs(float(out["depth_m"][0, 60, 80]) - 2.7) < 1e-5
    radius_px = 300.0 * 0.3 / math.sqrt(3.0 ** 2 - 0.3 ** 2)
    area = float((out["depth_m"][0] > 0).sum())
    assert abs(area / (math.pi * radius_px ** 2) - 1.0) < 0.02
    # near/far over the whole sequence = (2.7, 4.3): frame 0's nearest point is 1.0, frame 1's is dimmer
    assert depth_range(torch.stack([v, farther])) == pytest.approx((2.7, 4.3), abs=1e-6)
    assert float(out["depth"][0, 60, 80]) == pytest.approx(1.0, abs=1e-5)
    assert float(out["depth"][1, 60, 80]) == pytest.approx(0.1 + 0.9 * (4.3 - 3.7) / 1.6, abs=1e-4)
    assert torch.equal(out["mask"] > 0, out["depth"] > 0)
    assert float(out["depth"][out["mask"] == 0].abs().max()) == 0.0


def test_depth_image_formula_exact():
    depth = torch.tensor([[0.0, 2.0, 3.0, 4.0]])
    assert depth_to_image(depth, 2.0, 4.0, floor=0.2)[0].tolist() == pytest.approx([0.0, 1.0, 0.6, 0.2])
    assert depth_to_image(depth, 3.0, 3.0).tolist() == [[0.0, 1.0, 1.0, 1.0]]  # a single depth: all nearest


def test_nearest_surface_wins_and_back_faces_are_culled():
    big_v, big_f = uv_sphere(1.0, (0.0, 0.0, 4.0), rings=24, segments=48)
    small_v, small_f = uv_sphere(0.2, (0.0, 0.0, 2.5), rings=24, segments=48)
    v, f = merge((big_v, big_f), (small_v, small_f))
    fragments = rasterize(v[None], f, K, (W, H))
    assert abs(float(fragments.depth_map[0, 60, 80]) - 2.3) < 1e-3
    assert int(fragments.face_map[0, 60, 80]) >= len(big_f)
    away_v, away_f = plane(1.0, 1.0, z=3.0, facing_camera=False)
    assert int(rasterize(away_v[None], away_f, K, (W, H)).mask.sum()) == 0
    assert int(rasterize(away_v[None], away_f, K, (W, H), cull_backfaces=False).mask.sum()) == 101 * 101


def test_barycentrics_reproduce_the_pixel_ray():
    v, f = uv_sphere(1.0, (0.1, -0.2, 3.0), rings=12, segments=24)
    fragments = rasterize(v[None], f, K, (W, H))
    rows, cols = fragments.mask[0].nonzero(as_tuple=True)
    corners = v[f[fragments.face_map[0, rows, cols]]]  # (N, 3, 3)
    point = (corners * fragments.bary_map[0, rows, cols][..., None]).sum(1)
    assert torch.allclose(point[:, 2], fragments.depth_map[0, rows, cols], atol=1e-5)
    assert torch.allclose(300.0 * point[:, 0] / point[:, 2] + 80.0, cols.float(), atol=2e-3)
    assert torch.allclose(300.0 * point[:, 1] / point[:, 2] + 60.0, rows.float(), atol=2e-3)
    assert torch.allclose(fragments.bary_map[0, rows, cols].sum(-1), torch.ones(len(rows)), atol=1e-5)


def test_semantic_colours_stay_on_their_part():
    left = box((0.5, 1.0, 1.0), (-0.25, 0.0, 3.0))
    right = box((0.5, 1.0, 1.0), (0.25, 0.0, 3.0))
    v, f = merge(left, right)
    labels = torch.cat([torch.full((len(left[0]),), 3), torch.full((len(right[0]),), 7)])
    out = render_maps(v[None], f, K, (W, H), vertex_labels=labels, backend="torch")
    sem = torch.round(out["semantic"][0] * 255).to(torch.uint8)
    mask = out["mask"][0] > 0
    c3, c7 = PART_PALETTE[3], PART_PALETTE[7]
    is3 = (sem == c3).all(-1)
    is7 = (sem == c7).all(-1)
    assert torch.equal(is3 | is7, mask)  # only the two palette colours, no blends
    assert int(is3[:, 81:].sum()) == 0 and int(is7[:, :80].sum()) == 0  # the border projects to column 80
    assert int(is3.sum()) > 1000 and int(is7.sum()) > 1000
    assert float(out["semantic"][0][~mask].abs().max()) == 0.0


def test_face_labels_majority_exact():
    faces = torch.tensor([[0, 1, 2], [1, 2, 3], [0, 2, 3], [3, 4, 5]])
    labels = torch.tensor([5, 5, 9, 9, 1, 2])
    assert face_labels(faces, labels).tolist() == [5, 9, 9, 9]  # (5,5,9)→5 (5,9,9)→9 (5,9,9)→9 all differ→first
    assert face_labels(faces, None).tolist() == [0, 0, 0, 0]


def test_palette_and_normal_encoding():
    assert PART_PALETTE.shape == (24, 3) and len({tuple(c) for c in PART_PALETTE.tolist()}) == 24
    img = labels_to_image(torch.tensor([[-1, 0, 23]]))
    assert torch.equal(torch.round(img[0] * 255).long(), torch.tensor([[0, 0, 0], [150, 60, 150], [40, 0, 170]]))
    n = torch.tensor([[[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]]])  # up, right in OpenCV axes
    assert normal_to_image(n, torch.ones(1, 1, 2, dtype=torch.bool)).tolist() == [[[[0.5, 1.0, 0.5], [1.0, 0.5, 0.5]]]]


def test_vertex_normals_of_sphere_point_outward():
    v, f = uv_sphere(1.0, (0.0, 0.0, 0.0), rings=12, segments=24)
    n = vertex_normals(v[None], f)[0]
    assert float((n * v).sum(-1).min()) > 0.99


def test_chunks_give_identical_maps_and_report_progress():
    v, f = uv_sphere(0.5, (0.0, 0.0, 3.0), rings=12, segments=24)
    seq = torch.stack([v + torch.tensor([0.1 * t, 0.0, 0.2 * t]) for t in range(5)])
    calls = []
    chunked = render_maps(seq, f, K, (W, H), backend="torch", chunk_size=2, callback=lambda d, t: calls.append((d, t)))
    whole = render_maps(seq, f, K.expand(5, 3, 3), (W, H), backend="torch", chunk_size=5)
    assert calls == [(2, 5), (4, 5), (5, 5)]
    for name in whole:
        assert torch.equal(chunked[name], whole[name]), name
    assert chunked["normal"].shape == (5, H, W, 3) and chunked["mask"].shape == (5, H, W)
    assert chunked["normal"].dtype == torch.float32 and float(chunked["preview"].max()) <= 1.0


def test_max_pairs_splitting_does_not_change_the_result():
    v, f = uv_sphere(1.0, (0.0, 0.0, 3.0), rings=12, segments=24)
    a = rasterize(v[None], f, K, (W, H))
    b = rasterize(v[None], f, K, (W, H), max_pairs=500)
    assert torch.equal(a.face_map, b.face_map) and torch.equal(a.depth_map, b.depth_map)


def test_geometry_behind_camera_or_off_screen_is_ignored():
    v, f = uv_sphere(1.0, (0.0, 0.0, -3.0), rings=12, segments=24)
    assert int(rasterize(v[None], f, K, (W, H)).mask.sum()) == 0
    v2, f2 = uv_sphere(1.0, (50.0, 0.0, 3.0), rings=12, segments=24)
    assert int(rasterize(v2[None], f2, K, (W, H)).mask.sum()) == 0


def test_bad_inputs_are_named():
    v, f = plane()
    with pytest.raises(ValueError, match="renderer"):
        render_maps(v[None], f, K, (W, H), backend="vulkan")
    with pytest.raises(ValueError, match="Unknown maps"):
        render_maps(v[None], f, K, (W, H), maps=("albedo",))
    with pytest.raises(ValueError, match="K must be"):
        render_maps(v[None], f, torch.eye(4), (W, H))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    v, f = uv_sphere(1.0, (0.1, 0.0, 3.0))
    cpu = render_maps(v[None], f, K, (W, H), backend="torch")
    gpu = render_maps(v[None].cuda(), f, K, (W, H), backend="torch", device="cuda")
    assert torch.equal(cpu["mask"], gpu["mask"])
    assert float((cpu["depth"] - gpu["depth"]).abs().max()) < 1e-5


def test_matches_brute_force_on_random_triangles():
    """Every pixel against every face in float64: the span enumeration must find exactly the same surface."""
    gen = torch.Generator().manual_seed(0)
    width, height, faces_n = 40, 30, 60
    K_small = torch.tensor([[30.0, 0, 19.5], [0, 30.0, 14.5], [0, 0, 1]])
    centres = torch.rand(faces_n, 1, 3, generator=gen) * torch.tensor([2.4, 1.8, 2.0]) - torch.tensor([1.2, 0.9, -2.0])
    v = (centres + 0.4 * torch.randn(faces_n, 3, 3, generator=gen)).reshape(-1, 3)
    f = torch.arange(faces_n * 3).reshape(faces_n, 3)
    fragments = rasterize(v[None], f, K_small, (width, height), cull_backfaces=False)

    cols, rows = torch.meshgrid(torch.arange(width, dtype=torch.float64),
                                torch.arange(height, dtype=torch.float64), indexing="xy")
    tri = v[f].double()
    u = 30.0 * tri[..., 0] / tri[..., 2] + 19.5
    w = 30.0 * tri[..., 1] / tri[..., 2] + 14.5

    def edge(i, j):  # (F, H, W) edge function of corner i → j at each pixel
        return ((u[:, j] - u[:, i])[:, None, None] * (rows - w[:, i][:, None, None])
                - (w[:, j] - w[:, i])[:, None, None] * (cols - u[:, i][:, None, None]))

    area = (u[:, 1] - u[:, 0]) * (w[:, 2] - w[:, 0]) - (w[:, 1] - w[:, 0]) * (u[:, 2] - u[:, 0])
    lam = torch.stack([edge(1, 2), edge(2, 0), edge(0, 1)], -1) / area[:, None, None, None]
    inside = (lam >= 0).all(-1)
    depth = 1.0 / (lam / tri[..., 2][:, None, None, :]).sum(-1)
    depth = torch.where(inside, depth, torch.full_like(depth, math.inf))
    best, best_face = depth.min(0)
    covered = torch.isfinite(best)
    # pixels within 1e-6 of an edge may go either way (float32 vs float64)
    near_edge = (lam.abs().amin(-1) < 1e-6).any(0)
    sure = ~near_edge
    assert torch.equal(fragments.mask[0][sure], covered[sure])
    both = sure & covered
    assert float((fragments.depth_map[0][both] - best[both]).abs().max()) < 1e-4
    second = depth.topk(2, dim=0, largest=False).values[1]
    clear = both & (second - best > 1e-3)  # the winner is not a near-tie
    assert torch.equal(fragments.face_map[0][clear], best_face[clear])
    assert int(covered.sum()) > 300  # a real test: many pixels covered, with overlaps


def test_auto_is_the_torch_rasteriser():
    from motionguide.pipelines.render.maps import choose_backend

    assert choose_backend("auto", torch.device("cpu")) == "torch"
    assert choose_backend("pyrender", torch.device("cpu")) == "pyrender"


# The palette "motionguide-lr-v1", pinned: adapters are trained on these values (a change needs a new id).
PINNED_LR_V1 = [
    (150, 60, 150), (230, 40, 20), (20, 40, 230), (90, 190, 90), (255, 140, 0), (0, 140, 255), (120, 120, 120),
    (255, 230, 60), (60, 230, 255), (40, 100, 40), (150, 80, 0), (0, 80, 150), (190, 255, 190), (255, 120, 150),
    (150, 120, 255), (240, 240, 240), (220, 0, 120), (120, 0, 220), (255, 170, 100), (100, 170, 255),
    (200, 255, 100), (100, 255, 200), (170, 0, 40), (40, 0, 170)]


def test_lr_palette_is_pinned_and_tells_left_from_right():
    assert SEMANTIC_PALETTE_ID == "motionguide-lr-v1" and SEMANTIC_PALETTES[SEMANTIC_PALETTE_ID] is PART_PALETTE
    assert [tuple(c) for c in PART_PALETTE.tolist()] == PINNED_LR_V1
    colours = PART_PALETTE.float()
    for i, name in enumerate(SMPL_PART_NAMES):
        r, g, b = PART_PALETTE[i].tolist()
        if name.startswith("left_"):
            twin = SMPL_PART_NAMES.index("right_" + name[5:])
            # the right twin is the left colour with red and blue swapped, far from it, and warm vs cool
            assert PART_PALETTE[twin].tolist() == [b, g, r] and r - b >= 95
            assert float((colours[i] - colours[twin]).norm()) >= 100
        elif not name.startswith("right_"):
            assert r == b  # the midline maps to itself under a horizontal flip
    distances = torch.cdist(colours, colours) + torch.eye(24) * 1e3
    assert float(distances.min()) >= 70  # every pair of parts clearly apart
    # the pairs the old Viridis palette could not tell apart (both upper arms, both thighs)
    for left, right in ((16, 17), (1, 2), (4, 5), (18, 19)):
        assert float((colours[left] - colours[right]).norm()) >= 100


def test_pixel_part_labels_take_the_argmax_of_interpolated_one_hots():
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    vertex_labels = torch.tensor([4, 4, 9, 1, 2, 3])
    face = torch.tensor([0, 0, 0, 1, 1])
    bary = torch.tensor([[0.3, 0.3, 0.4], [0.1, 0.2, 0.7], [0.25, 0.2, 0.55], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    # face 0: part 4 has weight 0.6 / 0.3 / 0.45 against part 9's 0.4 / 0.7 / 0.55; face 1: plain argmax
    assert pixel_part_labels(faces, vertex_labels, face, bary).tolist() == [4, 9, 9, 1, 3]


def _slanted_grid(rows=13, cols=13, slope=0.37, pitch=0.08, z=3.0):
    """A flat grid facing the camera whose vertex rows lie on parallel lines of the given slope (a sheared grid),
    so the border between two rows of labels is the straight mid-line between those rows."""
    verts, faces = [], []
    for i in range(rows):
        for j in range(cols):
            x = (j - cols / 2) * pitch
            verts.append([x, (i - rows / 2) * pitch + slope * x, z])
    for i in range(rows - 1):
        for j in range(cols - 1):
            a, b, c, d = i * cols + j, i * cols + j + 1, (i + 1) * cols + j, (i + 1) * cols + j + 1
            faces += [[a, c, b], [b, c, d]]  # z forward, y down: wound towards the camera
    return torch.tensor(verts), torch.tensor(faces), torch.arange(rows).repeat_interleave(cols)


@pytest.mark.parametrize("backend", ["torch", "pyrender"])
def test_a_straight_part_border_gives_a_straight_line_of_pixels(backend):
    if backend == "pyrender":
        from motionguide.pipelines.render import pyrender_backend

        if pyrender_backend.unavailable_reason() is not None:
            pytest.skip(pyrender_backend.unavailable_reason())
    v, f, row_of_vertex = _slanted_grid()
    labels = torch.where(row_of_vertex < 6, 3, 7)
    out = render_maps(v[None], f, K, (W, H), vertex_labels=labels, backend=backend, keep_surface=True,
                      cull_backfaces=False)
    label, covered = out["label"][0], out["mask"][0] > 0
    assert int(covered.sum()) > 3000
    # the border is the line halfway between vertex rows 5 and 6: y = (5.5 - 6.5)·pitch + slope·x at z = 3
    rows, cols = covered.nonzero(as_tuple=True)
    x = (cols.float() - 80.0) * 3.0 / 300.0
    y = (rows.float() - 60.0) * 3.0 / 300.0
    signed_px = (y - (-1.0 * 0.08 + 0.37 * x)) * 300.0 / 3.0 / math.hypot(1.0, 0.37)  # distance in pixels
    expected = torch.where(signed_px > 0, 7, 3)
    clear = signed_px.abs() > 0.01
    assert torch.equal(label[rows, cols][clear], expected[clear])  # every pixel on its side of one straight line
    # the old rule (one label per face) puts a sawtooth along the same border: many pixels on the wrong side
    old = face_labels(f, labels)[_faces_at(v, f, rows, cols)]
    assert int((old != expected).sum()) > 20


def _faces_at(v, f, rows, cols):
    fragments = rasterize(v[None], f, K, (W, H), cull_backfaces=False)
    return fragments.face_map[0, rows, cols]


def test_ray_barycentrics_equal_the_rasteriser_s():
    sphere = uv_sphere(0.6, (0.1, -0.05, 2.5), rings=16, segments=32)
    v, f = sphere
    fragments = rasterize(v[None], f, K, (W, H))
    bary = ray_barycentrics(v[None], f, K[None], fragments.shape, fragments.pixel, fragments.face)
    assert float((bary - fragments.bary).abs().max()) < 1e-4


def test_soft_part_weights_move_the_border_to_where_the_weights_are_equal():
    faces = torch.tensor([[0, 1, 2]])
    vertex_labels = torch.tensor([4, 4, 9])
    weights = torch.zeros(3, 24)
    weights[0, 4], weights[1, 4], weights[2, 9] = 0.6, 0.6, 1.0  # corners 0 and 1 are 40% part 9
    weights[0, 9], weights[1, 9] = 0.4, 0.4
    bary = torch.tensor([[0.35, 0.35, 0.3], [0.45, 0.45, 0.1]])
    # one-hot: part 4 holds 0.7 and 0.9 of the weight; soft: part 4 = 0.6·0.7 = 0.42 < part 9 = 0.58 in the first
    assert pixel_part_labels(faces, vertex_labels, torch.tensor([0, 0]), bary).tolist() == [4, 4]
    assert pixel_part_labels(faces, vertex_labels, torch.tensor([0, 0]), bary, weights).tolist() == [9, 4]
