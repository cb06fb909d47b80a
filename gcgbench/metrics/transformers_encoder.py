"""A non-BERT phrase encoder (e.g. an MPNet sentence-transformers folder) computed with transformers.

BERT folders, the official `bert-base-uncased` and the sample's all-MiniLM-L6-v2 among them, are computed in
numpy (`bert_encoder.py`) and never reach this module; other architectures need torch and transformers, which
are imported here, at construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from gcgbench.api.errors import InputError


def _missing_torch(what: str) -> InputError:
    return InputError(what, None, "a text model that is not a BERT needs torch and transformers: pip install "
                                  "'gcgbench[gcg]' (or the whole model stack, 'gcgbench[models]')")


class MeanPoolEncoder:
    """A transformers encoder whose phrase embedding is the attention-masked mean of its last hidden state.

    Texts are batched, longest first, padded; averaging only over non-pad tokens equals the one-text-at-a-time
    mean up to float32 rounding. `normalize` scales each embedding to unit length (sentence-transformers'
    `Normalize` module; cosine similarity is unchanged by it).
    """

    def __init__(self, folder: Path, name: str, max_length: int, normalize: bool = False, device: str = "cpu",
                 batch_size: int = 64, what: str = "the text model", hint: str = ""):
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging
        except ImportError:
            raise _missing_torch(str(folder)) from None
        transformers_logging.disable_progress_bar()  # a load bar per run is noise in our output
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(
                str(folder), local_files_only=True, dtype=torch.float32, attn_implementation="eager"
            )
        except Exception as error:  # noqa: BLE001 - transformers/safetensors raise many types for a bad folder
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(folder, None, f"cannot load {what} from this folder ({reason}); {hint}") from None
        self._model = model.to(device).eval()
        self._device = device
        self.max_length = max_length
        self.normalize = normalize
        self.batch_size = batch_size
        self.name = name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden states, float32, shape (len(texts), hidden_size)."""
        import torch

        texts = list(texts)
        embeddings = np.zeros((len(texts), self._model.config.hidden_size), dtype=np.float32)
        # longest first, so each padded batch holds texts of similar length
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                inputs = self._tokenizer(
                    [texts[index] for index in chunk],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self._device)
                hidden = self._model(**inputs).last_hidden_state
                weights = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                embeddings[chunk] = pooled.float().cpu().numpy()
        return embeddings
