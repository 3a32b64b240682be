"""HMR2 crop, rotation and camera maths against hand-made numbers."""
import math

import cv2
import numpy as np
import pytest
import torch
from motionguide.pipelines.smpl.body.rotations import matrix_to_axis_angle
from motionguide.pipelines.smpl.estimate.hmr2_geometry import (
    antialias_sigma,
    box_center_and_size,
    cam_crop_to_full,
    crop_affine,
    crop_person,
    full_image_focal,
    intrinsics,
    normalize_crops,
    rot6d_to_rotmat,
    to_uint8_frames,
)
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation

# ---------------------------------------------------------------------------------------------------- boxes


def test_tall_box_is_padded_then_widened_to_192_by_256():
    # 60×200 box ×1.2 → 72×240; 240/72 > 256/192 so the width grows to 240·192/256 = 180; side = 240.
    center, size = box_center_and_size([100, 50, 160, 250], rescale=1.2)
    np.testing.assert_allclose(center, [130.0, 150.0])
    assert size == pytest.approx(240.0)


def test_wide_box_grows_in_height():
    # 300×100 box (no padding): the height grows to 300·256/192 = 400; side = 400.
    center, size = box_center_and_size([0, 0, 300, 100], rescale=1.0)
    np.testing.assert_allclose(center, [150.0, 50.0])
    assert size == pytest.approx(400.0)


def test_box_with_target_aspect_keeps_its_height():
    _, size = box_center_and_size([10, 10, 10 + 96, 10 + 128], rescale=1.0)
    assert size == pytest.approx(128.0)


# ---------------------------------------------------------------------------------------------------- crops


def test_affine_maps_box_to_crop():
    affine = crop_affine([130.0, 150.0], 240.0, 256)
    s = 256.0 / 240.0
    np.testing.assert_allclose(affine, [[s, 0, 128 - 130 * s], [0, s, 128 - 150 * s]], atol=1e-4)
    # Box corners land on the crop corners.
    corners = np.array([[10.0, 30.0, 1.0], [250.0, 270.0, 1.0]])
    np.testing.assert_allclose(corners @ affine.T, [[0, 0], [256, 256]], atol=1e-3)


def test_crop_samples_the_right_pixels():
    # Channel 0 holds x, channel 1 holds y: the crop must read back its own source coordinates.
    height, width = 160, 200
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs, ys, np.full_like(xs, 7)], -1).astype(np.uint8)
    patch = crop_person(image, [100.0, 80.0], 128.0, 256)  # scale 2: source = out/2 + (36, 16)
    assert patch.dtype == np.float32 and patch.shape == (256, 256, 3)
    v, u = np.mgrid[0:256, 0:256]
    src_x, src_y = u / 2 + 36, v / 2 + 16
    inside = (src_x <= width - 1) & (src_y <= height - 1)
    np.testing.assert_allclose(patch[..., 0][inside], src_x[inside], atol=0.51)
    np.testing.assert_allclose(patch[..., 1][inside], src_y[inside], atol=0.51)
    assert (patch[..., 2][inside] == 7).all()


def test_crop_outside_the_image_is_black():
    image = np.full((50, 50, 3), 200, np.uint8)
    patch = crop_person(image, [25.0, 25.0], 100.0, 256)  # the image fills the middle half of the crop
    assert (patch[:60, :, :] == 0).all() and (patch[:, :60, :] == 0).all()
    assert (patch[70:180, 70:180] == 200).all()


def test_antialias_sigma_rule():
    assert antialias_sigma(563.0) == 0.0  # factor 1.0996 ≤ 1.1: no blur
    assert antialias_sigma(1024.0) == pytest.approx(0.5)  # factor 2 → σ = (2 − 1)/2
    assert antialias_sigma(256.0) == 0.0


