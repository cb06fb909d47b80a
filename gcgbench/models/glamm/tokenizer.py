"""GLaMM's tokenizer and prompts, as its pinned environment (transformers cae78c46 = 4.28.0.dev0, slow
`LlamaTokenizer`, sentencepiece 0.1.99) tokenizes and decodes them.

Files (HF checkpoint folder): `tokenizer.model` (sentencepiece), `added_tokens.json` (GLaMM's tokens,
`<im_start>`=32000 `<im_end>`=32001 `<bbox>`=32002 `<point>`=32003 `[SEG]`=32004 `<p>`=32005 `</p>`=32006 in
the official checkpoints; a tokenizer with another base vocabulary keeps them right after it, as 4.28
requires). `tokenizer_config.json` says `"legacy": false`, a flag 4.28 does not know: it tokenizes the
legacy way. transformers 5 no longer has that tokenizer, so this module re-implements 4.28's:

- tokenize: split the text on the added tokens and on `<s>`, `</s>`, `<unk>`. The added tokens are plain
  strings in 4.28 (not `AddedToken`s), so the text on each side of one is stripped of whitespace ("The
  <im_start>" → "The", "<im_start>"); `<s>`/`</s>`/`<unk>` are `AddedToken(lstrip=False, rstrip=False)` and
  strip nothing. Every remaining non-empty piece is `sp.encode(piece)` (so each gets sentencepiece's dummy
  "▁" prefix). `encode` prepends BOS (1).
- decode (`skip_special_tokens=False`, `spaces_between_special_tokens=True`, `clean_up_tokenization_spaces`
  false as the config says): the added tokens split the ids into runs; a run is LlamaTokenizer's
  `convert_tokens_to_string` (sentencepiece decode, `<s>`/`</s>` written verbatim with one space before
  them unless first or after another special); runs and added tokens are joined with single spaces.
- `tokenizer_image_token` (model/llava/mm_utils.py): split the prompt on "<image>", encode each chunk (with
  BOS), join the chunks with IMAGE_TOKEN_INDEX (-200), keeping only the first chunk's BOS.

Prompt: conv_templates["llava_v1"] (SeparatorStyle.TWO, sep " ", sep2 "</s>") with GLaMM's begin string
"The <image> provides an overview of the picture.\\n" before the first question and "<image>" written as
"<im_start><image><im_end>" (eval/gcg/infer.py, eval/region_captioning/infer.py, dataset/dataset.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from gcgbench.api.errors import InputError

IMAGE_TOKEN = "<image>"
IMAGE_TOKEN_INDEX = -200
IM_START, IM_END = "<im_start>", "<im_end>"
BBOX_TOKEN, SEG_TOKEN = "<bbox>", "[SEG]"
GLAMM_TOKENS = (IM_START, IM_END, BBOX_TOKEN, "<point>", SEG_TOKEN, "<p>", "</p>")
OFFICIAL_IDS = {token: 32000 + index for index, token in enumerate(GLAMM_TOKENS)}
SPECIAL_TOKENS = ("<s>", "</s>", "<unk>")
LLAVA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                   "The assistant gives helpful, detailed, and polite answers to the human's questions.")
BEGIN_STR = f"The {IMAGE_TOKEN} provides an overview of the picture.\n"


@dataclass
class GlammTokenizer:
    """4.28's slow LlamaTokenizer with GLaMM's added tokens (see the module docstring)."""

    sp: Any                       # sentencepiece.SentencePieceProcessor
    added: dict[str, int]         # added token → id
    source: str = "<memory>"

    def __post_init__(self) -> None:
        self._added_by_id = {index: token for token, index in self.added.items()}
        splitters = sorted(set(self.added) | set(SPECIAL_TOKENS), key=len, reverse=True)
        self._splitter = re.compile("|".join(re.escape(token) for token in splitters))
        self.bos_id = self._special_id("<s>")
        self.eos_id = self._special_id("</s>")
        self.unk_id = self._special_id("<unk>")

    @classmethod
    def from_folder(cls, folder: Path) -> "GlammTokenizer":
        """`tokenizer.model` + `added_tokens.json` of a GLaMM checkpoint folder; a missing file, a missing
        GLaMM token or ids that do not follow the base vocabulary → InputError."""
        import sentencepiece

        folder = Path(folder)
        model_file, added_file = folder / "tokenizer.model", folder / "added_tokens.json"
        for required in (model_file, added_file):
            if not required.is_file():
                raise InputError(folder, required.name, "missing: a GLaMM checkpoint folder ships tokenizer.model and added_tokens.json")
        sp = sentencepiece.SentencePieceProcessor()
        try:
            sp.Load(str(model_file))
        except (OSError, RuntimeError) as error:
            raise InputError(model_file, None, f"not a sentencepiece model ({str(error).splitlines()[0]})") from None
        try:
            added = json.loads(added_file.read_text())
        except ValueError as error:
            raise InputError(added_file, None, f"not JSON ({error})") from None
        if not isinstance(added, dict) or not all(isinstance(v, int) for v in added.values()):
            raise InputError(added_file, None, "expected an object of token → integer id")
        missing = [token for token in GLAMM_TOKENS if token not in added]
        if missing:
            raise InputError(added_file, None, f"GLaMM token(s) {', '.join(missing)} missing")
        expected = list(range(sp.GetPieceSize(), sp.GetPieceSize() + len(added)))
        if sorted(added.values()) != expected:
            raise InputError(added_file, None, f"added token ids {sorted(added.values())} do not follow the "
                                               f"{sp.GetPieceSize()}-piece vocabulary (4.28 requires ids {expected[0]}…)")
        return cls(sp, dict(added), str(folder))

    def _special_id(self, piece: str) -> int:
        index = self.sp.PieceToId(piece)
        if self.sp.IdToPiece(index) != piece:
            raise InputError(self.source, "tokenizer.model", f"has no {piece!r} piece")
        return index

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize() + len(self.added)

    def token_id(self, token: str) -> int:
        """Id of an added token (`convert_tokens_to_ids`, the fix of groundingLMM issue #73)."""
        return self.added[token]

    def tokenize(self, text: str) -> list[int]:
        """Ids of `text` without BOS (4.28 `PreTrainedTokenizer.tokenize` + `_tokenize`)."""
        pieces: list[str] = []
        position = 0
        for match in self._splitter.finditer(text):
            if match.start() > position:
                pieces.append(text[position:match.start()])
            pieces.append(match.group())
            position = match.end()
        if position < len(text):
            pieces.append(text[position:])
        for index, piece in enumerate(pieces):
            if piece in self.added:   # plain-string added token: strip both neighbours
                if index + 1 < len(pieces) and pieces[index + 1]:
                    pieces[index + 1] = pieces[index + 1].lstrip()
                if index > 0 and pieces[index - 1]:
                    pieces[index - 1] = pieces[index - 1].rstrip()
        ids: list[int] = []
        for piece in pieces:
            if not piece:
                continue
            if piece in self.added:
                ids.append(self.added[piece])
            elif piece in SPECIAL_TOKENS:
                ids.append(self.sp.PieceToId(piece))
            else:
                ids.extend(self.sp.EncodeAsIds(piece))
        return ids

    def encode(self, text: str) -> list[int]:
        """`tokenizer(text).input_ids`: BOS + tokenize(text)."""
        return [self.bos_id] + self.tokenize(text)

    def decode(self, ids: Sequence[int]) -> str:
        """`tokenizer.decode(ids, skip_special_tokens=False)` of 4.28."""
        runs: list[str] = []
        current: list[str] = []
        for index in ids:
            index = int(index)
            if index in self._added_by_id:
                if current:
                    runs.append(self._tokens_to_string(current))
                    current = []
                runs.append(self._added_by_id[index])
            else:
                current.append(self.sp.IdToPiece(index))
        if current:
            runs.append(self._tokens_to_string(current))
        return " ".join(runs)

    def _tokens_to_string(self, tokens: list[str]) -> str:
        out, current, previous_special = "", [], False
        for position, token in enumerate(tokens):
            if token in SPECIAL_TOKENS:
                if not previous_special and position != 0:
                    out += " "
                out += self.sp.DecodePieces(current) + token
                previous_special, current = True, []
            else:
                current.append(token)
                previous_special = False
        return out + self.sp.DecodePieces(current)


def tokenizer_image_token(prompt: str, tokenizer: GlammTokenizer) -> list[int]:
    """model/llava/mm_utils.py `tokenizer_image_token`: chunks around "<image>" joined by -200."""
    chunks = [tokenizer.encode(chunk) for chunk in prompt.split(IMAGE_TOKEN)]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_id:
        offset = 1
        ids.append(chunks[0][0])
    separator = [IMAGE_TOKEN_INDEX] * (offset + 1)
    for index, chunk in enumerate(chunks):
        if index:
            ids.extend(separator[offset:])
        ids.extend(chunk[offset:])
    return ids


def llava_v1_prompt(turns: Sequence[tuple[str, str | None]]) -> str:
    """conv_templates["llava_v1"].get_prompt() for (user, assistant) turns; assistant None or "" = open."""
    seps = (" ", "</s>")
    text = LLAVA_V1_SYSTEM + seps[0]
    messages = [(role, message) for user, assistant in turns for role, message in (("USER", user), ("ASSISTANT", assistant))]
    for index, (role, message) in enumerate(messages):
        text += f"{role}: {message}{seps[index % 2]}" if message else f"{role}:"
    return text


def with_image(question: str) -> str:
    """GLaMM's first user turn: the begin string, then the question, "<image>" wrapped in start/end tokens."""
    return (BEGIN_STR + question).replace(IMAGE_TOKEN, IM_START + IMAGE_TOKEN + IM_END)
