"""Idefics3 and SmolVLM: the image split into tiles plus a global image, each pixel-shuffled by the connector.

transformers `Idefics3ImageProcessor` / `SmolVLMImageProcessor`: the image is resized to a longest edge of
`size["longest_edge"]`, then each side up to a multiple of `max_image_size["longest_edge"]` = T, and cut into
r × c tiles of T × T, row-major, followed by the whole image resized to T × T (the global image); an image
already within T × T is not split (r = c = 0: the global image only). Each crop gives (T/patch)² ViT tokens,
pixel-shuffled by the connector's `scale_factor` (`Idefics3Connector.pixel_shuffle`, row-major) to
s × s = `image_seq_len` tokens. The processor (`replace_image_token`) writes per tile
`<fake_token_around_image><row_i_col_j>` + `<image>`×s², a newline after each tile row, then
`\\n<fake_token_around_image><global-img>` + `<image>`×s² + `<fake_token_around_image>`.
Regions: the tiles' joint (r·s) × (c·s) grid covers the whole image ("fine" view); the global image's s × s grid
covers it too ("global" view). Upstream a&s has no Idefics3/SmolVLM script: the default view "fine" follows its
InternVL and LLaVA-NeXT choice (tiles, not the global image); docs/aas_families.md records it.
"""

from __future__ import annotations

from typing import Any

import torch

from gcgbench.api.errors import InputError
from gcgbench.grounding.token_layout import TokenGrid, TokenLayout, grid_from_blocks
from gcgbench.models.aas.family import Family

FAKE = "<fake_token_around_image>"
GLOBAL = "<global-img>"


class Idefics3Family(Family):
    name = "idefics3"
    placeholder = "<image>"

    def image_kwargs(self) -> dict[str, Any]:
        return {"return_row_col_info": True}

    def _per_tile(self) -> int:
        n = self.files.processor_config.get("image_seq_len")
        if n is None:
            vision = self.config.vision_config
            n = (vision.image_size // vision.patch_size) ** 2 // (self.config.scale_factor ** 2)
        side = round(int(n) ** 0.5)
        if side * side != int(n):
            raise InputError("model_path", str(self.files.folder), f"image_seq_len {n} is not a square")
        return side

    def layout(self, height: int, width: int, rows: int, cols: int) -> TokenLayout:
        s = self._per_tile()
        box = (0, 0, width, height)
        grids = []
        if rows and cols:
            grids.append(grid_from_blocks("tiles", "fine", 0, rows, cols, s, s, box))
        start = rows * cols * s * s
        grids.append(TokenGrid("global", "global", torch.arange(s * s).view(s, s) + start, box))
        return TokenLayout(start + s * s, height, width, tuple(grids))

    def expand(self, image: Any) -> tuple[str, dict[str, torch.Tensor], TokenLayout]:
        out = self.process(image)
        rows, cols = int(out["rows"][0][0]), int(out["cols"][0][0])
        crops = int(out["pixel_values"].shape[1])
        if crops != rows * cols + 1:
            raise InputError("model_path", str(self.files.folder), f"{crops} crops for {rows}x{cols} tiles + global")
        layout = self.layout(image.height, image.width, rows, cols)
        s2 = self._per_tile() ** 2
        tiles = ""
        for r in range(rows):
            for c in range(cols):
                tiles += f"{FAKE}<row_{r + 1}_col_{c + 1}>" + self.placeholder * s2
            tiles += "\n"
        lead = "\n" if rows and cols else ""
        text = f"{tiles}{lead}{FAKE}{GLOBAL}" + self.placeholder * s2 + FAKE
        inputs = {"pixel_values": out["pixel_values"], "pixel_attention_mask": out["pixel_attention_mask"]}
        return text, inputs, layout


FAMILIES = {"idefics3": Idefics3Family, "smolvlm": Idefics3Family}
