"""LLaVA-NeXT and LLaVA-OneVision: a base grid plus the unpadded anyres tiles, a newline token after each row.

Token order (transformers `LlavaNextModel.pack_image_features`, `LlavaOnevisionModel.pack_image_features`):
    base: g² tokens, the base image (the whole image resized to S×S) as a g×g grid, g = S / patch, row-major;
    fine: the r×c crops' joint (r·g)×(c·g) grid, unpadded to H_f×W_f (`llava.anyres.anyres_layout`, shared with
          F-LMM on LLaVA-NeXT), row by row, each row followed by one `image_newline` token → H_f·(W_f+1) tokens.
OneVision (`vision_aspect_ratio` "anyres_max_N") then shrinks a fine grid larger than N base grids: with
ρ = sqrt(H_f·W_f / (N·g²)) > 1.1 it is resized bilinearly to (⌊H_f/ρ⌋, ⌊W_f/ρ⌋) before the newlines.
Regions: the base grid covers the whole image (squashed to a square); the unpadded fine grid covers the whole
image too (its padding was removed) — upstream `more_models/llava_next.py` upsamples it straight to the image
(`--aspect-ratio original`), the base grid likewise with `--use-base-patches`. The base grid is the "global"
view, the fine grid the "fine" view (upstream's default).
"""

from __future__ import annotations

from typing import Any

import torch

from gcgbench.api.errors import InputError
from gcgbench.grounding.token_layout import TokenGrid, TokenLayout, grid_with_row_ends
from gcgbench.models.aas.family import Family
from gcgbench.models.llava.anyres import anyres_layout


class AnyResFamily(Family):
    name = "llava_next"
    placeholder = "<image>"

    @property
    def _tile(self) -> int:
        return int(self.config.vision_config.image_size)

    @property
    def _patch(self) -> int:
        return int(self.config.vision_config.patch_size)

    def _max_grids(self) -> int | None:
        return None

    def layout(self, height: int, width: int) -> TokenLayout:
        pinpoints = [list(p) for p in self.config.image_grid_pinpoints]
        shape = anyres_layout(height, width, pinpoints, self._tile, self._patch)
        g, fine_h, fine_w = shape.base, shape.fine_height, shape.fine_width
        limit = self._max_grids()
        if limit is not None:
            ratio = (fine_h * fine_w / (limit * g * g)) ** 0.5
            if ratio > 1.1:
                fine_h, fine_w = int(fine_h // ratio), int(fine_w // ratio)
        box = (0, 0, width, height)
        base = TokenGrid("base", "global", torch.arange(g * g).view(g, g), box)
        fine = grid_with_row_ends("tiles", "fine", g * g, fine_h, fine_w, 1, box)
        return TokenLayout(g * g + fine_h * (fine_w + 1), height, width, (base, fine))

    def expand(self, image: Any) -> tuple[str, dict[str, torch.Tensor], Any]:
        out = self.process(image)
        height, width = (int(v) for v in out["image_sizes"][0])
        layout = self.layout(height, width)
        crops = int(out["pixel_values"].shape[1])
        pinpoints = [list(p) for p in self.config.image_grid_pinpoints]
        shape = anyres_layout(height, width, pinpoints, self._tile, self._patch)
        if crops != 1 + shape.rows * shape.cols:
            raise InputError("model_path", str(self.files.folder), f"the image processor gives {crops} crops, the "
                                                                   f"model's pinpoints {1 + shape.rows * shape.cols}")
        inputs = {"pixel_values": out["pixel_values"], "image_sizes": out["image_sizes"]}
        return self.placeholder * layout.n_tokens, inputs, layout


class OneVisionFamily(AnyResFamily):
    name = "llava_onevision"

    def _max_grids(self) -> int | None:
        ratio = str(getattr(self.config, "vision_aspect_ratio", "anyres_max_9"))
        if not ratio.startswith("anyres_max_"):
            raise InputError("model_path", str(self.files.folder), f"vision_aspect_ratio {ratio!r} is not anyres_max_N")
        return int(ratio[len("anyres_max_"):])


FAMILIES = {"llava_next": AnyResFamily, "llava_onevision": OneVisionFamily}
