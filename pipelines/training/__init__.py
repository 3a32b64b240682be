"""Training a geometry adapter (and optionally PoseNet / LoRA) on MimicMotion: dataset, objective, trainer."""
