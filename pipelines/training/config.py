"""The trainer's configuration: a YAML file read into dataclasses; an unknown key is an error naming it.

Paths in the file are relative to the current directory (run ``python cli.py train`` from the pack root, as in the
README), or absolute.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..guidance.geometry_adapter import BASE_MODELS, MAP_CHANNELS

MIXED_PRECISIONS = ("no", "fp16", "bf16")
REFERENCE_CHOICES = ("random", "first")


@dataclass
class AdapterSection:
    """maps: the maps the adapter reads (depth, normal, semantic, mask, skeleton); block_channels: Champ's widths;
    zero_maps: feed zeros instead of the maps (a control run: same parameters, no map information)."""

    maps: list = field(default_factory=lambda: ["depth", "normal", "semantic", "mask"])
    block_channels: list = field(default_factory=lambda: [16, 32, 96, 256])
    zero_maps: bool = False


@dataclass
class DataSection:
    """width/height: training size (cover resize + centre crop of frames, maps and keypoints); num_frames: frames
    per sample; frame_stride: take every n-th frame; reference: which frame of the clip conditions the sample
    ("random" frame of the clip, or the "first" frame of the window); holdout: clips (last by name) kept out of
    training for validation; pose_map: what PoseNet reads ("skeleton": the projected body skeleton, as the 3D
    path feeds it at inference; "pose": the DWPose drawing of the video)."""

    width: int = 576
    height: int = 1024
    num_frames: int = 16
    frame_stride: int = 1
    reference: str = "random"
    holdout: int = 1
    pose_map: str = "skeleton"


@dataclass
class TrainSection:
    """Optimisation. batch_size is per process (the global batch is batch_size × processes × accumulation).
    Trainable: the adapter; also PoseNet (train_pose_net), LoRA on the UNet's attention (lora_rank > 0), or the
    whole UNet (train_unet: only for small models and tests; a real UNet needs far more memory).
    adapter_learning_rate: the adapter's own learning rate (0: learning_rate); its zero-initialised output convs
    start from nothing, and a higher rate than the pretrained parts' often helps."""

    steps: int = 2000
    batch_size: int = 1
    gradient_accumulation: int = 1
    learning_rate: float = 1e-4
    adapter_learning_rate: float = 0.0
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    mixed_precision: str = "bf16"
    gradient_checkpointing: bool = True
    seed: int = 0
    train_pose_net: bool = False
    train_unet: bool = False
    lora_rank: int = 0
    lora_alpha: float = 0.0
    ema_decay: float = 0.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    num_workers: int = 0


@dataclass
class ObjectiveSection:
    """SVD's EDM objective (ln σ ~ N(p_mean, p_std²)), conditioning, and MimicMotion's hand-region weight
    (1 + hand_weight inside boxes of at least hand_box_size px around hand keypoints above hand_confidence)."""

    p_mean: float = 0.7
    p_std: float = 1.6
    noise_aug_strength: float = 0.02
    condition_dropout: float = 0.1
    fps: int = 7
    motion_bucket_id: int = 127
    hand_weight: float = 1.0
    hand_box_size: float = 64.0
    hand_confidence: float = 0.3


@dataclass
class ValidationSection:
    """Every ``every`` steps: the held-out clips' denoising loss at fixed sigmas (fixed noise), ``windows`` windows
    per clip."""

    every: int = 500
    sigmas: list = field(default_factory=lambda: [0.1, 0.5, 1.0, 2.0, 5.0])
    windows: int = 2
    seed: int = 1234


