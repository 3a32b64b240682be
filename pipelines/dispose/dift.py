"""DIFT features (Tang et al. 2023) of the reference image from Stable Diffusion 1.5, as DisPose computes them.

The reference (``x·2 − 1``, rounded to the SD model's dtype) is repeated ``ensemble`` times, VAE-encoded with a
sampled latent (× the VAE's scaling factor), noised to DDIM timestep 261 and run through SD's UNet with the prompt
"photo of a human"; the output of up block 1 is averaged over the ensemble. The UNet stops after that block.

SD-1.5 is read from a diffusers folder (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``),
strictly and without executing code. DisPose's second feature (timestep 0, empty prompt, up block 2) is never used
by it, so it is not computed here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..mimicmotion.loading import load_into, read_state_dict

PROMPT = "photo of a human"
TIMESTEP = 261
UP_BLOCK = 1
ENSEMBLE = 8
SD_SOURCE = ("https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5 (diffusers folder: unet, vae, "
             "text_encoder, tokenizer, scheduler)")
SD_FILES = {"unet": ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
                     "diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.bin"),
            "vae": ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
                    "diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.bin"),
            "text_encoder": ("model.fp16.safetensors", "model.safetensors", "pytorch_model.fp16.bin",
                             "pytorch_model.bin")}


@dataclass
class DIFTModel:
    unet: nn.Module
    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    scheduler_config: dict

    def to(self, device):
        for m in (self.unet, self.vae, self.text_encoder):
            m.to(device)
        return self


def missing_sd_files(folder: str | Path) -> list[str]:
    """The parts of an SD-1.5 diffusers folder that are not there (empty when complete)."""
    folder = Path(folder)
    missing = [f"{c}/{names[0]}" for c, names in SD_FILES.items() if not any((folder / c / n).is_file() for n in names)]
    missing += [p for p in ("unet/config.json", "vae/config.json", "text_encoder/config.json",
                            "tokenizer/vocab.json", "scheduler/scheduler_config.json") if not (folder / p).is_file()]
    return missing


def load_dift_model(folder: str | Path, dtype: torch.dtype) -> DIFTModel:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    missing = missing_sd_files(folder)
    if missing:
        raise FileNotFoundError(f"Stable Diffusion 1.5 folder {folder} lacks {', '.join(missing)}. Download it from "
                                f"{SD_SOURCE}.")

    def config(component, name="config.json"):
        return json.loads((folder / component / name).read_text(encoding="utf-8"))

    def weights(component):
        return read_state_dict(next(folder / component / n for n in SD_FILES[component]
                                    if (folder / component / n).is_file()))

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config("unet"))
        vae = AutoencoderKL.from_config(config("vae"))
        fields = {k: v for k, v in config("text_encoder").items()
                  if not k.startswith("_") and k not in ("architectures", "transformers_version")}
        text = CLIPTextModel(CLIPTextConfig(**fields))
    unet = load_into(unet, weights("unet"), dtype, str(folder / "unet"), "SD-1.5 UNet")
    vae = load_into(vae, weights("vae"), dtype, str(folder / "vae"), "SD-1.5 VAE")
    text_state = {k: v for k, v in weights("text_encoder").items() if not k.endswith("position_ids")}
    text = load_into(text, text_state, dtype, str(folder / "text_encoder"), "SD-1.5 text encoder")
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
    return DIFTModel(unet, vae, text, tokenizer, config("scheduler", "scheduler_config.json"))


class _Stop(Exception):
    def __init__(self, value):
        self.value = value


@torch.no_grad()
def prompt_embeds(model: DIFTModel, prompt: str = PROMPT) -> torch.Tensor:
    tok = model.tokenizer(prompt, padding="max_length", max_length=model.tokenizer.model_max_length, truncation=True,
                          return_tensors="pt")
    device = next(model.text_encoder.parameters()).device
    mask = tok.attention_mask.to(device) if getattr(model.text_encoder.config, "use_attention_mask", False) else None
    return model.text_encoder(tok.input_ids.to(device), attention_mask=mask)[0]


@torch.no_grad()
def dift_features(model: DIFTModel, reference: torch.Tensor, generator: torch.Generator, ensemble: int = ENSEMBLE,
                  timestep: int = TIMESTEP, up_block: int = UP_BLOCK, prompt: str = PROMPT) -> torch.Tensor:
    """``[1,C,h,w]`` features of ``reference`` ``[1,3,H,W]`` uint8 (or 0..255 float).

    ``generator`` draws the VAE's latent sample and the noise, in that order (DisPose draws both from the unseeded
    global RNG; a seeded generator makes the result repeatable)."""
    from diffusers import DDIMScheduler

    dtype = next(model.unet.parameters()).dtype
    device = next(model.unet.parameters()).device
    # DisPose hands the image over in float16 whatever the model runs in
    image = ((reference.double() / 255.0 - 0.5) * 2).half().to(device, dtype).repeat(ensemble, 1, 1, 1)
    dist = model.vae.encode(image).latent_dist
    sample = torch.randn(dist.mean.shape, generator=generator, dtype=dist.parameters.dtype,
                         device=generator.device).to(device)
    latents = (dist.mean + dist.std * sample) * model.vae.config.scaling_factor
    # ``randn_like``: drawn in the latents' memory order (the VAE leaves them channels-last), as DisPose draws it
    noise = torch.empty_like(latents, device=generator.device).normal_(generator=generator).to(device)
    scheduler = DDIMScheduler.from_config(model.scheduler_config)
    t = torch.tensor(timestep, dtype=torch.long, device=device)
    noisy = scheduler.add_noise(latents, noise, t)
    embeds = prompt_embeds(model, prompt).to(dtype).repeat(ensemble, 1, 1)

    def stop(module, args, output):
        raise _Stop(output)

    handle = model.unet.up_blocks[up_block].register_forward_hook(stop)
    try:
        model.unet(noisy, t, encoder_hidden_states=embeds)
        raise RuntimeError("DIFT: the UNet finished without reaching its up block")  # pragma: no cover
    except _Stop as got:
        features = got.value
    finally:
        handle.remove()
    return features.mean(0, keepdim=True)
