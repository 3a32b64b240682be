"""Motion importers/exporters: HMR2 (4D-Humans/Champ), AMASS, WHAM/GVHMR, and our own .npz."""

import numpy as np
import pytest
import torch
from motionguide.pipelines.smpl.body import body_model as bm
from motionguide.pipelines.smpl.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rotation_about_axis
from motionguide.pipelines.smpl.body.safe_pickle import UnsafePickleError
from motionguide.pipelines.smpl.motion import importers as im
from motionguide.pipelines.smpl.motion.sequence import validate_sequence
from motionguide.pipelines.smpl.motion.transfer import project


@pytest.fixture(scope="module")
def model(smpl_model_dir):
    return bm.load_body_model(smpl_model_dir)


def camera_sequence(frames=6, seed=0):
    rng = np.random.default_rng(seed)
    seq = validate_sequence(dict(
        betas=rng.normal(size=(frames, 10)), global_orient=rng.normal(size=(frames, 3)),
        body_pose=rng.normal(size=(frames, 69)) * 0.3, transl=rng.normal(size=(frames, 3)) + [0, 0, 30],
        image_size=(640, 480), fps=24.0, bbox=rng.uniform(0, 400, size=(frames, 4))))
    seq["valid"][2] = False
    return seq


def assert_same_motion(a, b, atol=1e-5):
    valid = a["valid"]
    assert b["valid"].tolist() == valid.tolist()
    for key in ("betas", "transl", "K", "bbox"):
        np.testing.assert_allclose(b[key][valid], a[key][valid], atol=atol, rtol=1e-6, err_msg=key)
    rot = lambda s: axis_angle_to_matrix(np.concatenate([s["global_orient"], s["body_pose"]], 1)  # noqa: E731
                                         .reshape(-1, 24, 3))[valid]
    np.testing.assert_allclose(rot(b), rot(a), atol=atol)
    assert tuple(b["image_size"]) == tuple(a["image_size"]) and b["fps"] == pytest.approx(a["fps"])


def test_hmr2_frames_round_trip_and_focal_convention():
    seq = camera_sequence()
    frames = im.to_hmr2_frames(seq)
    assert frames[2] is None
    assert frames[0]["smpls"]["global_orient"].shape == (1, 1, 3, 3)
    assert frames[0]["smpls"]["body_pose"].shape == (1, 23, 3, 3)
    assert frames[0]["scaled_focal_length"] == pytest.approx(5000 / 256 * 640)
    back = im.from_hmr2_frames(frames, fps=24.0)
    assert_same_motion(seq, back)


def test_hmr2_hand_made_frame():
    # a 4D-Humans output: identity pose, cam_t (0.1, -0.2, 25), a 1000×500 frame: f = 5000/256·1000
    frame = {"pred_smpl_params": {"global_orient": np.eye(3)[None, None], "body_pose": np.tile(np.eye(3), (1, 23, 1, 1)),
                                  "betas": np.arange(10.0)[None]},
             "pred_cam_t_full": np.array([[0.1, -0.2, 25.0]]), "img_size": np.array([1000.0, 500.0])}
    seq = im.from_hmr2_frames([frame])
    np.testing.assert_allclose(seq["K"][0], [[19531.25, 0, 500], [0, 19531.25, 250], [0, 0, 1]])
    np.testing.assert_allclose(seq["transl"][0], [0.1, -0.2, 25.0], atol=1e-6)
    np.testing.assert_allclose(seq["betas"][0], np.arange(10.0))
    assert np.all(seq["global_orient"] == 0) and np.all(seq["body_pose"] == 0)
    assert seq["image_size"] == (1000, 500)


def test_hmr2_npz_and_champ_npy_folder(tmp_path):
    seq = camera_sequence()
    path = im.save_motion_file(seq, tmp_path / "clip", fmt="hmr2")
    assert_same_motion(seq, im.load_motion_file(path))
    folder = tmp_path / "smpl_results"
    folder.mkdir()
    for t, frame in enumerate(im.to_hmr2_frames(seq)):
        if frame is not None:  # Champ writes one dict per image with np.save
            np.save(folder / f"{t:04d}.npy", frame, allow_pickle=True)
    loaded = im.load_motion_file(folder, fps=24.0)
    assert len(loaded["valid"]) == 5
    keep = seq["valid"]
    np.testing.assert_allclose(loaded["transl"], seq["transl"][keep], atol=1e-6)


class _Evil:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_npy_with_code_refused(tmp_path):
    path = tmp_path / "0000.npy"
    np.save(path, {"global_orient": _Evil()}, allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="eval"):
        im.load_motion_file(path, image_size=(64, 64))


