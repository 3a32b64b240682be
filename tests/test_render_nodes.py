"""Render nodes and SMPL-level maps on the synthetic body model."""
import math

import numpy as np
import pytest
import torch
from motionguide.nodes import comfy_adapter as adapter
from motionguide.nodes.render import MotionGuideRenderSMPL, MotionGuideSMPLToPose
from motionguide.pipelines.render import maps as maps_module
from motionguide.pipelines.render.maps import PART_PALETTE, render_maps
from motionguide.pipelines.render.surface import vertex_normals
from motionguide.pipelines.smpl.body.body_model import load_body_model
from motionguide.pipelines.smpl.motion.posing import pose_sequence
from scipy.spatial.transform import Rotation

W, H = 192, 288
FOCAL = 345.6
FRONT = Rotation.from_rotvec([math.pi, 0.0, 0.0])


def sequence(frames=1, transl=(0.0, 0.2, 3.0), yaw_step=0.0):
    orients = [Rotation.from_euler("y", yaw_step * t, degrees=True) * FRONT for t in range(frames)]
    K = np.array([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1]], np.float32)
    return {"betas": np.zeros((frames, 10), np.float32),
            "global_orient": np.stack([r.as_rotvec() for r in orients]).astype(np.float32),
            "body_pose": np.zeros((frames, 69), np.float32),
            "transl": np.tile(np.asarray(transl, np.float32), (frames, 1)),
            "K": np.repeat(K[None], frames, 0), "image_size": (W, H), "valid": np.ones(frames, bool),
            "fps": 30.0, "model_type": "smpl"}


@pytest.fixture(scope="module")
def body(smpl_model_dir):
    return load_body_model(smpl_model_dir, "neutral", "smpl")


def _front_torso_vertex(body, seq):
    """The nearest chest vertex whose normal faces the camera (not a tube's end cap)."""
    vertices, _ = pose_sequence(body, seq)
    normals = vertex_normals(vertices, torch.as_tensor(body.faces))
    torso = torch.from_numpy(np.isin(body.part_labels, [3, 6, 9])) & (normals[0, :, 2] < -0.95)
    z = torch.where(torso, vertices[0, :, 2], torch.full_like(vertices[0, :, 2], math.inf))
    index = int(z.argmin())
    return vertices, index


def test_body_3m_away_has_depth_3m_at_the_torso(body):
    seq = sequence()
    vertices, index = _front_torso_vertex(body, seq)
    # Put the chest's nearest point at exactly 3 m, on the ray through a pixel centre.
    x, y, z = vertices[0, index].tolist()
    col, row = round(FOCAL * x / z + W / 2), round(FOCAL * y / z + H / 2)
    seq["transl"][:, 0] += (col - W / 2) * 3.0 / FOCAL - x
    seq["transl"][:, 1] += (row - H / 2) * 3.0 / FOCAL - y
    seq["transl"][:, 2] += 3.0 - z
    vertices, _ = pose_sequence(body, seq)
    assert float(vertices[0, index, 2]) == pytest.approx(3.0, abs=1e-5)
    out = render_maps(vertices, body.faces, torch.from_numpy(seq["K"]), (W, H), vertex_labels=body.part_labels,
                      backend="torch", keep_surface=True)
    assert float(out["depth_m"][0, row, col]) == pytest.approx(3.0, abs=1e-3)
    assert int(out["label"][0, row, col]) in (3, 6, 9)
    # the chest faces the camera: normal colour ≈ (128, 128, 255)
    colour = out["normal"][0, row, col] * 255
    assert abs(float(colour[0]) - 128) < 16 and abs(float(colour[1]) - 128) < 16 and float(colour[2]) > 245


def test_render_node_outputs(body):
    seq = sequence(frames=3, yaw_step=30.0)
    depth, normal, semantic, mask, preview, bundle = MotionGuideRenderSMPL().render(seq, body, renderer="torch")
    assert depth.shape == normal.shape == semantic.shape == preview.shape == (3, H, W, 3)
    assert mask.shape == (3, H, W) and mask.dtype == torch.float32
    assert torch.equal(mask > 0, depth[..., 0] > 0)
    assert torch.equal(depth[..., 0], depth[..., 2])  # grey
    assert float(depth.max()) == pytest.approx(1.0, abs=0.02) and float(depth[mask > 0].min()) >= 0.1 - 1e-6
    for image in (normal, semantic, preview):
        assert float(image[mask == 0].abs().max()) == 0.0  # black background
    # semantic colours are palette entries only, one part each
    colours = torch.round(semantic[mask > 0] * 255).to(torch.uint8)
    palette = {tuple(c) for c in PART_PALETTE.tolist()}
    assert {tuple(c) for c in torch.unique(colours, dim=0).tolist()} <= palette
    # the guidance bundle: the same tensors, one channel for depth and mask, and the conventions by name
    assert bundle["frames"] == 3 and (bundle["width"], bundle["height"]) == (W, H)
    assert bundle["semantic_palette"] == "motionguide-lr-v1" and bundle["depth_normalisation"] == "per-clip"
    assert bundle["reference_frame"] is False
    maps = bundle["maps"]
    assert sorted(maps) == ["depth", "mask", "normal", "semantic"]
    assert torch.equal(maps["depth"][..., 0], depth[..., 0]) and torch.equal(maps["mask"][..., 0], mask)
    assert maps["normal"] is normal and maps["semantic"] is semantic


