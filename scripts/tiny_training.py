"""Training pieces shared by the tiny models' trainings (scripts/train_tiny.py, scripts/train_tiny_difflmm.py):
logging, the JPEG round trip the bundled sample applies, seeded epoch batches, the warm-up + cosine schedule,
the caption batch, and resumable training state."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np
import torch

STATE = ".train_state.pt"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def jpeg_roundtrip(array: np.ndarray):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, subsampling=0)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def epoch_batch(count: int, batch: int, seed: int, step: int, steps_per_epoch: int) -> list[int]:
    """The indices of optimiser step `step`: a fresh permutation per epoch, seeded by (seed, epoch)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 1000 + step // steps_per_epoch))
    offset = (step % steps_per_epoch) * batch
    return order[offset:offset + batch].tolist()


def warmup_cosine(optimizer, total: int, warmup: int):
    """lr × min(1, (s+1)/warmup) × ½(1 + cos(π·min(1, s/total))) at step s."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))


def llava_batch(prompt_ids, captions, picks, pad_id):
    length = len(prompt_ids) + max(len(captions[i]) for i in picks)
    ids = torch.full((len(picks), length), pad_id, dtype=torch.long)
    labels = torch.full((len(picks), length), -100, dtype=torch.long)
    mask = torch.zeros((len(picks), length), dtype=torch.long)
    for row, i in enumerate(picks):
        cap = torch.tensor(captions[i])
        end = len(prompt_ids) + len(cap)
        ids[row, :len(prompt_ids)] = prompt_ids
        ids[row, len(prompt_ids):end] = cap
        labels[row, len(prompt_ids):end] = cap
        mask[row, :end] = 1
    return ids, labels, mask


def mixed_batch(prompts, answers, starts, picks, pad_id):
    """(ids, labels, attention mask) of examples with their own prompts, right-padded; the loss covers each
    answer from its token `starts[i]` on (+ EOS). With one shared prompt and starts 0 it is `llava_batch`."""
    length = max(len(prompts[i]) + len(answers[i]) for i in picks)
    ids = torch.full((len(picks), length), pad_id, dtype=torch.long)
    labels = torch.full((len(picks), length), -100, dtype=torch.long)
    mask = torch.zeros((len(picks), length), dtype=torch.long)
    for row, i in enumerate(picks):
        prompt, answer = prompts[i], torch.tensor(answers[i])
        end = len(prompt) + len(answer)
        ids[row, :len(prompt)] = prompt
        ids[row, len(prompt):end] = answer
        labels[row, len(prompt) + starts[i]:end] = answer[starts[i]:]
        mask[row, :end] = 1
    return ids, labels, mask


def save_state(output: Path, model, optimizer, schedule, step: int) -> None:
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "step": step}, output / (STATE + ".tmp"))
    (output / (STATE + ".tmp")).replace(output / STATE)


def resume(output: Path, model, optimizer, schedule) -> int:
    path = output / STATE
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    log(f"resumed at step {state['step']}")
    return int(state["step"])
