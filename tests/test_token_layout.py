"""The family-independent image-token layout and readout (grounding/token_layout.py)."""

from __future__ import annotations

import pytest
import torch

from gcgbench.grounding import attend_segment as aas
from gcgbench.grounding import token_layout as tl


@pytest.mark.parametrize("height,width", [(30, 30), (25, 40), (41, 17)])
def test_square_pad_layout_equals_llava_pad_readout(height, width):
    """The pad layout's readout is aas/gcg.py `--aspect-ratio pad` as attend_segment implements it."""
    torch.manual_seed(height)
    maps = torch.rand(3, 36)
    layout = tl.square_pad_layout(36, height, width)
    expected = aas.upsample_to_image(maps.view(3, 6, 6), height, width)
    assert torch.equal(tl.image_map(layout, maps), expected)
    assert tl.peak_points(layout, maps) == aas.peak_points(maps.view(3, 6, 6), height, width)
    assert tl.peak_point_of_max(layout, maps) == aas.peak_point_of_max(maps.view(3, 6, 6), height, width)


def test_full_image_box_is_upstream_original_aspect_ratio():
    """`--aspect-ratio original`: bicubic straight to (H, W)."""
    maps = torch.rand(2, 12)
    layout = tl.TokenLayout(12, 50, 70, (tl.TokenGrid("image", "fine", torch.arange(12).view(3, 4), (0, 0, 70, 50)),))
    expected = torch.nn.functional.interpolate(maps.view(1, 2, 3, 4), size=(50, 70), mode="bicubic",
                                               align_corners=False)[0]
    assert torch.equal(tl.image_map(layout, maps), expected)


def test_block_and_row_end_grids_by_hand():
    # two tiles side by side, each 2x2 tokens: tokens 0-3 left tile, 4-7 right tile
    grid = tl.grid_from_blocks("tiles", "fine", 0, 1, 2, 2, 2, (0, 0, 8, 4))
    assert grid.index.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7]]
    # 2 rows of 3 with a newline after each row, after 4 base tokens
    rows = tl.grid_with_row_ends("fine", "fine", 4, 2, 3, 1, (0, 0, 6, 4))
    assert rows.index.tolist() == [[4, 5, 6], [8, 9, 10]]
    assert rows.cell(1, 2) == (4.0, 2.0, 6.0, 4.0)


def _one_hot(n: int, k: int) -> torch.Tensor:
    m = torch.zeros(1, n)
    m[0, k] = 1.0
    return m


def test_planted_peak_lands_in_the_token_cell_for_every_token():
    base = tl.TokenGrid("base", "global", torch.arange(4).view(2, 2), (0, 0, 60, 45))
    fine = tl.grid_with_row_ends("tiles", "fine", 4, 3, 4, 1, (0, 0, 60, 45))
    layout = tl.TokenLayout(4 + 3 * 5, 45, 60, (base, fine))
    for view in ("fine", "global"):
        for k, (name, (x0, y0, x1, y1)) in layout.regions().items():
            if (name == "base") != (view == "global"):
                continue
            (x, y), = tl.peak_points(layout, _one_hot(layout.n_tokens, k), view)
            assert x0 <= x < x1 and y0 <= y < y1, (view, k)


def test_mean_view_averages_covering_grids_and_marks_uncovered_pixels():
    left = tl.TokenGrid("a", "fine", torch.tensor([[0]]), (0, 0, 4, 4))
    right = tl.TokenGrid("b", "global", torch.tensor([[1]]), (2, 0, 6, 4))
    layout = tl.TokenLayout(2, 4, 8, (left, right))
    out = tl.image_map(layout, torch.tensor([[1.0, 3.0]]), "mean")[0]
    assert out[0, 0] == 1.0 and out[0, 3] == 2.0 and out[0, 5] == 3.0 and out[0, 7] == float("-inf")


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="two grids"):
        tl.TokenLayout(4, 2, 2, (tl.TokenGrid("a", "fine", torch.arange(4).view(2, 2), (0, 0, 2, 2)),
                                 tl.TokenGrid("b", "global", torch.arange(1).view(1, 1), (0, 0, 2, 2))))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tl.TokenLayout(3, 2, 2, (tl.TokenGrid("a", "fine", torch.arange(4).view(2, 2), (0, 0, 2, 2)),))
    with pytest.raises(ValueError, match="view"):
        tl.square_pad_layout(4, 2, 2).used("both")
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        tl.image_map(tl.square_pad_layout(4, 2, 2), torch.zeros(1, 5))