def test_windowed_blur_equals_blurring_the_whole_image():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(700, 900, 3), dtype=np.uint8)
    center, size = np.array([420.3, 380.7]), 1200.0  # σ = (1200/256/2 − 1)/2 ≈ 0.672
    sigma = antialias_sigma(size)
    assert sigma == pytest.approx((1200 / 512 - 1) / 2)
    blurred = gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)
    expected = cv2.warpAffine(blurred, crop_affine(center, size), (256, 256), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    np.testing.assert_allclose(crop_person(image, center, size), expected, atol=1e-3)
    # A smaller interior crop (window cut on all four sides) too.
    center, size = np.array([450.0, 350.0]), 600.0
    sigma = antialias_sigma(size)
    blurred = gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)
    expected = cv2.warpAffine(blurred, crop_affine(center, size), (256, 256), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    np.testing.assert_allclose(crop_person(image, center, size), expected, atol=1e-3)


def test_normalisation_and_uint8_conversion():
    crops = np.zeros((1, 2, 2, 3), np.float32)
    crops[0, 0, 0] = [0.485 * 255, 0.456 * 255, 0.406 * 255]
    crops[0, 1, 1] = 255.0
    x = normalize_crops(crops)
    assert x.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(x[0, :, 1, 1].numpy(), [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
                               rtol=1e-5)
    frames = to_uint8_frames(torch.tensor([[[[0.0, 0.5, 1.0]]]]))
    assert frames.dtype == np.uint8 and frames.tolist() == [[[[0, 128, 255]]]]


# ---------------------------------------------------------------------------------------------------- rotations


def test_rot6d_hand_made():
    flip = rot6d_to_rotmat(torch.tensor([1.0, 0, 0, 0, -1, 0]))
    np.testing.assert_allclose(flip.numpy(), np.diag([1.0, -1.0, -1.0]), atol=1e-7)
    # Columns are normalised and Gram–Schmidt'ed: (2,0,0), (1,3,0) → identity.
    eye = rot6d_to_rotmat(torch.tensor([2.0, 0, 0, 1, 3, 0]))
    np.testing.assert_allclose(eye.numpy(), np.eye(3), atol=1e-7)
    r = rot6d_to_rotmat(torch.randn(50, 6, generator=torch.Generator().manual_seed(0)).double())
    np.testing.assert_allclose((r.transpose(-1, -2) @ r).numpy(), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(torch.linalg.det(r).numpy(), 1.0, atol=1e-12)


def rotmat_to_axis_angle(m):
    return matrix_to_axis_angle(m.numpy() if isinstance(m, torch.Tensor) else m)


def test_axis_angle_hand_made():
    np.testing.assert_allclose(rotmat_to_axis_angle(np.diag([1.0, -1.0, -1.0])), [math.pi, 0, 0], atol=1e-12)
    rz90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(rotmat_to_axis_angle(rz90), [0, 0, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(rotmat_to_axis_angle(np.eye(3)), [0, 0, 0], atol=1e-15)


def test_axis_angle_matches_scipy_including_near_pi_and_tiny_angles():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(40, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, math.pi, 30), [math.pi - 1e-7, math.pi - 1e-4, 1e-9, 1e-5, 0.5,
                                                           2.0, 3.0, 3.1, 3.14, 1.0]])
    rotvecs = axes * angles[:, None]
    got = rotmat_to_axis_angle(torch.from_numpy(Rotation.from_rotvec(rotvecs).as_matrix()))
    np.testing.assert_allclose(got, rotvecs, atol=1e-8)


def test_rot6d_to_axis_angle_round_trip():
    rotvecs = np.array([[0.3, -0.2, 0.1], [0.0, 2.5, 0.0], [-1.0, 1.0, 1.0]])
    mats = Rotation.from_rotvec(rotvecs).as_matrix()
    six = torch.from_numpy(np.concatenate([mats[:, :, 0], mats[:, :, 1]], axis=1))  # first two columns
    np.testing.assert_allclose(rotmat_to_axis_angle(rot6d_to_rotmat(six)), rotvecs, atol=1e-10)


# ---------------------------------------------------------------------------------------------------- camera


def test_full_image_focal_and_intrinsics():
    assert full_image_focal((640, 480)) == pytest.approx(12500.0)
    assert full_image_focal((576, 1024)) == pytest.approx(20000.0)
    np.testing.assert_allclose(intrinsics((640, 480), 12500.0), [[12500, 0, 320], [0, 12500, 240], [0, 0, 1]])


def test_cam_crop_to_full_hand_made():
    # f = 12500; b·s = 200·0.8 = 160 → tz = 2·12500/160 = 156.25; tx = 2·80/160 + 0.1; ty = 2·60/160 − 0.2.
    transl = cam_crop_to_full([[0.8, 0.1, -0.2]], [[400.0, 300.0]], [200.0], (640, 480), 12500.0)
    np.testing.assert_allclose(transl, [[1.1, 0.55, 156.25]], rtol=1e-9)


def test_cam_crop_to_full_projects_the_root_where_the_crop_camera_did():
    rng = np.random.default_rng(1)
    cams = np.column_stack([rng.uniform(0.5, 1.5, 6), rng.uniform(-0.3, 0.3, 6), rng.uniform(-0.3, 0.3, 6)])
    centers = rng.uniform(100, 500, (6, 2))
    sizes = rng.uniform(100, 400, 6)
    image_size = (640, 480)
    focal = full_image_focal(image_size)
    transl = cam_crop_to_full(cams, centers, sizes, image_size, focal)
    projected = (transl @ intrinsics(image_size, focal).T)
    projected = projected[:, :2] / projected[:, 2:]
    # In the crop (focal 5000 on 256 px, tz = 2·5000/(256 s)) the root lands at 128 + 128·s·t; mapped back
    # to the image that is centre + t·s·b/2.
    expected = centers + cams[:, 1:] * cams[:, :1] * sizes[:, None] / 2
    np.testing.assert_allclose(projected, expected, atol=1e-6)
    # Apparent size: f/tz pixels per metre = b·s/2.
    np.testing.assert_allclose(focal / transl[:, 2], sizes * cams[:, 0] / 2, rtol=1e-9)


def test_one_6d_layout_for_the_head_and_the_smoothing():
    from motionguide.pipelines.smpl.body.rotations import matrix_to_6d, sixd_to_matrix

    mats = Rotation.from_rotvec([[0.3, -0.2, 0.1], [0.0, 2.5, 0.0], [-1.0, 1.0, 1.0]]).as_matrix()
    six = matrix_to_6d(mats)  # what Smooth SMPL Motion filters
    np.testing.assert_allclose(six[:, :3], mats[:, :, 0])  # first column, then the second (HMR2's layout)
    np.testing.assert_allclose(rot6d_to_rotmat(torch.from_numpy(six)).numpy(), mats, atol=1e-12)
    np.testing.assert_allclose(sixd_to_matrix(six), mats, atol=1e-12)
