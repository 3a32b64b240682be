"""Body-model loading routes, the restricted unpickler, and the synthetic model's geometry."""
import pickle
import pickletools

import numpy as np
import pytest
import torch
from motionguide.headless.tiny_models.smpl import REST_JOINTS, build_synthetic_smpl_arrays
from motionguide.pipelines.smpl.body import body_model as bm
from motionguide.pipelines.smpl.body.safe_pickle import UnsafePickleError, load_smpl_pickle


def _random_motion(frames=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(frames, 10)) * 0.8, rng.normal(size=(frames, 3)) * 0.5,
            rng.normal(size=(frames, 69)) * 0.3, rng.normal(size=(frames, 3)))


def test_loading_routes_agree_exactly(smpl_model_dir):
    import smplx

    betas, orient, pose, transl = _random_motion()
    routes = {
        "folder (npz)": bm.load_body_model(smpl_model_dir),
        "pkl": bm.load_body_model(smpl_model_dir / "SMPL_NEUTRAL.pkl"),
        "chumpy pkl": bm.load_body_model(smpl_model_dir / "chumpy_style" / "SMPL_NEUTRAL.pkl"),
        "data_struct": bm.BodyModel(dict(np.load(smpl_model_dir / "SMPL_MALE.npz")), "smpl", "male"),
    }
    ref_v, ref_j = routes["folder (npz)"].forward(betas, orient, pose, transl)
    assert ref_v.shape == (6, 6890, 3) and ref_j.shape == (6, 45, 3)
    for name, model in routes.items():
        v, j = model.forward(betas, orient, pose, transl)
        assert torch.equal(v, ref_v), name
        assert torch.equal(j, ref_j), name
        assert np.array_equal(model.faces, routes["pkl"].faces) and model.faces.dtype == np.int64
    # smplx's own pickle reader on the plain pkl gives the same numbers
    official = smplx.SMPL(str(smpl_model_dir / "SMPL_NEUTRAL.pkl"))
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    out = official(betas=t(betas), global_orient=t(orient), body_pose=t(pose), transl=t(transl))
    assert torch.equal(out.vertices, ref_v) and torch.equal(out.joints, ref_j)


def test_chumpy_pickle_really_names_chumpy_and_smplx_cannot_read_it(smpl_model_dir):
    import smplx

    path = smpl_model_dir / "chumpy_style" / "SMPL_NEUTRAL.pkl"
    globals_named = {arg for op, arg, _ in pickletools.genops(path.read_bytes()) if op.name == "GLOBAL"}
    assert "chumpy.ch Ch" in globals_named
    with pytest.raises(ModuleNotFoundError):
        smplx.SMPL(str(path))


class _Boom:
    def __reduce__(self):
        return (print, ("executed",))


def test_malicious_pickle_refused_without_running(tmp_path, capsys):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "evil": _Boom()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="builtins.print"):
        load_smpl_pickle(path)
    assert "executed" not in capsys.readouterr().out
    os_call = b"cos\nsystem\n(S'echo pwned'\ntR."
    path.write_bytes(os_call)
    with pytest.raises(UnsafePickleError, match="os.system"):
        bm.load_body_model(path)


def test_codec_other_than_latin1_refused(tmp_path):
    blob = pickle.dumps(b"\x00\x01", protocol=2).replace(b"latin1", b"rot_13")
    path = tmp_path / "x.pkl"
    path.write_bytes(blob)
    with pytest.raises(UnsafePickleError, match="rot_13"):
        load_smpl_pickle(path)


def test_missing_files_error_names_files_folder_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        bm.load_body_model(tmp_path)
    msg = str(info.value)
    assert "SMPL_NEUTRAL.npz" in msg and "SMPL_NEUTRAL.pkl" in msg and str(tmp_path) in msg
    assert "smpl.is.tue.mpg.de" in msg and "licence" in msg


