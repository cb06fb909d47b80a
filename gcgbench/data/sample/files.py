"""Low-level writers shared by the sample-data modules: fixed encodings, so every file is byte-identical
across runs (JSON in insertion order with `json.dumps` defaults, JPEG/PNG at fixed settings and without
metadata or timestamps), plus the COCO-style pieces several datasets repeat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gcgbench.api.types import RLE
from gcgbench.data.sample.scenes import Scene

SAMPLE_VERSION = "sample-v1"
JPEG_SETTINGS: dict[str, Any] = {"format": "JPEG", "quality": 95, "subsampling": 0, "optimize": False}
PNG_SETTINGS: dict[str, Any] = {"format": "PNG", "compress_level": 6, "optimize": False}  # lossless: ids survive
INFO = {"description": "gcgbench synthetic sample data", "version": SAMPLE_VERSION, "year": 2024,
        "contributor": "gcgbench", "date_created": "2024-01-01"}
LICENSES = [{"id": 1, "name": "Apache-2.0 (synthetic, gcgbench)", "url": "https://www.apache.org/licenses/LICENSE-2.0"}]


def coco_image_id(scene: Scene) -> int:
    """The 12-digit-formatted COCO id every COCO-based dataset of the sample gives a scene."""
    return 900_000 + scene.index


def bbox(rle: RLE) -> list[float]:
    """COCO `[x, y, w, h]` of a mask (pycocotools `toBbox`)."""
    from pycocotools import mask as mask_utils

    return [float(v) for v in mask_utils.toBbox(rle.to_coco())]


def coco_image_entry(image_id: int, file_name: str, scene: Scene) -> dict[str, Any]:
    return {"license": 1, "file_name": file_name, "coco_url": "", "height": scene.height, "width": scene.width,
            "date_captured": "2024-01-01 00:00:00", "flickr_url": "", "id": image_id}


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, json.dumps(obj).encode("utf-8"))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_bytes(path, "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8"))


def encode_image(image: np.ndarray, settings: dict[str, Any] = JPEG_SETTINGS) -> bytes:
    """Encode with Pillow at fixed settings (no timestamps or metadata), so the bytes never change."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, **settings)
    return buffer.getvalue()


def write_image(path: Path, image: np.ndarray, settings: dict[str, Any] = JPEG_SETTINGS) -> None:
    write_bytes(path, encode_image(image, settings))
