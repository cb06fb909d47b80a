"""Attention capture for attend-and-segment, on any transformers model with the attention interface.

a&s needs, per generated token, ONE attention row over the image keys averaged over layers
and heads, never the full (L, H, S, S) tensors `output_attentions=True` returns (and sdpa cannot return).
We register an attention function `gcgbench_capture` through transformers' `AttentionInterface` (mask
function: sdpa's) and set it on the text model only. It always computes the layer output with
`sdpa_attention_forward`, so generated text is bit-identical to plain sdpa generation; when an
`AttentionCapture` is active it also computes, for the chosen query rows only,

    p = softmax(q_rows · Kᵀ · scale + mask)  (eager's arithmetic: matmul in the model dtype, softmax in fp32)

and adds mean_heads(p[..., image keys]) into a per-forward sum; a forward starts at layer 0. For generation
the row is the last query row of every forward (prefill: the last prompt position, then each new token's
input position), i.e. the row that predicts the next token (`aas/infer_attn.py`: `x[:, :, -1, img]`). For
teacher forcing the rows are given positions. The extra cost is one q·Kᵀ over the cached keys per layer and
step for a single row — small next to the layer's weights.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterator

from gcgbench.api.lazy import lazy_module

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

CAPTURE_ATTENTION = "gcgbench_capture"

_ACTIVE: contextvars.ContextVar["AttentionCapture | None"] = contextvars.ContextVar("gcgbench_capture", default=None)


class AttentionCapture:
    """Per forward pass: (B, R, n_img) = mean over layers and heads of the chosen rows' image attention.

    `image_columns`: (B, n_img) key positions of the image tokens in each (padded) row. `rows`: None for the
    last query row of every forward, or (B, R) query positions within the forward (teacher forcing).
    """

    def __init__(self, image_columns: torch.Tensor, rows: torch.Tensor | None = None):
        self.image_columns = image_columns
        self.rows = rows
        self._sums: list[torch.Tensor] = []
        self._layers: list[int] = []
        self._columns: torch.Tensor | None = None      # on the model's device: (n,) shared by all rows, or (B, n)

    def _image_columns_on(self, device: torch.device) -> torch.Tensor:
        if self._columns is None:
            columns = self.image_columns.to(device)
            self._columns = columns[0] if bool((columns == columns[:1]).all()) else columns
        return self._columns

    def record(self, module: Any, query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None,
               scaling: float | None) -> None:
        batch, heads, q_len, dim = query.shape
        kv_len = key.shape[2]
        groups = getattr(module, "num_key_value_groups", 1)
        keys = key if groups == 1 else key.repeat_interleave(groups, dim=1)
        scale = scaling if scaling is not None else dim ** -0.5
        if self.rows is None:                               # generation: the last query row, a view
            picked = query[:, :, -1:, :]
            row_mask = None if mask is None else mask[:, :, -1:, :kv_len]
        else:                                               # teacher forcing: the given rows
            rows = self.rows.to(query.device)
            picked = query.gather(2, rows[:, None, :, None].expand(batch, heads, rows.shape[1], dim))
            if mask is None:                                # sdpa skipped the mask: plain causal
                positions = torch.arange(kv_len, device=query.device)
                row_mask = (positions[None, :] <= (kv_len - q_len + rows)[:, :, None])[:, None]
            else:
                full = mask[..., :kv_len].expand(batch, -1, -1, -1)
                row_mask = full.gather(2, rows[:, None, :, None].expand(batch, full.shape[1], rows.shape[1], kv_len))
        scores = torch.matmul(picked, keys.transpose(2, 3)).mul_(scale).float()       # (B, H, R, S)
        if row_mask is not None:
            if row_mask.dtype == torch.bool:
                scores = scores.masked_fill_(~row_mask, float("-inf"))
            else:
                scores = scores.add_(row_mask.float())
        probs = torch.softmax(scores, dim=-1)
        columns = self._image_columns_on(query.device)
        if columns.dim() == 1:
            image = probs.index_select(3, columns)
        else:
            image = probs.gather(3, columns[:, None, None, :].expand(batch, heads, probs.shape[2], columns.shape[1]))
        layer_mean = image.mean(dim=1)                                                     # (B, R, n_img)
        if getattr(module, "layer_idx", 0) == 0 or not self._sums:
            self._sums.append(layer_mean)
            self._layers.append(1)
        else:
            self._sums[-1].add_(layer_mean)
            self._layers[-1] += 1

    def maps(self) -> torch.Tensor:
        """(forwards, B, R, n_img) on the CPU, averaged over layers."""
        if not self._sums:
            return torch.zeros((0,) + tuple(self.image_columns.shape[:1]) + (1, self.image_columns.shape[1]))
        return torch.stack([s / n for s, n in zip(self._sums, self._layers)]).float().cpu()


@contextmanager
def capturing(capture: AttentionCapture) -> Iterator[AttentionCapture]:
    token = _ACTIVE.set(capture)
    try:
        yield capture
    finally:
        _ACTIVE.reset(token)


def _capture_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                       **kwargs: Any) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    capture = _ACTIVE.get()
    if capture is not None:
        with torch.no_grad():
            capture.record(module, query, key, attention_mask, scaling)
    return output


def register_capture_attention() -> None:
    """Make `gcgbench_capture` a valid `attn_implementation` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(CAPTURE_ATTENTION, _capture_attention)
    AttentionMaskInterface.register(CAPTURE_ATTENTION, sdpa_mask)
