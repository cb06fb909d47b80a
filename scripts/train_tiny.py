"""Train the embedded tiny models on synthetic scenes (CPU, seeded, resumable).

    python scripts/train_tiny.py --model llava-as --output gcgbench/checkpoints/tiny-llava-as
    python scripts/train_tiny.py --model sam --output gcgbench/checkpoints/tiny-sam
    python scripts/train_tiny.py --model difflmm --base-llava LLAVA_DIR --output gcgbench/checkpoints/tiny-difflmm

(`make train-tiny` is the exact recipe of the shipped files: thread counts, epochs, DiffLMM's base LLaVA.)

llava-as: `build_tiny_llava` (scripts/tiny_builders.py), trained from scratch with next-token cross-entropy on the
caption tokens (+ EOS) of `Scene.caption()` only — the prompt and the 64 image tokens carry no loss, and no
box, mask or point is ever shown: any grounding in its attention emerges. Input per scene: the image rendered,
JPEG-encoded as the bundled sample is (quality 95), padded to a square with the processor's mean colour
(`expand2square`) and processed by the shipped `LlavaProcessor`; the prompt is the backend's llava_v1
conversation around `embedded.TINY_QUESTION`. AdamW (lr 1e-3, wd 0.01), linear warm-up `--warmup` steps then cosine; bfloat16 autocast (float32 weights).

sam: segment-anything modules of the `tiny_fine` type (16×16 embedding; `--sam-type`); per (scene, shape) one positive point drawn uniformly from the
shape's pixels (integer pixel coordinates, as a&s gives them), transformed like `SamPredictor`; loss = BCE +
dice between the LAST multimask output (the one `SamRefiner` keeps), upsampled to the 64 px input frame, and the
shape's mask resized to that frame (padding excluded). Mask supervision is fine: this is the refiner.

Scenes: indices `--start` … `--start + --scenes - 1` (default 100000 …, disjoint from the sample's 0 … 23).
Determinism: torch/numpy seeded from `--seed`; a checkpoint (`DIR/.train_state.pt`) is written every
`--checkpoint-minutes` and a run restarted with the same arguments resumes from it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # tiny_builders, tiny_training, train_tiny_difflmm

from gcgbench.data.sample.scenes import make_scene  # noqa: E402
from gcgbench.models.llava import loading as ll  # noqa: E402
from gcgbench.models import embedded  # noqa: E402
from gcgbench.models.llava_as.options import RES_TEMPLATE  # noqa: E402
import tiny_builders  # noqa: E402
import tiny_tasks  # noqa: E402
from tiny_training import STATE, epoch_batch, jpeg_roundtrip, log, mixed_batch, resume, save_state, warmup_cosine  # noqa: E402

# ---------------------------------------------------------------------------------------------- llava

def llava_pixels(processor, scenes, log_every: int = 2000):
    """pixel_values (N,3,S,S) float16 of the scenes, JPEG round-tripped and square-padded as the backend does."""
    background = ll.mean_colour(processor.image_processor)
    pixels, images = [], []
    for n, scene in enumerate(scenes):
        images.append(ll.expand_to_square(jpeg_roundtrip(scene.render()), background))
        if len(images) == 256 or n == len(scenes) - 1:
            pixels.append(processor.image_processor(images, return_tensors="pt")["pixel_values"].half())
            images = []
        if (n + 1) % log_every == 0:
            log(f"prepared {n + 1} scenes")
    return torch.cat(pixels)


def Image_blank(processor):
    from PIL import Image

    return Image.new("RGB", (64, 64), (0, 0, 0))


def llava_start(args):
    """(model, processor): a random-init tiny LLaVA, or with `--init-from` a trained one whose vocabulary gets
    `tiny_builders.FINETUNE_WORDS` (new embedding and output rows start at the mean of the old rows)."""
    if not args.init_from:
        return tiny_builders.build_tiny_llava(seed=args.seed)
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    model = LlavaForConditionalGeneration.from_pretrained(args.init_from, dtype=torch.float32)
    processor = LlavaProcessor.from_pretrained(args.init_from)
    words = tiny_tasks.finetune_words(args.res_answer)
    processor.tokenizer = tiny_builders.extend_vocabulary(processor.tokenizer, words)
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(processor.tokenizer), mean_resizing=False)
    with torch.no_grad():
        for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            weight[old:] = weight[:old].mean(dim=0)
    log(f"initialised from {args.init_from}; vocabulary {old} -> {len(processor.tokenizer)} words")
    return model, processor


def train_llava(args) -> None:
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    model, processor = llava_start(args)
    log(f"tiny LLaVA: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    scenes = [make_scene(i) for i in tiny_builders.scene_indices(args.scenes, args.start)]
    pixels = llava_pixels(processor, scenes)
    blank = Image_blank(processor)

    def prompt_ids(question: str):
        return processor(text=[ll.llava_v1_prompt(question)], images=[blank], return_tensors="pt")["input_ids"][0]

    chosen = tiny_tasks.examples(scenes, args.tasks, args.question, args.res_template, args.res_per_scene, args.seed,
                                  args.res_answer)
    prompts, answers, starts = tiny_tasks.tokenize(chosen, processor.tokenizer, prompt_ids)
    owners = torch.tensor([example.scene for example in chosen])
    log(f"{len(chosen)} examples ({', '.join(args.tasks)}) over {len(scenes)} scenes")
    steps_per_epoch = math.ceil(len(chosen) / args.batch)
    total = args.steps or steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, total, args.warmup)
    step = resume(output, model, optimizer, schedule)
    model.train()
    started, saved = time.time(), time.time()
    while step < total:
        picks = epoch_batch(len(chosen), args.batch, args.seed, step, steps_per_epoch)
        ids, labels, mask = mixed_batch(prompts, answers, starts, picks, 0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(input_ids=ids, attention_mask=mask, pixel_values=pixels[owners[picks]].float(),
                         labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        if step % 20 == 0 or step == total:
            rate = time.time() - started
            log(f"step {step}/{total} epoch {step / steps_per_epoch:.2f} loss {loss.item():.4f} lr {schedule.get_last_lr()[0]:.2e} elapsed {rate / 60:.1f} min")
        if time.time() - saved > args.checkpoint_minutes * 60 or step == total:
            save_state(output, model, optimizer, schedule, step)
            model.eval()
            _export_llava(model, processor, output)
            model.train()
            saved = time.time()
    log(f"done: {step} steps in {(time.time() - started) / 60:.1f} min")


def _export_llava(model, processor, output: Path) -> None:
    model.save_pretrained(output)
    processor.save_pretrained(output)


# ---------------------------------------------------------------------------------------------- sam

def sam_data(indices, side: int = 64, points: int = 8, seed: int = 0):
    """Per (scene, shape): padded input image (side,side,3) uint8, target mask (side,side) float16,
    valid area (h,w) and `points` candidate positive points already in input-frame coordinates."""
    from PIL import Image

    from gcgbench.grounding.sam_refine import import_segment_anything

    transform = import_segment_anything().utils.transforms.ResizeLongestSide(side)
    rng = np.random.default_rng([seed, 7])
    images, targets, coords, sizes, owner = [], [], [], [], []
    for index in indices:
        scene = make_scene(index)
        picture = np.asarray(jpeg_roundtrip(scene.render()))
        resized = transform.apply_image(picture)
        h, w = resized.shape[:2]
        canvas = np.zeros((side, side, 3), dtype=np.uint8)
        canvas[:h, :w] = resized
        images.append(canvas)
        for mask in scene.shape_masks:
            small = np.asarray(Image.fromarray(mask * 255).resize((w, h), Image.BILINEAR), dtype=np.float32) / 255
            target = np.zeros((side, side), dtype=np.float16)
            target[:h, :w] = small
            ys, xs = np.nonzero(mask)
            chosen = rng.integers(len(xs), size=points)
            pts = np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.float64)
            coords.append(transform.apply_coords(pts, (scene.height, scene.width)))
            targets.append(target)
            sizes.append((h, w))
            owner.append(len(images) - 1)
    return (torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(targets)),
            torch.from_numpy(np.stack(coords)).float(), torch.tensor(sizes), torch.tensor(owner))


def sam_forward(sam, images, coords):
    """Last multimask logits (B, side, side) for uint8 images (B,side,side,3) and one point each (B,2)."""
    x = images.permute(0, 3, 1, 2).float()
    x = (x - sam.pixel_mean) / sam.pixel_std
    embeddings = sam.image_encoder(x)
    sparse, dense = sam.prompt_encoder(points=(coords[:, None, :], torch.ones(len(coords), 1, dtype=torch.int)),
                                       boxes=None, masks=None)
    low = batched_mask_decoder(sam.mask_decoder, embeddings, sam.prompt_encoder.get_dense_pe(), sparse, dense)
    return F.interpolate(low[:, -1:], size=images.shape[1:3], mode="bilinear", align_corners=False)[:, 0]


def batched_mask_decoder(decoder, embeddings, image_pe, sparse, dense):
    """All multimask logits (B, 3, h, w) for B images with one prompt each.

    `MaskDecoder.predict_masks` pairs ONE image with B prompts (it repeats the image embedding B times); this is
    the same computation with image b paired with prompt b, so a training batch needs one decoder call instead
    of B (`check_batched_decoder` compares it with the per-image calls)."""
    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((tokens.unsqueeze(0).expand(len(sparse), -1, -1), sparse), dim=1)
    src = embeddings + dense
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, image_pe.expand(b, -1, -1, -1), tokens)
    mask_tokens = hs[:, 1:1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1)
    b, c, h, w = upscaled.shape
    masks = (hyper @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
    return masks[:, 1:]  # multimask_output=True drops the single-mask output 0


def check_batched_decoder(sam, images, coords) -> None:
    with torch.no_grad():
        x = (images.permute(0, 3, 1, 2).float() - sam.pixel_mean) / sam.pixel_std
        embeddings = sam.image_encoder(x)
        sparse, dense = sam.prompt_encoder(points=(coords[:, None, :], torch.ones(len(coords), 1, dtype=torch.int)),
                                           boxes=None, masks=None)
        pe = sam.prompt_encoder.get_dense_pe()
        batched = batched_mask_decoder(sam.mask_decoder, embeddings, pe, sparse, dense)
        for i in range(len(coords)):
            single, _ = sam.mask_decoder(image_embeddings=embeddings[i:i + 1], image_pe=pe,
                                         sparse_prompt_embeddings=sparse[i:i + 1],
                                         dense_prompt_embeddings=dense[i:i + 1], multimask_output=True)
            if not torch.allclose(single[0], batched[i], atol=1e-4):
                raise AssertionError("batched mask decoder differs from segment-anything's per-image call")


def train_sam(args) -> None:
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    sam = tiny_builders.build_tiny_sam(args.sam_type)
    log(f"tiny SAM: {sum(p.numel() for p in sam.parameters()) / 1e3:.1f}k parameters")
    images, targets, coords, sizes, owner = sam_data(tiny_builders.scene_indices(args.scenes, args.start), seed=args.seed)
    valid = torch.zeros_like(targets, dtype=torch.bool)
    for i, (h, w) in enumerate(sizes.tolist()):
        valid[i, :h, :w] = True
    log(f"{len(targets)} (scene, shape) pairs")
    check_batched_decoder(sam, images[owner[:4]], coords[:4, 0])
    steps_per_epoch = math.ceil(len(targets) / args.batch)
    total = args.steps or steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(sam.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, total, 100)
    step = resume(output, sam, optimizer, schedule)
    sam.train()
    started, saved = time.time(), time.time()
    while step < total:
        picks = torch.tensor(epoch_batch(len(targets), args.batch, args.seed, step, steps_per_epoch))
        which = torch.randint(coords.shape[1], (len(picks),), generator=torch.Generator().manual_seed(args.seed + step))
        logits = sam_forward(sam, images[owner[picks]], coords[picks, which])
        target, area = targets[picks].float(), valid[picks].float()
        bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * area).sum() / area.sum()
        prob = torch.sigmoid(logits) * area
        dice = 1 - ((2 * (prob * target).sum((1, 2)) + 1) / (prob.sum((1, 2)) + target.sum((1, 2)) + 1)).mean()
        loss = bce + dice
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        if step % 20 == 0 or step == total:
            log(f"step {step}/{total} loss {loss.item():.4f} (bce {bce.item():.4f} dice {dice.item():.4f}) "
                f"elapsed {(time.time() - started) / 60:.1f} min")
        if time.time() - saved > args.checkpoint_minutes * 60 or step == total:
            save_state(output, sam, optimizer, schedule, step)
            torch.save({k: v.detach().clone() for k, v in sam.state_dict().items()}, output / embedded.TINY_SAM_FILE)
            saved = time.time()
    log(f"done: {step} steps in {(time.time() - started) / 60:.1f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("llava-as", "difflmm", "sam"), required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=tiny_builders.TRAIN_SCENE_START)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=0, help="total optimiser steps (overrides --epochs)")
    parser.add_argument("--batch", type=int, default=None, help="default 64 (difflmm: 32)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=40, help="linear warm-up steps (llava-as)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="bfloat16 autocast for the llava-as forward (weights and optimiser stay float32)")
    parser.add_argument("--base-llava", default=str(embedded.tiny_llava_path()),
                        help="difflmm: the trained tiny LLaVA whose language model is the frozen base LLM")
    parser.add_argument("--vae-steps", type=int, default=300, help="difflmm stage 1 (VAE) steps, batch 16")
    parser.add_argument("--unet-steps", type=int, default=500, help="difflmm stage 2 (U-Net) steps, batch 32")
    parser.add_argument("--sam-type", default=embedded.TINY_SAM_TYPE, help="registered small SAM type (sam)")
    parser.add_argument("--init-from", default=None,
                        help="fine-tune: start from this trained tiny LLaVA folder (llava-as) or tiny-difflmm folder "
                             "(difflmm: its LoRA, projector, CLIP, SD and base) instead of random weights, and add "
                             "tiny_builders.FINETUNE_WORDS to the vocabulary")
    parser.add_argument("--tasks", default="gcg",
                        help="'|'-separated training tasks of scripts/tiny_tasks.py: gcg (captions), res, png")
    parser.add_argument("--question", default=None,
                        help="the GCG/PNG question (default: 'Describe the image .' from scratch, the embedded "
                             "default question embedded.TINY_QUESTION with --init-from)")
    parser.add_argument("--res-template", default=RES_TEMPLATE, help="RES question around {expression} (res task)")
    parser.add_argument("--res-per-scene", type=int, default=2, help="RES examples per scene (res task)")
    parser.add_argument("--res-answer", choices=tiny_tasks.RES_ANSWERS, default="colour",
                        help="the word after 'it is' in RES answers (scripts/tiny_tasks.py)")
    parser.add_argument("--state-every", type=int, default=100, help="difflmm: steps between resumable states")
    parser.add_argument("--freeze-vision", action="store_true",
                        help="difflmm: CLIP and the projector stay frozen and each scene's image tokens are computed "
                             "once; only LoRA (and new vocabulary rows) train")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint-minutes", type=float, default=3.0)
    parser.add_argument("--keep-state", action="store_true", help="keep DIR/.train_state.pt after the last step")
    args = parser.parse_args(argv)
    args.batch = args.batch or (32 if args.model == "difflmm" else 64)
    args.tasks = tuple(t for t in args.tasks.split("|") if t)
    args.question = args.question or (embedded.TINY_QUESTION if args.init_from else tiny_builders.PRETRAIN_QUESTION)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.model == "llava-as":
        args.epochs = args.epochs or 12
        args.lr = args.lr or 1e-3
        train_llava(args)
    elif args.model == "difflmm":
        from train_tiny_difflmm import train_difflmm

        args.epochs = args.epochs or 4
        args.lr = args.lr or 1e-3
        train_difflmm(args)
    else:
        args.epochs = args.epochs or 6
        args.lr = args.lr or 3e-3
        train_sam(args)
    if not args.keep_state:
        (Path(args.output) / STATE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
