"""A synthetic SMPL-format body model (docs/architecture.md, *Model files*): a procedural "capsule man" in the
official file layouts.

The real SMPL files are licensed by MPI and never shipped, so tests, benches and the smoke demo build this one:
23 capped bone tubes + 4 tip tubes (hands, feet) + a head sphere around approximate SMPL rest joints, with the
SMPL kinematic tree, parent-driven skinning weights, a ``J_regressor`` whose rows average one ring of vertices
centred on each joint (so it reproduces the rest joints exactly), 10 shape directions (size, girth, leg length,
...) and exactly 6890 vertices, with landmark vertices (nose, eyes, ears, toes, heels, finger tips) at smplx's
default vertex ids. Every component is a closed convex surface wound outward, so back-face culling works.

Files written: ``SMPL_{NEUTRAL,MALE,FEMALE}.npz`` (float32), ``SMPL_NEUTRAL.pkl`` (plain arrays, sparse
``J_regressor`` like the official file) and ``chumpy_style/SMPL_NEUTRAL.pkl`` (arrays wrapped in ``chumpy.ch.Ch``
objects, written without chumpy by a stand-in module).
"""
from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np

from ...pipelines.smpl.body.joints import SMPL_PARENTS, SMPL_REST_JOINTS

NUM_VERTICES = 6890
REST_JOINTS = np.array(SMPL_REST_JOINTS)  # the capsule man's joints: SMPL's neutral T-pose
# Tube radius of the bone ending at each joint (index = child joint).
BONE_RADIUS = [0.0, 0.085, 0.085, 0.12, 0.075, 0.075, 0.13, 0.055, 0.055, 0.13, 0.042, 0.042,
               0.055, 0.06, 0.06, 0.05, 0.055, 0.055, 0.045, 0.045, 0.04, 0.04, 0.035, 0.035]
# Leaf joints get a short tip tube weighted to themselves (toes, fingers), so every part label occurs.
TIPS = {10: (np.array([0.0, -0.01, 0.07]), 0.035), 11: (np.array([0.0, -0.01, 0.07]), 0.035),
        22: (np.array([0.09, 0.0, 0.0]), 0.03), 23: (np.array([-0.09, 0.0, 0.0]), 0.03)}
HEAD_CENTRE, HEAD_RADIUS = np.array([0.0, 0.45, 0.03]), 0.11
SEGMENTS, RINGS = 20, 11  # around / along each tube
# smplx's default ("smplh") landmark vertex ids, and where on the capsule man each one goes.
LANDMARK_IDS = {"nose": 332, "reye": 6260, "leye": 2800, "rear": 4071, "lear": 583,
                "LBigToe": 3216, "LSmallToe": 3226, "LHeel": 3387, "RBigToe": 6617, "RSmallToe": 6624,
                "RHeel": 6787, "lthumb": 2746, "lindex": 2319, "lmiddle": 2445, "lring": 2556, "lpinky": 2673,
                "rthumb": 6191, "rindex": 5782, "rmiddle": 5905, "rring": 6016, "rpinky": 6133}


def _landmark_targets() -> dict[str, np.ndarray]:
    h, r = HEAD_CENTRE, HEAD_RADIUS
    out = {"nose": h + [0, -0.01, r], "reye": h + r * np.array([-0.35, 0.3, 0.89]),
           "leye": h + r * np.array([0.35, 0.3, 0.89]), "rear": h + [-r, 0, 0], "lear": h + [r, 0, 0]}
    for side, foot, ankle, sign in (("L", 10, 7, 1), ("R", 11, 8, -1)):
        tip = REST_JOINTS[foot] + TIPS[foot][0]
        out[side + "BigToe"] = tip + [-sign * 0.02, -0.02, 0.03]
        out[side + "SmallToe"] = tip + [sign * 0.025, -0.02, 0.02]
        out[side + "Heel"] = REST_JOINTS[ankle] + [0, -0.05, -0.05]
    for side, hand, sign in (("l", 22, 1), ("r", 23, -1)):
        tip = REST_JOINTS[hand] + TIPS[hand][0]
        for k, name in enumerate(["thumb", "index", "middle", "ring", "pinky"]):
            out[side + name] = tip + [sign * 0.03, 0.0, 0.03 - 0.015 * k]
    return out


