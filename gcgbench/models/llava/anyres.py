"""LLaVA-NeXT's any-resolution packing, shared by F-LMM on LLaVA-NeXT (`flmm/next.py`) and a&s (`aas/anyres.py`).

transformers `LlavaNextModel.pack_image_features` (and `LlavaOnevisionModel`'s): with g = S / patch and
(r, c) = the best grid pinpoint / S, the base image's g² tokens, then the crops' joint (r·g) × (c·g) grid
unpadded (`unpad_image`: the centred padding of the shorter side removed, the kept side
int(round(side · scale, 7)) as transformers ≥ 4.4x computes it) to H_f × W_f, one `image_newline` after each
row → g² + H_f · (W_f + 1) tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class AnyResLayout:
    """Where an image's features sit among its `<image>` tokens (see the module docstring)."""

    base: int            # g: the base grid is g × g
    rows: int            # r: crops down
    cols: int            # c: crops across
    fine_height: int     # H_f: rows of the unpadded fine grid
    fine_width: int      # W_f: columns of the unpadded fine grid (each row is followed by a newline token)

    @property
    def tokens(self) -> int:
        return self.base * self.base + self.fine_height * (self.fine_width + 1)


def anyres_layout(height: int, width: int, pinpoints: Sequence[Sequence[int]], tile: int, patch: int) -> AnyResLayout:
    """The layout of an image of `height` × `width` pixels for grid pinpoints `pinpoints` ((h, w) pairs),
    crops of `tile` pixels and vision patches of `patch` pixels."""
    from transformers.image_processing_utils import select_best_resolution

    best_height, best_width = select_best_resolution((height, width), [list(p) for p in pinpoints])
    base = tile // patch
    rows, cols = best_height // tile, best_width // tile
    fine_height, fine_width = rows * base, cols * base
    if width / height > fine_width / fine_height:
        kept = int(round(height * (fine_width / width), 7))
        fine_height -= 2 * ((fine_height - kept) // 2)
    else:
        kept = int(round(width * (fine_height / height), 7))
        fine_width -= 2 * ((fine_width - kept) // 2)
    return AnyResLayout(base, rows, cols, fine_height, fine_width)
