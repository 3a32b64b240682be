"""The example workflows, described once: nodes, links (``("src id", slot)``), values that differ from the node
defaults, canvas positions, the Markdown note. ``make_example_workflows.py`` turns each into UI + API files."""
from __future__ import annotations

from dataclasses import dataclass, field

# The samples: copied into ComfyUI's input/motionguide/ when the pack loads (nodes/sample_inputs.py).
REFERENCE = "motionguide/motionguide_reference.png"
DRIVING = "motionguide/motionguide_driving.mp4"
MOTION = "motionguide/motionguide_motion.npz"
SVD = "stable-video-diffusion-img2vid-xt-1-1"
MIMIC = "MimicMotion_1-1.pth"
HMR2 = "hmr2_epoch_35.ckpt"
SMPL = "SMPL_NEUTRAL.pkl"
BODY = "anny (built-in)"  # the licence-free built-in body: no model file
VHS_MP4 = {"pix_fmt": "yuv420p", "crf": 19, "save_metadata": True, "trim_to_audio": False}  # h264-mp4's own widgets


@dataclass
class N:
    id: int
    type: str
    pos: tuple[int, int]
    inputs: dict = field(default_factory=dict)
    title: str | None = None
    models: tuple[str, ...] = ()  # registry ids listed in properties.models
    size: tuple[int, int] | None = None
    extra: dict = field(default_factory=dict)  # widgets the node adds at run time (VHS format options)


@dataclass
class Spec:
    name: str  # id: the API twin headless/workflows_api/<name>.json, the demo, the docs
    uuid: str
    title: str  # on the thumbnail
    # example_workflows/<file_name>.json: ComfyUI's templates browser shows the name as the title AND as the
    # description (with - and _ turned into spaces): no hyphens or underscores, so both read the same
    file_name: str
    note: str
    nodes: list[N]
    note_pos: tuple[int, int] = (-480, 0)


def L(node: int, slot: int = 0) -> tuple[str, int]:
    return (str(node), slot)


def _video_in(first: int, y: int = 420):
    """Core video loading: LoadVideo -> GetVideoComponents (frames, audio, fps)."""
    return [
        N(first, "LoadVideo", (0, y), {"file": DRIVING}, "Driving video"),
        N(first + 1, "GetVideoComponents", (340, y), {"video": L(first)}),
    ]


def _generate(first: int, reference: int, poses: int, fps_src, x: int, y: int = 0, **sampler):
    """Load model -> sampler -> decode -> CreateVideo -> SaveVideo."""
    model, sample, decode, create, save = range(first, first + 5)
    sampler_inputs = {"model": L(model), "reference_image": L(reference, 0), "pose_images": L(poses), "seed": 42}
    if fps_src is not None:
        sampler_inputs["video_fps"] = fps_src
    sampler_inputs.update(sampler.pop("sampler", {}))
    return [
        N(model, "MotionGuideLoadModel", (x, y - 260),
          {"svd_base": SVD, "mimicmotion_checkpoint": MIMIC, **sampler.pop("model", {})},
          models=("svd_xt_1_1", "mimicmotion_1_1")),
        N(sample, "MotionGuideSampler", (x, y), sampler_inputs),
        N(decode, "MotionGuideDecode", (x + 360, y),
          {"model": L(model), "latent": L(sample), **sampler.pop("decode", {})}),
        N(create, "CreateVideo", (x + 360, y + 220), {"images": L(decode, 0), "fps": L(decode, 1)}),
        N(save, "SaveVideo", (x + 720, y + 220), {"video": L(create), "filename_prefix": "video/MotionGuide"},
          size=(360, 400)),
    ]


def _dwpose(first: int, images, x: int, y: int, title: str):
    return N(first, "MotionGuideDetectPose", (x, y), {"images": images}, title, models=("yolox_l", "dwpose_ll_384"))


def _reference_body():
    """The reference person's body from their keypoints (id 8): no estimator file for the motion-file paths."""
    return N(8, "MotionGuidePlaceReferenceBody", (1060, -60), {"pose_keypoint": L(5), "smpl_model": L(7)},
             "Reference body (from its keypoints)")