def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.eye(3)[int(np.argmin(np.abs(axis)))]
    u = np.cross(axis, ref)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def _tube(start, end, radius):
    """Capped cylinder: RINGS rings of SEGMENTS vertices from start to end, then two cap centres."""
    axis = end - start
    u, v = _frame(axis / np.linalg.norm(axis))
    theta = np.arange(SEGMENTS) * 2 * np.pi / SEGMENTS
    circle = radius * (np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * v)
    t = np.linspace(0.0, 1.0, RINGS)
    verts = (start + t[:, None, None] * axis + circle[None]).reshape(-1, 3)
    verts = np.concatenate([verts, start[None], end[None]])
    faces = []
    for i in range(RINGS - 1):
        for k in range(SEGMENTS):
            a, b = i * SEGMENTS + k, i * SEGMENTS + (k + 1) % SEGMENTS
            faces += [[a, b, b + SEGMENTS], [a, b + SEGMENTS, a + SEGMENTS]]
    cs, ce = RINGS * SEGMENTS, RINGS * SEGMENTS + 1
    last = (RINGS - 1) * SEGMENTS
    for k in range(SEGMENTS):
        faces += [[cs, k, (k + 1) % SEGMENTS], [ce, last + k, last + (k + 1) % SEGMENTS]]
    return verts, np.array(faces), t


def _sphere(centre, radius, n_lat=20, n_lon=24):
    lat = np.linspace(0, np.pi, n_lat + 2)[1:-1]
    lon = np.arange(n_lon) * 2 * np.pi / n_lon
    ring = np.stack([np.sin(lat)[:, None] * np.cos(lon), np.cos(lat)[:, None] * np.ones_like(lon),
                     np.sin(lat)[:, None] * np.sin(lon)], -1).reshape(-1, 3)
    verts = centre + radius * np.concatenate([ring, [[0, 1, 0], [0, -1, 0]]])
    faces = []
    for i in range(n_lat - 1):
        for k in range(n_lon):
            a, b = i * n_lon + k, i * n_lon + (k + 1) % n_lon
            faces += [[a, b, b + n_lon], [a, b + n_lon, a + n_lon]]
    top, bottom, last = n_lat * n_lon, n_lat * n_lon + 1, (n_lat - 1) * n_lon
    for k in range(n_lon):
        faces += [[top, k, (k + 1) % n_lon], [bottom, last + k, last + (k + 1) % n_lon]]
    return verts, np.array(faces)


