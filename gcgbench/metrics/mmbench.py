"""MMBench circular evaluation without a GPT judge, and the rows of its evaluation-server upload file.

Same conventions as :mod:`gcgbench.metrics.vqa`; predictions are stripped first, as LLaVA strips every
decoded answer before its eval scripts parse it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.metrics.vqa import (
    Grouping,
    PerRecordScores,
    SuiteResult,
    accuracy_and_group_means,
    finish,
    require_records,
    require_text,
    require_unique,
)

CIRCULAR_OFFSET = 1_000_000
# can_infer_option answers 'Z' (no valid option) when the prediction contains one of these phrases.
_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_OPTION_SEPARATORS = ".()[],:;!*#{}"


@dataclass(frozen=True)
class MMBenchRecord:
    """One row of an MMBench TSV. Circular copies of question i have ``index = i + k * 1_000_000`` and
    their own rotated ``options`` and ``answer`` letter; ``category`` is read from the main row (k = 0)."""

    index: int
    prediction: str
    answer: str
    options: Mapping[str, str]  # letter -> option text, only the options present (A..D)
    category: str = ""
    l2_category: str = ""
    question: str = ""
    split: str = ""


def mmbench_extract_choice(prediction: str, options: Mapping[str, str]) -> str | None:
    """VLMEvalKit ``vlmeval/utils/matching_util.py::can_infer`` (2024-01 to 2025-07 form), judge-free.

    1. ``can_infer_option``: a refusal phrase -> ``'Z'``; replace each of ``.()[],:;!*#{}`` by a space,
       split on whitespace; if exactly one option letter is a token, return it; if none is but ``Z`` is,
       return ``'Z'``.
    2. Else ``can_infer_text``: the lowercased options whose lowercased text occurs in the lowercased
       prediction; exactly one -> its letter.
    3. Else ``None`` (VLMEvalKit would ask a GPT judge; under its ``exact_matching`` policy this is a miss).

    Later VLMEvalKit versions added a "letter among the last 5 tokens" rule, a length cap on text matching
    and an "answer is X" regex; those are not applied.
    """
    if "Failed to obtain answer via API" not in prediction:
        if any(refusal in prediction for refusal in _REFUSALS):
            return "Z"
        spaced = prediction
        for separator in _OPTION_SEPARATORS:
            spaced = spaced.replace(separator, " ")
        tokens = spaced.split()
        letters = [letter for letter in options if letter in tokens]
        if len(letters) == 1:
            return letters[0]
        if not letters and "Z" in tokens:
            return "Z"
    lowered = prediction.lower()
    matches = [letter for letter, text in options.items() if str(text).lower() in lowered]
    return matches[0] if len(matches) == 1 else None


def score_mmbench(records: Sequence[MMBenchRecord], *, source: object) -> SuiteResult:
    """MMBench circular evaluation (VLMEvalKit ``vlmeval/dataset/utils/multiple_choice.py``,
    ``mcq_circular_eval`` / ``prefetch_circular_group``, model=None i.e. ``exact_matching``).

    Group g collects the rows with ``index % 1_000_000 == g``; it is a hit iff every row's
    :func:`mmbench_extract_choice` equals its ``answer`` (one wrong or unparsable rotation fails the group).
    Metrics (``report_acc``): ``accuracy`` = mean hit over groups (headline), ``category/<c>`` and
    ``l2_category/<c>``. A group without its main row (index < 1_000_000) is an InputError (VLMEvalKit
    silently drops it). Unit and cluster key: the group index.
    """
    require_records(records, "MMBench")
    require_unique(source, (record.index for record in records), "index")
    groups: dict[int, list[MMBenchRecord]] = defaultdict(list)
    for record in records:
        where = f"index={record.index!r}"
        letters = sorted(record.options) if isinstance(record.options, Mapping) else []
        if not isinstance(record.index, (int, np.integer)) or record.index < 0:
            raise InputError(source, where, "index must be a non-negative integer")
        if not letters or any(len(letter) != 1 or letter not in "ABCDEFGHIJ" for letter in letters):
            raise InputError(source, where, f"options must map letters A.. to texts, got {letters}")
        if record.answer not in record.options:
            raise InputError(source, where, f"answer {record.answer!r} is not one of the options {letters}")
        require_text(source, where, "prediction", record.prediction)
        groups[int(record.index) % CIRCULAR_OFFSET].append(record)
    mains: dict[int, MMBenchRecord] = {}
    for group_index, members in groups.items():
        main = [record for record in members if record.index == group_index]
        if not main:
            problem = f"circular copy without its main question {group_index}"
            raise InputError(source, f"index={members[0].index!r}", problem)
        mains[group_index] = main[0]
    keys = tuple(sorted(groups))
    hits = [
        all(mmbench_extract_choice(row.prediction.strip(), row.options) == row.answer for row in groups[key])
        for key in keys
    ]
    per_record = PerRecordScores(
        suite="mmbench",
        unit_ids=keys,
        cluster_keys=keys,
        scores=np.asarray(hits, dtype=np.float64),
        aggregator=accuracy_and_group_means,
        groupings={
            "category": Grouping.from_labels([mains[key].category for key in keys]),
            "l2_category": Grouping.from_labels([mains[key].l2_category for key in keys]),
        },
    )
    return finish("mmbench", "accuracy", per_record)


def mmbench_submission_rows(records: Sequence[MMBenchRecord]) -> list[dict[str, object]]:
    """Rows of the OpenCompass upload sheet as LLaVA ``scripts/convert_mmbench_for_submission.py`` writes
    it: the TSV minus hint/category/source/image/comment/l2-category, with the raw ``prediction`` text
    inserted after option D: ``index, question, A, B, C, D, prediction, answer[, split]``. Missing options
    are None (NaN in the TSV). Write them to .xlsx with ``pandas.DataFrame(rows).to_excel``."""
    rows = []
    for record in records:
        row: dict[str, object] = {"index": record.index, "question": record.question}
        row |= {letter: record.options.get(letter) for letter in "ABCD"}
        row |= {"prediction": record.prediction, "answer": record.answer}
        if record.split:
            row["split"] = record.split
        rows.append(row)
    return rows
