"""Train the embedded tiny DiffLMM (`scripts/train_tiny.py --model difflmm`), in DiffLMM's own order.

DiffLMM (Cao et al., `Shengcao-Cao/groundLMM`) = a pre-trained Stable Diffusion 1.5 (frozen) + a pre-trained
CLIP + a pre-trained LLM, joined by the `SDCLIPBlock` projector (with the implicit captioner that conditions
the U-Net on CLIP features) and fine-tuned with LoRA on captioning/instruction data. No tiny pre-trained
parts exist, so they are made here first, each with its own objective, and no stage ever sees a box, mask or
point:

1. `vae`: `AutoencoderKL` (`tiny_builders.build_tiny_sd`), reconstruction MSE + 1e-6·KL on the scenes as DiffLMM
   pre-processes them (`difflmm/vision.py::preprocess_image`, R = 128); `scaling_factor` = 1 / std of the latents,
   as SD chose its 0.18215.
2. `unet`: the U-Net as a latent diffusion model: ε-prediction MSE at t ~ U{0 … 999} with SD's scaled-linear
   schedule, conditioned on the scene caption through a throw-away word-embedding text encoder (SD's text
   encoder is never used by DiffLMM either: the implicit captioner replaces it).
3. `lmm`: DiffLMM's fine-tuning: next-token loss on the caption tokens only (as the tiny LLaVA), through the
   real vision code path (`DiffLmmVisionTower.features_with_grad`: VAE sample, t = 100 noise, U-Net
   `up_blocks[1]`, implicit captioner) and `SDCLIPBlock`; trained: the projector (incl. implicit captioner),
   LoRA (r 16, α 32, on q/k/v/o/gate/up/down as LLaVA's `find_all_linear_names`) and — the one departure,
   because no tiny pre-trained CLIP exists — the tiny CLIP tower. Frozen: U-Net, VAE and the base LLM, which
   is the tiny LLaVA's language model (`checkpoints/tiny-llava-as`), as DiffLMM starts from Vicuna.

Output `DIR/{base,lora,sd,clip}` in the layouts of `lmsys/vicuna-7b-v1.5`, `Shengcao1006/difflmm-llava-v1.5-7b-lora`
(config.json + adapter_config.json + adapter_model.safetensors + non_lora_trainables.bin), SD-1.5 (diffusers
`unet/ vae/ scheduler/`) and `openai/clip-vit-large-patch14-336`, loaded by `gcgbench/models/difflmm/loading.py::load_difflmm`.
Each stage's result is kept in `DIR/.stages/`, so a restarted run skips finished stages (and the LMM stage
resumes from `DIR/.train_state.pt`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gcgbench.data.sample.scenes import make_scene
from gcgbench.models.llava import loading as ll
from gcgbench.models import embedded
import tiny_builders
from gcgbench.models.difflmm.backend import DiffLmmProcessor
from gcgbench.models.llava.spliced import embed_with_image_tokens
from gcgbench.models.difflmm.vision import DiffLmmVisionConfig, DiffLmmVisionTower, SDCLIPBlock, preprocess_image

from tiny_training import epoch_batch, jpeg_roundtrip, llava_batch, log, resume, save_state, warmup_cosine

CAPTION_LENGTH = 20
VAE_BATCH, UNET_BATCH = 16, 32


def scene_data(indices, tokenizer):
    """(images (N,3,R,R) float16 as DiffLMM pre-processes them, caption ids list[list[int]])."""
    images, captions = [], []
    for n, index in enumerate(indices):
        scene = make_scene(index)
        images.append(preprocess_image(jpeg_roundtrip(scene.render()), tiny_builders.TINY_DIFFLMM_RESOLUTION).half())
        text, _ = scene.caption()
        captions.append(tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
        if (n + 1) % 2000 == 0:
            log(f"prepared {n + 1} scenes")
    return torch.stack(images), captions


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


# ---------------------------------------------------------------------------------------------- stage 3: LMM

class LoraLinear(torch.nn.Module):
    """y = W x + (B A x)·α/r, W frozen; A, B named as peft names them (`lora_A`, `lora_B`)."""

    def __init__(self, base: torch.nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = torch.nn.Linear(rank, base.out_features, bias=False)
        torch.nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        torch.nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scale


def add_lora(llm) -> dict[str, LoraLinear]:
    wrapped = {}
    for name, module in list(llm.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in tiny_builders.LORA_TARGETS and isinstance(child, torch.nn.Linear):
                lora = LoraLinear(child, tiny_builders.TINY_LORA_RANK, tiny_builders.TINY_LORA_ALPHA)
                setattr(module, child_name, lora)
                wrapped[f"{name}.{child_name}"] = lora
    return wrapped


def base_llm_from_tiny_llava(path: Path):
    """The tiny LLaVA's language model as a `LlamaForCausalLM` (+ its tokenizer): the base LLM."""
    from transformers import AutoTokenizer, LlamaForCausalLM, LlavaForConditionalGeneration

    llava = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    llm = LlamaForCausalLM(llava.config.text_config)
    state = {f"model.{k}": v for k, v in llava.model.language_model.state_dict().items()}
    state["lm_head.weight"] = llava.lm_head.weight
    llm.load_state_dict(state, strict=True)
    llm.generation_config.bos_token_id, llm.generation_config.eos_token_id = 1, 2
    llm.generation_config.pad_token_id = 0
    return llm, AutoTokenizer.from_pretrained(path)


