"""The geometry-adapter trainer on tiny models: EDM numbers, hand weights, config errors, one step, exact resume."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from motionguide.pipelines.mimicmotion.schedule import predicted_x0
from motionguide.pipelines.training import data as ds
from motionguide.pipelines.training.clip_writer import write_clip
from motionguide.pipelines.training.config import config_from_dict, load_config
from motionguide.pipelines.training.objective import denoised, edm_loss, edm_scalings, hand_box, hand_weight_map

SIZE = (64, 64)  # width, height: the tiny model's smallest size (multiples of 16)
MAPS = (("depth", 1), ("normal", 3), ("semantic", 3), ("mask", 1), ("skeleton", 3))


# ---------------------------------------------------------------------------------------------------------------
# Objective maths


def test_edm_scalings_match_a_hand_computation():
    s = edm_scalings(torch.tensor([2.0, 0.5]))
    # σ = 2: c_in = 1/√5, c_skip = 1/5, c_out = −2/√5, c_noise = ¼·ln 2, λ = 5/4
    assert s.c_in.tolist() == pytest.approx([1 / math.sqrt(5), 1 / math.sqrt(1.25)], rel=1e-6)
    assert s.c_skip.tolist() == pytest.approx([0.2, 0.8], rel=1e-6)
    assert s.c_out.tolist() == pytest.approx([-2 / math.sqrt(5), -0.5 / math.sqrt(1.25)], rel=1e-6)
    assert s.c_noise.tolist() == pytest.approx([0.25 * math.log(2.0), 0.25 * math.log(0.5)], rel=1e-6)
    assert s.weight.tolist() == pytest.approx([1.25, 5.0], rel=1e-6)


def test_denoised_estimate_is_the_samplers_x0():
    g = torch.Generator().manual_seed(0)
    noisy, v = torch.randn(2, 3, 4, 5, 5, generator=g), torch.randn(2, 3, 4, 5, 5, generator=g)
    d = denoised(noisy, v, torch.tensor([3.0, 0.2]))
    assert torch.allclose(d[0], predicted_x0(noisy[0], v[0], 3.0), atol=1e-6)
    assert torch.allclose(d[1], predicted_x0(noisy[1], v[1], 0.2), atol=1e-6)
    # a perfect v gives back x exactly: v = (x_noisy·c_skip − x)/(−c_out) inverted
    x, eps = torch.randn(1, 2, 4, 3, 3, generator=g), torch.randn(1, 2, 4, 3, 3, generator=g)
    sigma = torch.tensor([1.5])
    x_noisy = x + sigma * eps
    s = edm_scalings(sigma)
    v_true = (x - s.c_skip * x_noisy) / s.c_out
    assert torch.allclose(denoised(x_noisy, v_true, sigma), x, atol=1e-5)
    loss = edm_loss(x + 0.1, x, sigma)
    assert loss.item() == pytest.approx(0.01 * (1.5**2 + 1) / 1.5**2, rel=1e-5)


def test_hand_weight_map_marks_exactly_the_hand_boxes():
    hands = np.zeros((2, 2, 21, 3), np.float32)
    # frame 0, left hand: confident points spanning x 10..14, y 20..30 → box ≥ 16 px: x 4..20, y 17..33
    hands[0, 0, :, 0] = np.linspace(10, 14, 21)
    hands[0, 0, :, 1] = np.linspace(20, 30, 21)
    hands[0, 0, :, 2] = 0.9
    # frame 0, right hand: only 2 confident points (< 3) → no box
    hands[0, 1, :2] = [[40, 40, 0.9], [41, 41, 0.9]]
    # frame 1, right hand: confidence 0.2 ≤ threshold → no box
    hands[1, 1, :, :2] = 50
    hands[1, 1, :, 2] = 0.2
    assert hand_box(hands[0, 0], 16, 0.3) == pytest.approx((4.0, 17.0, 20.0, 33.0))
    w = hand_weight_map(hands, 48, 64, weight=2.0, box_size=16, threshold=0.3)
    expected = torch.ones(2, 48, 64)
    expected[0, 17:33, 4:20] = 3.0
    assert torch.equal(w, expected)
    # latent cells of 8 px: x 4..20 → cells 0..2, y 17..33 → cells 2..4
    w8 = hand_weight_map(hands, 48, 64, weight=2.0, box_size=16, threshold=0.3, downsample=8)
    expected8 = torch.ones(2, 6, 8)
    expected8[0, 2:5, 0:3] = 3.0
    assert torch.equal(w8, expected8)
    assert torch.equal(hand_weight_map(hands, 48, 64, weight=0.0, box_size=16, threshold=0.3), torch.ones(2, 48, 64))


def test_cover_transform_follows_the_resize():
    # 100×50 → 64×64: scaled to height 64 (width ceil(128) = 128), cropped 32 px on the left
    assert ds.cover_transform(100, 50, 64, 64) == (1.28, 1.28, 32.0, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Config


def _config(tmp_path, dataset, svd, mm, **sections):
    data = {"dataset": str(dataset), "svd": str(svd), "mimicmotion": str(mm), "output_dir": str(tmp_path / "run"),
            "data": {"width": SIZE[0], "height": SIZE[1], "num_frames": 3, "holdout": 1},
            "train": {"steps": 2, "mixed_precision": "no", "gradient_checkpointing": False, "checkpoint_every": 1,
                      "learning_rate": 1e-2},
            "validation": {"every": 100, "sigmas": [0.5, 2.0], "windows": 1}}
    for key, value in sections.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    return config_from_dict(data)


def test_unknown_config_key_is_named_with_the_known_ones(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("dataset: d\nsvd: s\nmimicmotion: m\noutput_dir: o\ntrain:\n  stepz: 3\n")
    with pytest.raises(ValueError, match=r"unknown key train\.stepz; known keys in train: steps, batch_size") as err:
        load_config(path)
    assert str(path) in str(err.value)
    path.write_text("dataset: d\nsvd: s\nmimicmotion: m\noutput_dir: o\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown key learning_rate; known keys: dataset, svd"):
        load_config(path)
    path.write_text("dataset: d\nsvd: s\nmimicmotion: m\noutput_dir: o\ntrain:\n  learning_rate: 1e-4\n")
    assert load_config(path).train.learning_rate == pytest.approx(1e-4)  # YAML's "1e-4" string is a number here
    with pytest.raises(ValueError, match="adapter.maps"):
        config_from_dict({"dataset": "d", "svd": "s", "mimicmotion": "m", "output_dir": "o",
                          "adapter": {"maps": ["depht"]}})


# ---------------------------------------------------------------------------------------------------------------
# Dataset reading


def _clip_arrays(seed: int, frames: int):
    rng = np.random.default_rng(seed)
    width, height = SIZE
    video = rng.integers(0, 255, (frames, height, width, 3), dtype=np.uint8)
    maps = {k: rng.integers(0, 255, (frames, height, width, n), dtype=np.uint8) for k, n in MAPS}
    hand = np.zeros((21, 3))
    hand[:, 0], hand[:, 1], hand[:, 2] = np.linspace(20, 30, 21), np.linspace(30, 40, 21), 0.9
    person = {"pose_keypoints_2d": [0.0] * 54, "hand_left_keypoints_2d": hand.ravel().tolist(),
              "hand_right_keypoints_2d": None, "face_keypoints_2d": None}
    keypoints = [{"people": [person], "canvas_width": width, "canvas_height": height}] * frames
    return video, maps, keypoints


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    for c in range(3):
        video, maps, keypoints = _clip_arrays(c, 5)
        write_clip(root, f"clip{c}", video, maps, fps=7, keypoints=keypoints)
    return root


def test_short_clip_and_frames_without_a_person_are_explained(tmp_path):
    video, maps, _ = _clip_arrays(0, 4)
    write_clip(tmp_path, "short", video[:2], {k: v[:2] for k, v in maps.items()}, fps=7)
    write_clip(tmp_path, "empty", video, maps, fps=7, valid=[True, False, True, False])
    clips = ds.read_dataset(tmp_path)
    with pytest.raises(ValueError) as err:
        ds.usable_clips(clips, 3, 1, ["depth"])
    text = str(err.value)
    assert "'short' has 2 frames, shorter than the training length 3" in text
    assert "'empty' has no 3 consecutive frames with a person" in text and "[1, 3]" in text
    with pytest.raises(ValueError, match=r"Clip 'empty' has no \['pose'\] maps"):
        ds.usable_clips(clips, 2, 1, ["pose"])


def test_samples_are_a_pure_function_of_seed_and_step(dataset):
    clips = ds.read_dataset(dataset)
    a = ds.plan_batch(clips, 0, 5, 0, 4, 3, 1, "random")
    assert a == ds.plan_batch(clips, 0, 5, 0, 4, 3, 1, "random")
    assert a[:2] == ds.plan_batch(clips, 0, 5, 0, 2, 3, 1, "random")  # a process's slice of the global batch
    sample = ds.load_sample(clips[0], ds.SampleRef(0, 1, 4), num_frames=3, stride=1, width=64, height=64,
                            maps=["depth", "normal"], pose_map="skeleton")
    assert sample["frames"].shape == (3, 3, 64, 64) and sample["maps"]["depth"].shape == (3, 64, 64, 1)
    video, maps, _ = _clip_arrays(0, 5)
    # frame 0 = the reference frame (4), then the window's frames after its start (2, 3)
    assert torch.equal(sample["frames"][0], torch.from_numpy(video[4]).permute(2, 0, 1))
    assert torch.equal(sample["frames"][1], torch.from_numpy(video[2]).permute(2, 0, 1))
    assert torch.equal(sample["pose"][0], torch.from_numpy(maps["skeleton"][4]).permute(2, 0, 1))
    assert sample["hands"][0, 0, 0].tolist() == pytest.approx([20.0, 30.0, 0.9])


# ---------------------------------------------------------------------------------------------------------------
# Training


def _frozen_snapshot(trainer):
    module = trainer.unwrapped
    return {n: p.detach().clone() for n, p in module.named_parameters() if not p.requires_grad}


def test_one_step_changes_only_the_trainable_parameters(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.pipelines.training.trainer import Trainer

    trainer = Trainer(_config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path, train={"steps": 1}),
                      progress=False)
    trainer.setup()
    names = [n for n, _ in trainer.trainable]
    assert names and all(n.startswith("adapter.") for n in names)
    frozen = _frozen_snapshot(trainer)
    before = {n: p.detach().clone() for n, p in trainer.trainable}
    loss = trainer.train_step()
    assert math.isfinite(loss) and loss > 0
    after = dict(trainer.unwrapped.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items())  # UNet, PoseNet: bit-identical
    changed = [n for n in names if not torch.equal(after[n], before[n])]
    # the zero-initialised conv_out gets the first gradient (the layers before it get theirs through it later)
    assert {n for n in changed} >= {f"adapter.encoders.{m}.conv_out.weight" for m in ("depth", "normal")}


def test_lora_and_pose_net_train_with_the_adapter(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.pipelines.training.trainer import Trainer

    trainer = Trainer(_config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path,
                              train={"steps": 1, "lora_rank": 2, "train_pose_net": True}), progress=False)
    trainer.setup()
    names = [n for n, _ in trainer.trainable]
    assert any(".lora_A." in n for n in names) and any(n.startswith("pose_net.") for n in names)
    assert not any(n.startswith("unet.") and "lora_" not in n for n in names)
    frozen = _frozen_snapshot(trainer)
    trainer.train_step()
    after = dict(trainer.unwrapped.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items())


def test_adapter_learning_rate_applies_to_the_adapter_only(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.pipelines.training.trainer import Trainer

    trainer = Trainer(_config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path,
                              train={"steps": 1, "train_pose_net": True, "learning_rate": 1e-3,
                                     "adapter_learning_rate": 5e-2}), progress=False)
    trainer.setup()
    groups = trainer.optimizer.param_groups
    lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
    by_name = {n: lrs[id(p)] for n, p in trainer.trainable}
    assert {v for n, v in by_name.items() if n.startswith("adapter.")} == {5e-2}
    assert {v for n, v in by_name.items() if n.startswith("pose_net.")} == {1e-3}
    params = dict(trainer.unwrapped.named_parameters())
    name = "adapter.encoders.depth.conv_out.bias"
    trainer.train_step()
    # Adam's first step moves every parameter with a gradient by about its learning rate
    assert float(params[name].detach().abs().max()) == pytest.approx(5e-2, rel=1e-3)
    with pytest.raises(ValueError, match="adapter_learning_rate"):
        _config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path, train={"adapter_learning_rate": -1.0})


def test_resume_gives_the_identical_next_step(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.pipelines.training.trainer import Trainer

    straight = Trainer(_config(tmp_path / "a", dataset, tiny_svd_dir, tiny_mimicmotion_path,
                               train={"steps": 3, "ema_decay": 0.5}), progress=False)
    result = straight.train()
    stopped = Trainer(_config(tmp_path / "b", dataset, tiny_svd_dir, tiny_mimicmotion_path,
                              train={"steps": 3, "ema_decay": 0.5}), progress=False)
    stopped.stop_after = 2  # Ctrl-C after two steps: a checkpoint at step 2
    with pytest.raises(KeyboardInterrupt):
        stopped.train()
    assert (tmp_path / "b" / "run" / "checkpoints" / "step_000002" / "state.json").is_file()
    resumed = Trainer(_config(tmp_path / "b", dataset, tiny_svd_dir, tiny_mimicmotion_path,
                              train={"steps": 3, "ema_decay": 0.5}), progress=False)
    again = resumed.train()
    assert again["resumed_from"] == 2 and again["steps"] == 3
    assert again["last_loss"] == result["last_loss"]
    a, b = dict(straight.unwrapped.named_parameters()), dict(resumed.unwrapped.named_parameters())
    assert all(torch.equal(a[n], b[n]) for n, _ in straight.trainable)
    assert all(torch.equal(straight.ema[n], resumed.ema[n]) for n in straight.ema)
    csv_rows = (tmp_path / "b" / "run" / "loss.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in csv_rows] == ["step", "1", "2", "3"]
    from motionguide.pipelines.guidance.geometry_adapter import load_adapter

    adapter = load_adapter(tmp_path / "a" / "run" / "adapter.safetensors")
    assert adapter.config.maps == ("depth", "normal", "semantic", "mask") and adapter.config.out_channels == 32
    assert adapter.config.extra["steps"] == 3


def test_trains_inside_inference_mode(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.pipelines.training.trainer import Trainer

    trainer = Trainer(_config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path,
                              train={"steps": 1, "checkpoint_every": 5}), progress=False)
    with torch.inference_mode():
        result = trainer.train()
    assert result["steps"] == 1 and math.isfinite(result["last_loss"])


def test_init_adapter_for_other_maps_or_base_model_is_refused(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path):
    from motionguide.pipelines.guidance.geometry_adapter import AdapterConfig, GeometryAdapter, save_adapter
    from motionguide.pipelines.training.trainer import Trainer

    other_maps = save_adapter(GeometryAdapter(AdapterConfig(maps=("depth",), out_channels=32)),
                              tmp_path / "d.safetensors")
    trainer = Trainer(_config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path, init_adapter=str(other_maps)),
                      progress=False)
    with pytest.raises(ValueError, match=r"reads maps \['depth'\] but adapter.maps is \['depth', 'normal'"):
        trainer.setup()
    other_base = save_adapter(GeometryAdapter(AdapterConfig(maps=("depth", "normal", "semantic", "mask"),
                                                            out_channels=32, base_model="mimicmotion-1.0")),
                              tmp_path / "b.safetensors")
    trainer = Trainer(_config(tmp_path, dataset, tiny_svd_dir, tiny_mimicmotion_path, init_adapter=str(other_base)),
                      progress=False)
    with pytest.raises(ValueError, match="trained for 'mimicmotion-1.0', but the loaded motion model is "
                                         "'mimicmotion-1.1'"):
        trainer.setup()


def test_train_command_reports_a_bad_key_without_a_traceback(tmp_path, capsys):
    from motionguide.headless.cli import main

    path = tmp_path / "train.yaml"
    path.write_text("dataset: d\nsvd: s\nmimicmotion: m\noutput_dir: o\nobjective:\n  hand_wieght: 2\n")
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert "unknown key objective.hand_wieght" in err and "hand_weight" in err and "Traceback" not in err


def test_the_shipped_sample_config_is_valid():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[1] / "models_config" / "train_adapter.yaml")
    assert config.adapter.maps == ["depth", "normal", "semantic", "mask"] and config.train.learning_rate == 1e-4
