"""The animators' skeleton styles, pixel for pixel against arrays made by each model's own drawing code.

``tests/data/skeleton_styles.npz`` was produced offline by running, on fixed random whole-body keypoints (with
scores straddling every threshold), UniAnimate-DiT's ``run_align_pose.py`` (``DWposeDetector`` post-processing +
``draw_pose``, written with ``cv2.imwrite`` and read back with PIL), SteadyDancer's ``preprocess/pose`` detector
post-processing + ``draw_pose`` + the ``BGR2RGB`` of ``pose_align.py``, StableAnimator's ``DWPose`` detector
post-processing + ``skeleton_extraction.draw_pose`` (``cv2.imwrite``, PIL), and Wan2.2's
``split_pose2d_kps_to_aa`` + ``AAPoseMeta.from_humanapi_meta`` + ``draw_aapose_by_meta_new``, from snapshots
UniAnimate-DiT@884ac92, SteadyDancer@866a721, StableAnimator@020e7f2, Wan2.2@42bf4cf. Only the arrays are kept.
Keypoints are in the 134-point layout (OpenPose-18, feet, face, hands) on ``*_canvas``; outputs are ``*_size``.
"""
from pathlib import Path

import numpy as np
import pytest
from motionguide.pipelines.dwpose import draw, keypoints
from motionguide.pipelines.dwpose import skeleton as sk
from motionguide.pipelines.dwpose.draw_styles import wan_stick_width
from motionguide.pipelines.dwpose.keypoints import PoseFrame

DATA = np.load(Path(__file__).parent / "data" / "skeleton_styles.npz")


def frames(tag):
    width, height = DATA[f"{tag}_canvas"]
    return [PoseFrame(kp[None], sc[None], int(width), int(height)) for kp, sc in zip(DATA[f"{tag}_kp"], DATA[f"{tag}_sc"])]


def drawn(tag, style, **options):
    width, height = (int(v) for v in DATA[f"{tag}_size"])
    return np.stack([draw.draw_pose_map(f, width, height, style=style, **options) for f in frames(tag)])


def assert_same(ours, theirs):
    differing = int((ours != theirs).any(-1).sum())
    assert differing == 0, f"{differing} pixels differ"
    assert theirs.any(), "reference image is empty"


@pytest.mark.parametrize("tag", ["unianimate", "unianimate_small"])
@pytest.mark.parametrize("style", ["unianimate", "animate_x"])
def test_unianimate_matches_its_drawer_with_and_without_face(tag, style):
    assert_same(drawn(tag, style, face=False), DATA[f"{tag}_noface"])
    assert_same(drawn(tag, style, face=True), DATA[f"{tag}_face"])


def test_steadydancer_matches_its_drawer():
    assert_same(drawn("steadydancer", "steadydancer", face=False), DATA["steadydancer_noface"])
    assert_same(drawn("steadydancer", "steadydancer", face=True), DATA["steadydancer_face"])


def test_stableanimator_is_mimicmotion_without_the_swap():
    ours = drawn("stableanimator", "stableanimator")
    assert_same(ours, DATA["stableanimator_out"])
    mimic = drawn("stableanimator", "reference")
    np.testing.assert_array_equal(mimic, ours[..., ::-1])


@pytest.mark.parametrize("tag", ["wan_small", "wan_large"])
def test_wan_animate_matches_draw_aapose_new(tag):
    assert_same(drawn(tag, "wan_animate"), DATA[f"{tag}_out"])


def test_wan_widths_follow_the_image_size():
    assert wan_stick_width(416, 720) == (1, 1)
    assert wan_stick_width(720, 1280) == (2, 1)
    assert wan_stick_width(1080, 1920) == (4, 2)


def test_switches_remove_what_they_name():
    tag = "unianimate"
    with_feet = drawn(tag, "unianimate", face=False)
    no_feet = drawn(tag, "unianimate", face=False, feet=False)
    # UniAnimate's foot limbs are (170,255,255) / (255,255,0) before the swap and ×0.6; without feet they vanish.
    assert (with_feet != no_feet).any()
    no_body = drawn(tag, "unianimate", body=False, hands=False, face=False)
    assert not no_body.any()
    assert not drawn("wan_small", "wan_animate", body=False, hands=False).any()