MIMICMOTION = Spec(
    name="mimicmotion_pose_video",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000001",
    title="MimicMotion: reference image + driving video",
    file_name="MimicMotion, animate an image with a driving video",
    note="""
# MimicMotion: animate a picture with a video's motion

**Reference image + driving video → DWPose → align → pose maps → pose-guided sampler → video.**

1. **Reference image**: one person, full body visible. *Fit Reference Image* crops it to the model's size
   (576 → 576×1024 portrait).
2. **Driving video**: the motion. *Detect Pose* finds the body, hands and face on every frame (real detector
   scores are kept: uncertain limbs are drawn dimmer, which the model was trained to read).
3. **Align Pose** moves and scales the driving skeleton onto the reference person; **Draw Pose Maps** renders
   the maps the sampler follows (frame 0 = the reference's own pose). The preview shows them.
4. **Pose-Guided Sampler** runs SVD-XT 1.1 with MimicMotion's PoseNet over overlapping tiles of frames
   (progressive latent fusion), so any length works. **Decode Video** → **Save Video**.

Video in/out uses VideoHelperSuite (*select_every_nth* 2 turns the 24 fps sample into 12 fps; set the
sampler's *video_fps* to match). Core *Load Video* + *Get Video Components* and *Create Video* + *Save Video*
connect the same way (frames + fps): see the SMPL example.

**This needs an NVIDIA GPU.** At these sizes (576×1024, 25 steps) a CPU is no option: even the test suite's tiny
random models take over 14 minutes there, and the real 1.5-billion-parameter UNet is far slower. On a CPU, run the
headless smoke demo instead (`python custom_nodes/motionguide/cli.py demo --smoke`: tiny models, 128×192, 3 steps,
a minute or two), which proves the graph runs but animates nothing.

Tips: 25 steps and cfg 2.0 are the reference settings. *tile_size* 16 keeps a small GPU's memory low; on a big GPU
set it to 72 (the node's default, what MimicMotion 1.1 was trained with).
""",
    # Node ids and values match the demo (`cli.py demo`, tests/test_demo_workflow.py): keep them stable.
    nodes=[
        N(1, "LoadImage", (0, 0), {"image": REFERENCE}, "Reference image", size=(300, 330)),
        N(2, "VHS_LoadVideo", (0, 420), {"video": DRIVING, "force_rate": 0, "custom_width": 0, "custom_height": 0,
                                          "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 2,
                                          "format": "None"},
          "Driving video", size=(300, 420)),
        N(3, "MotionGuideFitReference", (340, 0), {"image": L(1), "resolution": 576}),
        _dwpose(4, L(3), 700, -60, "Detect reference pose"),
        _dwpose(5, L(2), 700, 300, "Detect driving poses"),
        N(6, "MotionGuideAlignPose", (1060, 120), {"driving_pose": L(5), "reference_pose": L(4)}),
        N(7, "MotionGuideDrawPose", (1420, 120), {"pose_keypoint": L(6), "width": L(3, 1), "height": L(3, 2)}),
        N(12, "PreviewImage", (1420, 420), {"images": L(7)}, "Pose maps", size=(300, 330)),
        N(8, "MotionGuideLoadModel", (1780, -260),
          {"svd_base": SVD, "mimicmotion_checkpoint": MIMIC}, models=("svd_xt_1_1", "mimicmotion_1_1")),
        N(9, "MotionGuideSampler", (1780, 0),
          {"model": L(8), "reference_image": L(3), "pose_images": L(7), "seed": 42, "video_fps": 12.0,
           "tile_size": 16, "tile_overlap": 6},
          "Pose-Guided Sampler"),
        N(10, "MotionGuideDecode", (2140, 0), {"model": L(8), "latent": L(9)}),
        N(11, "VHS_VideoCombine", (2500, 0), {"images": L(10, 0), "frame_rate": L(10, 1), "loop_count": 0,
                                              "filename_prefix": "MotionGuide_demo", "format": "video/h264-mp4",
                                              "pingpong": False, "save_output": True}, "Save video", size=(360, 460),
          extra=VHS_MP4),
    ],
)

