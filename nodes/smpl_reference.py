"""Reference Body from Pose: the reference person as a one-frame SMPL sequence built from their 2D keypoints alone
(standing, facing the camera, placed in their box), so the motion-file paths need no estimator file."""
from __future__ import annotations

import logging

from . import sockets as S

logger = logging.getLogger(__name__)

CATEGORY = "MotionGuide/smpl"


class MotionGuidePlaceReferenceBody:
    DESCRIPTION = ("The reference person as an SMPL sequence from their Detect Pose keypoints alone: the body stands "
                   "facing the camera, placed in the person's box (no estimator file). Set Body Shape (fit) then "
                   "fits its height and proportions to the same keypoints.")
    CATEGORY = CATEGORY
    FUNCTION = "place"
    RETURN_TYPES = (S.SMPL_SEQUENCE,)
    RETURN_NAMES = ("reference_motion",)
    OUTPUT_TOOLTIPS = ("One frame: the body standing in the reference person's box, in a pinhole camera of the "
                       "image, with the keypoints stored for Set Body Shape's fit; connect it (through Set Body "
                       "Shape) to Transfer SMPL Shape's reference_motion.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pose_keypoint": (S.POSE_KEYPOINT, {"tooltip": "The reference image's keypoints (Detect Pose on the "
                                                           "fitted reference image); the first frame is used."}),
            "smpl_model": (S.SMPL_MODEL, {"tooltip": "The body to place (Load Body Model; the built-in Anny body "
                                                     "for Set Body Shape's fit)."}),
            "person_index": ("INT", {"default": 0, "min": 0, "max": 63, "step": 1,
                                     "tooltip": "Which detected person is the reference (0 = the first)."}),
        }}

    def place(self, pose_keypoint, smpl_model, person_index=0):
        import numpy as np

        from ..pipelines.dwpose import skeleton as sk
        from ..pipelines.dwpose.keypoints import pose_keypoint_to_frames
        from ..pipelines.render.guidance_preview import standing_reference

        frames = pose_keypoint_to_frames(pose_keypoint)
        if not frames:
            raise ValueError("pose_keypoint holds no frame: connect Detect Pose run on the reference image.")
        frame = frames[0]
        if person_index >= frame.num_people:
            raise ValueError(f"pose_keypoint's first frame has {frame.num_people} people, so person_index "
                             f"{person_index} does not exist: Detect Pose found nobody there, or pick another index.")
        keypoints = np.concatenate([frame.keypoints[person_index, sk.BODY],
                                    frame.scores[person_index, sk.BODY, None]], 1).astype(np.float32)
        try:
            seq = standing_reference(smpl_model, keypoints, (frame.width, frame.height))
        except ValueError as exc:
            raise ValueError(f"Reference Body from Pose: {exc} Use a reference image where the whole person is "
                             "visible (Detect Pose's preview shows what was found).") from exc
        logger.info("Reference Body from Pose: person %d placed in box %s of a %dx%d image", person_index,
                    np.round(seq["bbox"][0]).astype(int).tolist(), frame.width, frame.height)
        return (seq,)
