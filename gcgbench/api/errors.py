"""Errors that reach the user as one line, never as a stack trace.

The CLI catches `GcgbenchError` and prints `error: <message>`; the message names the file, the
record and what is wrong, so a user can fix the input without reading our code.
"""

from __future__ import annotations


class GcgbenchError(Exception):
    """Base class of every error the CLI reports as one line and a non-zero exit."""


class InputError(GcgbenchError):
    """A file or record a user gave us is missing or malformed.

    >>> str(InputError("preds/sa_1.json", "pred_masks[2]", "RLE size [10, 10] != image size [20, 30]"))
    'preds/sa_1.json: pred_masks[2]: RLE size [10, 10] != image size [20, 30]'
    """

    def __init__(self, source: object, record: str | None, problem: str):
        self.source = str(source)
        self.record = record
        self.problem = problem
        parts = [self.source] + ([record] if record else []) + [problem]
        super().__init__(": ".join(parts))