def _orient_outward(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Wind every face of a convex component so its normal points away from the component's centre."""
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    inward = np.einsum("fi,fi->f", normal, tri.mean(1) - verts.mean(0)) < 0
    faces = faces.copy()
    faces[inward] = faces[inward][:, [0, 2, 1]]
    return faces


def build_synthetic_smpl_arrays(num_vertices: int = NUM_VERTICES, landmark_ids: dict | None = None) -> dict:
    """The SMPL arrays (float64 before saving): v_template, shapedirs, posedirs, J_regressor, weights,
    kintree_table, f; plus ``J`` (rest joints), like the official pickle."""
    landmark_ids = landmark_ids or LANDMARK_IDS
    parents = SMPL_PARENTS
    verts, faces, weights, regress_rows, girth_dir = [], [], [], {}, []
    leg_joints = {1, 2, 4, 5, 7, 8, 10, 11}
    leg_mask = []
    count = 0

    def add(v, f, w, girth, is_leg):
        nonlocal count
        verts.append(v)
        faces.append(_orient_outward(v, f) + count)
        weights.append(w)
        girth_dir.append(girth)
        leg_mask.append(np.full(len(v), is_leg))
        count += len(v)
        return count - len(v)

    for child in range(1, 24):
        parent = parents[child]
        start, end = REST_JOINTS[parent], REST_JOINTS[child]
        v, f, t = _tube(start, end, BONE_RADIUS[child])
        t_all = np.concatenate([np.repeat(t, SEGMENTS), [0.0, 1.0]])
        w = np.zeros((len(v), 24))
        blend = 0.5 * np.clip((t_all - 0.8) / 0.2, 0, 1)  # the child joint takes over near its end
        w[:, parent] = 1 - blend
        w[:, child] += blend
        axis_point = start + t_all[:, None] * (end - start)
        base = add(v, f, w, v - axis_point, parent in leg_joints)
        regress_rows[child] = base + (RINGS - 1) * SEGMENTS + np.arange(SEGMENTS)
        if parent == 0 and child == 3:
            regress_rows[0] = base + np.arange(SEGMENTS)
    for joint, (offset, radius) in TIPS.items():
        start = REST_JOINTS[joint]
        v, f, t = _tube(start, start + offset, radius)
        t_all = np.concatenate([np.repeat(t, SEGMENTS), [0.0, 1.0]])
        w = np.zeros((len(v), 24))
        w[:, joint] = 1.0
        add(v, f, w, v - (start + t_all[:, None] * offset), joint in leg_joints)
    v, f = _sphere(HEAD_CENTRE, HEAD_RADIUS)
    w = np.zeros((len(v), 24))
    w[:, 15] = 1.0
    head_start = add(v, f, w, v - HEAD_CENTRE, False)
    head_mask = np.zeros(count, bool)
    head_mask[head_start:] = True

    verts, faces, weights = np.concatenate(verts), np.concatenate(faces), np.concatenate(weights)
    girth, leg = np.concatenate(girth_dir), np.concatenate(leg_mask)
    n_real = len(verts)
    if n_real > num_vertices:
        raise RuntimeError(f"capsule man has {n_real} vertices, more than {num_vertices}")

    # Landmarks are moved to smplx's default ids; the spare slots are filled with unreferenced copies of
    # the pelvis ring's first vertex (inside the body, weighted to the pelvis).
    targets = _landmark_targets()
    order = np.full(num_vertices, -1)
    used = set()
    for name, vid in landmark_ids.items():
        dist = np.linalg.norm(verts - targets[name], axis=1)
        dist[list(used)] = np.inf
        best = int(np.argmin(dist))
        used.add(best)
        order[vid] = best
    rest = [i for i in range(n_real) if i not in used]
    free = np.flatnonzero(order < 0)
    order[free[: len(rest)]] = rest
    order[free[len(rest):]] = regress_rows[0][0]
    new_index = np.empty(n_real, int)
    real_slots = np.flatnonzero(np.isin(np.arange(num_vertices), free[len(rest):], invert=True))
    new_index[order[real_slots]] = real_slots

    v_template = verts[order]
    faces = new_index[faces]
    weights = weights[order]
    girth, leg, head = girth[order], leg[order], head_mask[order]
    j_regressor = np.zeros((24, num_vertices))
    for joint, rows in regress_rows.items():
        j_regressor[joint, new_index[rows]] = 1.0 / len(rows)

    # Shape directions, metres per unit beta.
    x, y, z = v_template.T
    zero = np.zeros_like(x)
    torso = (np.abs(x) < 0.17) & (y > -0.35) & (y < 0.3)
    dirs = [
        0.06 * v_template,  # 0 overall size (height)
        0.15 * girth,  # 1 girth
        np.stack([zero, 0.12 * np.minimum(y + 0.314, 0), zero], 1),  # 2 leg length
        np.stack([0.04 * np.sign(x) * np.clip(np.abs(x) / 0.17, 0, 1) * (y > 0.1), zero, zero], 1),  # 3 shoulders
        np.stack([0.06 * np.sign(x) * np.maximum(np.abs(x) - 0.17, 0), zero, zero], 1),  # 4 arm length
        np.stack([zero, zero, 0.3 * np.maximum(z - 0.03, 0) * torso], 1),  # 5 belly
        np.stack([0.15 * x * ((y < -0.1) & (y > -0.45)), zero, zero], 1),  # 6 hip width
        0.12 * girth * head[:, None],  # 7 head size
        np.stack([zero, 0.08 * np.maximum(y + 0.223, 0), zero], 1),  # 8 torso length
        0.2 * girth * leg[:, None],  # 9 leg thickness
    ]
    shapedirs = np.stack(dirs, -1)
    posedirs = np.zeros((num_vertices, 3, 207))
    kintree = np.array([[4294967295] + parents[1:], list(range(24))], dtype=np.int64)
    return {"v_template": v_template, "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": j_regressor,
            "weights": weights, "kintree_table": kintree, "f": faces.astype(np.uint32),
            "J": j_regressor @ v_template}


SMPLX_VERTICES = 10475
SMPLX_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15] + [
    p for wrist, first in ((20, 25), (21, 40)) for k in range(5) for p in (wrist, first + 3 * k, first + 3 * k + 1)]
