"""Answer normalisation of the VQA family (VQAv2, TextVQA, VizWiz, GQA) and per-question answer scoring.

Two upstream normalisers share the same tables and differ only in small steps:

* The official VQA scorer, ``GT-Vision-Lab/VQA`` ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``
  (commit a013f00, Python 2): ``processPunctuation`` then ``processDigitArticle``. Its regexes ran without
  ``re.UNICODE``, so ``\\d`` matches only ASCII digits there (dialect ``"vqa_eval"``).
* The EvalAI/MMF answer processor that LLaVA copies into ``llava/eval/m4c_evaluator.py``
  (``EvalAIAnswerProcessor``, Python 3, so ``\\d`` is any Unicode digit; dialect ``"evalai"``). It first
  lowercases, deletes ``,`` and ``?``, splits ``'s`` off (``man's`` -> ``man 's``), then runs the same two
  steps. lmms-eval ``tasks/_task_utils/vqa_eval_metric.py`` carries an identical copy.

Quirks reproduced on purpose (each has a test):

* Punctuation: a mark is *deleted* when it touches a space (``"a ,b"``) or when the text contains a
  digit-comma-digit run (``"1,000"``); otherwise it is *replaced by a space*. The check looks at the
  original text, not the partly rewritten one.
* ``.`` is removed unless a digit follows (``"yes."`` -> ``"yes"``, ``"3.5"`` kept). The upstream pattern
  ``(?!<=\\d)`` is a typo for a look-behind and asserts nothing useful.
* ``re.sub(..., re.UNICODE)`` passes 32 as the *count*, so at most 32 periods are removed.
* Number words ``none``/``zero``..``ten`` become digits; articles ``a an the`` are dropped; the contraction
  table only fixes apostrophe-less spellings (``dont`` -> ``don't``). Keys with capitals (``Im``) can never
  match because the text is lowercased first; the odd ``"somebody'd": "somebodyd"`` entry is kept as is.
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

Dialect = Literal["vqa_eval", "evalai"]
VQAProtocol = Literal["llava", "official", "lmms_eval"]
VizWizProtocol = Literal["llava", "lmms_eval"]

# Data tables, identical in vqaEval.py (a013f00) and m4c_evaluator.py::EvalAIAnswerProcessor (checked
# entry by entry). Kept in upstream order so a diff against either file stays readable.
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've",
    "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
    "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock",
    "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've",
    "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd",
    "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}

NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)

# Python 2 `re` without re.UNICODE: \d is [0-9]. Python 3 `re` on str: \d is any Unicode digit.
_PERIOD_STRIP = {
    "vqa_eval": re.compile(r"(?!<=\d)(\.)(?!\d)", re.ASCII),
    "evalai": re.compile(r"(?!<=\d)(\.)(?!\d)"),
}
_DIGIT_COMMA_DIGIT = {
    "vqa_eval": re.compile(r"(\d)(,)(\d)", re.ASCII),
    "evalai": re.compile(r"(?<=\d)(,)+(?=\d)"),
}
# Upstream calls PERIOD_STRIP.sub("", text, re.UNICODE); the third positional argument is `count`.
_PERIOD_SUB_COUNT = int(re.UNICODE)


def clean_whitespace(text: str) -> str:
    """``text.replace('\\n', ' ').replace('\\t', ' ').strip()``, applied to every answer by vqaEval.py."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str, dialect: Dialect = "vqa_eval") -> str:
    """``processPunctuation`` of vqaEval.py (``process_punctuation`` of EvalAIAnswerProcessor).

    For each mark p in PUNCTUATION: delete p if ``p + ' '`` or ``' ' + p`` occurs in the input or the input
    has a digit-comma-digit run, else replace p by a space; then delete every ``.`` not followed by a digit
    (at most 32 of them).
    """
    delete_everywhere = _DIGIT_COMMA_DIGIT[dialect].search(text) is not None
    result = text
    for mark in PUNCTUATION:
        if delete_everywhere or (mark + " " in text) or (" " + mark in text):
            result = result.replace(mark, "")
        else:
            result = result.replace(mark, " ")
    return _PERIOD_STRIP[dialect].sub("", result, count=_PERIOD_SUB_COUNT)


