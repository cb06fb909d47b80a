"""Where each image token of a VLM sits and which region of the ORIGINAL image it covers; maps → image → point.

Every VLM family puts an image's visual tokens into the text sequence in its own way: one square grid of a
padded square image (LLaVA-1.5), a base grid plus unpadded anyres tiles with a newline token after each row
(LLaVA-NeXT, LLaVA-OneVision), a 2×2-merged dynamic-resolution grid (Qwen2-VL, Qwen2.5-VL), 448-px tiles plus a
thumbnail after pixel shuffle (InternVL), tiles plus a global image (Idefics3, SmolVLM). A `TokenLayout` states
that once per image, as plain data; the readout below is shared by all families.

Notation. The n image tokens of one image are numbered 0 … n−1 in sequence order (the positions of the
family's image-placeholder token id in `input_ids`). A `TokenGrid` is a rows × cols block of them,
`index[r, c]` ∈ [0, n), row-major in the image; tokens in no grid (LLaVA-NeXT's row newlines) are never read.
A grid covers `box` = (x0, y0, x1, y1) in original-image pixels (it may extend past the image: LLaVA-1.5's
padded square), so token (r, c) covers

    [x0 + c·(x1−x0)/cols, x0 + (c+1)·(x1−x0)/cols) × [y0 + r·(y1−y0)/rows, y0 + (r+1)·(y1−y0)/rows).

Readout of a per-token map m ∈ R^n (after the a&s normalisation and phrase aggregation, attend_segment.py):
for each used grid g, M_g = bicubic(m[index_g], size = (y1−y0, x1−x0), align_corners=False) placed at the box
and cropped to the image (upstream a&s `aas/gcg.py`: `--aspect-ratio pad` upsamples to the padded square and
crops, `--aspect-ratio original` upsamples straight to (H, W): both are this rule, with the box being the padded
square or the image); the image map is M_g of the one used grid, or the pixel-wise mean of the used grids'
M_g (`view="mean"`, pixels covered by no used grid are left at −inf); the point is its argmax (first maximum in
row-major order), (x, y) in image pixels.

Views (`VIEWS`): grids are "fine" (anyres tiles, InternVL tiles, Idefics3 tiles, the single grid of LLaVA-1.5 or
Qwen2-VL) or "global" (LLaVA-NeXT's base image, InternVL's thumbnail, Idefics3's global image). `view="fine"`
reads the fine grids (upstream `more_models/llava_next.py` default and `internvl2_5.py` default), "global"
the global ones (upstream `--use-base-patches` / `--use-thumbnail-attention`), "mean" all of them; a layout
with no grid of the asked view (a small image without tiles) reads the grids it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcgbench.api.lazy import lazy_module

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

VIEWS = ("fine", "global", "mean")
GRID_VIEWS = ("fine", "global")


@dataclass(frozen=True)
class TokenGrid:
    """`index` (rows, cols): image-token numbers, row-major over the region `box` = (x0, y0, x1, y1)."""

    name: str
    view: str
    index: torch.Tensor
    box: tuple[int, int, int, int]

    def __post_init__(self) -> None:
        if self.view not in GRID_VIEWS:
            raise ValueError(f"grid view must be one of {GRID_VIEWS}, got {self.view!r}")
        if self.index.dim() != 2 or self.index.numel() == 0:
            raise ValueError(f"grid {self.name}: index must be a non-empty (rows, cols) tensor")
        x0, y0, x1, y1 = self.box
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"grid {self.name}: empty box {self.box}")

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.index.shape[0]), int(self.index.shape[1])

    def cell(self, row: int, col: int) -> tuple[float, float, float, float]:
        """The box of token (row, col) in original-image pixels (may lie partly outside the image)."""
        x0, y0, x1, y1 = self.box
        rows, cols = self.shape
        step_x, step_y = (x1 - x0) / cols, (y1 - y0) / rows
        return x0 + col * step_x, y0 + row * step_y, x0 + (col + 1) * step_x, y0 + (row + 1) * step_y


@dataclass(frozen=True)
class TokenLayout:
    """The n image tokens of one image of `height` × `width` pixels and the grids they form."""

    n_tokens: int
    height: int
    width: int
    grids: tuple[TokenGrid, ...]

    def __post_init__(self) -> None:
        seen = torch.cat([g.index.reshape(-1) for g in self.grids]) if self.grids else torch.zeros(0, dtype=torch.long)
        if len(seen) and (int(seen.min()) < 0 or int(seen.max()) >= self.n_tokens):
            raise ValueError(f"grid indices must lie in [0, {self.n_tokens})")
        if len(torch.unique(seen)) != len(seen):
            raise ValueError("an image token belongs to two grids")
        if not self.grids:
            raise ValueError("a layout needs at least one grid")

    def used(self, view: str) -> tuple[TokenGrid, ...]:
        """The grids `view` reads (see the module docstring)."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if view == "mean":
            return self.grids
        chosen = tuple(g for g in self.grids if g.view == view)
        return chosen or self.grids

    def regions(self) -> dict[int, tuple[str, tuple[float, float, float, float]]]:
        """Token number → (grid name, cell box) for every token in a grid (tests, docs, heatmaps)."""
        out = {}
        for grid in self.grids:
            rows, cols = grid.shape
            for r in range(rows):
                for c in range(cols):
                    out[int(grid.index[r, c])] = (grid.name, grid.cell(r, c))
        return out