def test_wrong_format_is_a_clear_error(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, v_template=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="missing"):
        bm.load_body_model(path)
    arrays = build_synthetic_smpl_arrays()
    arrays["weights"] = arrays["weights"][:, :20]
    with pytest.raises(ValueError, match="'weights' has shape"):
        bm.BodyModel(arrays)


def test_synthetic_model_geometry(smpl_model_dir):
    model = bm.load_body_model(smpl_model_dir)
    # J_regressor reproduces the designed rest joints
    np.testing.assert_allclose(model.rest_joints(np.zeros(10))[0], REST_JOINTS, atol=1e-6)
    # every one of the 24 parts owns vertices; the head sphere is part 15
    assert set(np.unique(model.part_labels)) == set(range(24))
    _, joints = model.forward(np.zeros(10), np.zeros(3), np.zeros(69))
    np.testing.assert_allclose(joints[0, :24].numpy(), REST_JOINTS, atol=1e-6)
    # nose (smplx joint 24) sits in front of the head, left eye on the left (+x)
    assert joints[0, 24, 2] > 0.1 and joints[0, 26, 0] > 0 > joints[0, 25, 0]
    # closed, outward-wound surface: positive volume, every edge shared by exactly two faces
    edges = np.sort(model.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), 1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert np.all(counts == 2)
    verts = model.arrays["v_template"].astype(np.float64)
    tri = verts[model.faces]
    volume = np.einsum("fi,fi->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert volume > 0.05
    # beta 0 is overall size: beta0 = 3 makes the body 18% taller
    v3, _ = model.forward(np.eye(10)[0] * 3, np.zeros(3), np.zeros(69))
    h0, h3 = np.ptp(verts[:, 1]), np.ptp(v3[0, :, 1].numpy())
    assert h3 / h0 == pytest.approx(1.18, rel=1e-4)


def test_root_joint_is_rest_root_plus_transl(smpl_model_dir):
    model = bm.load_body_model(smpl_model_dir)
    betas, orient, pose, transl = _random_motion(8, seed=3)
    _, joints = model.forward(betas, orient, pose, transl)
    expected = model.rest_joints(betas)[:, 0] + transl
    np.testing.assert_allclose(joints[:, 0].numpy(), expected, atol=1e-6)


def test_forward_batches_and_broadcasts_betas(smpl_model_dir):
    model = bm.load_body_model(smpl_model_dir)
    _, orient, pose, transl = _random_motion(7, seed=5)
    betas = np.linspace(-1, 1, 10)
    v_a, j_a = model.forward(betas, orient, pose, transl, batch_size=3)
    v_b, j_b = model.forward(np.repeat(betas[None], 7, 0), torch.tensor(orient), pose, transl, batch_size=64)
    torch.testing.assert_close(v_a, v_b, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="body_pose"):
        model.forward(betas, orient, pose[:, :60], transl)


def test_openpose_map_constant():
    assert bm.OPENPOSE18_FROM_SMPL45 == [24, 12, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28]


def test_smplx_npz_gives_the_smpl_joint_layout(smpl_model_dir, smplx_model_path):
    smpl = bm.load_body_model(smpl_model_dir)
    smplx_model = bm.load_body_model(smpl_model_dir, model_type="smplx")
    assert smplx_model.model_type == "smplx" and smplx_model.num_vertices == 10475
    assert bm.load_body_model(smplx_model_path).model_type == "smplx"  # inferred from the file name
    betas, orient, pose, transl = _random_motion(4, seed=7)
    pose[:, 63:] = 0.0  # SMPL's hand joints have no SMPL-X counterpart
    v_x, j_x = smplx_model.forward(betas, orient, pose, transl)
    v_s, j_s = smpl.forward(betas, orient, pose, transl)
    assert v_x.shape == (4, 10475, 3) and j_x.shape == (4, 45, 3)
    # same capsule man in both layouts: the 45 joints (skeleton, hands, landmarks) coincide
    torch.testing.assert_close(j_x, j_s, rtol=0, atol=2e-5)
    assert np.array_equal(np.bincount(smplx_model.part_labels, minlength=24)[1:],  # part 0 holds the padding
                          np.bincount(smpl.part_labels, minlength=24)[1:])
    assert set(np.unique(smplx_model.part_labels)) == set(range(24))


def test_old_scipy_sparse_module_path_is_mapped(tmp_path):
    import scipy.sparse

    dense = np.arange(12.0).reshape(3, 4) * (np.arange(12).reshape(3, 4) % 3 == 0)
    blob = pickle.dumps({"J_regressor": scipy.sparse.csc_matrix(dense)}, protocol=2)
    module = type(scipy.sparse.csc_matrix(dense)).__module__.encode()  # e.g. scipy.sparse._csc
    assert module in blob
    path = tmp_path / "old.pkl"
    path.write_bytes(blob.replace(module, b"scipy.sparse.csc"))  # how SciPy < 1.8 / Python 2 files name it
    np.testing.assert_array_equal(load_smpl_pickle(path)["J_regressor"], dense)


def test_both_bodies_implement_the_body_interface(smpl_model_dir, anny_body):
    from motionguide.pipelines.smpl.body.interface import SHAPE_KINDS, SMPLModel, shapes_with_phenotype

    smpl = bm.load_body_model(smpl_model_dir)
    assert isinstance(smpl, SMPLModel) and isinstance(anny_body, SMPLModel)
    assert (smpl.shape_kind, anny_body.shape_kind) == ("betas", "phenotype")
    assert {smpl.shape_kind, anny_body.shape_kind} == set(SHAPE_KINDS)
    assert not shapes_with_phenotype(smpl) and shapes_with_phenotype(anny_body)
    assert anny_body.motion_types == ("smpl", "smplx") and smpl.motion_types == ("smpl",)
    for body in (smpl, anny_body):
        rest = body.rest_vertices(None, phenotype=None)
        assert rest.shape == (body.num_vertices, 3) and body.part_labels.shape == (body.num_vertices,)
        assert body.rest_joints(np.zeros((2, 10))).shape == (2, 24, 3)
        assert body.faces.ndim == 2 and body.faces.shape[1] == 3 and body.parents.shape == (24,)
        vertices, joints = body.forward(np.zeros((1, 10)), np.zeros((1, 3)), np.zeros((1, 69)))
        assert vertices.shape == (1, body.num_vertices, 3) and body.openpose18(joints).shape == (1, 18, 3)
    # an object missing one member is not a body
    class NoFaces:
        model_type, motion_types, shape_kind, has_hands, gender, source = "x", ("smpl",), "betas", False, "n", "?"
        part_labels = num_vertices = parents = None
        forward = __call__ = openpose18 = rest_joints = rest_height = rest_vertices = staticmethod(lambda *a: None)
    assert not isinstance(NoFaces(), SMPLModel)


def test_builtin_body_registry_names_the_node_choices():
    from motionguide.pipelines.smpl.body import loaders

    assert loaders.body_names()[0] == loaders.ANNY == "anny (built-in)"
    assert loaders.body_loader(loaders.ANNY).folder == "anny"
    with pytest.raises(ValueError, match="unknown built-in body 'mesh'; available: 'anny \\(built-in\\)'"):
        loaders.body_loader("mesh")
    made = []
    loaders.register_body_loader(loaders.BodyLoader("test body", "test", lambda folder, callback=None:
                                                    made.append(folder) or "body", lambda: None, ""))
    try:
        assert loaders.load_body("test body", "/m/test") == "body" and made == ["/m/test"]
        from motionguide.nodes.smpl import MotionGuideLoadSMPLModel

        choices = MotionGuideLoadSMPLModel.INPUT_TYPES()["required"]["model_file"][0]
        assert choices[:3] == ["anny (built-in)", "test body", "auto (by gender)"]
    finally:
        loaders._LOADERS.pop("test body")
