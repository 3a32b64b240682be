"""Every choice list a node offers for a pipeline option is the list that pipeline accepts (one source:
``pipelines/options.py``), and every combo input of every node is classified, so a new one cannot drift unseen."""
from __future__ import annotations

import motionguide
import pytest
from motionguide.pipelines import options
from motionguide.pipelines.dwpose import align, draw, tracking
from motionguide.pipelines.mimicmotion import loading, sampler, schedule, tiles
from motionguide.pipelines.render import maps, scail
from motionguide.pipelines.smpl.estimate import nlf
from motionguide.pipelines.smpl.motion import anny_shape, camera, importers, smoothing, transfer

# (node id, input) -> the constant the pipeline checks that value against.
PIPELINE_CHOICES = {
    ("MotionGuideDetectPose", "person"): tracking.SELECTIONS,
    ("MotionGuideDetectPose", "missing_person"): tracking.MISSING_MODES,
    ("MotionGuideAlignPose", "smoothing"): align.SMOOTHING,
    ("MotionGuideDrawPose", "style"): draw.STYLES,
    ("MotionGuideLoadModel", "memory_mode"): loading.MEMORY_MODES,
    ("MotionGuideSampler", "fusion_weights"): tiles.WEIGHT_SHAPES,
    ("MotionGuideSampler", "noise"): sampler.NOISE_MODES,
    ("MotionGuideSampler", "sigma_schedule"): schedule.SIGMA_SCHEDULES,
    ("MotionGuideSampler", "noise_device"): sampler.NOISE_DEVICES,
    ("MotionGuideSampler", "arithmetic"): sampler.ARITHMETIC_MODES,
    ("MotionGuideLoadSMPLModel", "gender"): options.BODY_GENDERS,
    ("MotionGuideLoadSMPLMotion", "format"): importers.FORMATS,
    ("MotionGuideSaveSMPLMotion", "format"): importers.EXPORT_FORMATS,
    ("MotionGuideSmoothSMPL", "betas"): smoothing.BETAS_MODES,
    ("MotionGuideSmoothSMPL", "rotation_space"): smoothing.ROTATION_SPACES,
    ("MotionGuideSmoothSMPL", "translation_filter"): smoothing.TRANSLATION_FILTERS,
    ("MotionGuideTransferShape", "orientation"): transfer.ORIENTATIONS,
    ("MotionGuideTransferShape", "trajectory"): transfer.TRAJECTORIES,
    ("MotionGuideTransferShape", "camera"): transfer.TRANSFER_CAMERAS,
    ("MotionGuideSetCamera", "easing"): camera.EASINGS,
    ("MotionGuideSetCamera", "pivot"): camera.CAMERA_PIVOTS,
    ("MotionGuideSetBodyShape", "mode"): anny_shape.MODES,
    ("MotionGuideRenderSMPL", "renderer"): maps.BACKENDS,
    ("MotionGuideSMPLToPose", "renderer"): maps.BACKENDS,
    ("MotionGuideSMPLToNLF", "camera"): nlf.CAMERAS,
    ("MotionGuideRenderSCAIL", "camera"): nlf.CAMERAS,
    ("MotionGuideRenderSCAIL", "renderer"): maps.BACKENDS,
    ("MotionGuideRenderSCAIL", "mask_background"): scail.MASK_BACKGROUNDS,
}
# Labels a node shows for a pipeline value (the node maps them back before calling the pipeline).
NODE_LABELS = {("MotionGuideDetectPose", "person"): {"all (reference)": "all"}}
# Choices that exist only in the node layer (device/precision policy, node-level presets and file layouts).
NODE_ONLY_CHOICES = {
    ("MotionGuideAlignPose", "fit"), ("MotionGuideDetectPose", "device"), ("MotionGuideLoadModel", "device"),
    ("MotionGuideLoadModel", "precision"), ("MotionGuideEstimateSMPL", "precision"), ("MotionGuideSavePose", "format"),
}
# Combos listing files found in the model or input folders.
FILE_CHOICES = {
    ("MotionGuideDetectPose", "detector"), ("MotionGuideDetectPose", "pose_model"),
    ("MotionGuideEstimateSMPL", "estimator"), ("MotionGuideLoadModel", "svd_base"),
    ("MotionGuideLoadModel", "mimicmotion_checkpoint"), ("MotionGuideLoadModel", "pose_net_file"),
    ("MotionGuideLoadPose", "file"), ("MotionGuideLoadSMPLModel", "model_file"),
    ("MotionGuideLoadSMPLMotion", "motion_file"), ("MotionGuideLoadGeometryAdapter", "adapter_file"),
    ("MotionGuideLoadDisPose", "dispose_file"),
    ("MotionGuideLoadDisPose", "cmp_file"), ("MotionGuideLoadDisPose", "sd15"),
}


