"""Qwen2-VL and Qwen2.5-VL: one dynamic-resolution grid of 2×2-merged patches between vision start/end tokens.

transformers `Qwen2VLImageProcessor` (`smart_resize`): the image is resized to (h', w'), multiples of
patch·merge (28 px for the released models) with h'·w' within [min_pixels, max_pixels] and the aspect ratio
kept up to that rounding; `image_grid_thw` = (1, h'/patch, w'/patch). Its patches are emitted merge-block by
merge-block, so after the vision merger (2×2 → 1) token k is cell (k // (w'/(patch·merge)), k % (w'/(patch·merge)))
of a (h'/(patch·merge)) × (w'/(patch·merge)) grid, row-major (Qwen2.5-VL's window attention reorders
internally and restores this order). The chat template writes `<|vision_start|><|image_pad|><|vision_end|>`;
the processor repeats `<|image_pad|>` t·h·w/merge² times (`Qwen2VLProcessor.replace_image_token`).
Region: the grid covers the whole image (upstream `more_models/qwen2_5vl.py` reshapes the maps to
(h/2, w/2) and `gcg.py --aspect-ratio original` upsamples straight to the image).
Upstream loads the processor with `max_pixels=1008*1008`; option `max_pixels` (default 1016064 = 1008²) and
`min_pixels` (default: the checkpoint's) set the same knobs here.
"""

from __future__ import annotations

from typing import Any

import torch

from gcgbench.api.errors import InputError
from gcgbench.grounding.token_layout import TokenGrid, TokenLayout
from gcgbench.models.aas.family import Family, positive_int

UPSTREAM_MAX_PIXELS = 1008 * 1008


class QwenVLFamily(Family):
    name = "qwen2_vl"
    placeholder = "<|image_pad|>"
    options = ("min_pixels", "max_pixels")

    def image_kwargs(self) -> dict[str, Any]:
        size = dict(self.image_processor.size)
        low = positive_int(self.options, "min_pixels")
        high = positive_int(self.options, "max_pixels")
        size["longest_edge"] = high if high is not None else UPSTREAM_MAX_PIXELS
        if low is not None:
            size["shortest_edge"] = low
        if size["shortest_edge"] > size["longest_edge"]:
            raise InputError("--model-args", "min_pixels", "must not exceed max_pixels")
        return {"size": size}

    def sequence_inputs(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """`mm_token_type_ids`: 1 on image tokens, 0 elsewhere (what `Qwen2VLProcessor` returns for M-RoPE)."""
        return {"mm_token_type_ids": (input_ids == self.image_token_id).long()}

    def layout(self, height: int, width: int, grid_thw: torch.Tensor) -> TokenLayout:
        merge = int(self.image_processor.merge_size)
        t, h, w = (int(v) for v in grid_thw)
        if t != 1 or h % merge or w % merge:
            raise InputError("model_path", str(self.files.folder), f"image grid {t}x{h}x{w} is not one frame of "
                                                                   f"{merge}x{merge} blocks")
        rows, cols = h // merge, w // merge
        grid = TokenGrid("image", "fine", torch.arange(rows * cols).view(rows, cols), (0, 0, width, height))
        return TokenLayout(rows * cols, height, width, (grid,))

    def expand(self, image: Any) -> tuple[str, dict[str, torch.Tensor], TokenLayout]:
        out = self.process(image)
        layout = self.layout(image.height, image.width, out["image_grid_thw"][0])
        inputs = {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}
        return self.placeholder * layout.n_tokens, inputs, layout


FAMILIES = {"qwen2_vl": QwenVLFamily, "qwen2_5_vl": QwenVLFamily}