def train_lmm(parts, images, captions, args, output: Path) -> dict[str, LoraLinear]:
    llm, tokenizer, unet, vae, scheduler, clip = parts
    mm = tiny_builders.tiny_difflmm_mm_config(clip.config.hidden_size, llm.config.hidden_size)
    vision = DiffLmmVisionConfig.from_llava_config({**llm.config.to_dict(), **mm})
    llm.requires_grad_(False)
    llm.model.mm_projector = SDCLIPBlock.from_config(vision)
    loras = add_lora(llm)
    clip.requires_grad_(True).train()
    tower = DiffLmmVisionTower(vision, unet, vae, clip, scheduler)
    processor = DiffLmmProcessor(tokenizer, vision.resolution, vision.num_patches)
    prompt = processor(text=[ll.llava_v1_prompt(embedded.TINY_QUESTION)])["input_ids"][0]
    trainable = [p for p in llm.parameters() if p.requires_grad] + list(clip.parameters())
    log(f"lmm stage: {sum(p.numel() for p in trainable) / 1e6:.2f}M trainable parameters")
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    per_epoch = math.ceil(len(captions) / args.batch)
    total = args.steps or per_epoch * args.epochs
    schedule = warmup_cosine(optimizer, total, args.warmup)
    holder = torch.nn.ModuleDict({"llm": llm, "clip": clip})
    step = resume(output, holder, optimizer, schedule)
    started = time.time()
    while step < total:
        picks = epoch_batch(len(captions), args.batch, args.seed, step, per_epoch)
        generators = [torch.Generator().manual_seed(args.seed * 1_000_003 + step * 1000 + i) for i in range(len(picks))]
        ids, labels, mask = llava_batch(prompt, captions, picks, 0)   # the prompt holds the −200 placeholders
        sd_features, clip_grid = tower.features_with_grad(images[picks].float(), generators, llm.model.mm_projector)
        tokens = llm.model.mm_projector(sd_features, clip_grid)
        embeds = embed_with_image_tokens(llm, ids, tokens)
        loss = llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        if step % 20 == 0 or step == total:
            log(f"lmm step {step}/{total} epoch {step / per_epoch:.2f} loss {loss.item():.4f} "
                f"elapsed {(time.time() - started) / 60:.1f} min")
        if step % 100 == 0 or step == total:
            save_state(output, holder, optimizer, schedule, step)
    return loras


# ---------------------------------------------------------------------------------------------- export

def export(output: Path, parts, loras: dict[str, LoraLinear], vision_mm: dict) -> None:
    from safetensors.torch import save_file

    llm, tokenizer, unet, vae, scheduler, clip = parts
    base, lora, sd, clip_dir = (output / embedded.DIFFLMM_PARTS[k] for k in ("model_base", "model_path", "sd_path", "clip_path"))
    for folder in (base, lora, sd, clip_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    projector = {f"base_model.model.model.mm_projector.{k}": v.detach().clone()
                 for k, v in llm.model.mm_projector.state_dict().items()}
    adapter = {}
    for name, module in loras.items():
        adapter[f"base_model.model.{name}.lora_A.weight"] = module.lora_A.weight.detach().clone()
        adapter[f"base_model.model.{name}.lora_B.weight"] = module.lora_B.weight.detach().clone()
    for name, module in loras.items():   # unwrap: the base keeps its own (frozen) weights
        owner, _, child = name.rpartition(".")
        setattr(llm.get_submodule(owner), child, module.base)
    del llm.model.mm_projector
    llm.save_pretrained(base)
    tokenizer.save_pretrained(base)
    config = {**json.loads((base / "config.json").read_text()), **vision_mm}
    (lora / "config.json").write_text(json.dumps(config, indent=2))
    (lora / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "tiny-llava-as language model",
        "r": tiny_builders.TINY_LORA_RANK, "lora_alpha": tiny_builders.TINY_LORA_ALPHA, "lora_dropout": 0.0,
        "target_modules": list(tiny_builders.LORA_TARGETS), "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
        "inference_mode": True, "use_rslora": False}, indent=2))
    save_file(adapter, str(lora / "adapter_model.safetensors"))
    torch.save(projector, lora / "non_lora_trainables.bin")
    unet.save_pretrained(sd / "unet")
    vae.save_pretrained(sd / "vae")
    scheduler.save_pretrained(sd / "scheduler")
    clip.eval().save_pretrained(clip_dir)


def train_difflmm(args) -> None:
    output = Path(args.output)
    stages = output / ".stages"
    stages.mkdir(parents=True, exist_ok=True)
    llm, tokenizer = base_llm_from_tiny_llava(Path(args.base_llava))
    images, captions = scene_data(tiny_builders.scene_indices(args.scenes, args.start), tokenizer)
    unet, vae, scheduler = tiny_builders.build_tiny_sd(args.seed)
    if (stages / "vae").is_dir():
        vae = type(vae).from_pretrained(stages / "vae")
    else:
        train_vae(vae, images, args)
        vae.save_pretrained(stages / "vae")
    vae.eval().requires_grad_(False)
    if (stages / "unet").is_dir():
        unet = type(unet).from_pretrained(stages / "unet")
    else:
        train_unet(unet, vae, scheduler, images, captions, len(tokenizer), tokenizer.pad_token_id, args)
        unet.save_pretrained(stages / "unet")
    unet.eval().requires_grad_(False)
    clip = tiny_builders.build_tiny_clip(args.seed)
    parts = (llm, tokenizer, unet, vae, scheduler, clip)
    loras = train_lmm(parts, images, captions, args, output)
    export(output, parts, loras, tiny_builders.tiny_difflmm_mm_config(clip.config.hidden_size, llm.config.hidden_size))
    log("exported " + ", ".join(sorted(p.name for p in output.iterdir() if not p.name.startswith("."))))
