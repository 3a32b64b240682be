"""The values each pipeline option accepts: one source for the pipelines that check them and for the nodes that
offer them as choice lists (``tests/test_node_choices.py`` keeps the two equal).

Data only, with no imports, so the node layer reads it without loading numpy, torch or OpenCV at pack import.
"""

# dwpose
PERSON_SELECTIONS = ("all", "largest", "most central", "index")  # tracking.pick_person
MISSING_PERSON_MODES = ("interpolate", "empty", "keep (reference)")  # tracking.fill_missing
POSE_STYLES = ("reference", "thick", "stableanimator", "wan_animate", "unianimate", "animate_x",
               "steadydancer")  # draw.draw_pose_map
POSE_SMOOTHING = ("none", "one-euro", "savitzky-golay")  # align.smooth_first_person

# mimicmotion
MEMORY_MODES = ("keep_loaded", "offload_after_run", "sequential_offload")  # loading.load_motion_model
FUSION_WEIGHT_SHAPES = ("triangle", "flat")  # tiles.tile_weights
NOISE_MODES = ("periodic", "independent")  # sampler.SamplerOptions
NOISE_DEVICES = ("cpu", "model")  # sampler.SamplerOptions
ARITHMETIC_MODES = ("reference", "precise")  # sampler.SamplerOptions
SIGMA_SCHEDULES = ("karras", "exponential", "align_your_steps")  # schedule.make_sigmas

# smpl
BODY_GENDERS = ["neutral", "male", "female"]  # body_model.load_body_model
MOTION_FORMATS = ["auto", "motionguide", "hmr2", "amass", "camera_space"]  # importers.load_motion_file
MOTION_EXPORT_FORMATS = ["motionguide", "hmr2", "amass"]  # importers.save_motion_file
BETAS_MODES = ["median", "keep"]  # smoothing.smooth_sequence
ROTATION_SPACES = ["quaternion", "6d"]
TRANSLATION_FILTERS = ["savgol", "one_euro", "none"]
ORIENTATIONS = ["upright", "keep", "align_first"]  # transfer.transfer_shape
TRAJECTORIES = ["relative", "lock_root", "keep"]
TRANSFER_CAMERAS = ["reference", "driving"]
GROUND_MODES = ("contacts", "constant")  # ground.ground_shift (not on the node: "constant" is kept for the bench)
BODY_SHAPE_MODES = ["sliders", "fit", "fit_from_sliders"]  # anny_shape.set_body_shape
CAMERA_EASINGS = ["linear", "ease_in_out", "ease_in", "ease_out"]  # camera.set_camera
CAMERA_PIVOTS = ["first_frame", "per_frame"]
NLF_CAMERAS = ("nlf_fov55", "sequence")  # nlf.sequence_in_camera

# render
RENDER_BACKENDS = ("auto", "torch", "pyrender")  # maps.choose_backend
SCAIL_MASK_BACKGROUNDS = ("black", "white")  # scail.identity_mask


def check_choice(name: str, value, choices) -> None:
    """Raise ``ValueError`` when ``value`` is not one of ``choices``, naming the input, the value and every choice.

    The one check for every choice-list option of the pack, so all of them read the same.
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
