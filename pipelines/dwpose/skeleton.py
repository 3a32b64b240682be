"""Keypoint layouts and drawing tables of the DWPose stage, as data (docs/architecture.md, *Reference algorithms*).

The whole-body layout after the neck is inserted has 134 points: body 0–17 (OpenPose-18 order), feet 18–23,
face 24–91 (68 points), left hand 92–112 and right hand 113–133 (21 points each).
"""
from __future__ import annotations

NUM_RAW_KEYPOINTS = 133  # COCO-WholeBody, as the pose model emits them
NUM_KEYPOINTS = 134  # after the neck is inserted

BODY = slice(0, 18)
FEET = slice(18, 24)
FACE = slice(24, 92)
LEFT_HAND = slice(92, 113)
RIGHT_HAND = slice(113, 134)
NUM_BODY, NUM_FACE, NUM_HAND = 18, 68, 21

# OpenPose-18 names, in order.
BODY_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

# Neck = mean of these two COCO points (left/right shoulder); inserted at index 17 before the remap.
NECK_FROM = (5, 6)
NECK_INDEX = 17
NECK_SCORE_THRESHOLD = 0.3
# After inserting the neck, position OPENPOSE_IDX[i] takes the point at MMPOSE_IDX[i] (mmpose → OpenPose order).
MMPOSE_IDX = (17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3)
OPENPOSE_IDX = (1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17)

# Body limbs as 0-based OpenPose-18 pairs; the reference draws only the first 17 (the two shoulder–ear limbs never).
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
DRAWN_LIMBS = 17
# OpenPose palette, one colour per limb and per joint; written into a BGR canvas, so the final BGR→RGB swap of
# the reference shows (255, 0, 0) as blue.
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
    (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
)

# Body ids used to fit driving poses onto the reference body (nose, neck, shoulders, hips, knees, ankles, eyes, ears).
ALIGN_IDS = (0, 1, 2, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)
CONFIDENCE_THRESHOLD = 0.3

# Bones for retargeting, parent → child, walked from the neck outwards (a tree rooted at the neck).
BONE_TREE = (
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
    (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),
    (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
)
