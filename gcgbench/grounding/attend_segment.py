"""Attend-and-segment (a&s): word-to-image attention of a frozen LMM → one point per phrase.

Re-implemented from Cao et al., "Emerging Pixel Grounding in Large Multimodal Models Without Grounding
Supervision" (arXiv 2410.08209), code `Shengcao-Cao/groundLMM` (2025 version, commit b77f8895). Torch only,
no model code: the backend captures the attention and hands these functions plain tensors.

Notation. A response has T tokens t_0 … t_{T-1}; the image is n = h·w visual tokens (h = w = 24 for
LLaVA-1.5 at 336 px, row-major patches of the padded square image); the LMM has L layers of H heads and
A^{l,k} ∈ R^{S×S} is the post-softmax attention of layer l, head k over the whole sequence.

1. Per-token map (`aas/infer_attn.py`, lines `save_attn_i = torch.cat([x[:, :, -1, img] ...]).mean((0, 1))`):

       a_t = 1/(L·H) · Σ_l Σ_k A^{l,k}[q(t), img]  ∈ R^n, reshaped to h × w,

   with q(t) the query position, `QUERY_POSITIONS`:
   - "predicting" (paper default for generated text): the position whose output *predicts* t_t, i.e. the last
     prompt position for t_0 and the position of t_{t-1} afterwards (the last query row of generate step t);
   - "own": the position of t_t itself (what `aas/infer_attn_png.py` uses for the teacher-forced narrative).
   The Oct-2024 release averaged only head H-2 of each layer (`x[:, -2:-1, :]` slices heads; groundLMM
   issue #3); we average all heads as the fixed 2025 code does. No softmax re-normalisation over image keys.
2. Normalisation (`aas/gcg.py`: `attentions - attentions.mean(dim=0)`), `NORMALIZATIONS`:
   "mean": â_t = a_t − (1/T) Σ_s a_s (removes token-agnostic sinks); "none": â_t = a_t.
3. Phrase map (`aas/gcg.py` + `aas/utils.py::group_tokens`; `--group-aggregation`, `AGGREGATIONS`):
   m_p = max_{t ∈ G_p} â_t ("max", the 2025 default), or the mean, or â of the first token of G_p, where
   G_p are the tokens of the phrase (for GCG: the tokens overlapping the noun chunk's ROOT word).
4. Point (`aas/gcg.py`, `--aspect-ratio pad`): LLaVA pads the image to an S×S square, S = max(H_img, W_img),
   centred; m_p is upsampled bicubically (align_corners=False) to S×S, the padding is cropped away
   (rows [(S−H)//2, (S−H)//2+H), columns likewise) and the argmax (first maximum in row-major order) is the
   single positive point (x, y) in image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from gcgbench.api.lazy import lazy_module

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

QUERY_POSITIONS = ("predicting", "own")
NORMALIZATIONS = ("mean", "none")
AGGREGATIONS = ("max", "mean", "first")


@dataclass(frozen=True)
class AasOptions:
    """How maps are made; every field is recorded in the backend's fingerprint and predictions.

    `query` "auto" means: "predicting" for generated answers (GCG, RES, upstream `infer_attn.py`), "own" for
    teacher-forced text (PNG, upstream `infer_attn_png.py`).
    """

    query: str = "auto"
    normalize: str = "mean"
    aggregation: str = "max"

    def __post_init__(self) -> None:
        for name, value, allowed in (("query", self.query, QUERY_POSITIONS + ("auto",)),
                                     ("normalize", self.normalize, NORMALIZATIONS),
                                     ("aggregation", self.aggregation, AGGREGATIONS)):
            if value not in allowed:
                raise ValueError(f"a&s {name} must be one of {', '.join(allowed)}, got {value!r}")

    def query_for(self, teacher_forced: bool) -> str:
        if self.query != "auto":
            return self.query
        return "own" if teacher_forced else "predicting"

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "normalize": self.normalize, "aggregation": self.aggregation}


def grid_shape(n_image_tokens: int) -> tuple[int, int]:
    """(h, w) of a square patch grid of `n_image_tokens` tokens (LLaVA-1.5: 576 → 24 × 24)."""
    side = round(n_image_tokens ** 0.5)
    if side * side != n_image_tokens:
        raise ValueError(f"{n_image_tokens} image tokens do not form a square grid")
    return side, side


def token_maps_from_attentions(attentions: Sequence[torch.Tensor], query_rows: Sequence[int],
                               image_columns: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Reference (naive) step 1 from full attention tensors of ONE sequence.

    `attentions`: per layer (1, H, S, S) or (H, S, S) post-softmax weights (`output_attentions=True`);
    `query_rows[t]`: the query position q(t) of token t; returns (T, n) = mean over layers and heads of
    A[q(t), image_columns]. The backend's capture must agree with this (tests check it to 1e-5).
    """
    rows = torch.as_tensor(list(query_rows), dtype=torch.long)
    columns = torch.as_tensor(image_columns, dtype=torch.long)
    per_layer = []
    for layer in attentions:
        layer = layer[0] if layer.dim() == 4 else layer
        per_layer.append(layer.float()[:, rows][:, :, columns].mean(dim=0))   # (T, n)
    return torch.stack(per_layer).mean(dim=0)


