"""Per-phrase a&s attention heatmaps, small enough to travel in `Prediction.extras` and be drawn by the report.

`encode` takes a phrase's map over the original image (token_layout.image_map: H × W, −inf where no grid reads),
shrinks it to at most `max_side` pixels on the long side by box averaging (PIL `Image.resize(BOX)` on float32;
−inf pixels first set to the finite minimum), rescales it linearly to 0…255 (min → 0, max → 255; a flat map is
all 0) and stores `{"size": [h, w], "data": base64(uint8 row-major)}` — JSON-native, ~1.4 kB at 32 × 32.
`decode` reverses the storage; `colourize` maps 0…255 to a black → red → yellow → white ramp for display.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping

import numpy as np

MAX_SIDE = 32


def encode(image_map: Any, max_side: int = MAX_SIDE) -> dict[str, Any]:
    from PIL import Image

    values = np.asarray(image_map, dtype=np.float32)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"a heatmap needs a non-empty (H, W) map, got shape {values.shape}")
    finite = np.isfinite(values)
    low = float(values[finite].min()) if finite.any() else 0.0
    values = np.where(finite, values, low).astype(np.float32)
    height, width = values.shape
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(values, mode="F").resize(size, Image.BOX), dtype=np.float64)
    span = float(small.max() - small.min())
    scaled = np.zeros(small.shape, np.uint8) if span <= 0 else np.rint((small - small.min()) / span * 255).astype(np.uint8)
    return {"size": [int(scaled.shape[0]), int(scaled.shape[1])], "data": base64.b64encode(scaled.tobytes()).decode("ascii")}


def decode(stored: Mapping[str, Any]) -> np.ndarray:
    """(h, w) uint8 of an `encode`d heatmap; ValueError when malformed."""
    try:
        height, width = (int(v) for v in stored["size"])
        raw = base64.b64decode(stored["data"], validate=True)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a heatmap ({error})") from None
    if height < 1 or width < 1 or len(raw) != height * width:
        raise ValueError(f"heatmap data holds {len(raw)} bytes for size {height}x{width}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width)


def colourize(values: np.ndarray) -> np.ndarray:
    """0…255 → (h, w, 3) uint8: black → red → yellow → white."""
    v = values.astype(np.float64) / 255.0
    channels = [np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)]
    return np.rint(np.stack(channels, axis=-1) * 255).astype(np.uint8)