def amass_arrays(frames=20):
    t = np.arange(frames) / 60.0
    poses = np.zeros((frames, 156))
    # z-up world: stand the body up (+90° about x) and turn it to face world +y, walking forwards
    poses[:, :3] = matrix_to_axis_angle(rotation_about_axis("z", 180.0) @ rotation_about_axis("x", 90.0))
    poses[:, 3] = 0.4 * np.sin(4 * t)
    poses[:, 66:] = 0.3  # hand joints are dropped
    trans = np.stack([0.1 * t, 1.2 * t, 0.95 + 0 * t], 1)
    return {"poses": poses, "trans": trans, "betas": np.linspace(-1, 1, 16), "mocap_framerate": np.array(60.0),
            "gender": np.array("neutral")}


def test_amass_import_places_an_upright_body_facing_a_default_camera(model, tmp_path):
    arrays = amass_arrays()
    path = tmp_path / "walk_poses.npz"
    np.savez(path, **arrays)
    seq = im.load_motion_file(path, image_size=(576, 1024), model=model)
    assert seq["fps"] == 60.0 and seq["image_size"] == (576, 1024)
    np.testing.assert_allclose(seq["betas"][0], arrays["betas"][:10])
    np.testing.assert_allclose(seq["body_pose"][:, :63], arrays["poses"][:, 3:66], atol=1e-7)
    assert np.all(seq["body_pose"][:, 63:] == 0)
    verts, joints = model.forward(seq["betas"], seq["global_orient"], seq["body_pose"], seq["transl"])
    j = joints.double().numpy()
    assert j[0, 15, 1] < j[0, 0, 1] - 0.5  # head above the pelvis (camera y points down)
    assert j[0, 24, 2] < j[0, 0, 2]  # nose nearer to the camera: facing it
    assert j[0, 16, 0] > j[0, 17, 0]  # left shoulder on the image right
    uv = project(verts[:1].double().numpy(), seq["K"][:1])[0]
    assert (uv[:, 1].max() - uv[:, 1].min()) / 1024 == pytest.approx(im.AMASS_FILL, rel=0.05)
    # walking forwards (towards the camera in front of it) brings the body nearer
    assert j[-1, 0, 2] < j[0, 0, 2]


def test_amass_export_round_trips_exactly(model, tmp_path):
    arrays = amass_arrays()
    seq = im.from_amass(arrays, image_size=(576, 1024), model=model)
    out = im.to_amass(seq, model)
    np.testing.assert_allclose(out["poses"][:, 3:66], arrays["poses"][:, 3:66], atol=1e-6)
    np.testing.assert_allclose(axis_angle_to_matrix(out["poses"][:, :3]), axis_angle_to_matrix(arrays["poses"][:, :3]),
                               atol=1e-6)
    np.testing.assert_allclose(out["trans"], arrays["trans"], atol=1e-5)
    path = im.save_motion_file(seq, tmp_path / "export", fmt="amass", model=model)
    again = im.load_motion_file(path, image_size=(576, 1024), model=model)
    assert_same_motion(seq, again)


def test_camera_space_wham_and_gvhmr(tmp_path):
    seq = camera_sequence()
    wham = {"pose": np.concatenate([seq["global_orient"], seq["body_pose"]], 1), "trans": seq["transl"],
            "betas": seq["betas"]}
    np.savez(tmp_path / "wham.npz", **wham)
    loaded = im.load_motion_file(tmp_path / "wham.npz", image_size=(640, 480), fps=24.0)
    np.testing.assert_array_equal(loaded["transl"], seq["transl"])
    np.testing.assert_array_equal(loaded["body_pose"], seq["body_pose"])
    k = np.repeat(np.array([[[800.0, 0, 320], [0, 800, 240], [0, 0, 1]]]), 6, 0)
    gvhmr = {"smpl_params_incam": {"global_orient": torch.tensor(seq["global_orient"]),
                                   "body_pose": torch.tensor(seq["body_pose"][:, :63]),
                                   "betas": torch.tensor(seq["betas"]), "transl": torch.tensor(seq["transl"])},
             "K_fullimg": torch.tensor(k)}
    torch.save(gvhmr, tmp_path / "hmr4d_results.pt")
    loaded = im.load_motion_file(tmp_path / "hmr4d_results.pt", fps=24.0)
    assert loaded["model_type"] == "smplx" and loaded["image_size"] == (640, 480)
    np.testing.assert_allclose(loaded["K"], k)
    np.testing.assert_array_equal(loaded["body_pose"][:, :63], seq["body_pose"][:, :63])


def test_motionguide_format_and_unknown_layout(tmp_path):
    seq = camera_sequence()
    path = im.save_motion_file(seq, tmp_path / "ours.npz")
    assert_same_motion(seq, im.load_motion_file(path), atol=0)
    with pytest.raises(FileExistsError):
        im.save_motion_file(seq, path)
    np.savez(tmp_path / "odd.npz", foo=np.zeros(3))
    with pytest.raises(ValueError, match="unknown motion layout"):
        im.load_motion_file(tmp_path / "odd.npz")
