"""MotionGuide: pose-guided human video generation (SVD + MimicMotion + SMPL) for ComfyUI."""
from .nodes.comfy_adapter import register_model_folders
from .nodes.model_check import register_prompt_handler
from .nodes.registry import build_mappings
from .nodes.sample_inputs import install_sample_inputs

# One row per node: (module under nodes/, node id, display name). Ids are stable: never rename a shipped one.
NODE_TABLE = [
    ("sampling", "MotionGuideLoadModel", "Load Motion Model"),
    ("geometry_adapter", "MotionGuideLoadGeometryAdapter", "Load Geometry Adapter"),
    ("video", "MotionGuideFitReference", "Fit Reference Image"),
    ("pose", "MotionGuideDetectPose", "Detect Pose (DWPose)"),
    ("pose", "MotionGuideAlignPose", "Align Pose to Reference"),
    ("pose", "MotionGuideDrawPose", "Draw Pose Maps"),
    ("pose", "MotionGuideFaceCrops", "Face Crops (Wan-Animate)"),
    ("pose", "MotionGuideSavePose", "Save Pose Keypoints"),
    ("pose", "MotionGuideLoadPose", "Load Pose Keypoints"),
    ("smpl", "MotionGuideLoadSMPLModel", "Load Body Model"),
    ("smpl", "MotionGuideSetBodyShape", "Set Body Shape"),
    ("smpl_estimate", "MotionGuideEstimateSMPL", "Estimate SMPL (HMR2)"),
    ("smpl_reference", "MotionGuidePlaceReferenceBody", "Reference Body from Pose"),
    ("smpl", "MotionGuideLoadSMPLMotion", "Load SMPL Motion"),
    ("smpl", "MotionGuideSaveSMPLMotion", "Save SMPL Motion"),
    ("smpl", "MotionGuideSmoothSMPL", "Smooth SMPL Motion"),
    ("smpl", "MotionGuideTransferShape", "Transfer SMPL Shape"),
    ("smpl", "MotionGuideSetCamera", "Set SMPL Camera"),
    ("render", "MotionGuideRenderSMPL", "Render SMPL Maps"),
    ("render", "MotionGuideSMPLToPose", "SMPL to Pose Keypoints"),
    ("nlf", "MotionGuideSMPLToNLF", "SMPL to NLF Poses"),
    ("nlf", "MotionGuideNLFToSMPL", "NLF Poses to SMPL (IK fit)"),
    ("render", "MotionGuideRenderSCAIL", "Render SCAIL Pose"),
    ("dispose", "MotionGuideLoadDisPose", "Load DisPose"),
    ("dispose", "MotionGuidePrepareDisPose", "Prepare DisPose"),
    ("sampling", "MotionGuideSampler", "Pose-Guided Sampler"),
    ("video", "MotionGuideDecode", "Decode Video"),
]

register_model_folders()
install_sample_inputs()  # inside ComfyUI only: the templates' samples into input/motionguide/, never overwriting
register_prompt_handler()  # inside ComfyUI only: a queued prompt's missing model files are listed all at once
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = build_mappings(__name__ + ".nodes", NODE_TABLE)
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