def test_each_semantic_colour_covers_only_its_own_part(body):
    seq = sequence()
    _, _, semantic, mask, _, _ = MotionGuideRenderSMPL().render(seq, body, renderer="torch", preview=False)
    vertices, _ = pose_sequence(body, seq)
    K = seq["K"][0]
    u = K[0, 0] * vertices[0, :, 0] / vertices[0, :, 2] + K[0, 2]
    v = K[1, 1] * vertices[0, :, 1] / vertices[0, :, 2] + K[1, 2]
    sem = torch.round(semantic[0] * 255).to(torch.uint8)
    parts_seen = 0
    for part in range(24):
        pixels = (sem == PART_PALETTE[part]).all(-1).nonzero()
        if len(pixels) == 0:
            continue
        parts_seen += 1
        own = torch.from_numpy(body.part_labels == part)
        # every pixel of this colour lies within the projected extent of this part's vertices (+1 px)
        assert float(pixels[:, 1].min()) >= float(u[own].min()) - 1 and float(pixels[:, 1].max()) <= float(u[own].max()) + 1
        assert float(pixels[:, 0].min()) >= float(v[own].min()) - 1 and float(pixels[:, 0].max()) <= float(v[own].max()) + 1
    assert parts_seen >= 20  # a frontal T-pose shows nearly every part
    assert float(semantic[0][mask[0] == 0].abs().max()) == 0.0


def test_render_node_size_override_and_preview_off(body):
    seq = sequence()
    depth, _, _, mask, preview, _ = MotionGuideRenderSMPL().render(seq, body, width=96, renderer="torch",
                                                                preview=False)
    assert depth.shape == (1, 144, 96, 3) and mask.shape == (1, 144, 96)
    assert preview.shape == (1, 144, 96, 3) and float(preview.abs().max()) == 0.0
    full = MotionGuideRenderSMPL().render(seq, body, renderer="torch")[3]
    assert abs(float(mask.sum()) * 4 / float(full.sum()) - 1.0) < 0.05  # same camera, quarter of the pixels


def test_render_reports_progress_and_stops_on_cancel(body):
    seq = sequence(frames=5)
    seen = []
    adapter.progress_listener = lambda done, total, label: seen.append((done, total))
    try:
        MotionGuideRenderSMPL().render(seq, body, width=48, renderer="torch", chunk_size=2, preview=False)
        assert seen == [(2, 5), (4, 5), (5, 5)]
        adapter.request_interrupt()
        with pytest.raises(adapter.Interrupted):
            MotionGuideRenderSMPL().render(seq, body, width=48, renderer="torch", chunk_size=2)
    finally:
        adapter.progress_listener = None
        adapter.clear_interrupt()
    assert MotionGuideRenderSMPL().render(seq, body, width=48, renderer="torch")[3].shape[0] == 5  # next run works


def test_only_one_chunk_is_on_the_device_at_a_time(body, monkeypatch):
    seen = []
    original = maps_module._TorchSurfaceRenderer.render

    def spy(self, vertices, K, **needs):
        seen.append(vertices.shape[0])
        return original(self, vertices, K, **needs)

    monkeypatch.setattr(maps_module._TorchSurfaceRenderer, "render", spy)
    seq = sequence(frames=7)
    MotionGuideRenderSMPL().render(seq, body, width=48, renderer="torch", chunk_size=3, preview=False)
    assert seen == [3, 3, 1]


