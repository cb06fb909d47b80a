"""Per-phrase a&s heatmaps in prediction extras (grounding/heatmaps.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gcgbench.grounding import heatmaps


def test_encode_shrinks_rescales_and_round_trips():
    image = np.zeros((64, 96), dtype=np.float32)
    image[:8, 88:] = 5.0                                               # the peak: top-right corner
    image[40:, :] = -np.inf                                            # pixels no grid reads
    stored = heatmaps.encode(image, max_side=32)
    assert stored["size"] == [21, 32]
    values = heatmaps.decode(stored)
    assert values.shape == (21, 32) and values.dtype == np.uint8
    assert values.max() == 255 and values[0, -1] == 255 and values.min() == 0 and values[-1, 0] == 0
    assert heatmaps.encode(np.full((4, 4), 3.0))["data"] == heatmaps.encode(np.zeros((4, 4)))["data"]   # flat: all 0
    small = heatmaps.decode(heatmaps.encode(np.arange(6, dtype=np.float32).reshape(2, 3)))      # already small: kept
    assert small.tolist() == [[0, 51, 102], [153, 204, 255]]


def test_bad_heatmaps_are_refused_and_colours_ramp():
    with pytest.raises(ValueError):
        heatmaps.encode(np.zeros((0, 3)))
    for bad in ({}, {"size": [2, 2], "data": "AAA"}, {"size": [2, 2], "data": "AAAA"}, {"size": "x", "data": ""}):
        with pytest.raises(ValueError):
            heatmaps.decode(bad)
    ramp = heatmaps.colourize(np.array([[0, 85, 170, 255]], dtype=np.uint8))
    assert ramp[0, 0].tolist() == [0, 0, 0] and ramp[0, -1].tolist() == [255, 255, 255]
    assert ramp[0, 1].tolist() == [255, 0, 0] and ramp[0, 2].tolist() == [255, 255, 0]
