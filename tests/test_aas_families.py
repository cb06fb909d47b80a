"""Image-token layouts of the `aas` families on tiny random checkpoints (tests/tiny_vlms.py), no real weights.

Two checks per family and image shape:
- planted peak: a one-hot attention map on image token k, read out exactly as GCG/RES/PNG read their maps
  (`AasBackend._points`), lands in the region of the original image that token k covers — the region worked out
  here from first principles (the processor's grid numbers and the family's packing rule, written out token by
  token), not from `TokenLayout`;
- feature locality: with the vision tower's attention switched off, changing the pixels of token k's region
  changes token k's embedding in the language model's input, and leaves every token whose region is far away
  unchanged — this ties the layout to what transformers' model really puts at each position (a wrong tile
  order, a missed newline token or a merge off by one fails it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gcgbench.models.aas import family as fam
from gcgbench.models.aas.backend import AasBackend
from tests.tiny_vlms import FAMILIES, write_tiny_vlm

SHAPES = [(96, 64), (64, 96), (112, 80), (40, 40)]       # (width, height)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_vlms")
    return {name: write_tiny_vlm(name, root / name) for name in FAMILIES}


def _family(folder):
    return fam.family_class(fam.read_model_type(folder))(fam.read_checkpoint(folder), {})


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# ---------------------------------------------------------------------------------------------- first principles

def _cell(row: int, col: int, rows: int, cols: int, width: int, height: int) -> tuple[float, float, float, float]:
    return col * width / cols, row * height / rows, (col + 1) * width / cols, (row + 1) * height / rows


def _expected_regions(name: str, family, image: Image.Image) -> dict[int, tuple[float, float, float, float]]:
    """Token number → its cell in original pixels, spelled out per family (newline tokens have none)."""
    width, height = image.size
    out = {}
    if name in ("llava_next", "llava_onevision"):
        from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image

        vision = family.config.vision_config
        g = vision.image_size // vision.patch_size
        rows, cols = get_anyres_image_grid_shape((height, width), family.config.image_grid_pinpoints, vision.image_size)
        fine = unpad_image(torch.zeros(1, rows * g, cols * g), torch.tensor([height, width]))
        fine_h, fine_w = fine.shape[1:]
        if name == "llava_onevision":
            limit = int(family.config.vision_aspect_ratio.split("_")[-1])
            ratio = math.sqrt(fine_h * fine_w / (limit * g * g))
            if ratio > 1.1:
                fine_h, fine_w = int(fine_h // ratio), int(fine_w // ratio)
        k = 0
        for r in range(g):
            for c in range(g):
                out[("base", k)] = _cell(r, c, g, g, width, height)
                k += 1
        for r in range(fine_h):
            for c in range(fine_w + 1):
                if c < fine_w:
                    out[("tiles", k)] = _cell(r, c, fine_h, fine_w, width, height)
                k += 1                                              # the newline token has no region
    elif name in ("qwen2_vl", "qwen2_5_vl"):
        grid = family.process(image)["image_grid_thw"][0]
        rows, cols = int(grid[1]) // 2, int(grid[2]) // 2
        for k in range(rows * cols):
            out[("image", k)] = _cell(k // cols, k % cols, rows, cols, width, height)
    else:
        side = 2                                                   # image_seq_length / image_seq_len 4 = 2 × 2
        if name == "internvl":
            from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

            tile_cols, tile_rows = get_optimal_tiled_canvas((height, width), (32, 32), 3, 9)
            extra = "thumbnail" if tile_rows * tile_cols > 1 else None
        else:
            processed = family.process(image)
            tile_rows, tile_cols = int(processed["rows"][0][0]), int(processed["cols"][0][0])
            extra = "global"
        k = 0
        for tile in range(tile_rows * tile_cols):
            for r in range(side):
                for c in range(side):
                    row, col = (tile // tile_cols) * side + r, (tile % tile_cols) * side + c
                    out[("tiles", k)] = _cell(row, col, tile_rows * side, tile_cols * side, width, height)
                    k += 1
        if extra:
            for r in range(side):
                for c in range(side):
                    out[(extra, k)] = _cell(r, c, side, side, width, height)
                    k += 1
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_planted_peak_lands_in_its_token_region(name, checkpoints):
    family = _family(checkpoints[name])
    backend = AasBackend.from_args({"model_path": str(checkpoints[name])})
    for width, height in SHAPES:
        image = _image(width, height)
        encoded = family.encode(image, "Describe the image in detail .")
        expected = _expected_regions(name, family, image)
        assert {k for _, k in expected} <= set(range(encoded.layout.n_tokens))
        assert len(encoded.image_columns) == encoded.layout.n_tokens
        for (grid, k), (x0, y0, x1, y1) in expected.items():
            backend.options["view"] = "global" if grid in ("base", "thumbnail", "global") else "fine"
            planted = torch.zeros(1, encoded.layout.n_tokens)
            planted[0, k] = 1.0
            (x, y), = backend._points(encoded, planted)
            assert x0 - 0.5 <= x < x1 + 0.5 and y0 - 0.5 <= y < y1 + 0.5, (name, (width, height), grid, k)
        fine = [g for g in encoded.layout.grids if g.view == "fine"]
        assert fine and sum(g.index.numel() for g in encoded.layout.grids) == len(expected)


# ---------------------------------------------------------------------------------------------- locality

def _zero_attention(module, query, key, value, attention_mask, **kwargs):
    return torch.zeros(query.shape[0], query.shape[2], query.shape[1], value.shape[-1], dtype=query.dtype), None


def _image_token_embeddings(model, family, image) -> torch.Tensor:
    encoded = family.encode(image, "Describe the image .")
    seen = {}

    def hook(module, args, kwargs):
        seen["embeds"] = kwargs["inputs_embeds"].detach().clone()
        raise StopIteration

    handle = model.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            model(input_ids=encoded.input_ids, attention_mask=torch.ones_like(encoded.input_ids),
                  **encoded.image_inputs, **family.sequence_inputs(encoded.input_ids))
    except StopIteration:
        pass
    finally:
        handle.remove()
    return seen["embeds"][0, encoded.image_columns], encoded.layout


@pytest.mark.parametrize("name", FAMILIES)
def test_image_tokens_carry_their_own_region(name, checkpoints):
    from transformers import AttentionInterface, AutoModelForImageTextToText

    AttentionInterface.register("gcgbench_test_zero", _zero_attention)
    model = AutoModelForImageTextToText.from_pretrained(checkpoints[name]).eval()
    model.set_attn_implementation({"vision_config": "gcgbench_test_zero", "text_config": "sdpa"})
    family = _family(checkpoints[name])
    for width, height in SHAPES[:3]:
        image = _image(width, height)
        before, layout = _image_token_embeddings(model, family, image)
        regions = layout.regions()
        for grid in layout.grids:
            for k in (int(grid.index[0, 0]), int(grid.index[-1, -1]), int(grid.index[grid.shape[0] // 2, grid.shape[1] // 3])):
                _, (x0, y0, x1, y1) = regions[k]
                bx0, by0 = int(x0 + (x1 - x0) / 4), int(y0 + (y1 - y0) / 4)
                bx1, by1 = max(bx0 + 1, int(x1 - (x1 - x0) / 4)), max(by0 + 1, int(y1 - (y1 - y0) / 4))
                pixels = np.array(image)
                pixels[by0:by1, bx0:bx1] = 255 - pixels[by0:by1, bx0:bx1]
                after, _ = _image_token_embeddings(model, family, Image.fromarray(pixels))
                changed = (after - before).abs().amax(dim=-1) > 1e-5
                assert bool(changed[k]), (name, (width, height), grid.name, k)
                for j, (_, (cx0, cy0, cx1, cy1)) in regions.items():
                    margin_x, margin_y = (cx1 - cx0) / 2 + 3, (cy1 - cy0) / 2 + 3
                    far = cx1 + margin_x <= bx0 or cx0 - margin_x >= bx1 or cy1 + margin_y <= by0 or cy0 - margin_y >= by1
                    if far:
                        assert not bool(changed[j]), (name, (width, height), grid.name, k, j)
