"""Run the two jars pycocoevalcap ships the way it runs them, for whole batches in one JVM each."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path

from gcgbench.metrics.meteor.resources import jar_path, pycocoevalcap_meteor_dir


def jar_meteor(hypotheses: list[str], references: list[list[str]]) -> tuple[list[str], list[float], float]:
    """SCORE lines (pycocoevalcap `Meteor._stat`), then one EVAL line, through ONE `meteor-1.5.jar -stdio`."""
    lines = []
    for hypothesis, refs in zip(hypotheses, references):
        hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
        lines.append(" ||| ".join(("SCORE", " ||| ".join(refs), hypothesis)))
    command = ["java", "-jar", "-Xmx2G", str(jar_path()), "-", "-", "-stdio", "-l", "en", "-norm"]
    process = subprocess.Popen(command, cwd=jar_path().parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None

    def write() -> None:
        process.stdin.write(("\n".join(lines) + "\n").encode())
        process.stdin.flush()

    writer = threading.Thread(target=write)
    writer.start()
    stats = [process.stdout.readline().decode().strip() for _ in lines]
    writer.join()
    process.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
    process.stdin.close()
    values = [float(line) for line in process.stdout.read().decode().split()]
    process.wait()
    return stats, values[:-1], values[-1]


def jar_ptb_lines(captions: list[str]) -> list[str]:
    """Raw output lines of `PTBTokenizer -preserveLines -lowerCase` on the captions joined by newlines, as
    pycocoevalcap's `PTBTokenizer.tokenize` calls it (captions must already be free of '\\n')."""
    folder = pycocoevalcap_meteor_dir().parent / "tokenizer"
    handle, name = tempfile.mkstemp(dir=tempfile.gettempdir(), suffix=".txt")
    with os.fdopen(handle, "wb") as stream:
        stream.write("\n".join(captions).encode())
    try:
        command = ["java", "-cp", str(folder / "stanford-corenlp-3.4.1.jar"), "edu.stanford.nlp.process.PTBTokenizer",
                   "-preserveLines", "-lowerCase", name]
        output = subprocess.run(command, capture_output=True, check=True).stdout.decode()
    finally:
        Path(name).unlink()
    return output.split("\n")