def combo_inputs() -> dict[tuple[str, str], list]:
    found = {}
    for node_id, cls in motionguide.NODE_CLASS_MAPPINGS.items():
        for section in cls.INPUT_TYPES().values():
            for name, entry in section.items():
                if isinstance(entry[0], list):
                    found[(node_id, name)] = entry[0]
    return found


@pytest.mark.parametrize("key", sorted(PIPELINE_CHOICES), ids=lambda k: ".".join(k))
def test_node_choices_equal_the_pipeline_constant(key):
    node_list = combo_inputs()[key]
    labels = NODE_LABELS.get(key, {})
    assert [labels.get(choice, choice) for choice in node_list] == list(PIPELINE_CHOICES[key]), (
        f"{'.'.join(key)} offers {node_list}, the pipeline accepts {list(PIPELINE_CHOICES[key])}: "
        "build the node's list from pipelines/options.py")


def test_pipelines_check_against_the_shared_constants():
    # The same objects, not equal copies: a value added to pipelines/options.py reaches the checks and the nodes.
    assert tracking.SELECTIONS is options.PERSON_SELECTIONS and tracking.MISSING_MODES is options.MISSING_PERSON_MODES
    assert draw.STYLES is options.POSE_STYLES and align.SMOOTHING is options.POSE_SMOOTHING
    assert loading.MEMORY_MODES is options.MEMORY_MODES and tiles.WEIGHT_SHAPES is options.FUSION_WEIGHT_SHAPES
    assert sampler.NOISE_MODES is options.NOISE_MODES and schedule.SIGMA_SCHEDULES is options.SIGMA_SCHEDULES
    assert sampler.NOISE_DEVICES is options.NOISE_DEVICES and sampler.ARITHMETIC_MODES is options.ARITHMETIC_MODES
    assert importers.FORMATS is options.MOTION_FORMATS and importers.EXPORT_FORMATS is options.MOTION_EXPORT_FORMATS
    assert camera.EASINGS is options.CAMERA_EASINGS and maps.BACKENDS is options.RENDER_BACKENDS


def test_pipelines_reject_a_value_outside_the_choices():
    with pytest.raises(ValueError, match="savitzky-golay"):
        align.smooth_first_person([], method="gaussian")
    with pytest.raises(ValueError, match="align_your_steps"):
        schedule.make_sigmas(3, "linear")
    with pytest.raises(ValueError, match="pyrender"):
        maps.choose_backend("vulkan", None)


def test_every_combo_input_is_classified():
    unclassified = sorted(set(combo_inputs()) - set(PIPELINE_CHOICES) - NODE_ONLY_CHOICES - FILE_CHOICES)
    assert not unclassified, (
        f"combo inputs not classified in tests/test_node_choices.py: {unclassified}. A choice the pipeline checks "
        "goes into pipelines/options.py and PIPELINE_CHOICES; a node-only one into NODE_ONLY_CHOICES; a file list "
        "into FILE_CHOICES.")
    stale = sorted((set(PIPELINE_CHOICES) | NODE_ONLY_CHOICES | FILE_CHOICES) - set(combo_inputs()))
    assert not stale, f"classified inputs that no node has any more: {stale}"


def test_check_choice_names_input_value_and_every_choice():
    options.check_choice("style", "thick", options.POSE_STYLES)
    with pytest.raises(ValueError) as err:
        options.check_choice("fusion_weights", "round", options.FUSION_WEIGHT_SHAPES)
    assert str(err.value) == "fusion_weights must be one of 'triangle', 'flat'; got 'round'."


def test_choice_checks_are_written_once():
    # every choice-list check goes through options.check_choice, so all of them say the same things
    from pathlib import Path

    root = Path(motionguide.__file__).parent
    hand_written = [str(p.relative_to(root)) for folder in ("pipelines", "nodes", "headless")
                    for p in (root / folder).rglob("*.py")
                    if "must be one of" in p.read_text(encoding="utf-8") and p.name != "options.py"]
    assert hand_written == []
