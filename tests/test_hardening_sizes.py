"""Sizes from widgets and files are bounded before anything is allocated (issue 11 item 6)."""
import time

import numpy as np
import pytest

from motionguide.pipelines.dwpose import draw


def _person_frame(width, height):
    return {"people": [{"pose_keypoints_2d": [width * 0.5, height * 0.5, 0.9] * 18}],
            "canvas_width": width, "canvas_height": height}


def test_reference_canvas_is_unchanged_for_ordinary_sizes():
    assert draw.canvas_size(576, 1024) == (2160, 3840, 3.75)
    assert draw.canvas_size(1024, 576) == (3840, 2160, 3.75)
    assert draw.canvas_size(3840, 2160)[:2] == (3840, 2160)


def test_a_thin_draw_is_cheap():
    cw, ch, _ = draw.canvas_size(8192, 8)
    assert cw * ch * 3 < 64 * 2 ** 20  # was 2,211,840 × 2160 (13.3 GiB)
    start = time.perf_counter()
    image = draw.draw_pose_map(_person_frame(8192, 8), 8192, 8)
    assert image.shape == (8, 8192, 3) and image.any()
    assert time.perf_counter() - start < 5.0


def test_a_huge_pose_canvas_drawn_at_its_own_size_is_refused_up_front():
    from motionguide.nodes.pose import MotionGuideDrawPose

    with pytest.raises(ValueError, match=r"100000×100000.*8192.*width and height"):
        MotionGuideDrawPose().draw([_person_frame(100000, 100000)], width=0, height=0)


def test_a_huge_render_size_is_refused_before_posing_the_body():
    from motionguide.pipelines.render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints

    seq = dict(betas=np.zeros((1, 10)), global_orient=np.zeros((1, 3)), body_pose=np.zeros((1, 69)),
               transl=np.array([[0.0, 0.0, 5.0]]), image_size=(20000, 20000))
    for call in (render_sequence_maps, sequence_to_pose_keypoints):
        with pytest.raises(ValueError, match=r"20000×20000.*8192×8192.*width/height"):
            call(None, seq)  # the model is never reached
    with pytest.raises(ValueError, match=r"16384×16384"):
        render_sequence_maps(None, dict(seq, image_size=(512, 512)), width=16384, height=16384)
