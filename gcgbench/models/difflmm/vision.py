"""DiffLMM's vision encoder: SD-1.5 U-Net features + CLIP ViT-L/336 features → LLM tokens (plain torch + diffusers).

Re-implemented from `Shengcao-Cao/groundLMM` (de8b74d7 / 54b17d84; LLaVA v1.2.2 based, diffusers 0.15):
`llava/model/multimodal_encoder/sd_encoder.py` (`SDCLIPFeaturizer`, `OneStepSDPipeline`, `MyUNet2DConditionModel`,
`SDCLIPVisionTower`), `llava/model/multimodal_projector/builder.py` (`SDCLIPBlock`), `llava/mm_utils.py`
(`process_images`, `expand2square`). For an image x (B×3×R×R, R = `mm_vision_resolution` = 384):

1. Pre-processing (`process_images`, `image_aspect_ratio="pad"`): pad to a centred square of the processor's
   mean colour, resize to R×R (PIL bicubic), x = (pixel/255 − μ)/σ. NOTE: upstream builds
   `CLIPImageProcessor(size=R, crop_size=R, mean=[.5]*3, std=[.5]*3)`, but `mean`/`std` are not parameters of
   transformers' CLIPImageProcessor (they are `image_mean`/`image_std`): they are stored as unused attributes,
   so μ, σ stay OpenAI-CLIP's (0.4815, 0.4578, 0.4082)/(0.2686, 0.2613, 0.2758) and the pad colour is
   int(255·μ) = (122, 116, 104). DiffLMM was trained and evaluated with exactly this; we reproduce it.
2. CLIP branch (`sd_to_clip_img`): x_c = bilinear(x, 7R/8) (align_corners=False), x_c = (0.5·x_c + 0.5 − μ_clip)/σ_clip,
   c = CLIPVision(x_c).hidden_states[−2][:, 1:] ∈ R^{B×n×1024} (n = (7R/8 /14)² = 576).
3. Implicit caption: e = clip_projector(c) + clip_pe  (MLP 1024→768→768, learnable (n, 768) PE; both live in
   the projector and are tied into the tower upstream), used as the U-Net's `encoder_hidden_states`.
4. One noisy step: z = (μ_vae + σ_vae·ε₁)·s (VAE posterior sample, s = `scaling_factor`), ε₂ ~ N(0, I),
   z_t = √ᾱ_t·z + √(1−ᾱ_t)·ε₂ with t = `mm_vision_sd_timestep` = 100 and ᾱ from the SD scheduler config
   (upstream: `DDIMScheduler.from_pretrained(sd, subfolder="scheduler").add_noise`); f = output of
   U-Net `up_blocks[select_layer]` (= 1: 1280 ch, R/16 × R/16) for U-Net(z_t, t, e). With an ensemble of E
   copies, f is the mean over copies. ε₁, ε₂ are drawn, in that order, from one `torch.Generator` per
   sample seeded with `sample_seed(run_seed, doc_id)` (upstream: the global RNG), so a doc's features do not
   depend on its batch. (Upstream's U-Net fork stops after the last requested up block; a forward hook that
   stops after `up_blocks[select_layer]` gives the same tensor.)
5. Projector `SDCLIPBlock`: y = GELU(Conv1×1(LayerNorm(f))) (→ hidden/4 ch), y = [y ; c] (channels),
   tokens = Linear(GELU(Linear(y))) + vt_pe  → B × n × hidden (4096).

Module and parameter names of `SDCLIPBlock` are upstream's, so `model.mm_projector.*` keys of
`non_lora_trainables.bin` load strictly. U-Net, VAE and CLIP come from their own folders (diffusers layout
of `stable-diffusion-v1-5/stable-diffusion-v1-5`: `unet/`, `vae/`, `scheduler/`; HF layout of
`openai/clip-vit-large-patch14-336`). SD's text encoder is never used (implicit captioning replaces it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from gcgbench.api.errors import InputError
from gcgbench.models.llava.checkpoint import key_problem, quiet_logs  # noqa: F401 - re-exported
from gcgbench.models.llava.checkpoint import load_clip_vision as _load_clip_vision
from gcgbench.models.llava.loading import expand_to_square

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SD_MEAN = (0.5, 0.5, 0.5)   # what `sd_to_clip_img` assumes the input was normalised with
SD_STD = (0.5, 0.5, 0.5)
SD_PATCH = 16               # upstream `num_patches_per_side = mm_vision_resolution // 16` (hard-coded)


@dataclass(frozen=True)
class DiffLmmVisionConfig:
    """The `mm_*` fields of the DiffLMM LoRA folder's `config.json` (LLaVA `LlavaConfig`) this encoder reads."""

    resolution: int = 384                 # mm_vision_resolution
    timestep: int = 100                   # mm_vision_sd_timestep
    ensemble_size: int = 1                # mm_vision_sd_ensemble_size
    select_layer: int = 1                 # mm_vision_select_layer: U-Net up block whose output is used
    mm_hidden_size: tuple[int, ...] = (1280, 1280, 640, 320, 1024)   # up blocks 0-3, then CLIP
    clip_proj_in: int = 1024              # mm_vision_sd_clip_proj_in
    clip_proj_out: int = 768              # mm_vision_sd_clip_proj_out (= U-Net cross_attention_dim)
    concat_clip: bool = True              # mm_vision_sd_concat_clip
    implicit_caption: bool = True         # mm_vision_sd_implicit_caption
    pe: int = 576                         # mm_vision_sd_pe (number of image tokens; <= 0: no PEs)
    hidden_size: int = 4096               # LLM hidden size
    image_aspect_ratio: str = "pad"

    FIELDS = {"resolution": "mm_vision_resolution", "timestep": "mm_vision_sd_timestep",
              "ensemble_size": "mm_vision_sd_ensemble_size", "select_layer": "mm_vision_select_layer",
              "mm_hidden_size": "mm_hidden_size", "clip_proj_in": "mm_vision_sd_clip_proj_in",
              "clip_proj_out": "mm_vision_sd_clip_proj_out", "concat_clip": "mm_vision_sd_concat_clip",
              "implicit_caption": "mm_vision_sd_implicit_caption", "pe": "mm_vision_sd_pe",
              "hidden_size": "hidden_size", "image_aspect_ratio": "image_aspect_ratio"}

    @classmethod
    def from_llava_config(cls, config: Mapping[str, Any], source: object = "config.json") -> "DiffLmmVisionConfig":
        """Read the fields; a missing one, a non-SD projector or an unsupported option → InputError."""
        missing = [key for key in cls.FIELDS.values() if key not in config]
        if missing:
            raise InputError(source, None, f"not a DiffLMM config: missing {', '.join(missing)}")
        if config.get("mm_projector_type") != "SDCLIPBlock":
            raise InputError(source, "mm_projector_type",
                             f"DiffLMM needs SDCLIPBlock, got {config.get('mm_projector_type')!r}")
        values = {name: config[key] for name, key in cls.FIELDS.items()}
        if not isinstance(values["mm_hidden_size"], (list, tuple)):
            raise InputError(source, "mm_hidden_size", "expected the SD tower's list of channels, e.g. [1280, 1280, 640, 320, 1024]")
        values["mm_hidden_size"] = tuple(int(v) for v in values["mm_hidden_size"])
        made = cls(**values)
        if not made.implicit_caption:
            raise InputError(source, "mm_vision_sd_implicit_caption",
                             "only implicit captioning (DiffLMM's setting) is supported, not SD text prompts")
        if made.image_aspect_ratio != "pad":
            raise InputError(source, "image_aspect_ratio", f"only 'pad' (LLaVA-1.5) is supported, got {made.image_aspect_ratio!r}")
        if config.get("mm_use_im_start_end"):
            raise InputError(source, "mm_use_im_start_end", "image start/end tokens are not supported (LLaVA-1.5 has none)")
        if made.pe > 0 and made.pe != made.num_patches:
            raise InputError(source, "mm_vision_sd_pe", f"{made.pe} PEs but {made.num_patches} image tokens")
        return made

    @property
    def grid(self) -> int:
        return self.resolution // SD_PATCH

    @property
    def num_patches(self) -> int:
        return self.grid ** 2


