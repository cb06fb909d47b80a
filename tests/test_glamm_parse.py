"""GLaMM answer parsing (gcgbench.models.glamm.parse) against upstream's verbatim steps (eval/gcg/infer.py),
phrase spans in the clean caption, and phrase ↔ mask pairing by order (eval/gcg/evaluate.py)."""

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gcgbench.api.types import Prediction, RLE
from gcgbench.models.glamm.parse import answer_text, clean_caption, pair_phrases, parse_glamm_output

PROMPT = ("<s>A chat between a curious human and an artificial intelligence assistant. USER: The <im_start> <im_end> "
          "provides an overview of the picture.\nCould you please give me a detailed description of the image? Please "
          "respond with interleaved     segmentation masks for the corresponding parts of the answer. ASSISTANT: ")


def upstream(decoded: str) -> tuple[str, list[str]]:
    """eval/gcg/infer.py `inference()` post-processing, step for step."""
    text_output = decoded.replace("\n", "").replace("  ", " ")
    text_output = text_output.split("ASSISTANT: ")[-1]
    cleaned_str = re.sub(r"<.*?>", "", text_output)
    phrases = [p.strip() for p in re.compile(r"<p>(.*?)<\/p>").findall(text_output)]
    cleaned_str = cleaned_str.replace("[SEG]", "")
    cleaned_str = " ".join(cleaned_str.split()).strip("'")
    return cleaned_str.strip(), phrases


def masks(count: int) -> list[RLE]:
    return [RLE.from_mask(np.eye(4, dtype=np.uint8) * (i % 2) + (i == 3)) for i in range(count)]


def check(decoded: str):
    parsed = parse_glamm_output(decoded)
    assert (parsed.caption, list(parsed.phrases)) == upstream(decoded)
    for phrase, span in zip(parsed.phrases, parsed.spans):
        if span is not None:
            assert parsed.caption[span[0]:span[1]] == phrase
    assert all(0 <= offset <= len(parsed.caption) for offset in parsed.seg_offsets)
    return parsed


def test_typical_answer_gives_caption_phrases_spans_and_seg_places():
    decoded = PROMPT + "The image shows a <p> hot air balloon </p> [SEG] flying over a <p> river </p> [SEG] . The sky.</s>"
    parsed = check(decoded)
    assert parsed.caption == "The image shows a hot air balloon flying over a river . The sky."
    assert parsed.phrases == ("hot air balloon", "river")
    assert parsed.spans == ((18, 33), (48, 53))
    assert parsed.seg_offsets == (33, 53)          # right after the text each [SEG] follows
    assert parsed.answer.startswith("The image shows")


def test_trailing_eos_and_other_tags_are_dropped():
    parsed = check(PROMPT + "A <p> dog </p> [SEG] sits.</s>")
    assert parsed.caption == "A dog sits."
    assert check(PROMPT + "<s>x <bbox> y <unknown tag> z</s></s>").caption == "x y z"


def test_newlines_go_before_double_spaces_are_halved_once():
    assert answer_text("a \n b") == "a b"                 # "\n" removed first, then "  " → " "
    assert answer_text("a    b") == "a  b"                # one pass: four spaces become two
    assert answer_text("x" + "     " + "y") == "x   y"   # the prompt's 5 spaces become 3
    # a double space after the colon still splits, a newline after it does not
    assert check("q ASSISTANT:  <p> a </p> [SEG]").caption == "a"
    assert check("q ASSISTANT:\nThe end").caption == "q ASSISTANT:The end"
    assert check("USER: hi ASSISTANT: one ASSISTANT: two").caption == "two"   # the last "ASSISTANT: " wins


def test_quotes_are_stripped_at_the_ends_only():
    assert check(PROMPT + "'The cat's toy'").caption == "The cat's toy"
    assert check(PROMPT + "' The cat '").caption == "The cat"
    assert check(PROMPT + "''x''").caption == "x"


def test_nested_empty_and_unbalanced_phrase_tags():
    nested = check(PROMPT + "<p> a <p> b </p> c </p> [SEG]")
    assert nested.phrases == ("a <p> b",) and nested.caption == "a b c" and nested.spans == (None,)
    empty = check(PROMPT + "<p></p> [SEG] x")
    assert empty.phrases == ("",) and empty.spans == (None,) and empty.caption == "x"
    unclosed = check(PROMPT + "a <p> b [SEG] c")
    assert unclosed.phrases == () and unclosed.caption == "a b c"
    stray = check(PROMPT + "</p> a <p> b </p> [SEG] <p> c")
    assert stray.phrases == ("b",) and stray.caption == "a b c"
    with_seg = check(PROMPT + "<p> a [SEG] </p> b")
    assert with_seg.phrases == ("a [SEG]",) and with_seg.spans == (None,)


def test_repeated_phrases_get_their_own_spans():
    parsed = check(PROMPT + "<p> a cat </p> [SEG] and <p> a cat </p> [SEG]")
    assert parsed.caption == "a cat and a cat"
    assert parsed.spans == ((0, 5), (10, 15))


def test_more_masks_than_phrases_leaves_extra_masks_in_order():
    parsed = parse_glamm_output(PROMPT + "<p> a </p> [SEG] [SEG] and [SEG]")
    given_masks = masks(3)
    phrases, extra = pair_phrases(parsed, given_masks)
    assert [p.masks for p in phrases] == [(given_masks[0],)]
    assert extra == tuple(given_masks[1:])
    prediction = Prediction("d", parsed.caption, phrases, extra)
    assert prediction.masks() == given_masks            # upstream's pred_masks order survives


def test_fewer_masks_than_phrases_leaves_phrases_without_masks():
    parsed = parse_glamm_output(PROMPT + "<p> a </p> [SEG] <p> b </p> <p> c </p>")
    given_masks = masks(1)
    phrases, extra = pair_phrases(parsed, given_masks)
    assert [p.text for p in phrases] == ["a", "b", "c"]
    assert [len(p.masks) for p in phrases] == [1, 0, 0]
    assert extra == ()
    assert (phrases[0].start, phrases[0].end) == (0, 1)


def test_region_caption_cleaning_is_the_gcg_cleaning():
    decoded = PROMPT + "A man in a <p> red </p> shirt [SEG].</s>"
    assert clean_caption(decoded) == upstream(decoded)[0] == "A man in a red shirt ."


PIECES = st.sampled_from(["<p>", "</p>", "[SEG]", " ", "  ", "\n", "'", "a", "cat", "<s>", "</s>", "<x", ">", "[SE", "G]",
                          "ASSISTANT: ", "ASSISTANT:", "\t", "é"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=25))
def test_any_text_parses_as_upstream(pieces):
    check("".join(pieces))
