"""Evaluation-server upload files of the splits whose answers only a server holds (VQAv2 test-dev, VizWiz test,
MMBench test), byte for byte as LLaVA's `scripts/convert_*_for_submission.py` write them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Mapping, Sequence

from gcgbench.api.jsonio import require
from gcgbench.api.types import Doc, Prediction
from gcgbench.data.llava_eval import question_lines
from gcgbench.metrics.vqa_normalize import evalai_normalize


def vqav2_upload(docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> bytes:
    """The EvalAI upload as scripts/convert_vqav2_for_submission.py writes it: `[{question_id, answer}]` over
    every question of the test2015 file, the EvalAI-normalised answer for test-dev ones and "" for the rest."""
    if not docs:
        return b"[]"
    test_file = Path(docs[0].truth["upload_questions"])
    answers = {doc.truth["question_id"]: predictions[doc.doc_id].text for doc in docs if doc.doc_id in predictions}
    listed = question_lines(test_file, "VQAv2 test2015 question file", ("question_id",))
    listed_ids = {line["question_id"] for _, line in listed}
    missing = [doc.truth["question_id"] for doc in docs if doc.truth["question_id"] not in listed_ids]
    require(not missing, test_file, None, f"{len(missing)} test-dev question(s) are not in the test2015 file "
                                          f"(first: {missing[0] if missing else None!r})")
    rows = [{"question_id": line["question_id"],
             "answer": evalai_normalize(answers[line["question_id"]]) if line["question_id"] in answers else ""}
            for _, line in listed]
    return json.dumps(rows).encode("utf-8")


def vizwiz_upload(docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> bytes:
    """`[{image, answer}]` with EvalAI-normalised answers, one per question (convert_vizwiz_for_submission.py)."""
    rows = [{"image": doc.truth["image"], "answer": evalai_normalize(predictions[doc.doc_id].text)} for doc in docs]
    return json.dumps(rows).encode("utf-8")


def can_write_xlsx() -> bool:
    """Whether openpyxl, which pandas needs for .xlsx (and LLaVA's converter names), is installed."""
    from importlib.util import find_spec

    return find_spec("openpyxl") is not None


def mmbench_upload(docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> bytes:
    """The OpenCompass upload as scripts/convert_mmbench_for_submission.py writes it: the TSV without hint,
    category, source, image, comment, l2-category, the raw prediction inserted as the 7th column; `.xlsx`
    through pandas + openpyxl as upstream, or, without openpyxl (`can_write_xlsx()`), the same table as TSV."""
    import pandas as pd

    rows = [dict(doc.truth["upload_row"]) for doc in docs]
    columns = list(rows[0]) if rows else ["index", "question", "A", "B", "C", "D", "answer"]
    table = pd.DataFrame(rows, columns=columns)
    table.insert(min(6, len(columns)), "prediction",
                 [predictions[doc.doc_id].text if doc.doc_id in predictions else None for doc in docs])
    buffer = io.BytesIO()
    if can_write_xlsx():
        table.to_excel(buffer, index=False, engine="openpyxl")
    else:
        table.to_csv(buffer, sep="\t", index=False)
    return buffer.getvalue()