LONG_VIDEO = Spec(
    name="long_video_12gb",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000004",
    title="Long video on a 12-16 GB GPU",
    file_name="Long videos on a 12 to 16 GB GPU",
    note="""
# Long videos on a 12–16 GB GPU

The MimicMotion path tuned for hundreds of frames on a consumer GPU:

* **Load Video (VideoHelperSuite)** reads the whole clip (*frame_load_cap* 0); *select_every_nth* 2 halves a
  30 fps clip to 15 fps, the rate MimicMotion was trained at, and halves the work.
* **Load Motion Model**: *precision* fp16, *memory_mode* **sequential_offload**: only the part in use (CLIP,
  VAE, UNet) sits on the GPU.
* **Sampler**: *tile_size* 16 with *tile_overlap* 6 keeps each UNet call small; the video length only adds
  latents (a few MB per frame), not activations. *unet_batch* 1.
* **Decode Video**: *chunk_size* 4 with *chunk_overlap* 2 so chunk seams are cross-faded.
* **Video Combine** writes an H.264 MP4 at the loaded frame rate.

Expect roughly (frames / 10) × steps UNet calls. Raise *tile_size* toward 72 when memory allows: fewer seams
and closer to how the model was trained. Needs ComfyUI-VideoHelperSuite for the two video nodes.
""",
    nodes=[
        N(1, "LoadImage", (0, 0), {"image": REFERENCE}, "Reference image", size=(300, 330)),
        N(2, "VHS_LoadVideo", (0, 420), {"video": DRIVING, "force_rate": 0, "custom_width": 0, "custom_height": 0,
                                          "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 2,
                                          "format": "None"},
          "Driving video (long)", size=(300, 420)),
        N(4, "MotionGuideFitReference", (340, 0), {"image": L(1), "resolution": 576}),
        _dwpose(5, L(4), 700, -60, "Detect Pose (reference)"),
        _dwpose(6, L(2), 700, 300, "Detect Pose (driving)"),
        N(7, "MotionGuideAlignPose", (1060, 120), {"driving_pose": L(6), "reference_pose": L(5)}),
        N(8, "MotionGuideDrawPose", (1420, 120), {"pose_keypoint": L(7), "width": L(4, 1), "height": L(4, 2)}),
        N(10, "MotionGuideLoadModel", (1780, -260),
          {"svd_base": SVD, "mimicmotion_checkpoint": MIMIC, "precision": "fp16", "memory_mode": "sequential_offload"},
          models=("svd_xt_1_1", "mimicmotion_1_1")),
        N(11, "MotionGuideSampler", (1780, 0),
          {"model": L(10), "reference_image": L(4), "pose_images": L(8), "seed": 42, "tile_size": 16,
           "tile_overlap": 6, "video_fps": 15.0, "unet_batch": 1}),
        N(12, "MotionGuideDecode", (2140, 0), {"model": L(10), "latent": L(11), "chunk_size": 4, "chunk_overlap": 2}),
        N(13, "VHS_VideoCombine", (2500, 0), {"images": L(12, 0), "frame_rate": L(12, 1), "loop_count": 0,
                                              "filename_prefix": "MotionGuide/long", "format": "video/h264-mp4",
                                              "pingpong": False, "save_output": True}, size=(360, 460),
          extra=VHS_MP4),
    ],
)