def test_smpl_to_pose_node_with_driving_hands(body):
    seq = sequence(frames=2)
    hand = np.zeros((21, 3))
    hand[:, 0] = np.linspace(0, 20, 21)
    hand[:, 2] = 0.9
    driving_body = np.zeros((18, 3))
    driving_body[[0, 1, 3, 4, 6, 7], :] = [[50, 10, 1], [50, 30, 1], [30, 40, 1], [30, 60, 1], [70, 40, 1],
                                          [70, 60, 1]]
    hand_at_wrist = hand.copy()
    hand_at_wrist[:, :2] += driving_body[4, :2]
    person_driving = {"pose_keypoints_2d": driving_body.flatten().tolist(),
                      "hand_right_keypoints_2d": hand_at_wrist.flatten().tolist(), "hand_left_keypoints_2d": None,
                      "face_keypoints_2d": None}
    driving = [{"people": [person_driving], "canvas_width": 100, "canvas_height": 100}] * 2
    (pose,) = MotionGuideSMPLToPose().convert(seq, body, renderer="torch", driving_pose=driving)
    assert len(pose) == 2 and pose[0]["canvas_width"] == W and pose[0]["canvas_height"] == H
    person = pose[0]["people"][0]
    body_kp = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    grafted = np.array(person["hand_right_keypoints_2d"]).reshape(21, 3)
    assert grafted[0, :2] == pytest.approx(body_kp[4, :2], abs=1e-3)  # hand root moved onto the new wrist
    assert person["hand_left_keypoints_2d"] is None
    assert (body_kp[:, 2] >= 0.5).all()
    # comfyui_controlnet_aux-style 0..1 coordinates give the same graft
    normalised = hand_at_wrist.copy()
    normalised[:, :2] /= 100.0
    unit_body = driving_body.copy()
    unit_body[:, :2] /= 100.0
    person_unit = dict(person_driving, pose_keypoints_2d=unit_body.flatten().tolist(),
                       hand_right_keypoints_2d=normalised.flatten().tolist())
    (pose_unit,) = MotionGuideSMPLToPose().convert(
        seq, body, renderer="torch", driving_pose=[{"people": [person_unit], "canvas_width": 100,
                                                   "canvas_height": 100}] * 2)
    assert np.allclose(pose_unit[0]["people"][0]["hand_right_keypoints_2d"], person["hand_right_keypoints_2d"],
                       atol=1e-3)


def test_nodes_reject_wrong_inputs(body):
    with pytest.raises(ValueError, match="Load Body Model"):
        MotionGuideRenderSMPL().render(sequence(), object(), renderer="torch")
    with pytest.raises(ValueError, match="model_type|body model"):
        seq = sequence()
        seq["model_type"] = "smplx"
        MotionGuideRenderSMPL().render(seq, body, renderer="torch")


def test_node_declarations():
    for cls in (MotionGuideRenderSMPL, MotionGuideSMPLToPose):
        spec = cls.INPUT_TYPES()
        for group in spec.values():
            for name, (kind, options) in group.items():
                assert options.get("tooltip"), (cls.__name__, name)
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
        assert cls.CATEGORY == "MotionGuide/smpl" and cls.DESCRIPTION


def _part_pixels(semantic, part):
    return (torch.round(semantic * 255).to(torch.uint8) == PART_PALETTE[part]).all(-1).nonzero()


@pytest.mark.parametrize("which", ["smpl", "anny"])
def test_left_and_right_parts_have_their_own_colours_on_the_side_they_are(which, request):
    """Both reference bodies (the synthetic SMPL file and the built-in Anny body), facing the camera: each
    upper arm, forearm, thigh and shin shows in its own colour, the person's left on the image's right."""
    if which == "smpl":
        model = request.getfixturevalue("body")
        seq = sequence()
    else:
        from motionguide.pipelines.smpl.motion.sequence import validate_sequence

        model = request.getfixturevalue("anny_body")
        seq = validate_sequence(sequence(transl=(0.0, 0.0, 3.2)))
    from motionguide.pipelines.render.smpl_render import render_sequence_maps

    out = render_sequence_maps(model, seq, maps=("semantic", "mask"), backend="torch")
    semantic = out["semantic"][0]
    for left, right in ((16, 17), (18, 19), (1, 2), (4, 5)):
        lp, rp = _part_pixels(semantic, left), _part_pixels(semantic, right)
        assert len(lp) > 15 and len(rp) > 15, (which, left, right, len(lp), len(rp))
        assert float(lp[:, 1].float().mean()) > W / 2 > float(rp[:, 1].float().mean())


def test_reference_motion_becomes_frame_0_with_one_depth_range_for_the_clip(body):
    seq = sequence(frames=2, transl=(0.0, 0.2, 3.0))
    reference = sequence(frames=1, transl=(0.1, 0.2, 2.5))  # nearer than the motion: it sets the near end
    depth, normal, _, mask, _, bundle = MotionGuideRenderSMPL().render(seq, body, renderer="torch", preview=False,
                                                                       reference_motion=reference)
    assert depth.shape[0] == mask.shape[0] == bundle["frames"] == 3 and bundle["reference_frame"] is True
    alone_ref = MotionGuideRenderSMPL().render(reference, body, renderer="torch", preview=False)
    alone_seq = MotionGuideRenderSMPL().render(seq, body, renderer="torch", preview=False)
    assert torch.equal(mask[0], alone_ref[3][0]) and torch.equal(mask[1:], alone_seq[3])
    assert torch.equal(normal[1:], alone_seq[1])
    # per-clip depth: the reference's nearest point is 1 and the motion frames are darker than when rendered alone
    assert float(depth[0].max()) == pytest.approx(1.0, abs=0.02)
    assert float(depth[1:].max()) < float(alone_seq[0].max()) - 0.05
