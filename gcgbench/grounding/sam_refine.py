"""Point → mask: segment-anything's `SamPredictor` (a&s GCG) or a mask proposal containing the point (a&s RES/PNG).

SAM (`aas/gcg.py`): `sam_model_registry[sam_type]` builds the model (ViT-H for `sam_vit_h_4b8939.pth`), one
positive point per phrase in image pixels, `multimask_output=True`, and the LAST of the three masks is kept
(the whole-object granularity), thresholded at SAM's 0.0 logit, at image size.

Proposals (`aas/res.py` b77f8895, `aas/png.py`): a COCO results-style JSON list of
`{"image_id", "segmentation": RLE, "score"}` (Co-DETR instance masks for RES, OpenSeeD panoptic segments for
PNG, converted by the user). The chosen mask is the highest-scoring proposal of the image whose pixel at the
point is set. Ties keep upstream's `np.argsort(scores)[::-1]` order (stable sort reversed: among equal scores
the later-listed proposal wins). No proposal containing the point → no mask (upstream scores IoU 0; for PNG
upstream would take the panoptic void segment, which is not a prediction, so we give no mask there too).

segment-anything 1.0 imports torchvision only for `ResizeLongestSide.apply_image`'s PIL resize. Where
torchvision is not installed (it has no wheel matching the CPU torch build here), `import_segment_anything`
imports the package with a stand-in for exactly those two functions, implemented as torchvision implements
them for PIL images (`to_pil_image` = `Image.fromarray`, `resize` = `Image.resize(..., BILINEAR)`; the
automatic mask generator's `torchvision.ops` names raise if called), and removes the stand-in from
`sys.modules` right after, so nothing else ever sees a fake torchvision.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE

TINY_TEST_SAM = "test_tiny"
TINY_FINE_SAM = "tiny_fine"
# segment-anything 1.0's `sam_model_registry` keys, then ours: what `sam_type` may name (`sam_builders`)
SAM_TYPES = ("default", "vit_h", "vit_l", "vit_b", TINY_TEST_SAM, TINY_FINE_SAM)


def import_segment_anything() -> types.ModuleType:
    """`segment_anything`, imported with a PIL stand-in for torchvision's resize when torchvision is absent."""
    if "segment_anything" in sys.modules:
        return sys.modules["segment_anything"]
    try:
        return importlib.import_module("segment_anything")
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("torchvision"):
            raise
    for name in [m for m in sys.modules if m.startswith("segment_anything")]:
        del sys.modules[name]
    stand_in = _torchvision_stand_in()
    saved = {name: sys.modules.get(name) for name in stand_in}
    sys.modules.update(stand_in)
    try:
        return importlib.import_module("segment_anything")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    from PIL import Image

    def to_pil_image(picture: Any, mode: str | None = None) -> Any:
        array = np.asarray(picture)
        if array.ndim != 3 or array.dtype != np.uint8:
            raise TypeError("the torchvision stand-in only converts HxWxC uint8 arrays")
        return Image.fromarray(array, mode=mode)

    def resize(picture: Any, size: Sequence[int], interpolation: Any = None, max_size: Any = None,
               antialias: Any = True) -> Any:
        height, width = int(size[0]), int(size[1])
        return picture.resize((width, height), Image.BILINEAR)

    def needs_torchvision(*args: Any, **kwargs: Any) -> Any:
        raise ModuleNotFoundError("SamAutomaticMaskGenerator needs torchvision (not installed)")

    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops",
             "torchvision.ops.boxes")
    modules = {name: types.ModuleType(name) for name in names}
    modules["torchvision.transforms.functional"].to_pil_image = to_pil_image
    modules["torchvision.transforms.functional"].resize = resize
    modules["torchvision.ops.boxes"].batched_nms = needs_torchvision
    modules["torchvision.ops.boxes"].box_area = needs_torchvision
    for name in names[1:]:
        parent, _, child = name.rpartition(".")
        setattr(modules[parent], child, modules[name])
    return modules


def build_tiny_sam(checkpoint: str | None = None) -> Any:
    """A ~30k-parameter SAM in the official module layout (64 px input, 16 px patches → 4×4 embedding), for tests.

    `sam_model_registry` hard-codes ViT-H/L/B sizes and a 1024 px input, so this builder is registered as the
    `test_tiny` type; it is loaded through exactly the same path as the real types."""
    return _build_small_sam(checkpoint, patch=16, width=32, prompt_dim=16, heads=2, window=2)


def build_tiny_fine_sam(checkpoint: str | None = None) -> Any:
    """The embedded refiner's architecture, `tiny_fine`: 64 px input, 4 px patches → 16×16 image embedding,
    so the low-resolution mask (4× the embedding, as in SAM) is the full 64×64 input frame (~0.2M parameters)."""
    return _build_small_sam(checkpoint, patch=4, width=48, prompt_dim=32, heads=4, window=4)


def _build_small_sam(checkpoint: str | None, patch: int, width: int, prompt_dim: int, heads: int, window: int) -> Any:
    import torch

    import_segment_anything()
    modeling = importlib.import_module("segment_anything.modeling")
    side = 64
    grid = side // patch
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=2, embed_dim=width, img_size=side, mlp_ratio=2, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=heads, patch_size=patch, qkv_bias=True, use_rel_pos=True, global_attn_indexes=[1],
            window_size=window, out_chans=prompt_dim),
        prompt_encoder=modeling.PromptEncoder(embed_dim=prompt_dim, image_embedding_size=(grid, grid),
                                              input_image_size=(side, side), mask_in_chans=4),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=2 * prompt_dim,
                                                   num_heads=2),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=prompt_dim),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    if checkpoint is not None:
        load_sam_state(sam, checkpoint)
    return sam