SMPL_GUIDED = Spec(
    name="smpl_guided_video",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000002",
    title="SMPL 3D guidance: reference image + driving video",
    file_name="SMPL 3D guidance, image and driving video",
    note="""
# SMPL-guided animation: the driving motion on the reference person's own body

2D pose transfer copies the driving person's limb lengths and breaks on turns. This path lifts both people to
3D (SMPL) first:

1. **Detect Pose** on the reference and on every driving frame (person boxes + keypoints for the estimator).
2. **Estimate SMPL (HMR2)** on both; **Smooth SMPL Motion** removes jitter from the driving estimate.
3. **Load Body Model** uses the built-in Anny body (no files, no licence); **Set Body Shape** fits its height
   and proportions to the reference person's keypoints (set gender, build and weight with its sliders).
4. **Transfer SMPL Shape**: the driving joint rotations on the *reference* body shape, placed in the
   reference camera, feet on the reference ground.
5. **SMPL to Pose Keypoints** projects the joints (hidden joints get a lower confidence, so they are drawn
   dimmer) and grafts the driving hands and face; **Draw Pose Maps** draws them.
6. **Batch Images** puts the reference image's own pose map first: the sampler expects frame 0 to be the
   reference pose.
7. **Render SMPL Maps** shows depth, normals and body parts as previews only: the MimicMotion model is guided by
   the pose maps alone.

The built-in body builds a one-time cache (~1 min) in `models/anny/` on first use. With SMPL files
(smpl.is.tue.mpg.de) choose `auto (by gender)` in Load Body Model and bypass Set Body Shape.
""",
    nodes=[
        N(1, "LoadImage", (0, 0), {"image": REFERENCE}, "Reference image", size=(300, 330)),
        *_video_in(2),
        N(4, "MotionGuideFitReference", (340, 0), {"image": L(1), "resolution": 576}),
        _dwpose(5, L(4), 700, -60, "Detect Pose (reference)"),
        _dwpose(6, L(3), 700, 360, "Detect Pose (driving)"),
        N(7, "MotionGuideLoadSMPLModel", (700, 760), {"model_file": BODY, "gender": "neutral"}),
        N(26, "MotionGuideSetBodyShape", (1420, -60), {"motion": L(8), "smpl_model": L(7), "mode": "fit"},
          "Set Body Shape (reference)"),
        N(8, "MotionGuideEstimateSMPL", (1060, -60), {"images": L(4), "pose_keypoint": L(5), "estimator": HMR2},
          "Estimate SMPL (reference)", models=("hmr2",)),
        N(9, "MotionGuideEstimateSMPL", (1060, 360),
          {"images": L(3), "pose_keypoint": L(6), "fps": L(3, 2), "estimator": HMR2},
          "Estimate SMPL (driving)", models=("hmr2",)),
        N(10, "MotionGuideSmoothSMPL", (1420, 360), {"motion": L(9), "smpl_model": L(7)}),
        N(11, "MotionGuideTransferShape", (1780, 160), {"driving_motion": L(10), "reference_motion": L(26),
                                                        "smpl_model": L(7)}),
        N(12, "MotionGuideSMPLToPose", (2140, 160), {"smpl_sequence": L(11), "smpl_model": L(7), "width": L(4, 1),
                                                     "height": L(4, 2), "driving_pose": L(6)}),
        N(13, "MotionGuideDrawPose", (2140, -160), {"pose_keypoint": L(5), "width": L(4, 1), "height": L(4, 2)},
          "Draw Pose (reference)"),
        N(14, "MotionGuideDrawPose", (2500, 160), {"pose_keypoint": L(12), "width": L(4, 1), "height": L(4, 2)},
          "Draw Pose (driving, from SMPL)"),
        N(15, "ImageBatch", (2860, 0), {"image1": L(13), "image2": L(14)}, "Reference pose first"),
        N(16, "MotionGuideRenderSMPL", (2140, 560), {"smpl_sequence": L(11), "smpl_model": L(7), "width": L(4, 1),
                                                     "height": L(4, 2)}),
        N(17, "PreviewImage", (2500, 560), {"images": L(16, 0)}, "Depth"),
        N(18, "PreviewImage", (2800, 560), {"images": L(16, 1)}, "Normals"),
        N(19, "PreviewImage", (3100, 560), {"images": L(16, 2)}, "Body parts"),
        N(20, "PreviewImage", (2860, 220), {"images": L(15)}, "Pose maps"),
        *_generate(21, reference=4, poses=15, fps_src=L(3, 2), x=3220),
    ],
)

SMPL_MOTION_ORBIT = Spec(
    name="smpl_motion_camera_orbit",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000003",
    title="Reference image + SMPL motion file + camera orbit",
    file_name="SMPL motion file and a camera orbit",
    note="""
# Animate from a 3D motion file, with a moving camera

No driving video at all: the motion comes from an SMPL motion file (`.npz` saved by *Save SMPL Motion*, or
AMASS / 4D-Humans / WHAM / GVHMR results via *Load SMPL Motion*'s formats) and the camera is yours.

1. **Reference Body from Pose** stands the built-in body (Load Body Model: `anny (built-in)`, no files) in the
   reference person's box; **Set Body Shape** fits its height and proportions to the person's keypoints. No
   estimator file is needed (Estimate SMPL with HMR2 can replace it for a person who is not standing).
2. **Load SMPL Motion** reads the motion (the sample `motionguide_motion.npz`: walking on the spot and waving).
3. **Transfer SMPL Shape** puts the motion on the reference body, standing where the reference stands.
4. **Set SMPL Camera** with *animate* on orbits the camera from *yaw* 0° to *yaw_end* 60° (eased), so the
   person turns in the frame: MimicMotion sees poses it could never get from a fixed 2D video.
5. **SMPL to Pose Keypoints** → **Draw Pose Maps**; **Batch Images** puts the reference's own pose first.

Put your motion file into ComfyUI's `input/` folder. Large yaw angles show the back of a person the
reference image only shows from the front: expect the model to invent it.
""",
    nodes=[
        N(1, "LoadImage", (0, 0), {"image": REFERENCE}, "Reference image", size=(300, 330)),
        N(4, "MotionGuideFitReference", (340, 0), {"image": L(1), "resolution": 576}),
        _dwpose(5, L(4), 700, -60, "Detect Pose (reference)"),
        N(7, "MotionGuideLoadSMPLModel", (0, 420), {"model_file": BODY, "gender": "neutral"}),
        N(26, "MotionGuideSetBodyShape", (1420, -60), {"motion": L(8), "smpl_model": L(7), "mode": "fit"},
          "Set Body Shape (reference)"),
        _reference_body(),
        N(9, "MotionGuideLoadSMPLMotion", (340, 420), {"motion_file": MOTION, "width": L(4, 1),
                                                       "height": L(4, 2), "smpl_model": L(7)}),
        N(11, "MotionGuideTransferShape", (1060, 360), {"driving_motion": L(9), "reference_motion": L(26),
                                                        "smpl_model": L(7), "trajectory": "lock_root"}),
        N(12, "MotionGuideSetCamera", (1420, 360), {"motion": L(11), "smpl_model": L(7), "animate": True,
                                                    "yaw": 0.0, "yaw_end": 60.0, "easing": "ease_in_out"},
          "Camera orbit"),
        N(13, "MotionGuideSMPLToPose", (1780, 360), {"smpl_sequence": L(12), "smpl_model": L(7), "width": L(4, 1),
                                                     "height": L(4, 2)}),
        N(14, "MotionGuideDrawPose", (2140, 360), {"pose_keypoint": L(13), "width": L(4, 1), "height": L(4, 2)},
          "Draw Pose (from SMPL)"),
        N(15, "MotionGuideDrawPose", (1420, -60), {"pose_keypoint": L(5), "width": L(4, 1), "height": L(4, 2)},
          "Draw Pose (reference)"),
        N(16, "ImageBatch", (2500, 160), {"image1": L(15), "image2": L(14)}, "Reference pose first"),
        N(17, "PreviewImage", (2500, 420), {"images": L(16)}, "Pose maps"),
        *_generate(21, reference=4, poses=16, fps_src=L(9, 2), x=2860),
    ],
)