@dataclass
class TrainConfig:
    dataset: str
    svd: str
    mimicmotion: str
    output_dir: str
    run_name: str = "geometry_adapter"
    export_dir: str = ""
    base_model: str = "mimicmotion-1.1"
    pose_net_file: str = ""
    init_adapter: str = ""
    adapter: AdapterSection = field(default_factory=AdapterSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    validation: ValidationSection = field(default_factory=ValidationSection)

    def validate(self) -> None:
        problems = []
        unknown = [m for m in self.adapter.maps if m not in MAP_CHANNELS]
        if unknown or not self.adapter.maps:
            problems.append(f"adapter.maps {self.adapter.maps} must be a non-empty list of {list(MAP_CHANNELS)}")
        if self.base_model not in BASE_MODELS:
            problems.append(f"base_model {self.base_model!r} is not one of {list(BASE_MODELS)}")
        if self.train.mixed_precision not in MIXED_PRECISIONS:
            problems.append(f"train.mixed_precision {self.train.mixed_precision!r} is not one of "
                            f"{list(MIXED_PRECISIONS)}")
        if self.data.pose_map not in ("skeleton", "pose"):
            problems.append(f"data.pose_map {self.data.pose_map!r} is not 'skeleton' or 'pose'")
        if self.data.reference not in REFERENCE_CHOICES:
            problems.append(f"data.reference {self.data.reference!r} is not one of {list(REFERENCE_CHOICES)}")
        for name, value, low in (("data.num_frames", self.data.num_frames, 2),
                                 ("data.frame_stride", self.data.frame_stride, 1),
                                 ("train.steps", self.train.steps, 1), ("train.batch_size", self.train.batch_size, 1),
                                 ("train.gradient_accumulation", self.train.gradient_accumulation, 1),
                                 ("train.checkpoint_every", self.train.checkpoint_every, 1),
                                 ("train.log_every", self.train.log_every, 1),
                                 ("validation.every", self.validation.every, 1),
                                 ("data.width", self.data.width, 8), ("data.height", self.data.height, 8),
                                 ("data.holdout", self.data.holdout, 0), ("train.lora_rank", self.train.lora_rank, 0)):
            if value < low:
                problems.append(f"{name} must be at least {low}, got {value}")
        if self.train.learning_rate <= 0 or self.train.adapter_learning_rate < 0:
            problems.append(f"train.learning_rate must be positive and train.adapter_learning_rate at least 0 (0: the "
                            f"same as learning_rate), got {self.train.learning_rate} and "
                            f"{self.train.adapter_learning_rate}")
        if not 0.0 <= self.objective.condition_dropout < 1.0:
            problems.append(f"objective.condition_dropout must be in [0, 1), got {self.objective.condition_dropout}")
        if not 0.0 <= self.train.ema_decay < 1.0:
            problems.append(f"train.ema_decay must be in [0, 1) (0 = no EMA), got {self.train.ema_decay}")
        if self.train.train_unet and self.train.lora_rank:
            problems.append("train.train_unet and train.lora_rank > 0 exclude each other (LoRA is for a frozen UNet)")
        if any(s <= 0 for s in self.validation.sigmas):
            problems.append(f"validation.sigmas must be positive, got {self.validation.sigmas}")
        if problems:
            raise ValueError("Training config: " + "; ".join(problems) + ".")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"Training config: {where or 'the file'} must be a mapping of keys, "
                         f"got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ValueError(f"Training config: unknown key {where + '.' if where else ''}{unknown[0]}"
                         f"{' (and ' + ', '.join(unknown[1:]) + ')' if unknown[1:] else ''}; known keys"
                         f"{' in ' + where if where else ''}: {', '.join(known)}.")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"Training config: missing required key(s) {', '.join(missing)}"
                         f"{' in ' + where if where else ''}.")
    values = {}
    for key, value in data.items():
        kind = hints[key]
        name = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(kind):
            values[key] = _build(kind, value or {}, name)
        elif kind is float and not isinstance(value, bool) and isinstance(value, (int, float, str)):
            try:  # YAML reads 1e-4 (no dot) as a string
                values[key] = float(value)
            except ValueError:
                raise ValueError(f"Training config: {name} must be a number, got {value!r}.") from None
        elif kind in (int, str, bool) and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"Training config: {name} must be {kind.__name__}, got {value!r}.")
        elif kind is list and not isinstance(value, list):
            raise ValueError(f"Training config: {name} must be a list, got {value!r}.")
        else:
            values[key] = value
    return cls(**values)


def config_from_dict(data: dict) -> TrainConfig:
    config = _build(TrainConfig, data, "")
    config.validate()
    return config


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a training YAML file; errors name the file and the key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Training config '{path}' does not exist (see models_config/train_adapter.yaml).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"Training config '{path}' is not valid YAML: {exc}") from None
    try:
        return config_from_dict(data or {})
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def config_to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)
