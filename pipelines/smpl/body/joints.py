"""SMPL's skeleton as data: the kinematic tree and the OpenPose-18 map, defined once for the whole pack.

Lists (index arrays for numpy/torch); treat them as constants."""
from __future__ import annotations

# Parent of each of SMPL's 24 joints (-1 for the pelvis); parents come before their children.
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL's neutral rest joints, approximately (metres; x = body's left, y up, z forward; T-pose): the joint
# directions the Anny retarget aligns to and the synthetic test body's skeleton.
SMPL_REST_JOINTS = (
    (0.000, -0.223, 0.028), (0.068, -0.314, 0.021), (-0.068, -0.314, 0.021), (0.000, -0.114, 0.002),
    (0.104, -0.689, 0.030), (-0.104, -0.689, 0.030), (0.000, 0.024, 0.030), (0.088, -1.088, -0.013),
    (-0.088, -1.088, -0.013), (0.000, 0.078, 0.030), (0.118, -1.144, 0.111), (-0.118, -1.144, 0.111),
    (0.000, 0.288, 0.003), (0.078, 0.194, 0.008), (-0.078, 0.194, 0.008), (0.000, 0.352, 0.055),
    (0.173, 0.227, 0.003), (-0.173, 0.227, 0.003), (0.434, 0.215, -0.020), (-0.434, 0.215, -0.020),
    (0.684, 0.222, -0.025), (-0.684, 0.222, -0.025), (0.768, 0.214, -0.035), (-0.768, 0.214, -0.035),
)
SMPL_JOINT_NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
                    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar",
                    "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                    "right_wrist", "left_hand", "right_hand")
# smplx's 45 SMPL joints (24 skeleton joints, then nose, right eye, left eye, right ear, left ear, feet, finger
# tips) → OpenPose-18 (nose, neck, R shoulder/elbow/wrist, L shoulder/elbow/wrist, R hip/knee/ankle, L hip/knee/
# ankle, R eye, L eye, R ear, L ear). Index 1 (SMPL's neck joint) is replaced by the shoulder midpoint.
OPENPOSE18_FROM_SMPL45 = [24, 12, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28]
OPENPOSE18_NAMES = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                    "right_eye", "left_eye", "right_ear", "left_ear")
HIP_OUTWARD = 0.25  # HMR2's update_hips: SMPL's hips move 25 % of the hip distance outward ...
HIP_TO_PELVIS = 0.5  # ... and half-way towards the pelvis's offset from the hips' midpoint


def openpose18_from_smpl(joints, *, hip_outward: float = HIP_OUTWARD, hip_to_pelvis: float = HIP_TO_PELVIS):
    """OpenPose-18 3D points `(T, 18, 3)` from smplx's joints `(T, 45, 3)` (numpy or torch, same kind back).

    SMPL's hips sit medial and high compared with 2D detectors' hips, so they are moved like HMR2 does; the neck
    is the 3D shoulder midpoint (DWPose's neck is the shoulders' midpoint).
    """
    if joints.ndim != 3 or joints.shape[1] < 29:
        raise ValueError(f"joints must be [T,45,3] (smplx SMPL joints), got {tuple(joints.shape)}.")
    op = joints[:, OPENPOSE18_FROM_SMPL45]
    op = op.clone() if hasattr(op, "clone") else op.copy()
    right, left = op[:, 8] + 0, op[:, 11] + 0
    towards_pelvis = hip_to_pelvis * (joints[:, 0] - 0.5 * (right + left))
    op[:, 8] = right + hip_outward * (right - left) + towards_pelvis
    op[:, 11] = left + hip_outward * (left - right) + towards_pelvis
    op[:, 1] = 0.5 * (op[:, 2] + op[:, 5])
    return op
