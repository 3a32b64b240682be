"""DWPose stage: whole-body detection on onnxruntime, pose maps, alignment and tracking (docs/architecture.md,
*Reference algorithms*).

Importing this package is light (numpy, cv2); onnxruntime is imported only when a session is created.
"""
from .draw import STYLES, draw_pose_map, draw_pose_maps
from .keypoints import PoseFrame, frames_to_pose_keypoint, openpose_to_frame, person_boxes, pose_keypoint_to_frames

__all__ = [
    "STYLES", "PoseFrame", "draw_pose_map", "draw_pose_maps", "frames_to_pose_keypoint", "openpose_to_frame",
    "person_boxes", "pose_keypoint_to_frames",
]
