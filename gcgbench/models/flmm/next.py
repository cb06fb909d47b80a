"""F-LMM on LLaVA-NeXT: any-resolution inputs, the image-token layout, the two attention grids of the mask head.

Re-implemented from `wusize/F-LMM` @ 47d3c2a6, on transformers' `LlavaNextForConditionalGeneration`:

- `configs/llava_next/frozen_llava_next_{vicuna,mistral}_7b_unet_sam_l_refcoco_png.py`: frozen
  `llava-hf/llava-v1.6-{vicuna,mistral}-7b-hf` in bfloat16, xtuner prompt template `vicuna` / `mistral`
  (`loading.INSTRUCTIONS`), LLaVA-1.5's description prompt, UNetHead with in_channels = 2048 = 2 · 32 layers ·
  32 heads, SAM ViT-L; official checkpoints `frozen_llava_next_{vicuna,mistral}_7b_unet_sam_l_refcoco_png.pth`
  (README, "Checkpoints" table), loaded by `loading.load_flmm_state` (same key names as LLaVA-1.5's).
- `flmm/datasets/llava_next_processors.py::CustomLlavaNextImageProcessor` (`get_image_patches`, `_pad_for_patching`
  l. 105–125): the image resized into the best grid pinpoint (aspect kept) and padded CENTRED with zeros, cut into
  S×S crops (row-major) after the whole image resized to S×S (the base image); `image_sizes` = original (h, w).
  transformers' LLaVA-NeXT processor pads centred too, so we use `LlavaNextProcessor` with its PIL image
  processor (`LlavaNextImageProcessorPil`; F-LMM ran the numpy/PIL implementation).
- `llava/modeling_llava_next.py::CustomLlavaNextForConditionalGeneration.forward` (l. 255–298), the same packing as
  transformers' `LlavaNextModel.pack_image_features`: with g = S / patch and (r, c) = best pinpoint / S,
      base: g² tokens, the base image's g×g grid, row-major;
      fine: the crops' joint (r·g) × (c·g) grid, unpadded (`unpad_image`: the centred padding of the shorter side
            removed, new side = int(round(side · scale, 7)) as transformers ≥ 4.4x computes it) to H_f × W_f,
            then per row its W_f features and one `image_newline` → H_f · (W_f + 1) tokens;
  g² + H_f · (W_f + 1) `<image>` tokens in all (`AnyResLayout`; checked against the processor's own count).
- `flmm/models/frozen_llava_next.py::FrozenLlavaNextSAM._forward` (l. 82–156): A^l[k, t, image columns] for
  every layer l and head k, merged over the phrase's tokens t (mean or max), then
      coarse^l_k = the first g² columns viewed g × g,
      fine^l_k   = the rest viewed H_f × (W_f + 1), the newline column dropped,
      x = [bilinear(coarse, (H_f, W_f)) in float32 (align_corners=False) ; fine]   (2·L·H channels: channel
          l·H + k is coarse, L·H + l·H + k is fine),
  mask head → logits that cover the unpadded image already (no crop, unlike LLaVA-1.5) → SAM with the text
  embeddings, exactly as for LLaVA-1.5 (`head.SamPromptRefiner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from gcgbench.api.errors import InputError
from gcgbench.models.flmm import loading as fl
from gcgbench.models.llava.anyres import AnyResLayout, anyres_layout  # noqa: F401  (shared with aas)


def two_grid_maps(per_layer: Sequence[torch.Tensor], layout: AnyResLayout) -> torch.Tensor:
    """Each layer's (heads, n_image_tokens) merged attention → (2·layers·heads, H_f, W_f): the base grid's maps
    resized to the fine grid, then the fine grid's maps without the newline column."""
    g, height, width = layout.base, layout.fine_height, layout.fine_width
    coarse = torch.cat([a[:, :g * g] for a in per_layer]).view(-1, g, g).float()
    fine = torch.cat([a[:, g * g:] for a in per_layer]).view(-1, height, width + 1)[..., :width].float()
    coarse = F.interpolate(coarse[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return torch.cat([coarse, fine])


@dataclass(frozen=True)
class NextView:
    """One LLaVA-NeXT image: the processor's pixel values (1, 1 + r·c, 3, S, S), its size and token layout."""

    pixel_values: torch.Tensor
    image_sizes: torch.Tensor
    layout: AnyResLayout

    grids = 2

    @property
    def image_tokens(self) -> int:
        return self.layout.tokens

    def model_inputs(self, device: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixel_values.to(device, dtype), "image_sizes": self.image_sizes.to(device)}

    def maps(self, per_layer: Sequence[torch.Tensor]) -> torch.Tensor:
        return two_grid_maps(per_layer, self.layout)

    def crop(self, coarse: torch.Tensor) -> torch.Tensor:
        return coarse     # the fine grid is the image without padding


@dataclass(frozen=True)
class NextVision:
    """LLaVA-NeXT's image side: `LlavaNextProcessor` + the model's pinpoints, crop size and patch size."""

    processor: Any
    pinpoints: tuple[tuple[int, int], ...]
    tile: int
    patch_size: int
    image_token_id: int
    folder: str

    grids = 2

    def __call__(self, image: Any) -> NextView:
        encoded = self.processor(text=[fl.IMAGE_TOKEN], images=[image], return_tensors="pt")
        height, width = (int(v) for v in encoded["image_sizes"][0])
        layout = anyres_layout(height, width, self.pinpoints, self.tile, self.patch_size)
        counted = int((encoded["input_ids"][0] == self.image_token_id).sum())
        crops = int(encoded["pixel_values"].shape[1])
        if counted != layout.tokens or crops != 1 + layout.rows * layout.cols:
            raise InputError("model_path", self.folder, f"the processor gives {counted} image tokens and {crops} crops "
                                                        f"for a {height}x{width} image; LLaVA-NeXT packs "
                                                        f"{layout.tokens} tokens from {1 + layout.rows * layout.cols}")
        return NextView(encoded["pixel_values"], encoded["image_sizes"], layout)


def load_llava_next(folder: Path, dtype: torch.dtype) -> tuple[Any, Any, NextVision]:
    """(LlavaNextForConditionalGeneration with eager attention, tokenizer, NextVision) from a llava-hf
    `llava-v1.6-*-hf` folder (config.json, weights, tokenizer files, preprocessor_config.json,
    processor_config.json)."""
    from transformers import LlavaNextImageProcessorPil, LlavaNextProcessor

    model, tokenizer = fl.load_llava(folder, dtype, "llava_next")
    try:
        image_processor = LlavaNextImageProcessorPil.from_pretrained(folder, local_files_only=True)
        processor = LlavaNextProcessor.from_pretrained(folder, image_processor=image_processor, tokenizer=tokenizer,
                                                       local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise InputError("model_path", str(folder), f"cannot load the LLaVA-NeXT processor: "
                                                    f"{str(error).splitlines()[0]}") from None
    config, vision = model.config, model.config.vision_config
    pinpoints = tuple(tuple(int(v) for v in p) for p in config.image_grid_pinpoints)
    given = tuple(tuple(int(v) for v in p) for p in image_processor.image_grid_pinpoints or ())
    tile = _crop_side(image_processor)
    if given != pinpoints or tile != vision.image_size:
        raise InputError("model_path", str(folder), f"preprocessor (crop {tile}, pinpoints {list(given)}) does not "
                                                    f"match the model (image_size {vision.image_size}, pinpoints "
                                                    f"{list(pinpoints)})")
    if getattr(config, "vision_feature_select_strategy", "default") != "default":
        raise InputError("model_path", str(folder), "F-LMM's LLaVA-NeXT drops the CLS feature "
                                                    "(vision_feature_select_strategy 'default')")
    vision_input = NextVision(processor, pinpoints, int(vision.image_size), int(vision.patch_size),
                              int(config.image_token_id), str(folder))
    return model, tokenizer, vision_input


def _crop_side(image_processor: Any) -> int | None:
    crop = getattr(image_processor, "crop_size", None)
    height = crop.get("height") if isinstance(crop, dict) else getattr(crop, "height", None)
    return int(height) if height is not None else None
