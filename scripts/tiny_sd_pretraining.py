"""Stages 1 and 2 of the tiny DiffLMM (`train_tiny_difflmm.py`): the tiny Stable Diffusion parts pre-trained
each with its own objective, as SD-1.5 was before DiffLMM froze it. No box, mask or point is used.

1. `train_vae`: `AutoencoderKL`, reconstruction MSE + 1e-6·KL on the scenes as DiffLMM pre-processes them;
   `scaling_factor` = 1 / std of the latent means (SD's 0.18215 rule).
2. `train_unet`: ε-prediction MSE, ‖ε − ε_θ(√ᾱ_t·z + √(1−ᾱ_t)·ε, t, c)‖², t ~ U{0 … 999} on SD-1.5's
   scaled-linear schedule (`scheduler.alphas_cumprod`), conditioned on the caption through a throw-away
   word-embedding encoder (`CaptionEncoder`; DiffLMM never uses SD's text encoder).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

import tiny_builders
from tiny_training import epoch_batch, log, warmup_cosine

CAPTION_LENGTH = 20
VAE_BATCH, UNET_BATCH = 16, 32


# ---------------------------------------------------------------------------------------------- stage 1: VAE

def train_vae(vae, images, args) -> None:
    vae.train()
    total = args.vae_steps
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = warmup_cosine(optimizer, total, 50)
    per_epoch = math.ceil(len(images) / VAE_BATCH)
    started = time.time()
    for step in range(total):
        x = images[epoch_batch(len(images), VAE_BATCH, args.seed + 1, step, per_epoch)].float()
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=torch.Generator().manual_seed(args.seed * 100_003 + step))
        recon = vae.decode(z).sample
        kl = posterior.kl().mean() / x[0].numel()
        loss = F.mse_loss(recon, x) + 1e-6 * kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 50 == 0:
            log(f"vae step {step + 1}/{total} loss {loss.item():.4f} elapsed {(time.time() - started) / 60:.1f} min")
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        means = torch.cat([vae.encode(images[i:i + 256].float()).latent_dist.mean for i in range(0, len(images), 256)])
    vae.register_to_config(scaling_factor=float(1.0 / means.std()))
    log(f"vae scaling_factor {vae.config.scaling_factor:.4f}")


# ---------------------------------------------------------------------------------------------- stage 2: U-Net

class CaptionEncoder(torch.nn.Module):
    """The throw-away text encoder of stage 2: word embedding + position embedding + LayerNorm."""

    def __init__(self, vocab: int, width: int):
        super().__init__()
        self.words = torch.nn.Embedding(vocab, width)
        self.positions = torch.nn.Parameter(torch.randn(CAPTION_LENGTH, width) * 0.02)
        self.norm = torch.nn.LayerNorm(width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.words(ids) + self.positions[: ids.shape[1]])


def train_unet(unet, vae, scheduler, images, captions, vocab: int, pad_id: int, args) -> None:
    with torch.no_grad():
        stats = [vae.encode(images[i:i + 256].float()).latent_dist for i in range(0, len(images), 256)]
    means, stds = torch.cat([d.mean for d in stats]), torch.cat([d.std for d in stats])
    ids = torch.full((len(captions), CAPTION_LENGTH), pad_id, dtype=torch.long)
    for row, caption in enumerate(captions):
        ids[row, :min(len(caption), CAPTION_LENGTH)] = torch.tensor(caption[:CAPTION_LENGTH])
    encoder = CaptionEncoder(vocab, tiny_builders.TINY_CROSS_DIM)
    unet.train()
    parameters = list(unet.parameters()) + list(encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=0.01)
    total = args.unet_steps
    schedule = warmup_cosine(optimizer, total, 50)
    alphas = scheduler.alphas_cumprod
    per_epoch = math.ceil(len(images) / UNET_BATCH)
    started = time.time()
    for step in range(total):
        picks = epoch_batch(len(images), UNET_BATCH, args.seed + 2, step, per_epoch)
        generator = torch.Generator().manual_seed(args.seed * 100_019 + step)
        z = (means[picks] + stds[picks] * torch.randn(means[picks].shape, generator=generator)) * vae.config.scaling_factor
        noise = torch.randn(z.shape, generator=generator)
        t = torch.randint(0, len(alphas), (len(picks),), generator=generator)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        loss = F.mse_loss(unet(noisy, t, encoder_hidden_states=encoder(ids[picks])).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        if (step + 1) % 50 == 0:
            log(f"unet step {step + 1}/{total} loss {loss.item():.4f} elapsed {(time.time() - started) / 60:.1f} min")
    unet.eval().requires_grad_(False)