def _retarget(resolution: int = 512):
    """Reference image + SMPL motion file → Transfer SMPL Shape (ids 1–11, 26): the 3D retarget every animator
    template starts from (the motion on the reference person's body, fitted on the built-in body, in the
    reference camera)."""
    return [
        N(1, "LoadImage", (0, 0), {"image": REFERENCE}, "Reference image", size=(300, 330)),
        N(4, "MotionGuideFitReference", (340, 0), {"image": L(1), "resolution": resolution}),
        _dwpose(5, L(4), 700, -60, "Detect Pose (reference)"),
        N(7, "MotionGuideLoadSMPLModel", (0, 420), {"model_file": BODY, "gender": "neutral"}),
        _reference_body(),
        N(26, "MotionGuideSetBodyShape", (1420, -60), {"motion": L(8), "smpl_model": L(7), "mode": "fit"},
          "Set Body Shape (reference)"),
        N(9, "MotionGuideLoadSMPLMotion", (340, 420), {"motion_file": MOTION, "width": L(4, 1),
                                                       "height": L(4, 2), "smpl_model": L(7)}),
        N(11, "MotionGuideTransferShape", (1060, 360), {"driving_motion": L(9), "reference_motion": L(26),
                                                        "smpl_model": L(7), "trajectory": "lock_root"},
          "Retarget in 3D (Transfer SMPL Shape)"),
    ]


def _skeleton(first: int, x: int, y: int, title: str, **draw):
    """SMPL to Pose Keypoints (ids ``first``) → Draw Pose Maps (``first + 1``) of the retargeted motion (id 11) at
    the fitted reference's size, with Draw Pose options ``draw`` (style, face)."""
    size = {"width": L(4, 1), "height": L(4, 2)}
    return [
        N(first, "MotionGuideSMPLToPose", (x, y), {"smpl_sequence": L(11), "smpl_model": L(7), **size}),
        N(first + 1, "MotionGuideDrawPose", (x + 360, y), {"pose_keypoint": L(first), **size, **draw}, title),
    ]


_RETARGET_NOTE = """The motion comes from an SMPL motion file (the sample `motionguide_motion.npz`, or your own via *Load
SMPL Motion*; or a driving video through *Estimate SMPL*, or an NLF result through *NLF Poses to SMPL*).
**Transfer SMPL Shape** puts it on the reference person's own body in 3D (limb lengths, height, where they
stand), so a child can dance an adult's dance without stretched limbs; **Set SMPL Camera** can move the camera.

The body is the built-in one (*Load Body Model*: `anny (built-in)`, no files; a one-time cache of ~1 min in
`models/anny/`), placed in the reference person's box by *Reference Body from Pose* and shaped to them by *Set
Body Shape*; SMPL files work too. This pack's model files: only `models/dwpose/yolox_l.onnx` +
`dw-ll_ucoco_384.onnx` (no estimator file)."""