def square_pad_layout(n_tokens: int, height: int, width: int) -> TokenLayout:
    """LLaVA-1.5 (`--aspect-ratio pad`): one g×g grid over the centred padded square of side max(H, W)."""
    side = round(n_tokens ** 0.5)
    if side * side != n_tokens:
        raise ValueError(f"{n_tokens} image tokens do not form a square grid")
    square = max(height, width)
    top, left = (square - height) // 2, (square - width) // 2
    index = torch.arange(n_tokens).view(side, side)
    return TokenLayout(n_tokens, height, width, (TokenGrid("image", "fine", index, (-left, -top, square - left, square - top)),))


def image_map(layout: TokenLayout, maps: torch.Tensor, view: str = "fine") -> torch.Tensor:
    """(N, n) per-token maps → (N, H, W) maps over the original image (the rule of the module docstring)."""
    if maps.dim() != 2 or maps.shape[1] != layout.n_tokens:
        raise ValueError(f"maps must be (N, {layout.n_tokens}), got {tuple(maps.shape)}")
    grids = layout.used(view)
    height, width = layout.height, layout.width
    total = maps.new_zeros((maps.shape[0], height, width), dtype=torch.float32)
    count = torch.zeros((height, width), dtype=torch.float32)
    for grid in grids:
        x0, y0, x1, y1 = grid.box
        values = maps.float()[:, grid.index.reshape(-1)].view(maps.shape[0], *grid.shape)
        if maps.shape[0]:
            big = torch.nn.functional.interpolate(values[None], size=(y1 - y0, x1 - x0), mode="bicubic",
                                                  align_corners=False)[0]
        else:
            big = values.new_zeros((0, y1 - y0, x1 - x0))
        top, left = max(0, y0), max(0, x0)
        bottom, right = min(height, y1), min(width, x1)
        if bottom <= top or right <= left:
            continue
        total[:, top:bottom, left:right] += big[:, top - y0:bottom - y0, left - x0:right - x0]
        count[top:bottom, left:right] += 1
    if len(grids) == 1 and bool((count == 1).all()):
        return total
    out = total / count.clamp(min=1)
    return out.masked_fill(count == 0, float("-inf"))


def argmax_points(image_maps: torch.Tensor) -> list[tuple[int, int]]:
    """(N, H, W) → the (x, y) of each map's first maximum in row-major order."""
    width = image_maps.shape[-1]
    flat = image_maps.reshape(image_maps.shape[0], -1)
    return [(int(i) % width, int(i) // width) for i in torch.argmax(flat, dim=1)]


def peak_points(layout: TokenLayout, maps: torch.Tensor, view: str = "fine") -> list[tuple[int, int]]:
    """One point per (n,) map of `maps` (N, n); maps are upsampled one at a time (memory ∝ one image)."""
    return [argmax_points(image_map(layout, single[None], view))[0] for single in maps]


def peak_point_of_max(layout: TokenLayout, maps: torch.Tensor, view: str = "fine") -> tuple[int, int]:
    """The argmax of the pixel-wise max over several maps' image maps (a&s RES `first8` rule)."""
    return argmax_points(image_map(layout, maps, view).amax(dim=0, keepdim=True))[0]


def grid_from_blocks(name: str, view: str, start: int, block_rows: int, block_cols: int, side_rows: int,
                     side_cols: int, box: tuple[int, int, int, int]) -> TokenGrid:
    """A grid of block_rows × block_cols tiles stored one after another (row-major tiles, each tile's
    side_rows × side_cols tokens row-major), starting at token `start`: InternVL and Idefics3 tiles."""
    per_tile = side_rows * side_cols
    tiles = torch.arange(block_rows * block_cols * per_tile).view(block_rows, block_cols, side_rows, side_cols)
    index = tiles.permute(0, 2, 1, 3).reshape(block_rows * side_rows, block_cols * side_cols) + start
    return TokenGrid(name, view, index, box)


def grid_with_row_ends(name: str, view: str, start: int, rows: int, cols: int, row_extra: int,
                       box: tuple[int, int, int, int]) -> TokenGrid:
    """A rows × cols grid stored row by row with `row_extra` tokens (newlines) after each row."""
    index = (torch.arange(rows)[:, None] * (cols + row_extra) + torch.arange(cols)[None, :]) + start
    return TokenGrid(name, view, index, box)