def test_plain_styles_draw_only_the_first_person():
    one = frames("unianimate")[0]
    two = PoseFrame(np.concatenate([one.keypoints, one.keypoints + 40]), np.concatenate([one.scores] * 2),
                    one.width, one.height)
    for style in ("unianimate", "wan_animate"):
        np.testing.assert_array_equal(draw.draw_pose_map(two, 256, 384, style=style),
                                      draw.draw_pose_map(one, 256, 384, style=style))
    no_hands = {"hands": False, "face": False}
    np.testing.assert_array_equal(draw.draw_pose_map(two, 256, 384, style="steadydancer", **no_hands),
                                  draw.draw_pose_map(one, 256, 384, style="steadydancer", **no_hands))


def _people(count: int) -> PoseFrame:
    """``count`` people, each a copy of the SteadyDancer sample person shifted by 50 px per index, every hand
    point confident, so which hands are drawn shows in the pixels."""
    one = frames("steadydancer")[0]
    scores = one.scores.copy()
    scores[0, sk.LEFT_HAND] = scores[0, sk.RIGHT_HAND] = 0.9
    shifts = np.arange(count, dtype=np.float64)[:, None, None] * np.array([50.0, 30.0])
    return PoseFrame(one.keypoints + shifts, np.repeat(scores, count, 0), one.width, one.height)


def _hands_only(frame: PoseFrame, hands: list[tuple[int, int]]) -> PoseFrame:
    """One person holding exactly the listed (person, side) hands of ``frame`` in its left/right slots."""
    keypoints = np.zeros((1, sk.NUM_KEYPOINTS, 2))
    scores = np.zeros((1, sk.NUM_KEYPOINTS))
    present = np.zeros((1, 2), bool)
    for slot, (person, side) in enumerate(hands):
        source, target = (sk.LEFT_HAND, sk.RIGHT_HAND)[side], (sk.LEFT_HAND, sk.RIGHT_HAND)[slot]
        keypoints[0, target], scores[0, target] = frame.keypoints[person, source], frame.scores[person, source]
        present[0, slot] = True
    return PoseFrame(keypoints, scores, frame.width, frame.height, hands_present=present)


@pytest.mark.parametrize("count", [2, 3])
def test_steadydancer_draws_the_first_two_hands_of_its_stacked_hand_array(count):
    """SteadyDancer stacks every left hand, then every right hand, and draws the first two rows: with two or three
    people those are person 0's and person 1's LEFT hands (its training data), never person 0's right hand."""
    frame = _people(count)
    width, height = (int(v) for v in DATA["steadydancer_size"])
    ours = draw.draw_pose_map(frame, width, height, style="steadydancer", body=False, face=False)
    expected = draw.draw_pose_map(_hands_only(frame, [(0, 0), (1, 0)]), width, height, style="steadydancer",
                                  body=False, face=False)
    np.testing.assert_array_equal(ours, expected)
    wrong = draw.draw_pose_map(_hands_only(frame, [(0, 0), (0, 1)]), width, height, style="steadydancer",
                               body=False, face=False)
    assert int((ours != wrong).any(-1).sum()) > 500  # whole hand skeletons apart, not a few pixels
    # one person: its own two hands, as before
    single = _people(1)
    np.testing.assert_array_equal(
        draw.draw_pose_map(single, width, height, style="steadydancer", body=False, face=False),
        draw.draw_pose_map(_hands_only(single, [(0, 0), (0, 1)]), width, height, style="steadydancer", body=False,
                           face=False))


def test_feet_survive_pose_keypoint_round_trip():
    frame = frames("wan_small")[0]
    data = keypoints.frame_to_openpose(frame)
    assert len(data["people"][0][keypoints.FOOT_KEY]) == 18
    back = keypoints.openpose_to_frame(data)
    np.testing.assert_allclose(back.keypoints[0, sk.FEET], frame.keypoints[0, sk.FEET])
    np.testing.assert_allclose(back.scores[0, sk.FEET], frame.scores[0, sk.FEET])
    assert_same(np.stack([draw.draw_pose_map(back, 416, 720, style="wan_animate")]), DATA["wan_small_out"][:1])


def test_unknown_style_names_the_choices():
    with pytest.raises(ValueError, match="wan_animate"):
        draw.draw_pose_map(frames("wan_small")[0], 64, 64, style="scail2")


def test_every_style_has_one_drawer():
    from motionguide.pipelines import options
    from motionguide.pipelines.dwpose import draw

    assert tuple(draw.DRAWERS) == options.POSE_STYLES