SCAIL = Spec(
    name="animator_scail",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000005",
    title="SCAIL / SCAIL-2: 3D-retargeted capsule guidance",
    file_name="SCAIL and SCAIL 2 guidance from a 3D retarget",
    note=f"""
# SCAIL / SCAIL-2 guidance from a 3D-retargeted motion

{_RETARGET_NOTE}

**Render SCAIL Pose** draws SCAIL-Pose's 13 shaded capsules with its exact colours and lighting, in SCAIL's own
camera (55° FOV), at 512×896. Then connect (the other pack's nodes are not part of this template):
- **ComfyUI core** (`WanSCAILToVideo`): *pose_images* → `pose_video` (it halves it itself); SCAIL-2's
  `pose_video_mask` ← *identity_mask* (blue on black; white background for replacement).
- **kijai WanVideoWrapper** (`WanVideoAddSCAILPoseEmbeds`): *pose_images_half* → `pose_images`.
- Or send the joints to kijai's own renderer: **SMPL to NLF Poses** → `Render NLF Poses` (ComfyUI-SCAIL-Pose).

Weights: `zai-org/SCAIL-Preview` (Wan2.1-14B based) or `zai-org/SCAIL-2` (ComfyUI repack `Comfy-Org/SCAIL-2`),
plus their Wan VAE, umt5 text encoder and CLIP vision, in the Wan pack's model folders. 16 fps, 512×896.
""",
    nodes=[
        *_retarget(512),
        N(12, "MotionGuideRenderSCAIL", (1420, 360), {"smpl_sequence": L(11), "smpl_model": L(7)}, size=(320, 260)),
        N(13, "PreviewImage", (1780, 160), {"images": L(12, 0)}, "pose_video (full size)"),
        N(14, "PreviewImage", (1780, 520), {"images": L(12, 3)}, "SCAIL-2 identity mask"),
        N(15, "MotionGuideSMPLToNLF", (1420, 760), {"smpl_sequence": L(11), "smpl_model": L(7), "width": 512,
                                                    "height": 896}, "NLFPRED for Render NLF Poses"),
    ],
)

WAN_ANIMATE = Spec(
    name="animator_wan_animate",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000006",
    title="Wan2.2-Animate: 3D-retargeted pose video",
    file_name="Wan2.2 Animate pose video from a 3D retarget",
    note=f"""
# Wan2.2-Animate pose video from a 3D-retargeted motion

{_RETARGET_NOTE}

**SMPL to Pose Keypoints** projects the retargeted body (toes included); **Draw Pose Maps** in the
`wan_animate` style draws them exactly as Wan's preprocessing does (20 points with toes, widths from the image
size, hands, no face, threshold 0.5). Draw at the generation size (multiples of 16; Wan's default 1280×720
area). Then connect:
- **ComfyUI core** (`WanAnimateToVideo`): *pose maps* → `pose_video`; `face_video` wants 512×512 face crops of
  the driving video (the face is not retargeted): add this pack's **Face Crops (Wan-Animate)** on the driving
  video's frames and their *Detect Pose* (face on); it cuts them exactly as Wan's preprocessing does.
- **kijai WanVideoWrapper** (`WanVideoAnimateEmbeds`): → `pose_images`, and Face Crops → `face_images`.

Weights: `Wan-AI/Wan2.2-Animate-14B` (Apache-2.0; ComfyUI repack under Comfy-Org), with the Wan2.1 VAE, umt5
text encoder and CLIP vision. Clips of 77 frames.
""",
    nodes=[
        *_retarget(512),
        *_skeleton(12, 1420, 360, "Draw Pose (wan_animate)", style="wan_animate", face=False),
        N(14, "PreviewImage", (2140, 360), {"images": L(13)}, "pose_video"),
    ],
)

