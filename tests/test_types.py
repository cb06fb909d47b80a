"""Core types: lossless JSON round trips and clear errors for malformed RLE."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Doc, Phrase, Prediction


def test_rle_encodes_and_decodes_a_known_mask():
    mask = np.zeros((3, 4), dtype=np.uint8)
    mask[1, 1:3] = 1
    rle = RLE.from_mask(mask)
    assert rle.size == (3, 4)
    assert rle.area() == 2
    assert np.array_equal(rle.decode(), mask)


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_rle_round_trips_any_mask_through_json(mask):
    rle = RLE.from_mask(mask)
    again = RLE.from_json(json.loads(json.dumps(rle.to_json())))
    assert again == rle
    assert np.array_equal(again.decode(), mask.astype(np.uint8))


def test_uncompressed_counts_are_compressed_on_read():
    # column-major runs: 2 zeros, 3 ones, 1 zero over a 2x3 image
    rle = RLE.from_json({"size": [2, 3], "counts": [2, 3, 1]})
    assert rle.decode().tolist() == [[0, 1, 1], [0, 1, 0]]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"counts": "abc"}, "'size' and 'counts'"),
        ({"size": [2], "counts": "0"}, "[height, width]"),
        ({"size": [2, 3], "counts": 7}, "string or a list"),
        ({"size": [2, 3], "counts": [1, 1]}, "covers 2 pixels"),
        ({"size": [10, 10], "counts": "abc"}, "not valid COCO RLE"),
        ({"size": [2, 2], "counts": RLE.from_mask(np.ones((3, 3), np.uint8)).counts}, "covers 9 pixels"),
    ],
)
def test_malformed_rle_is_one_line_naming_file_and_record(bad, message):
    with pytest.raises(InputError) as error:
        RLE.from_json(bad, "preds/sa_1.json", "pred_masks[0]")
    text = str(error.value)
    assert text.startswith("preds/sa_1.json: pred_masks[0]: ")
    assert message in text and "\n" not in text


def test_prediction_and_doc_round_trip_losslessly():
    mask = RLE.from_mask(np.eye(5, dtype=np.uint8))
    prediction = Prediction(
        doc_id="sa_1",
        text="a cat on a mat",
        phrases=(Phrase("a cat", (mask,), 0, 5), Phrase("a mat", ())),
        extra_masks=(mask,),
        boxes=((0.0, 1.0, 2.5, 3.0),),
        extras={"peaks": [[1, 2]]},
    )
    assert Prediction.from_json(json.loads(json.dumps(prediction.to_json()))) == prediction
    assert prediction.masks() == [mask, mask]
    doc = Doc("sa_1", "img.jpg", 5, 5, {"prompt": "describe"}, (Phrase("a cat", (mask,)),), (), {"caption": "x"})
    assert Doc.from_json(json.loads(json.dumps(doc.to_json()))) == doc


def test_prediction_without_doc_id_is_rejected():
    with pytest.raises(InputError, match="doc_id"):
        Prediction.from_json({"text": "x"}, "p.jsonl", "line 3")
