"""The geometry-adapter trainer: MimicMotion (SVD) with SVD's EDM objective, on ``accelerate``.

Trainable: the :class:`~..guidance.geometry_adapter.GeometryAdapter`; optionally PoseNet and LoRA on the UNet's
attention (``peft``); the UNet, VAE and CLIP stay frozen. One process, several (``accelerate launch``), or several
machines (accelerate's own launcher); nothing here distributes by hand.

Every random draw of a sample (σ, noise, augmentation noise, condition dropout, clip and window) comes from a
generator seeded by ``(seed, step, micro-step, index in the global batch)``: a resumed run and a run split over N
processes with the same global batch see the same numbers, so "exact resume" needs only the step, the trainable
weights, the optimizer and the LR scheduler (what a checkpoint holds).
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..guidance.geometry_adapter import (
    AdapterConfig,
    GeometryAdapter,
    check_compatible,
    load_adapter,
    maps_to_input,
    save_adapter,
)
from ..guidance.hook import UNetResidualHooks, UNetResiduals
from ..mimicmotion.loading import load_motion_model
from ..mimicmotion.preprocess import to_unit_range, uint8_round_trip
from ..mimicmotion.sampler import MimicMotionPipeline
from . import data as ds
from .config import TrainConfig, config_to_dict
from .objective import denoised, edm_loss, edm_scalings, hand_weight_map, sample_sigmas

logger = logging.getLogger(__name__)

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
CHECKPOINTS = "checkpoints"


class TrainModule(nn.Module):
    """UNet + PoseNet + adapter: one forward from the conditioned UNet input to the v-prediction. The guidance
    (PoseNet + adapter, summed) enters after ``conv_in`` through the sampler's own hook, so training and sampling
    add it at the same place."""

    def __init__(self, unet: nn.Module, pose_net: nn.Module, adapter: GeometryAdapter):
        super().__init__()
        self.unet, self.pose_net, self.adapter = unet, pose_net, adapter

    def forward(self, sample, timestep, embeds, time_ids, pose, maps, keep):
        """``sample`` ``[B,F,8,h,w]``, ``pose`` ``[B·F,3,H,W]`` in -1..1, ``maps`` name → ``[B·F,c,H,W]`` in -1..1,
        ``keep`` ``[B]`` (0 = condition dropped: no guidance, like the unconditional CFG pass). → ``[B,F,4,h,w]``."""
        frames = sample.shape[1]
        residual = self.pose_net(pose) + self.adapter(maps)  # [B·F,C,h,w]
        residual = residual * keep.to(residual.dtype).repeat_interleave(frames).view(-1, 1, 1, 1)
        with UNetResidualHooks(self.unet) as hooks:
            hooks.residuals = UNetResiduals(conv_in=residual)
            return self.unet(sample, timestep, encoder_hidden_states=embeds, added_time_ids=time_ids,
                             return_dict=False)[0]


def _atomic_dir_publish(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


class Trainer:
    """Runs one training config. ``models_dir`` is unused here (paths in the config are explicit); ``progress``
    shows a tqdm bar on the main process."""

    def __init__(self, config: TrainConfig, progress: bool = True):
        self.config = config
        self.progress = progress
        self.output_dir = Path(config.output_dir)
        self.stop_after: int | None = None  # tests: stop (as if interrupted) after this many steps

    # -- setup -------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from accelerate import Accelerator

        c = self.config
        self.accelerator = acc = Accelerator(mixed_precision=c.train.mixed_precision, cpu=not torch.cuda.is_available())
        clips = ds.read_dataset(c.dataset)
        train_clips, held = ds.split_clips(clips, c.data.holdout)
        needed = list(c.adapter.maps) + [c.data.pose_map]
        self.clips = ds.usable_clips(train_clips, c.data.num_frames, c.data.frame_stride, needed)
        self.val_clips = ds.usable_clips(held, c.data.num_frames, c.data.frame_stride, needed) if held else []
        weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[c.train.mixed_precision]
        self.model = load_motion_model(c.svd, c.mimicmotion, dtype=weight_dtype, device=acc.device,
                                       pose_net_file=c.pose_net_file or None)
        m = self.model
        factor = m.total_downsampling
        if c.data.width % factor or c.data.height % factor:
            raise ValueError(f"data.width and data.height must be multiples of {factor} for this model, got "
                             f"{c.data.width}×{c.data.height}.")
        m.vae.to(acc.device)
        m.image_encoder.to(acc.device)
        unet, pose_net = m.unet, m.pose_net
        width = int(unet.config.block_out_channels[0])
        adapter_config = AdapterConfig(maps=tuple(c.adapter.maps), out_channels=width,
                                       block_channels=tuple(c.adapter.block_channels), base_model=c.base_model,
                                       extra={"run_name": c.run_name, "dataset": str(c.dataset)})
        with torch.random.fork_rng(devices=[]):  # the same initial weights for the same seed, whatever ran before
            torch.manual_seed(c.train.seed)
            adapter = GeometryAdapter(adapter_config)
        if c.init_adapter:
            start = load_adapter(c.init_adapter)
            check_compatible(start.config, {k: None for k in c.adapter.maps}, base_model=c.base_model,
                             out_channels=width, source=f"init_adapter '{c.init_adapter}'")
            if tuple(start.config.maps) != tuple(c.adapter.maps):
                raise ValueError(f"init_adapter '{c.init_adapter}' reads maps {list(start.config.maps)} but "
                                 f"adapter.maps is {list(c.adapter.maps)}; use the same maps in the same order.")
            adapter.load_state_dict(start.state_dict())
        adapter.float().requires_grad_(True)
        if c.train.train_pose_net:
            pose_net.float().requires_grad_(True)
        if c.train.train_unet:
            unet.float().requires_grad_(True)
        if c.train.lora_rank:
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(r=c.train.lora_rank, lora_alpha=c.train.lora_alpha or c.train.lora_rank,
                              init_lora_weights="gaussian", target_modules=LORA_TARGETS)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(c.train.seed + 1)
                inject_adapter_in_model(lora, unet)
            for name, p in unet.named_parameters():
                if "lora_" in name:
                    p.data = p.data.float()
                    p.requires_grad_(True)
        if c.train.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        module = TrainModule(unet, pose_net, adapter)
        module.train()
        self.trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        adapter_lr = c.train.adapter_learning_rate or c.train.learning_rate
        groups = [{"params": [p for n, p in self.trainable if n.startswith("adapter.")], "lr": adapter_lr},
                  {"params": [p for n, p in self.trainable if not n.startswith("adapter.")],
                   "lr": c.train.learning_rate}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=c.train.learning_rate,
                                      weight_decay=c.train.weight_decay)
        warmup = max(c.train.warmup_steps, 0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                      lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        self.module, self.optimizer, self.scheduler = acc.prepare(module, optimizer, scheduler)
        self.ema = {n: p.detach().float().clone() for n, p in self.trainable} if c.train.ema_decay else None
        self.pipeline = MimicMotionPipeline(m)
        self.step = 0
        self._logs = None
        self.last_validation: dict[float, float] | None = None

    @property
    def unwrapped(self) -> TrainModule:
        return self.accelerator.unwrap_model(self.module)

    # -- one sample batch --------------------------------------------------------------------------------------

    def _load(self, refs, clips):
        c = self.config
        return [ds.load_sample(clips[r.clip], r, num_frames=c.data.num_frames, stride=c.data.frame_stride,
                               width=c.data.width, height=c.data.height, maps=c.adapter.maps, pose_map=c.data.pose_map)
                for r in refs]

    @torch.no_grad()
    def _condition(self, sample: dict, generator: torch.Generator, sigma: torch.Tensor, keep: bool):
        """VAE latents of the frames, CLIP embedding + noise-augmented VAE latent of the reference, time ids."""
        m, o = self.model, self.config.objective
        device = self.accelerator.device
        aug_noise = torch.randn(sample["reference"].shape, generator=generator)
        eps = None
        ref = uint8_round_trip(sample["reference"], m.dtype)  # as the sampler prepares its reference
        embeds = self.pipeline._encode_image(ref)  # [1,1,D]
        ref_latent = self.pipeline._encode_vae_image(ref, aug_noise, o.noise_aug_strength)  # [1,4,h,w]
        latents = []
        for begin in range(0, sample["frames"].shape[0], 8):
            chunk = to_unit_range(sample["frames"][begin:begin + 8]).to(device, m.dtype)
            latents.append(m.vae.encode(chunk).latent_dist.mode())
        x = torch.cat(latents).float() * m.scaling_factor  # [F,4,h,w], the sampler's latent space
        eps = torch.randn(x.shape, generator=generator).to(device)
        if not keep:
            embeds, ref_latent = torch.zeros_like(embeds), torch.zeros_like(ref_latent)
        time_ids = self.pipeline._get_add_time_ids(o.fps, o.motion_bucket_id, o.noise_aug_strength)
        return x, eps, embeds, ref_latent, time_ids

    def batch_losses(self, samples: list[dict], seeds: list[int], sigmas: torch.Tensor | None = None,
                     dropout: bool = True, hand_weight: bool = True, module: nn.Module | None = None) -> torch.Tensor:
        """Per-sample losses ``[B]`` (with gradients) for loaded samples; ``seeds`` seed each sample's draws;
        ``sigmas`` fixes σ (validation); ``module`` replaces the (distributed) training module."""
        c, m = self.config, self.model
        device = self.accelerator.device
        xs, noisy, embeds, ref_lat, ids, poses, keep, sig, maps, weights = [], [], [], [], [], [], [], [], {}, []
        for k, (sample, seed) in enumerate(zip(samples, seeds)):
            g = torch.Generator().manual_seed(int(seed))
            if sigmas is None:
                s = sample_sigmas(1, c.objective.p_mean, c.objective.p_std, g)
            else:
                s = sigmas[k:k + 1].float()
            drop = bool(torch.rand(1, generator=g).item() < c.objective.condition_dropout) if dropout else False
            x, eps, e, r, t = self._condition(sample, g, s, not drop)
            s = s.to(device)
            xs.append(x)
            noisy.append(x + s * eps)
            embeds.append(e)
            ref_lat.append(r)
            ids.append(t)
            sig.append(s)
            keep.append(0.0 if drop else 1.0)
            poses.append(sample["pose"])
            for name, value in sample["maps"].items():
                maps.setdefault(name, []).append(value)
            frames, _, height, width = sample["frames"].shape
            weights.append(hand_weight_map(sample["hands"], height, width,
                                           weight=c.objective.hand_weight if hand_weight else 0.0,
                                           box_size=c.objective.hand_box_size, threshold=c.objective.hand_confidence,
                                           downsample=m.vae_scale_factor))
        sigma = torch.cat(sig)  # [B]
        x, x_noisy = torch.stack(xs), torch.stack(noisy)  # [B,F,4,h,w]
        scale = edm_scalings(sigma)
        frames = x.shape[1]
        unet_in = torch.cat([x_noisy * scale.c_in.view(-1, 1, 1, 1, 1),
                             torch.cat(ref_lat).float().unsqueeze(1).expand(-1, frames, -1, -1, -1)], dim=2)
        pose = torch.cat(poses).to(device).float() / 127.5 - 1.0  # [B·F,3,H,W], PoseNet's input range
        map_in = maps_to_input({k: torch.cat(v) for k, v in maps.items()}, c.adapter.maps)
        if c.adapter.zero_maps:
            map_in = {k: torch.zeros_like(v) for k, v in map_in.items()}
        map_in = {k: v.to(device) for k, v in map_in.items()}
        dtype = self.model.dtype
        v = (module or self.module)(unet_in.to(dtype), scale.c_noise.to(dtype), torch.cat(embeds).to(dtype),
                                    torch.cat(ids).to(dtype), pose if c.train.train_pose_net else pose.to(dtype),
                                    map_in, torch.tensor(keep, device=device))
        d = denoised(x_noisy, v.float(), sigma)
        pixel = torch.stack(weights).unsqueeze(2).to(device)  # [B,F,1,h,w]
        return edm_loss(d, x, sigma, pixel)

    # -- training ----------------------------------------------------------------------------------------------

    def _global_offset(self) -> int:
        return self.accelerator.process_index * self.config.train.batch_size

    def train_step(self) -> float:
        """One optimizer step (with accumulation); returns the mean loss over the global batch."""
        c, acc = self.config, self.accelerator
        total = c.train.batch_size * acc.num_processes
        losses = []
        for micro in range(c.train.gradient_accumulation):
            refs = ds.plan_batch(self.clips, c.train.seed, self.step, micro, total, c.data.num_frames,
                                 c.data.frame_stride, c.data.reference)
            begin = self._global_offset()
            mine = refs[begin:begin + c.train.batch_size]
            seeds = [ds.sample_seed(c.train.seed, self.step, micro, begin + k) for k in range(len(mine))]
            last = micro == c.train.gradient_accumulation - 1
            with contextlib.nullcontext() if last else acc.no_sync(self.module):
                loss = self.batch_losses(self._load(mine, self.clips), seeds)
                acc.backward(loss.mean() / c.train.gradient_accumulation)
            losses.append(acc.gather(loss.detach()).float().mean().item())
        if c.train.max_grad_norm > 0:
            acc.clip_grad_norm_([p for _, p in self.trainable], c.train.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            with torch.no_grad():
                for name, p in self.trainable:
                    self.ema[name].lerp_(p.detach().float(), 1.0 - c.train.ema_decay)
        self.step += 1
        return float(np.mean(losses))

    def train(self) -> dict:
        """Train from the latest checkpoint (or from scratch) to ``train.steps``; returns a summary. Ctrl-C saves a
        checkpoint at the last finished step and raises ``KeyboardInterrupt``."""
        with torch.inference_mode(False), torch.enable_grad():  # ComfyUI runs node code in inference mode
            self.setup()
            return self._run()

    def _run(self) -> dict:
        c, acc = self.config, self.accelerator
        self.output_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.load_latest()
        if acc.is_main_process:
            (self.output_dir / "config.json").write_text(json.dumps(config_to_dict(c), indent=2) + "\n")
        bar = None
        if self.progress and acc.is_main_process:
            from tqdm import tqdm

            bar = tqdm(total=c.train.steps, initial=self.step, desc="train", unit="step")
        started, last = time.perf_counter(), None
        try:
            while self.step < c.train.steps:
                if self.stop_after is not None and self.step >= self.stop_after:
                    raise KeyboardInterrupt
                last = self.train_step()
                self._log_loss(self.step, last, time.perf_counter() - started)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{last:.4f}")
                if self.step % c.train.checkpoint_every == 0 or self.step == c.train.steps:
                    self.save_checkpoint()
                if self.val_clips and (self.step % c.validation.every == 0 or self.step == c.train.steps):
                    self.validate_and_log()
        except KeyboardInterrupt:
            if self.step > 0:
                self.save_checkpoint()
                logger.warning("[MotionGuide] training interrupted at step %d; checkpoint saved in %s (run the same "
                               "command to resume).", self.step, self.output_dir / CHECKPOINTS)
            raise
        finally:
            if bar is not None:
                bar.close()
            self._close_logs()
        exported = self.export() if acc.is_main_process else None
        acc.wait_for_everyone()
        return {"steps": self.step, "resumed_from": resumed, "last_loss": last, "adapter": exported,
                "validation": self.last_validation, "seconds": time.perf_counter() - started}

    # -- validation --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def validation_losses(self, clips: list[ds.Clip] | None = None) -> dict[float, float]:
        """Mean ``‖D − x‖²`` per fixed σ over the held-out windows (fixed noise, no dropout, no hand weight)."""
        c = self.config
        clips = self.val_clips if clips is None else clips
        refs = []
        for i, clip in enumerate(clips):
            starts = clip.windows(c.data.num_frames, c.data.frame_stride)
            picks = starts[:: max(1, len(starts) // max(c.validation.windows, 1))][:c.validation.windows]
            refs += [ds.SampleRef(i, s, s) for s in picks]
        samples = self._load(refs, clips)
        module = self.unwrapped  # main process only: no collective calls of the distributed wrapper
        was_training = module.training
        module.eval()
        out = {}
        try:
            for j, sigma in enumerate(c.validation.sigmas):
                seeds = [ds.sample_seed(c.validation.seed, k, j) for k in range(len(samples))]
                total = 0.0
                for k in range(len(samples)):
                    with self.accelerator.autocast():
                        loss = self.batch_losses(samples[k:k + 1], seeds[k:k + 1], torch.tensor([float(sigma)]),
                                                 dropout=False, hand_weight=False, module=module)
                    total += float(loss.item()) / float(edm_scalings(torch.tensor(float(sigma))).weight)
                out[float(sigma)] = total / max(len(samples), 1)
        finally:
            module.train(was_training)
        return out

    def validate_and_log(self) -> None:
        if not self.accelerator.is_main_process:
            self.accelerator.wait_for_everyone()
            return
        losses = self.validation_losses()
        self.last_validation = losses
        path = self.output_dir / "validation.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "sigma", "mse"])
            for sigma, value in losses.items():
                writer.writerow([self.step, sigma, f"{value:.6g}"])
        if self._logs and self._logs.get("tb") is not None:
            for sigma, value in losses.items():
                self._logs["tb"].add_scalar(f"validation/mse_sigma_{sigma:g}", value, self.step)
        logger.info("[MotionGuide] step %d held-out denoising MSE: %s", self.step,
                    ", ".join(f"σ={s:g}: {v:.4f}" for s, v in losses.items()))
        self.accelerator.wait_for_everyone()

    # -- logs --------------------------------------------------------------------------------------------------

    def _log_loss(self, step: int, loss: float, seconds: float) -> None:
        if not self.accelerator.is_main_process:
            return
        if self._logs is None:
            path = self.output_dir / "loss.csv"
            new = not path.exists()
            f = open(path, "a", newline="")  # noqa: SIM115 (closed in _close_logs)
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "loss", "lr", "seconds"])
            tb = None
            try:
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(self.output_dir / "tensorboard"))
            except ImportError:
                logger.info("[MotionGuide] tensorboard is not installed: loss.csv only (pip install tensorboard).")
            self._logs = {"file": f, "writer": writer, "tb": tb}
        lr = self.scheduler.get_last_lr()[0]
        self._logs["writer"].writerow([step, f"{loss:.6g}", f"{lr:.6g}", f"{seconds:.2f}"])
        self._logs["file"].flush()
        if self._logs["tb"] is not None:
            self._logs["tb"].add_scalar("train/loss", loss, step)

    def _close_logs(self) -> None:
        if self._logs:
            self._logs["file"].close()
            if self._logs["tb"] is not None:
                self._logs["tb"].close()
            self._logs = None
        if self.accelerator.is_main_process:
            plot_loss_curve(self.output_dir / "loss.csv", self.output_dir / "loss.png")

    # -- checkpoints -------------------------------------------------------------------------------------------

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        unwrapped = dict(self.unwrapped.named_parameters())
        return {n: unwrapped[n].detach().float().cpu().contiguous() for n, _ in self.trainable}

    def save_checkpoint(self) -> Path | None:
        """``checkpoints/step_NNNNNN/`` (trainable weights, EMA, optimizer, LR scheduler, step), written to a
        temporary folder renamed into place; older checkpoints beyond ``keep_checkpoints`` are removed."""
        from safetensors.torch import save_file

        acc = self.accelerator
        acc.wait_for_everyone()
        final = self.output_dir / CHECKPOINTS / f"step_{self.step:06d}"
        if acc.is_main_process:
            tmp = final.with_name(final.name + ".tmp")
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            save_file(self._trainable_state(), str(tmp / "trainable.safetensors"))
            if self.ema is not None:
                save_file({k: v.cpu().contiguous() for k, v in self.ema.items()}, str(tmp / "ema.safetensors"))
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
            save_adapter(self._adapter_for_export(), tmp / "adapter.safetensors")
            (tmp / "state.json").write_text(json.dumps({"step": self.step, "config": config_to_dict(self.config)},
                                                       indent=2) + "\n")
            _atomic_dir_publish(tmp, final)
            done = sorted(p for p in final.parent.glob("step_*") if not p.name.endswith(".tmp"))
            for old in done[:-max(self.config.train.keep_checkpoints, 1)]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return final

    def load_latest(self) -> int | None:
        """Resume from the newest complete checkpoint in ``output_dir`` (None when there is none)."""
        from safetensors.torch import load_file

        folder = self.output_dir / CHECKPOINTS
        done = sorted(p for p in folder.glob("step_*") if not p.name.endswith(".tmp")) if folder.is_dir() else []
        if not done:
            return None
        latest = done[-1]
        state = json.loads((latest / "state.json").read_text())
        old = state.get("config", {})
        for key in ("maps",):
            if old.get("adapter", {}).get(key) != list(self.config.adapter.maps):
                raise ValueError(f"{latest} was trained with adapter.maps {old.get('adapter', {}).get(key)}, but the "
                                 f"config says {list(self.config.adapter.maps)}; use another output_dir to start anew.")
        if old.get("base_model") != self.config.base_model:
            raise ValueError(f"{latest} was trained for base_model {old.get('base_model')!r}, but the config says "
                             f"{self.config.base_model!r}; use another output_dir to start anew.")
        weights = load_file(str(latest / "trainable.safetensors"))
        names = [n for n, _ in self.trainable]
        if sorted(weights) != sorted(names):
            raise ValueError(f"{latest} holds other trainable weights than this config trains (train_pose_net / "
                             "lora_rank changed?); use another output_dir to start anew.")
        params = dict(self.unwrapped.named_parameters())
        with torch.no_grad():
            for name in names:
                params[name].copy_(weights[name].to(params[name].dtype))
        if self.ema is not None and (latest / "ema.safetensors").is_file():
            self.ema = {k: v.to(self.accelerator.device) for k, v in load_file(str(latest / "ema.safetensors")).items()}
        self.optimizer.load_state_dict(torch.load(latest / "optimizer.pt", weights_only=True))
        self.scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=True))
        self.step = int(state["step"])
        logger.info("[MotionGuide] resumed from %s (step %d)", latest, self.step)
        return self.step

    # -- export ------------------------------------------------------------------------------------------------

    def _adapter_for_export(self) -> GeometryAdapter:
        adapter = self.unwrapped.adapter
        config = replace(adapter.config, extra={**adapter.config.extra, "steps": self.step})
        out = GeometryAdapter(config)
        state = {k: v.detach().float().cpu() for k, v in adapter.state_dict().items()}
        if self.ema is not None:
            state.update({k[len("adapter."):]: v.cpu() for k, v in self.ema.items() if k.startswith("adapter.")})
        out.load_state_dict(state)
        return out

    def export(self) -> Path:
        """``output_dir/adapter.safetensors`` (EMA weights when EMA is on), a copy in ``export_dir`` as
        ``<run_name>.safetensors``, and PoseNet / LoRA weights beside the first when they were trained."""
        from safetensors.torch import save_file

        adapter = self._adapter_for_export()
        path = save_adapter(adapter, self.output_dir / "adapter.safetensors")
        extra = {n: v for n, v in self._trainable_state().items() if not n.startswith("adapter.")}
        if extra:
            tmp = self.output_dir / "extra_trainable.safetensors.tmp"
            save_file(extra, str(tmp))
            os.replace(tmp, self.output_dir / "extra_trainable.safetensors")
        if self.config.export_dir:
            path = save_adapter(adapter, Path(self.config.export_dir) / f"{self.config.run_name}.safetensors")
        logger.info("[MotionGuide] adapter written to %s", path)
        return path


def plot_loss_curve(csv_path: Path, png_path: Path) -> Path | None:
    """The loss curve as a PNG when matplotlib is installed (else a log line and ``None``)."""
    if not csv_path.is_file():
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("[MotionGuide] matplotlib is not installed: no loss.png (loss.csv has the numbers).")
        return None
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    fig.tight_layout()
    tmp = png_path.with_name(png_path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path