def sam_builders() -> dict[str, Callable[..., Any]]:
    """segment-anything's `sam_model_registry` plus the `test_tiny` and `tiny_fine` types."""
    registry = dict(import_segment_anything().sam_model_registry)
    registry[TINY_TEST_SAM] = build_tiny_sam
    registry[TINY_FINE_SAM] = build_tiny_fine_sam
    return registry


def load_sam_state(sam: Any, checkpoint: str | Path) -> None:
    """Load a `sam_vit_*` state dict strictly; missing or unexpected keys → InputError naming them."""
    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise InputError("sam_checkpoint", str(path), "no such file (e.g. sam_vit_h_4b8939.pth from the segment-anything release)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError("sam_checkpoint", str(path), f"cannot read a torch state dict ({type(error).__name__}: {error})") from None
    if not isinstance(state, Mapping):
        raise InputError("sam_checkpoint", str(path), f"expected a state dict, got {type(state).__name__}")
    expected = sam.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or mismatched:
        raise InputError("sam_checkpoint", str(path), _key_problem(missing, unexpected, mismatched) +
                         " (wrong sam_type for this checkpoint?)")
    sam.load_state_dict(state, strict=True)


def build_sam(sam_type: str, checkpoint: str | Path) -> Any:
    """`sam_model_registry[sam_type]()` with its weights from `checkpoint`, checked key by key."""
    builders = sam_builders()
    if sam_type not in builders:
        raise InputError("sam_type", sam_type, f"unknown SAM type; known: {', '.join(sorted(builders))}")
    if not Path(checkpoint).is_file():
        raise InputError("sam_checkpoint", str(checkpoint), "no such file (e.g. sam_vit_h_4b8939.pth from the segment-anything release)")
    sam = builders[sam_type](checkpoint=None)
    load_sam_state(sam, checkpoint)
    return sam.eval()


def _key_problem(missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str] = ()) -> str:
    def shown(keys: Sequence[str]) -> str:
        return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {shown(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {shown(unexpected)}")
    if mismatched:
        parts.append(f"keys with the wrong shape: {shown(mismatched)}")
    return "; ".join(parts)


class SamRefiner:
    """One positive point per phrase → SAM's last multimask output, as a boolean mask at image size."""

    def __init__(self, sam: Any, device: str = "cpu"):
        self.sam = sam.to(device).eval()
        self.device = device
        self.predictor = import_segment_anything().SamPredictor(self.sam)

    def masks(self, image: np.ndarray, points: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """`image`: H×W×3 uint8 RGB; `points`: (x, y) pixels. Returns one (H, W) bool mask per point."""
        return self.masks_with_scores(image, points)[0]

    def masks_with_scores(self, image: np.ndarray, points: Sequence[tuple[int, int]]) -> tuple[list[np.ndarray], list[float]]:
        """`masks` and SAM's predicted IoU of each (the last multimask output's; a&s instance_seg.py's score)."""
        import torch

        if not points:
            return [], []
        with torch.inference_mode():
            self.predictor.set_image(image)
            coords = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
            coords = self.predictor.transform.apply_coords(coords, self.predictor.original_size)
            coords_t = torch.as_tensor(coords, dtype=torch.float, device=self.predictor.device)
            labels = torch.ones((len(points), 1), dtype=torch.int, device=self.predictor.device)
            masks, scores, _ = self.predictor.predict_torch(point_coords=coords_t, point_labels=labels, multimask_output=True)
            self.predictor.reset_image()
        return [mask for mask in masks[:, -1].cpu().numpy().astype(bool)], [float(v) for v in scores[:, -1].cpu()]


@dataclass
class Proposals:
    """Mask proposals per image id (ids compared as strings), each list sorted best first."""

    path: Path
    by_image: dict[str, list[tuple[float, RLE]]] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> "Proposals":
        path = Path(path)
        if not path.is_file():
            raise InputError("proposals", str(path), "no such file")
        try:
            records = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise InputError("proposals", str(path), f"not JSON ({error})") from None
        if not isinstance(records, list):
            raise InputError("proposals", str(path), "expected a COCO results list [{image_id, segmentation, score}]")
        grouped: dict[str, list[tuple[float, RLE]]] = {}
        for index, record in enumerate(records):
            where = f"[{index}]"
            if not isinstance(record, Mapping) or not {"image_id", "segmentation", "score"} <= set(record):
                raise InputError(str(path), where, "a proposal needs image_id, segmentation (RLE) and score")
            rle = RLE.from_json(record["segmentation"], path, f"{where}.segmentation")
            grouped.setdefault(str(record["image_id"]), []).append((float(record["score"]), rle))
        return cls(path, {image_id: _best_first(items) for image_id, items in grouped.items()})

    def pick(self, image_id: Any, x: int, y: int, height: int, width: int) -> RLE | None:
        """The best proposal of `image_id` whose pixel (x, y) is set; None when none is."""
        for _, rle in self.by_image.get(str(image_id), []):
            if rle.size != (height, width):
                raise InputError(str(self.path), f"image_id {image_id}",
                                 f"proposal size {list(rle.size)} != image size {[height, width]}")
            if rle_pixel(rle, x, y):
                return rle
        return None


def _best_first(items: list[tuple[float, RLE]]) -> list[tuple[float, RLE]]:
    order = np.argsort(np.asarray([score for score, _ in items], dtype=np.float64), kind="stable")[::-1]
    return [items[i] for i in order]


def rle_pixel(rle: RLE, x: int, y: int) -> bool:
    """Whether pixel (x, y) of a COCO RLE mask is set."""
    return bool(rle.decode()[int(y), int(x)])