MTVCRAFTER = Spec(
    name="animator_mtvcrafter",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000007",
    title="MTVCrafter: 3D-retargeted NLF joints",
    file_name="MTVCrafter joints from a 3D retarget",
    note=f"""
# MTVCrafter motion from a 3D-retargeted motion

{_RETARGET_NOTE}

MTVCrafter reads 3D joints, not images: **SMPL to NLF Poses** writes the retargeted SMPL-24 joints as `NLFPRED`
(millimetres, NLF's camera), exactly what NLF Predict would give. Connect *nlf_poses* to kijai WanVideoWrapper's
**MTV Crafter Encode Poses** (`poses`), then **WanVideo Add MTV Motion**. (It runs only once connected; the
preview below shows the motion on the reference body.)

Weights: `yanboding/MTVCrafter` (Apache-2.0: the 4DMoT VQ-VAE `.safetensors` for Load VQVAE and the MTV
transformer) on Wan2.1-T2V-14B with its VAE and umt5 encoder. Officially 49 frames at 512×512.
""",
    nodes=[
        *_retarget(512),
        N(12, "MotionGuideSMPLToNLF", (1420, 360), {"smpl_sequence": L(11), "smpl_model": L(7)},
          "SMPL to NLF Poses (→ MTV Crafter Encode Poses)"),
        *_skeleton(13, 1420, 660, "Preview of the motion"),
        N(15, "PreviewImage", (2140, 660), {"images": L(14)}, "Retargeted motion"),
    ],
)

STABLEANIMATOR = Spec(
    name="animator_stableanimator",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000008",
    title="StableAnimator: 3D-retargeted pose images",
    file_name="StableAnimator pose images from a 3D retarget",
    note=f"""
# StableAnimator pose images from a 3D-retargeted motion

{_RETARGET_NOTE}

**SMPL to Pose Keypoints** (hidden joints get lower confidence) → **Draw Pose Maps** in the `stableanimator`
style: MimicMotion's confidence-aware drawing with red and blue as StableAnimator's training images have them.
StableAnimator works at 512×512 or 576×1024 (Fit Reference at 576 gives 576×1024). Then connect the pose maps
to a StableAnimator pack's pose input (e.g. HJH-AILab's `StableAnimatorNode`, `pose_images`) with the
reference image.

Weights: `FrancisRing/StableAnimator` (code MIT; its face path needs InsightFace antelopev2) on SVD-XT 1.1.
""",
    nodes=[
        *_retarget(576),
        *_skeleton(12, 1420, 360, "Draw Pose (stableanimator)", style="stableanimator"),
        N(14, "MotionGuideDrawPose", (1420, -60), {"pose_keypoint": L(5), "width": L(4, 1), "height": L(4, 2),
                                                   "style": "stableanimator"}, "Reference pose"),
        N(16, "ImageBatch", (2140, 160), {"image1": L(14), "image2": L(13)}, "Reference pose first"),
        N(17, "PreviewImage", (2500, 160), {"images": L(16)}, "pose_images"),
    ],
)

ADAPTER = "motionguide_geometry_adapter.safetensors"

GEOMETRY_ADAPTER = Spec(
    name="smpl_geometry_adapter",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000009",
    title="SMPL maps through a geometry adapter",
    file_name="SMPL maps guiding MimicMotion through a geometry adapter",
    note=f"""
# 3D body maps guiding MimicMotion: the geometry adapter

MimicMotion alone sees only the skeleton. A **geometry adapter** adds small encoders that read the rendered body
(depth, normals, body parts with left and right told apart, silhouette) and add their features to PoseNet's,
so body volume, depth order and front/back reach the model.

{_RETARGET_NOTE}

1. **SMPL to Pose Keypoints** → **Draw Pose Maps**; **Batch Images** puts the reference's own pose first.
2. **Render SMPL Maps** renders the same motion at the same size, with *reference_motion* (the shaped reference
   body) connected so its frame 0 is the reference, like the pose maps. Its last output, *guidance_maps*, bundles
   the maps with their conventions (palette `motionguide-lr-v1`, per-clip depth).
3. **Load Geometry Adapter** reads `models/motionguide_adapters/{ADAPTER}`. **The adapter file is yours to
   make**: train it on your own videos with `python cli.py dataset build VIDEOS_DIR OUT_DIR` then
   `python cli.py train CONFIG.yaml` (README, "Training a geometry adapter"); no public adapter exists yet. Put
   the trained `.safetensors` there and pick it in the node.
4. **Pose-Guided Sampler** takes *guidance_maps* + *geometry_adapter*; *adapter_strength* scales the adapter
   (0 = plain MimicMotion). An adapter trained for other maps, another MimicMotion or another palette is refused
   with both sides named. Without the adapter the sampler is exactly MimicMotion.
""",
    nodes=[
        *_retarget(576),
        *_skeleton(12, 1420, 360, "Draw Pose (from SMPL)"),
        N(14, "MotionGuideDrawPose", (1420, -260), {"pose_keypoint": L(5), "width": L(4, 1), "height": L(4, 2)},
          "Draw Pose (reference)"),
        N(15, "ImageBatch", (2140, 160), {"image1": L(14), "image2": L(13)}, "Reference pose first"),
        N(16, "MotionGuideRenderSMPL", (1420, 700), {"smpl_sequence": L(11), "smpl_model": L(7), "width": L(4, 1),
                                                     "height": L(4, 2), "preview": False,
                                                     "reference_motion": L(26)}),
        N(17, "PreviewImage", (1780, 700), {"images": L(16, 2)}, "Body parts (frame 0 = reference)"),
        N(18, "MotionGuideLoadGeometryAdapter", (2140, 460), {"adapter_file": ADAPTER}),
        *_generate(21, reference=4, poses=15, fps_src=L(9, 2), x=2500,
                   sampler={"guidance_maps": L(16, 5), "geometry_adapter": L(18), "tile_size": 16}),
    ],
)

