"""Checks that must pass before any model loads: files, checksums, images, METEOR's resources, Java (only
when a caption metric is to run a jar), the text model.

`check_tasks` returns every finding as one line saying what is wrong and what to do; `preflight`
raises if any is a problem, so a missing Java or text model fails in seconds, not after hours of
inference. `gcgbench validate` prints the same findings.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.api.task import DataPaths, Task
from gcgbench.api.hashing import file_sha256
from gcgbench.metrics.text_similarity import phrase_encoder
from gcgbench.metrics.meteor.resources import MeteorResourceError, jar_path, paraphrase_path

CAPTION_METRICS = {"meteor", "cider"}
IMAGES_DECODED_PER_TASK = 3


@dataclass(frozen=True)
class Finding:
    ok: bool
    task: str
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.task}: {self.message}"


def check_tasks(tasks: Sequence[Task], paths: DataPaths, text_model: str | None, java: bool = False) -> list[Finding]:
    """Every finding; `java`: the caption metrics run the jars (`--meteor java` / `--tokenizer java`)."""
    findings: list[Finding] = []
    for task in tasks:
        findings.extend(_check_files(task, paths))
        if all(f.ok for f in findings if f.task == task.name):
            findings.extend(_check_docs(task, paths))
    if any(CAPTION_METRICS & set(task.spec.metrics) for task in tasks):
        findings.append(_check_meteor_resources())
        if java:
            runtime = shutil.which("java")
            findings.append(Finding(runtime is not None, "java",
                                    f"Java runtime at {runtime}" if runtime else
                                    "no Java runtime on PATH; --meteor java / --tokenizer java need one: install "
                                    "one (e.g. `apt-get install default-jre-headless`) or use the Python ones "
                                    "(the default)"))
    if any("mask_recall" in task.spec.metrics for task in tasks):
        findings.append(_check_text_model(text_model))
    return findings


def check_scoring_protocol(tasks: Sequence[Task], protocol: str | None) -> None:
    """`--protocol` must name a scoring protocol of every task of the run: never silently ignored."""
    if protocol is None:
        return
    for task in tasks:
        allowed = tuple(task.scoring_protocols)
        if not allowed:
            raise InputError("--protocol", None, f"task {task.name} is scored one way only; --protocol {protocol} "
                                                 "does not apply to it (a generation protocol is the backend option "
                                                 "protocol=NAME in --model-args)")
        if protocol not in allowed:
            raise InputError("--protocol", None, f"task {task.name} is scored under {', '.join(allowed)}, "
                                                 f"not {protocol!r}")


def check_output_folder(output: Path) -> None:
    """`--output` must be a folder this process can write, or a path it can create one at; checked before
    any model loads, without creating anything (a failed preflight leaves no folder behind)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(output, None, "--output names an existing file; give a folder")
    existing = output
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(output, None, f"--output folder cannot be written ({existing} is a file)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(output, None, f"--output folder cannot be written ({error.strerror or error})") from None


def preflight(tasks: Sequence[Task], paths: DataPaths, text_model: str | None, java: bool = False) -> None:
    problems = [f for f in check_tasks(tasks, paths, text_model, java) if not f.ok]
    if problems:
        raise GcgbenchError(f"preflight found {len(problems)} problem(s):\n" + "\n".join(p.line() for p in problems))


def _check_meteor_resources() -> Finding:
    """METEOR (either implementation) reads pycocoevalcap's meteor-1.5.jar and paraphrase table."""

    try:
        jar, table = jar_path(), paraphrase_path()
        return Finding(True, "meteor", f"METEOR 1.5 resources: {jar}, {table}")
    except MeteorResourceError as error:
        return Finding(False, "meteor", str(error))


def _check_files(task: Task, paths: DataPaths) -> list[Finding]:
    findings = []
    for role in task.spec.files:
        path = paths.file(task.spec, role)
        if not path.exists():
            elsewhere = [str(paths.root / p) for p in task.spec.alternatives.get(role, ())]
            tried = f" nor at {', '.join(elsewhere)}" if elsewhere and role not in paths.overrides.get(task.name, {}) else ""
            findings.append(Finding(False, task.name, f"{role}: {path} not found{tried} (set --data-root, or override "
                                                      f"'{role}' for {task.name} in a --data-config file)"))
            continue
        expected = task.spec.checksums.get(role)
        if path.is_file() and expected:
            actual = file_sha256(path)
            findings.append(Finding(actual == expected, task.name,
                                    f"{role}: sha256 matches the upstream release" if actual == expected else
                                    f"{role}: {path} has sha256 {actual[:12]}…, the upstream release has "
                                    f"{expected[:12]}… — a different version of the file; re-download it"))
    return findings


def _check_docs(task: Task, paths: DataPaths) -> list[Finding]:
    try:
        docs = task.docs(paths)
    except GcgbenchError as error:
        return [Finding(False, task.name, str(error))]
    missing = [doc for doc in docs if doc.image_path and not Path(doc.image_path).is_file()]
    findings = [Finding(True, task.name, f"{len(docs)} docs read")]
    if missing:
        findings.append(Finding(False, task.name, f"{len(missing)} of {len(docs)} images missing "
                                                  f"(first: {missing[0].image_path})"))
        return findings
    from PIL import Image, UnidentifiedImageError

    for doc in [d for d in docs if d.image_path][:IMAGES_DECODED_PER_TASK]:
        try:
            with Image.open(doc.image_path) as image:
                image.load()
                size = (image.height, image.width)
        except (OSError, UnidentifiedImageError) as error:
            findings.append(Finding(False, task.name, f"{doc.image_path}: unreadable image ({error})"))
            continue
        if size != (doc.height, doc.width):
            findings.append(Finding(False, task.name, f"{doc.image_path}: image is {list(size)} (h, w) but the "
                                                      f"annotations say {[doc.height, doc.width]}"))
    return findings


def _check_text_model(text_model: str | None) -> Finding:
    try:
        encoder = phrase_encoder(text_model)
    except GcgbenchError as error:
        return Finding(False, "text-model", str(error))
    return Finding(True, "text-model", f"phrase similarity by {encoder.name}")