SMPLX_LANDMARK_IDS = {"nose": 9120, "reye": 9929, "leye": 9448, "rear": 616, "lear": 6, "rthumb": 8079,
                      "rindex": 7669, "rmiddle": 7794, "rring": 7905, "rpinky": 8022, "lthumb": 5361, "lindex": 4933,
                      "lmiddle": 5058, "lring": 5169, "lpinky": 5286, "LBigToe": 5770, "LSmallToe": 5780,
                      "LHeel": 8846, "RBigToe": 8463, "RSmallToe": 8474, "RHeel": 8635}


def build_synthetic_smplx_arrays() -> dict[str, np.ndarray]:
    """The same capsule man as an SMPL-X model: 10475 vertices, 55 joints (jaw and eyes at the head joint, the
    15 finger joints of each hand at the hand joint, the middle finger base carrying the hand's weights), 10
    shape + 10 (zero) expression directions, landmarks on head faces, identity hand PCA."""
    a = build_synthetic_smpl_arrays(SMPLX_VERTICES, SMPLX_LANDMARK_IDS)
    source_row = list(range(22)) + [15, 15, 15] + [22] * 15 + [23] * 15
    regressor = a["J_regressor"][source_row]
    weights = np.zeros((SMPLX_VERTICES, 55))
    weights[:, :22] = a["weights"][:, :22]
    weights[:, 28] = a["weights"][:, 22]  # left_middle1
    weights[:, 43] = a["weights"][:, 23]  # right_middle1
    head_faces = np.flatnonzero(np.all(np.argmax(a["weights"], 1)[a["f"]] == 15, axis=1))[:51]
    return {"v_template": a["v_template"], "f": a["f"], "J_regressor": regressor, "weights": weights,
            "kintree_table": np.array([[4294967295] + SMPLX_PARENTS[1:], list(range(55))], dtype=np.int64),
            "shapedirs": np.concatenate([a["shapedirs"], np.zeros((SMPLX_VERTICES, 3, 10))], -1),
            "posedirs": np.zeros((SMPLX_VERTICES, 3, 486)), "lmk_faces_idx": head_faces.astype(np.int64),
            "lmk_bary_coords": np.full((51, 3), 1 / 3), "hands_componentsl": np.eye(45),
            "hands_componentsr": np.eye(45), "hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45)}


def build_synthetic_smplx(directory) -> Path:
    """Write ``smplx/SMPLX_NEUTRAL.npz`` (float32) under ``directory``; return its path."""
    path = Path(directory) / "smplx" / "SMPLX_NEUTRAL.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **_float32(build_synthetic_smplx_arrays()))
    return path


def _float32(arrays: dict) -> dict:
    return {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in arrays.items()}


def _pickle_chumpy_style(arrays: dict, path: Path) -> None:
    """Write arrays as ``chumpy.ch.Ch`` objects without chumpy: a stand-in module only while pickling."""
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:  # pickled by reference as chumpy.ch.Ch with its __dict__ as state, like chumpy's leaf arrays
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch, package.ch = Ch, module
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = package, module
    try:
        data = {}
        for key, value in arrays.items():
            if key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
                ch = Ch()
                ch.__dict__.update({"x": value, "_depends_on_deps": {}, "_itr": None})
                data[key] = ch
            else:
                data[key] = value
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def build_synthetic_smpl(directory) -> Path:
    """Write the synthetic body model into ``directory`` (created); return the directory.

    ``SMPL_{NEUTRAL,MALE,FEMALE}.npz``, ``SMPL_NEUTRAL.pkl`` (plain arrays, scipy sparse ``J_regressor``) and
    ``chumpy_style/SMPL_NEUTRAL.pkl``.
    """
    import scipy.sparse

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = _float32(build_synthetic_smpl_arrays())
    for gender in ("NEUTRAL", "MALE", "FEMALE"):
        np.savez_compressed(directory / f"SMPL_{gender}.npz", **arrays)
    official = dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"].astype(np.float64)),
                    bs_style="lbs", bs_type="lrotmin")
    with open(directory / "SMPL_NEUTRAL.pkl", "wb") as f:
        pickle.dump(official, f, protocol=2)
    (directory / "chumpy_style").mkdir(exist_ok=True)
    _pickle_chumpy_style(official, directory / "chumpy_style" / "SMPL_NEUTRAL.pkl")
    return directory
