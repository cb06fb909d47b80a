"""Train the embedded tiny DiffLMM (`scripts/train_tiny.py --model difflmm`), in DiffLMM's own order.

DiffLMM (Cao et al., `Shengcao-Cao/groundLMM`) = a pre-trained Stable Diffusion 1.5 (frozen) + a pre-trained
CLIP + a pre-trained LLM, joined by the `SDCLIPBlock` projector (with the implicit captioner that conditions
the U-Net on CLIP features) and fine-tuned with LoRA on captioning/instruction data. No tiny pre-trained
parts exist, so they are made here first, each with its own objective, and no stage ever sees a box, mask or
point (stages 1 and 2 live in `tiny_sd_pretraining.py`):

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

import tiny_tasks
from tiny_sd_pretraining import train_unet, train_vae
from tiny_training import epoch_batch, jpeg_roundtrip, log, mixed_batch, resume, save_state, warmup_cosine


def scene_images(scenes):
    """images (N,3,R,R) float16 as DiffLMM pre-processes them (JPEG round trip as the sample, then R = 128)."""
    images = []
    for n, scene in enumerate(scenes):
        images.append(preprocess_image(jpeg_roundtrip(scene.render()), tiny_builders.TINY_DIFFLMM_RESOLUTION).half())
        if (n + 1) % 2000 == 0:
            log(f"prepared {n + 1} scenes")
    return torch.stack(images)


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


class GrownMatrix(torch.nn.Module):
    """An embedding (`kind="embedding"`) or output layer (`"head"`) whose frozen (V, h) weight gets `extra`
    trainable rows appended (the fine-tune's new words); `weight` is the (V + extra, h) whole."""

    def __init__(self, frozen: torch.Tensor, extra: int, kind: str):
        super().__init__()
        self.frozen = torch.nn.Parameter(frozen.detach().clone(), requires_grad=False)
        self.extra = torch.nn.Parameter(frozen.detach().mean(dim=0, keepdim=True).repeat(extra, 1))
        self.kind = kind

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat([self.frozen, self.extra])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self.weight) if self.kind == "embedding" else F.linear(x, self.weight)


def grow_vocabulary(llm, size: int) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """Give the frozen base LLM `size` words: new embedding/output rows trainable (initialised at the mean of the
    old rows), the old rows frozen. Returns the original (embedding, head) modules for the export, or None."""
    old = llm.get_input_embeddings().weight.shape[0]
    if size == old:
        return None
    originals = (llm.model.embed_tokens, llm.lm_head)
    llm.model.embed_tokens = GrownMatrix(originals[0].weight, size - old, "embedding")
    llm.lm_head = GrownMatrix(originals[1].weight, size - old, "head")
    llm.config.vocab_size = size   # the loss reshapes the logits by it
    return originals


def load_trainables(llm, loras: dict[str, LoraLinear], folder: Path) -> None:
    """The projector (`non_lora_trainables.bin`) and LoRA A/B (`adapter_model.safetensors`) of a trained tiny
    DiffLMM's LoRA folder into the training modules (key names as `export` writes them)."""
    from safetensors.torch import load_file

    prefix = "base_model.model.model.mm_projector."
    projector = torch.load(folder / "non_lora_trainables.bin", map_location="cpu", weights_only=True)
    llm.model.mm_projector.load_state_dict({k[len(prefix):]: v for k, v in projector.items() if k.startswith(prefix)},
                                           strict=True)
    for key, module in (("base_model.model.model.embed_tokens.weight", llm.model.embed_tokens),
                        ("base_model.model.lm_head.weight", llm.lm_head)):
        if key in projector:   # a grown vocabulary trained before: its new rows continue from there (words this
            saved = projector[key]   # fine-tune adds on top keep their mean-of-the-base initialisation)
            if (not isinstance(module, GrownMatrix) or saved.shape[1] != module.weight.shape[1]
                    or not len(module.frozen) <= saved.shape[0] <= module.weight.shape[0]):
                raise ValueError(f"{folder}: {key} has shape {tuple(saved.shape)}, the model "
                                 f"{tuple(module.weight.shape)}")
            if not torch.equal(saved[:len(module.frozen)], module.frozen):
                raise ValueError(f"{folder}: {key} disagrees with the base's rows")
            module.extra.data[:saved.shape[0] - len(module.frozen)].copy_(saved[len(module.frozen):])
    adapter = load_file(str(folder / "adapter_model.safetensors"))
    for name, module in loras.items():
        module.lora_A.weight.data.copy_(adapter.pop(f"base_model.model.{name}.lora_A.weight"))
        module.lora_B.weight.data.copy_(adapter.pop(f"base_model.model.{name}.lora_B.weight"))
    if adapter:
        raise ValueError(f"{folder}: adapter keys without a LoRA module: {sorted(adapter)[:3]}")


