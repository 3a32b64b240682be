"""Socket type names shared by the pack's nodes (docs/architecture.md, *Types between nodes*). Core types keep core
names and payloads."""

IMAGE = "IMAGE"  # float32 [F,H,W,3] in 0..1 on CPU
VAE = "VAE"  # core VAE object (comfy.sd.VAE); Decode Video accepts SVD's
MASK = "MASK"  # float32 [F,H,W]
LATENT = "LATENT"  # {"samples": [F,4,H/8,W/8]} raw VAE space, plus pack keys (fps, has_reference_frame)
INT = "INT"
FLOAT = "FLOAT"
STRING = "STRING"
BOOLEAN = "BOOLEAN"

POSE_KEYPOINT = "POSE_KEYPOINT"  # list of per-frame OpenPose dicts, comfyui_controlnet_aux compatible, real scores
MOTIONGUIDE_MODEL = "MOTIONGUIDE_MODEL"  # loaded SVD/MimicMotion modules + device/dtype policy
DISPOSE_MODEL = "DISPOSE_MODEL"  # DisPose's loaded ControlNet + CMP / SD-1.5 paths
DISPOSE_GUIDANCE = "DISPOSE_GUIDANCE"  # one video's DisPose hints (motion field, keypoint features) + the ControlNet
SMPL_MODEL = "SMPL_MODEL"  # loaded body model, faces, part labels
SMPL_SEQUENCE = "SMPL_SEQUENCE"  # dict of float32 arrays (betas, global_orient, body_pose, transl, K, ...)
# The Wan animators' 3D joints (kijai NLFPredict): {"joints3d_nonparam": [[tensor(persons, 24, 3) mm per frame]]}
NLFPRED = "NLFPRED"
# Render SMPL Maps' bundle for the sampler: {"maps": {name: [F,H,W,C] 0..1}, frames, width, height, conventions}
# (pipelines/guidance/maps_bundle.py)
MOTIONGUIDE_GUIDANCE_MAPS = "MOTIONGUIDE_GUIDANCE_MAPS"
MOTIONGUIDE_GEOMETRY_ADAPTER = "MOTIONGUIDE_GEOMETRY_ADAPTER"  # a loaded GeometryAdapter (its .config inside)

# Hidden inputs ComfyUI fills in.
HIDDEN_UNIQUE_ID = "UNIQUE_ID"
HIDDEN_PROMPT = "PROMPT"
HIDDEN_EXTRA_PNGINFO = "EXTRA_PNGINFO"