def normalize_maps(maps: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Step 2 on (T, h, w) maps: subtract the mean map over all T tokens ("mean"), or nothing ("none")."""
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {mode!r}")
    maps = maps.float()
    if mode == "mean" and maps.shape[0] > 0:
        return maps - maps.mean(dim=0, keepdim=True)
    return maps


def phrase_maps(maps: torch.Tensor, groups: Sequence[Sequence[int]], mode: str = "max") -> torch.Tensor:
    """Step 3: one (h, w) map per token group → (N, h, w). Every group must name at least one token."""
    if mode not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {mode!r}")
    out = []
    for group in groups:
        if not group:
            raise ValueError("a phrase must cover at least one token")
        selected = maps[torch.as_tensor(list(group), dtype=torch.long)]
        if mode == "max":
            out.append(selected.amax(dim=0))
        elif mode == "mean":
            out.append(selected.mean(dim=0))
        else:
            out.append(selected[0])
    if not out:
        return maps.new_zeros((0,) + tuple(maps.shape[1:]))
    return torch.stack(out)


def pad_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the image inside LLaVA's centred pad-to-square canvas (`expand2square`)."""
    side = max(height, width)
    return (side - height) // 2, (side - width) // 2, side


def upsample_to_image(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Step 4a: (N, h, w) → (N, height, width): bicubic to the padded square, then crop the padding away."""
    top, left, side = pad_crop_box(height, width)
    if maps.shape[0] == 0:
        return maps.new_zeros((0, height, width))
    big = torch.nn.functional.interpolate(maps.float()[None], size=(side, side), mode="bicubic",
                                          align_corners=False)[0]
    return big[:, top:top + height, left:left + width]


def peak_points(maps: torch.Tensor, height: int, width: int) -> list[tuple[int, int]]:
    """Step 4: the argmax (x, y) in image pixels of each (h, w) map (maps upsampled one at a time)."""
    points = []
    for single in maps:
        scores = upsample_to_image(single[None], height, width)[0]
        index = int(torch.argmax(scores.reshape(-1)))
        points.append((index % width, index // width))
    return points


def peak_point_of_max(maps: torch.Tensor, height: int, width: int) -> tuple[int, int]:
    """The argmax of the pixel-wise max over several upsampled maps (upstream RES `first8` rule:
    `upsample_scores[:8].amax(dim=0)` then argmax)."""
    scores = upsample_to_image(maps, height, width).amax(dim=0)
    index = int(torch.argmax(scores.reshape(-1)))
    return index % width, index // width