DISPOSE = Spec(
    name="dispose_3d_retarget",
    uuid="6b0f5a52-6c1e-4c3e-9a7e-000000000010",
    title="DisPose on MimicMotion, driven by a 3D retarget",
    file_name="DisPose on MimicMotion driven by a 3D retarget",
    note=f"""
# DisPose on MimicMotion, driven by a 3D retarget

{_RETARGET_NOTE}

**DisPose** (ICLR 2025) adds two hints to MimicMotion without any dense input from you, both computed from the
keypoints: a motion field (the keypoints' motion, blurred, and CMP's dense flow from the reference) and the
reference's DIFT features carried to where each keypoint is in every frame. Its hybrid ControlNet turns them
into residuals for MimicMotion's UNet; PoseNet still reads the pose maps.

1. **SMPL to Pose Keypoints** gives the retargeted keypoints; **Draw Pose Maps** + **Batch Images** put the
   reference's own pose first (as for MimicMotion).
2. **Load DisPose** builds the ControlNet from the loaded MimicMotion UNet; **Prepare DisPose** runs CMP and
   SD-1.5 once for the video (then frees them), with the reference pose as frame 0 (*reference_pose*).
3. The **Pose-Guided Sampler** takes it on *dispose* (16-frame tiles, overlap 6, guidance 2 as DisPose runs).

Files (none bundled; `cli.py models download dispose cmp sd15` fetches them):
- `models/dispose/DisPose.pth` — huggingface.co/lihxxx/DisPose (no licence stated)
- `models/cmp/ckpt_iter_42000.pth.tar` — huggingface.co/MyNiuuu/MOFA-Video-Hybrid, file
  `models/cmp/experiments/semiauto_annot/resnet50_vip+mpii_liteflow/checkpoints/ckpt_iter_42000.pth.tar`
- `models/diffusers/stable-diffusion-v1-5/` (unet, vae, text_encoder, tokenizer, scheduler) —
  huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5 (CreativeML OpenRAIL-M)
- `models/mimicmotion/MimicMotion_1-1.pth` — huggingface.co/tencent/MimicMotion
- `models/diffusers/stable-video-diffusion-img2vid-xt-1-1/` — huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt-1-1
""",
    nodes=[
        *_retarget(576),
        *_skeleton(12, 1420, 360, "Draw Pose (from SMPL)"),
        N(14, "MotionGuideDrawPose", (1780, -60), {"pose_keypoint": L(5), "width": L(4, 1), "height": L(4, 2)},
          "Draw Pose (reference)"),
        N(16, "ImageBatch", (2140, 160), {"image1": L(14), "image2": L(13)}, "Reference pose first"),
        N(30, "MotionGuideLoadDisPose", (2500, -320), {"model": L(21), "dispose_file": "DisPose.pth",
                                                       "cmp_file": "ckpt_iter_42000.pth.tar",
                                                       "sd15": "stable-diffusion-v1-5"},
          models=("dispose", "cmp_mofa_hybrid", "sd_1_5")),
        N(31, "MotionGuidePrepareDisPose", (2860, -320), {"dispose": L(30), "reference_image": L(4),
                                                          "pose_keypoint": L(12), "reference_pose": L(5), "seed": 0}),
        *_generate(21, reference=4, poses=16, fps_src=L(9, 2), x=3220,
                   sampler={"dispose": L(31), "tile_size": 16, "tile_overlap": 6}),
    ],
)

WORKFLOWS = [MIMICMOTION, SMPL_GUIDED, SMPL_MOTION_ORBIT, GEOMETRY_ADAPTER, LONG_VIDEO, DISPOSE, SCAIL,
             WAN_ANIMATE, MTVCRAFTER, STABLEANIMATOR]  # the templates browser's order
