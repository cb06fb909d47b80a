"""InternVL 2.5 / 3 in the transformers layout: 448-px tiles plus a thumbnail, 2×2 pixel shuffle per tile.

transformers `GotOcr2ImageProcessor.crop_image_to_patches` (= InternVL's `dynamic_preprocess`): the grid
(c columns, r rows) with c·r in [min_patches, max_patches] whose aspect ratio is closest to the image's
(`get_optimal_tiled_canvas`), the image resized to (r·T) × (c·T) and cut into r·c tiles, row-major, then — when
r·c > 1 — the whole image resized to T × T as a thumbnail, last. Each tile gives (T/patch)² ViT tokens, pixel
shuffled by 0.5 (`InternVLModel.pixel_shuffle`, which keeps row-major order) to s × s = `image_seq_length`
tokens. `InternVLProcessor` writes `<img>` + `<IMG_CONTEXT>` × s²·(number of crops) + `</img>`.
Regions: the tiles' joint (r·s) × (c·s) grid covers the whole image (resized without padding): the "fine"
view, upstream `more_models/internvl2_5.py` default (it reshapes (r, c, s, s) → (r·s, c·s) and drops the
thumbnail); the thumbnail's s × s grid covers the whole image too: the "global" view (upstream
`--use-thumbnail-attention`). Upstream tiles with min 3 / max 9 crops (`--min-image-crops 3
--max-image-crops 9`); options `min_tiles` / `max_tiles` default to those, not to the checkpoint's 1 / 12.
"""

from __future__ import annotations

from typing import Any

import torch

from gcgbench.api.errors import InputError
from gcgbench.grounding.token_layout import TokenGrid, TokenLayout, grid_from_blocks
from gcgbench.models.aas.family import Family, positive_int

UPSTREAM_TILES = (3, 9)


class InternVLFamily(Family):
    name = "internvl"
    placeholder = "<IMG_CONTEXT>"
    options = ("min_tiles", "max_tiles")

    def _tiles(self) -> tuple[int, int]:
        low = positive_int(self.options, "min_tiles") or UPSTREAM_TILES[0]
        high = positive_int(self.options, "max_tiles") or UPSTREAM_TILES[1]
        if low > high:
            raise InputError("--model-args", "min_tiles", "must not exceed max_tiles")
        return low, high

    def image_kwargs(self) -> dict[str, Any]:
        low, high = self._tiles()
        return {"crop_to_patches": True, "min_patches": low, "max_patches": high}

    @property
    def _side(self) -> int:
        return int(self.image_processor.size["height"])

    def _per_tile(self) -> int:
        n = int(self.files.processor_config.get("image_seq_length", getattr(self.config, "image_seq_length", 256)))
        side = round(n ** 0.5)
        if side * side != n:
            raise InputError("model_path", str(self.files.folder), f"image_seq_length {n} is not a square")
        return side

    def layout(self, height: int, width: int, crops: int) -> TokenLayout:
        from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

        low, high = self._tiles()
        cols, rows = get_optimal_tiled_canvas((height, width), (self._side, self._side), low, high)
        thumbnail = rows * cols > 1
        if crops != rows * cols + int(thumbnail):
            raise InputError("model_path", str(self.files.folder), f"the image processor gives {crops} crops; a "
                                                                   f"{rows}x{cols} tiling gives {rows * cols + int(thumbnail)}")
        s = self._per_tile()
        box = (0, 0, width, height)
        grids = [grid_from_blocks("tiles", "fine", 0, rows, cols, s, s, box)]
        if thumbnail:
            start = rows * cols * s * s
            grids.append(TokenGrid("thumbnail", "global", torch.arange(s * s).view(s, s) + start, box))
        return TokenLayout(crops * s * s, height, width, tuple(grids))

    def expand(self, image: Any) -> tuple[str, dict[str, torch.Tensor], TokenLayout]:
        out = self.process(image)
        crops = int(out["pixel_values"].shape[0])
        layout = self.layout(image.height, image.width, crops)
        tokens = self.tokenizer
        start = getattr(tokens, "start_image_token", None) or "<img>"
        end = getattr(tokens, "end_image_token", None) or "</img>"
        return f"{start}{self.placeholder * layout.n_tokens}{end}", {"pixel_values": out["pixel_values"]}, layout


FAMILIES = {"internvl": InternVLFamily}