class SDCLIPBlock(nn.Module):
    """Upstream's projector (same attribute names → same state-dict keys under `model.mm_projector.`)."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, select_layer: int = 1, clip_proj_in: int = 1024,
                 clip_proj_out: int = 768, concat_clip: bool = False, pe: int = -1):
        super().__init__()
        self.clip_projector = nn.Sequential(nn.Linear(clip_proj_in, clip_proj_out), nn.GELU(),
                                            nn.Linear(clip_proj_out, clip_proj_out))
        self.concat_clip = concat_clip
        self.sd_norm_layer = nn.LayerNorm(in_channels[select_layer])
        self.select_layer = select_layer
        self.sd_proj_layer = nn.Sequential(nn.Conv2d(in_channels[select_layer], out_channels // 4, kernel_size=1, stride=1),
                                           nn.GELU())
        linear_in = out_channels // 4 + (clip_proj_in if concat_clip else 0)
        self.linear = nn.Sequential(nn.Linear(linear_in, out_channels), nn.GELU(), nn.Linear(out_channels, out_channels))
        self.add_pe = pe > 0
        if self.add_pe:
            self.clip_pe = nn.Parameter(torch.randn(pe, clip_proj_out))
            self.vt_pe = nn.Parameter(torch.randn(pe, out_channels))

    @classmethod
    def from_config(cls, config: DiffLmmVisionConfig) -> "SDCLIPBlock":
        return cls(config.mm_hidden_size, config.hidden_size, select_layer=config.select_layer,
                   clip_proj_in=config.clip_proj_in, clip_proj_out=config.clip_proj_out,
                   concat_clip=config.concat_clip, pe=config.pe)

    def implicit_caption(self, clip_features: torch.Tensor) -> torch.Tensor:
        """(B, n, clip_proj_in) CLIP patch tokens → (B, n, clip_proj_out) U-Net condition (+ clip_pe)."""
        caption = self.clip_projector(clip_features)
        return caption + self.clip_pe if self.add_pe else caption

    def forward(self, sd_features: torch.Tensor, clip_grid: torch.Tensor) -> torch.Tensor:
        """(B, C_sd, h, w) U-Net features and (B, C_clip, h, w) CLIP features → (B, h·w, hidden)."""
        y = self.sd_norm_layer(sd_features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        y = self.sd_proj_layer(y)
        if self.concat_clip:
            y = torch.cat([y, clip_grid], dim=1)
        b, c, h, w = y.shape
        y = self.linear(y.view(b, c, h * w).permute(0, 2, 1))
        return y + self.vt_pe if self.add_pe else y


def preprocess_image(image: Any, resolution: int) -> torch.Tensor:
    """PIL image → (3, R, R) float32, as upstream's `process_images` with its effective CLIP mean/std (see 1.)."""
    import numpy as np
    from PIL import Image

    image = image.convert("RGB")
    image = expand_to_square(image, tuple(int(v * 255) for v in OPENAI_CLIP_MEAN))
    if image.size != (resolution, resolution):   # shortest edge → R then centre crop R×R: one resize for a square
        image = image.resize((resolution, resolution), resample=Image.BICUBIC, reducing_gap=None)
    array = np.asarray(image, dtype=np.float32) * np.float32(1 / 255)
    array = (array - np.asarray(OPENAI_CLIP_MEAN, np.float32)) / np.asarray(OPENAI_CLIP_STD, np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def sd_to_clip_image(images: torch.Tensor) -> torch.Tensor:
    """Upstream `sd_to_clip_img`: resize by 7/8 (bilinear), undo the SD normalisation, apply CLIP's."""
    height, width = images.shape[-2:]
    images = F.interpolate(images, size=(height * 7 // 8, width * 7 // 8), mode="bilinear", align_corners=False)

    def stats(values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)

    images = images * stats(SD_STD) + stats(SD_MEAN)
    return (images - stats(OPENAI_CLIP_MEAN)) / stats(OPENAI_CLIP_STD)


class _Stop(Exception):
    """Raised by the up-block hook once the features are captured (the rest of the U-Net is not needed)."""


class DiffLmmVisionTower(nn.Module):
    """VAE encoder + U-Net + CLIP (frozen), conditioned through the projector's implicit captioner.

    The projector is passed in, not registered here, so the tower adds no state-dict keys (upstream's
    `SDCLIPFeaturizer` is a plain object, its `clip_projector`/`clip_pe` are the projector's)."""

    def __init__(self, config: DiffLmmVisionConfig, unet: Any, vae: Any, clip: Any, scheduler: Any):
        super().__init__()
        self.config = config
        self.unet, self.vae, self.clip = unet, vae, clip
        self.scheduler = scheduler

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @torch.no_grad()
    def features(self, images: torch.Tensor, generators: Sequence[torch.Generator],
                 projector: SDCLIPBlock) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, R, R) pre-processed images, one generator per image → (U-Net features, CLIP grid)."""
        return self.features_with_grad(images, generators, projector)

    def features_with_grad(self, images: torch.Tensor, generators: Sequence[torch.Generator],
                           projector: SDCLIPBlock) -> tuple[torch.Tensor, torch.Tensor]:
        """`features` without `no_grad`: as in upstream training, the implicit captioner (and CLIP, if
        trainable) receive gradients through the frozen U-Net (`scripts/train_tiny.py --model difflmm`)."""
        from diffusers.utils.torch_utils import randn_tensor

        if len(generators) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(generators)} generators")
        cfg, batch = self.config, images.shape[0]
        images = images.to(self.device, self.dtype)
        clip_out = self.clip(sd_to_clip_image(images), output_hidden_states=True)
        clip_features = clip_out.hidden_states[-2][:, 1:]                                   # (B, n, C_clip)
        condition = projector.implicit_caption(clip_features.to(projector_dtype(projector)))
        condition = condition.to(self.dtype).repeat(cfg.ensemble_size, 1, 1)
        copies = images.repeat(cfg.ensemble_size, 1, 1, 1)                                 # row e·B + b
        per_row = [generators[row % batch] for row in range(copies.shape[0])]
        posterior = self.vae.encode(copies).latent_dist
        latents = posterior.sample(generator=per_row) * self.vae.config.scaling_factor
        noise = randn_tensor(latents.shape, generator=per_row, device=latents.device, dtype=latents.dtype)
        timestep = torch.tensor(cfg.timestep, dtype=torch.long, device=latents.device)
        noisy = self.scheduler.add_noise(latents, noise, timestep)
        sd_features = self._up_block_output(noisy, timestep, condition)
        sd_features = sd_features.view(cfg.ensemble_size, batch, *sd_features.shape[1:]).mean(0)
        _, _, h, w = sd_features.shape
        if h * w != clip_features.shape[1]:
            raise ValueError(f"U-Net features are {h}x{w} but CLIP gives {clip_features.shape[1]} patch tokens")
        clip_grid = clip_features.view(batch, h, w, -1).permute(0, 3, 1, 2)
        return sd_features, clip_grid

    def _up_block_output(self, sample: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def hook(module: Any, inputs: Any, output: torch.Tensor) -> None:
            captured.append(output)
            raise _Stop

        handle = self.unet.up_blocks[self.config.select_layer].register_forward_hook(hook)
        try:
            self.unet(sample, timestep, encoder_hidden_states=condition)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError("the U-Net never ran its up block")
        return captured[0]

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generators: Sequence[torch.Generator], projector: SDCLIPBlock) -> torch.Tensor:
        """Images → (B, n, hidden) LLM input tokens (upstream `encode_images`: tower, then projector)."""
        sd_features, clip_grid = self.features(images, generators, projector)
        dtype = projector_dtype(projector)
        return projector(sd_features.to(dtype), clip_grid.to(dtype))


def projector_dtype(projector: nn.Module) -> torch.dtype:
    return next(projector.parameters()).dtype


def load_vision_tower(config: DiffLmmVisionConfig, sd_path: str | Path, clip_path: str | Path,
                      dtype: torch.dtype, device: str) -> DiffLmmVisionTower:
    """U-Net, VAE (encoder kept) and scheduler from the SD folder (diffusers layout), CLIP vision from its HF
    folder; any missing, unexpected or mis-shaped weight → InputError naming the keys."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    sd = Path(sd_path)
    for sub in ("unet", "vae", "scheduler"):
        if not (sd / sub).is_dir():
            raise InputError("sd_path", str(sd), f"no {sub}/ folder; expected the diffusers layout of "
                                                 "stable-diffusion-v1-5/stable-diffusion-v1-5")
    with quiet_logs("diffusers", "transformers"):
        unet = _load_diffusers(UNet2DConditionModel, sd, "unet", dtype)
        vae = _load_diffusers(AutoencoderKL, sd, "vae", dtype)
        try:
            scheduler = DDIMScheduler.from_pretrained(sd, subfolder="scheduler", local_files_only=True)
        except (OSError, ValueError) as error:
            raise InputError("sd_path", str(sd / "scheduler"), f"cannot read the scheduler config: {error}") from None
        clip = _load_clip_vision(Path(clip_path), dtype)
    vae.decoder = None   # upstream: `onestep_pipe.vae.decoder = None` (only encode is used)
    if unet.config.cross_attention_dim != config.clip_proj_out:
        raise InputError("sd_path", str(sd / "unet"), f"cross_attention_dim {unet.config.cross_attention_dim} != "
                                                      f"mm_vision_sd_clip_proj_out {config.clip_proj_out}")
    if clip.config.hidden_size != config.clip_proj_in:
        raise InputError("clip_path", str(clip_path), f"hidden_size {clip.config.hidden_size} != "
                                                      f"mm_vision_sd_clip_proj_in {config.clip_proj_in}")
    tower = DiffLmmVisionTower(config, unet.eval(), vae.eval(), clip.eval(), scheduler)
    return tower.to(device).requires_grad_(False)


def _load_diffusers(cls: Any, folder: Path, sub: str, dtype: torch.dtype) -> Any:
    try:
        model, info = cls.from_pretrained(folder, subfolder=sub, torch_dtype=dtype, output_loading_info=True,
                                          local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("sd_path", str(folder / sub), f"cannot load {cls.__name__}: {str(error).splitlines()[0]}") from None
    problem = _key_problem(info.get("missing_keys", ()), info.get("unexpected_keys", ()),
                           [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())])
    if problem or info.get("error_msgs"):
        raise InputError("sd_path", str(folder / sub), problem or "; ".join(map(str, info["error_msgs"]))[:300])
    return model


def _key_problem(missing: Any, unexpected: Any, mismatched: Any = ()) -> str:
    return key_problem(sorted(map(str, missing)), sorted(map(str, unexpected)), sorted(map(str, mismatched)))