def frozen_image_tokens(tower, projector, images, args, chunk: int = 32) -> torch.Tensor:
    """`--freeze-vision`: every scene's image tokens (N, n, hidden) computed once, without gradients, through
    the same vision path (VAE sample and t = 100 noise from a generator seeded by (seed, scene position))."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            part = images[start:start + chunk].float()
            generators = [torch.Generator().manual_seed(args.seed * 1_000_003 + start + i) for i in range(len(part))]
            out.append(projector(*tower.features_with_grad(part, generators, projector)))
    log(f"image tokens of {len(images)} scenes computed once (vision path frozen)")
    return torch.cat(out)


def train_lmm(parts, images, chosen, args, output: Path, init: Path | None = None) -> dict[str, LoraLinear]:
    """Stage 3 on `chosen` (scripts/tiny_tasks.py examples); with `init` (a trained tiny DiffLMM folder) the
    projector and LoRA start from its `lora/` folder instead of random (CLIP, SD and base come in `parts`)."""
    llm, tokenizer, unet, vae, scheduler, clip = parts
    mm = tiny_builders.tiny_difflmm_mm_config(clip.config.hidden_size, llm.config.hidden_size)
    vision = DiffLmmVisionConfig.from_llava_config({**llm.config.to_dict(), **mm})
    llm.requires_grad_(False)
    for module in llm.modules():   # the base is frozen, but a grown vocabulary's new rows train
        if isinstance(module, GrownMatrix):
            module.extra.requires_grad_(True)
    llm.model.mm_projector = SDCLIPBlock.from_config(vision)
    loras = add_lora(llm)
    if init is not None:
        load_trainables(llm, loras, init / embedded.DIFFLMM_PARTS["model_path"])
    clip.requires_grad_(not args.freeze_vision).train(not args.freeze_vision)
    if args.freeze_vision:
        llm.model.mm_projector.requires_grad_(False)
    tower = DiffLmmVisionTower(vision, unet, vae, clip, scheduler)
    processor = DiffLmmProcessor(tokenizer, vision.resolution, vision.num_patches)
    prompts, answers, starts = tiny_tasks.tokenize(
        chosen, tokenizer, lambda question: processor(text=[ll.llava_v1_prompt(question)])["input_ids"][0])
    owners = torch.tensor([example.scene for example in chosen])
    trainable = [p for p in llm.parameters() if p.requires_grad] + [p for p in clip.parameters() if p.requires_grad]
    cached = frozen_image_tokens(tower, llm.model.mm_projector, images, args) if args.freeze_vision else None
    log(f"lmm stage: {sum(p.numel() for p in trainable) / 1e6:.2f}M trainable parameters, {len(chosen)} examples")
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    per_epoch = math.ceil(len(chosen) / args.batch)
    total = args.steps or per_epoch * args.epochs
    schedule = warmup_cosine(optimizer, total, args.warmup)
    holder = torch.nn.ModuleDict({"llm": llm, "clip": clip})
    step = resume(output, holder, optimizer, schedule)
    started = time.time()
    while step < total:
        picks = epoch_batch(len(chosen), args.batch, args.seed, step, per_epoch)
        generators = [torch.Generator().manual_seed(args.seed * 1_000_003 + step * 1000 + i) for i in range(len(picks))]
        ids, labels, mask = mixed_batch(prompts, answers, starts, picks, 0)   # prompts hold the −200 placeholders
        if cached is not None:
            tokens = cached[owners[picks]].float()
        else:
            sd_features, clip_grid = tower.features_with_grad(images[owners[picks]].float(), generators,
                                                              llm.model.mm_projector)
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
        if step % args.state_every == 0 or step == total:
            save_state(output, holder, optimizer, schedule, step)
    return loras


# ---------------------------------------------------------------------------------------------- export

def export(output: Path, parts, loras: dict[str, LoraLinear], vision_mm: dict, originals=None) -> None:
    """With `originals` (the base's own embedding and head, `grow_vocabulary`), the grown vocabulary is saved
    as upstream saves a resized one: the base keeps its weights, `non_lora_trainables.bin` holds the whole
    `embed_tokens` and `lm_head`, the LoRA folder's config.json the new `vocab_size`, the base folder the
    tokenizer with the new words (`difflmm/loading.py` step 1)."""
    from safetensors.torch import save_file

    llm, tokenizer, unet, vae, scheduler, clip = parts
    base, lora, sd, clip_dir = (output / embedded.DIFFLMM_PARTS[k] for k in ("model_base", "model_path", "sd_path", "clip_path"))
    for folder in (base, lora, sd, clip_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    projector = {f"base_model.model.model.mm_projector.{k}": v.detach().clone()
                 for k, v in llm.model.mm_projector.state_dict().items()}
    vocab_size = None
    if originals is not None:
        vocab_size = llm.model.embed_tokens.weight.shape[0]
        projector["base_model.model.model.embed_tokens.weight"] = llm.model.embed_tokens.weight.detach().clone()
        projector["base_model.model.lm_head.weight"] = llm.lm_head.weight.detach().clone()
        llm.model.embed_tokens, llm.lm_head = originals
        llm.config.vocab_size = originals[0].weight.shape[0]
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
    if vocab_size is not None:
        config["vocab_size"] = vocab_size
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


def load_trained(init: Path):
    """(llm, tokenizer, unet, vae, scheduler, clip) of a trained tiny DiffLMM folder (`base/`, `sd/`, `clip/`)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPVisionModel, LlamaForCausalLM

    parts = {key: init / sub for key, sub in embedded.DIFFLMM_PARTS.items()}
    llm = LlamaForCausalLM.from_pretrained(parts["model_base"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(parts["model_base"])
    unet = UNet2DConditionModel.from_pretrained(parts["sd_path"] / "unet")
    vae = AutoencoderKL.from_pretrained(parts["sd_path"] / "vae")
    scheduler = DDIMScheduler.from_pretrained(parts["sd_path"] / "scheduler")
    clip = CLIPVisionModel.from_pretrained(parts["clip_path"], dtype=torch.float32)
    return llm, tokenizer, unet.eval().requires_grad_(False), vae.eval().requires_grad_(False), scheduler, clip


def finetune_difflmm(args) -> None:
    """`--init-from`: stage 3 only, continued from a trained tiny DiffLMM (its LoRA, projector and CLIP train on;
    SD and the base LLM stay frozen), with `FINETUNE_WORDS` added to the vocabulary (new rows only train)."""
    init, output = Path(args.init_from), Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    llm, tokenizer, unet, vae, scheduler, clip = load_trained(init)
    tokenizer = tiny_builders.extend_vocabulary(tokenizer, tiny_tasks.finetune_words(args.res_answer))
    originals = grow_vocabulary(llm, len(tokenizer))
    log(f"initialised from {init}; vocabulary {originals[0].weight.shape[0] if originals else len(tokenizer)} -> {len(tokenizer)} words")
    scenes = [make_scene(i) for i in tiny_builders.scene_indices(args.scenes, args.start)]
    images = scene_images(scenes)
    chosen = tiny_tasks.examples(scenes, args.tasks, args.question, args.res_template, args.res_per_scene, args.seed,
                                  args.res_answer)
    parts = (llm, tokenizer, unet, vae, scheduler, clip)
    loras = train_lmm(parts, images, chosen, args, output, init)
    export(output, parts, loras, tiny_builders.tiny_difflmm_mm_config(clip.config.hidden_size, llm.config.hidden_size),
           originals)
    sd = output / embedded.DIFFLMM_PARTS["sd_path"]   # frozen: the trained folder's files, byte for byte
    shutil.rmtree(sd)
    shutil.copytree(init / embedded.DIFFLMM_PARTS["sd_path"], sd)
    log("exported " + ", ".join(sorted(p.name for p in output.iterdir() if not p.name.startswith("."))))


def train_difflmm(args) -> None:
    if args.init_from:
        return finetune_difflmm(args)
    output = Path(args.output)
    stages = output / ".stages"
    stages.mkdir(parents=True, exist_ok=True)
    llm, tokenizer = base_llm_from_tiny_llava(Path(args.base_llava))
    scenes = [make_scene(i) for i in tiny_builders.scene_indices(args.scenes, args.start)]
    images = scene_images(scenes)
    chosen = tiny_tasks.examples(scenes, args.tasks, args.question, args.res_template, args.res_per_scene, args.seed,
                                  args.res_answer)
    captions = tiny_tasks.tokenize(chosen, tokenizer, lambda question: torch.zeros(0, dtype=torch.long))[1]
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
    loras = train_lmm(parts, images, chosen, args, output)
    export(output, parts, loras, tiny_builders.tiny_difflmm_mm_config(clip.config.hidden_size, llm.config.hidden_size))
    log("exported " + ", ".join(sorted(p.name for p in output.iterdir() if not p.name.startswith("."))))