def process_digit_article(text: str) -> str:
    """``processDigitArticle`` of vqaEval.py: lowercase, split on whitespace, map number words to digits,
    drop articles, then restore apostrophes of known contractions, and join with single spaces."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    kept = [word for word in words if word not in ARTICLES]
    return " ".join(CONTRACTIONS.get(word, word) for word in kept)


def vqa_eval_normalize(text: str, dialect: Dialect = "vqa_eval") -> str:
    """``processDigitArticle(processPunctuation(text))``: what vqaEval.py applies to an answer when it
    normalises (it does *not* clean whitespace here; callers do that first, as vqaEval.py does)."""
    return process_digit_article(process_punctuation(text, dialect))


def evalai_normalize(text: str) -> str:
    """``EvalAIAnswerProcessor.__call__`` (LLaVA ``llava/eval/m4c_evaluator.py``, from MMF).

    ``word_tokenize`` (lowercase; delete ``,`` and ``?``; ``'s`` -> `` 's``; strip), then
    :func:`clean_whitespace`, :func:`process_punctuation` (Unicode digits) and
    :func:`process_digit_article`.
    """
    tokenized = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return process_digit_article(process_punctuation(clean_whitespace(tokenized), "evalai"))


# ----------------------------------------------------------------------------------------------------
# Per-question comparison of a prediction with the human answers
# ----------------------------------------------------------------------------------------------------


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Leave-one-out VQA accuracy of an already-normalised prediction.

    ``acc = mean over i of min(1, #{j != i : answers[j] == prediction} / 3)``, the loop of vqaEval.py and of
    ``TextVQAAccuracyEvaluator._compute_answer_scores`` (the latter precomputes it per unique answer, which
    gives the same number). With 10 answers of which n match: n = 0, 1, 2, 3, >=4 -> 0, 0.3, 0.6, 0.9, 1.
    Summed in answer order, like upstream, so the float is bit-identical.
    """
    matching = sum(1 for answer in answers if answer == prediction)
    per_held_out = [min(1.0, float(matching - (answer == prediction)) / 3) for answer in answers]
    return sum(per_held_out) / len(per_held_out)


def official_vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """One question scored exactly as vqaEval.py (a013f00) ``evaluate``.

    Both sides get :func:`clean_whitespace`. Only if the cleaned GT answers are *not all identical* are
    the GT answers and the prediction normalised (punctuation, then digits/articles/contractions); with 10
    identical answers nothing is normalised, not even case, so GT ``yes`` x10 vs ``Yes`` scores 0.
    """
    cleaned_answers = [clean_whitespace(answer) for answer in answers]
    cleaned_prediction = clean_whitespace(prediction)
    if len(set(cleaned_answers)) > 1:
        cleaned_answers = [vqa_eval_normalize(answer) for answer in cleaned_answers]
        cleaned_prediction = vqa_eval_normalize(cleaned_prediction)
    return vqa_accuracy(cleaned_prediction, cleaned_answers)


def vqav2_question_score(prediction: str, answers: Sequence[str], protocol: VQAProtocol = "llava") -> float:
    """One VQAv2 question under a protocol.

    * ``"llava"`` (default): the prediction goes through ``EvalAIAnswerProcessor`` (LLaVA
      ``scripts/convert_vqav2_for_submission.py`` does this before upload), then :func:`official_vqa_score`.
    * ``"official"``: the raw prediction straight into :func:`official_vqa_score`.
    * ``"lmms_eval"``: lmms-eval ``tasks/vqav2/utils.py`` always normalises both sides (EvalAI
      punctuation and digit/article steps, no ``word_tokenize``), whether or not the GT answers agree.
    """
    if protocol == "llava":
        return official_vqa_score(evalai_normalize(prediction), answers)
    if protocol == "official":
        return official_vqa_score(prediction, answers)
    if protocol == "lmms_eval":
        normalized = [vqa_eval_normalize(clean_whitespace(answer), "evalai") for answer in answers]
        return vqa_accuracy(vqa_eval_normalize(clean_whitespace(prediction), "evalai"), normalized)
    raise ValueError(f"unknown VQA protocol {protocol!r}; expected 'llava', 'official' or 'lmms_eval'")


def vizwiz_processed_prediction(prediction: str, protocol: VizWizProtocol = "llava") -> str:
    """The VizWiz prediction string that is compared with the GT answers.

    ``"llava"``: ``EvalAIAnswerProcessor`` (LLaVA ``scripts/convert_vizwiz_for_submission.py``), then what
    the official VizWiz scorer (vizwiz.org ``vqaEval.py``, Python 3) does to a result: clean whitespace,
    ``processPunctuation``, ``processDigitArticle``. ``"lmms_eval"``: ``EvalAIAnswerProcessor`` only
    (``tasks/vizwiz_vqa/utils.py``); lmms-eval also normalises the GT answers, the official scorer does not.
    """
    if protocol == "llava":
        return vqa_eval_normalize(clean_whitespace(evalai_normalize(prediction)), "evalai")
    if protocol == "lmms_eval":
        return evalai_normalize(prediction)
    raise ValueError(f"unknown VizWiz protocol {protocol!r}; expected 'llava' or 'lmms_eval'")


def gqa_clean_prediction(prediction: str) -> str:
    """LLaVA ``scripts/convert_gqa_for_eval.py``: ``text.rstrip('.').lower()``, after the ``strip()``
    LLaVA's generation loop (``model_vqa_loader.py``) applies to every decoded answer."""
    return prediction.strip().rstrip(".").lower()
