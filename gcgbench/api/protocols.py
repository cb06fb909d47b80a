"""Generation protocols: how a backend turns one kind of request into a prediction, named and declared.

A backend implements, per request kind (`Request.kind`: `grounded_caption` GCG, `segment` RES,
`segment_phrases` PNG, `segment_categories` COCO instances, `caption`, `answer`), one or more protocols; each says which upstream script it
reproduces (`repo:path`) or that it is gcgbench's own (`source="gcgbench"`). The default of a kind is the
official protocol wherever an official script exists. A run chooses with the backend option
`protocol=NAME` (`--model-args`); without it every task gets its kind's default. A given name must be a
protocol of every task's kind: `ProtocolTable.plan` is called before any model loads and refuses an
unknown name, or one a task's kind lacks, in one line. The protocol each task ran under goes into the
backend fingerprint (so cached generations of two protocols never mix) and into results.json
(`config.generation_protocol`). `gcgbench models` prints `ProtocolTable.lines()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from gcgbench.api.errors import InputError

REQUEST_KINDS = ("grounded_caption", "segment", "segment_phrases", "segment_categories", "caption", "answer")


@dataclass(frozen=True)
class GenerationProtocol:
    """One protocol: its name, the request kinds it answers, the upstream code it reproduces."""

    name: str
    kinds: tuple[str, ...]
    source: str | Mapping[str, str]   # "owner/repo:path[:lines]" of the upstream script (or one per kind), or "gcgbench"
    summary: str

    def source_for(self, kind: str) -> str:
        return self.source if isinstance(self.source, str) else self.source[kind]

    @property
    def official(self) -> bool:
        return self.source != "gcgbench"


@dataclass(frozen=True)
class ProtocolTable:
    """The protocols of one backend and the default per kind (checked when the table is built)."""

    protocols: tuple[GenerationProtocol, ...]
    defaults: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [(p.name, kind) for p in self.protocols for kind in p.kinds]
        if len(set(names)) != len(names):
            raise ValueError(f"a protocol is declared twice for one kind: {names}")
        for protocol in self.protocols:
            for kind in protocol.kinds:
                if kind not in REQUEST_KINDS:
                    raise ValueError(f"protocol {protocol.name!r}: unknown request kind {kind!r}")
        for kind in self.kinds:
            if kind not in self.defaults:
                raise ValueError(f"no default protocol for kind {kind!r}")
            if self.defaults[kind] not in self.names(kind):
                raise ValueError(f"default {self.defaults[kind]!r} of kind {kind!r} is not one of its protocols")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in REQUEST_KINDS if any(kind in p.kinds for p in self.protocols))

    def names(self, kind: str) -> tuple[str, ...]:
        return tuple(p.name for p in self.protocols if kind in p.kinds)

    def get(self, kind: str, name: str) -> GenerationProtocol:
        return next(p for p in self.protocols if p.name == name and kind in p.kinds)

    def resolve(self, kind: str, requested: str | None, task: str | None = None) -> str:
        """The protocol a request of `kind` runs under: `requested`, else the kind's default."""
        offered = self.names(kind)
        where = f"task {task} (requests of kind {kind})" if task else f"requests of kind {kind}"
        if not offered:
            raise InputError("--task", task, f"the backend has no protocol for {where}")
        if not requested:
            return self.defaults[kind]
        if requested not in offered:
            known = sorted({p.name for p in self.protocols})
            if requested not in known:
                raise InputError("--model-args", "protocol", f"unknown generation protocol {requested!r}; this backend "
                                                             f"has {', '.join(known)}")
            raise InputError("--model-args", "protocol", f"protocol {requested!r} does not apply to {where}; it offers "
                                                         f"{', '.join(offered)}")
        return requested

    def plan(self, tasks: Iterable[tuple[str, str]], requested: str | None) -> dict[str, str]:
        """{task name: protocol} for (task name, request kind) pairs; InputError before any model loads."""
        return {task: self.resolve(kind, requested, task) for task, kind in tasks}

    def resolved(self, requested: str | None) -> dict[str, str]:
        """{kind: protocol} for every kind this backend answers that `requested` applies to (fingerprints)."""
        return {kind: (requested if requested in self.names(kind) else self.defaults[kind]) if requested
                else self.defaults[kind] for kind in self.kinds}

    def lines(self) -> list[str]:
        """`kind: name (default) ← source` lines for `gcgbench models`."""
        out = []
        for kind in self.kinds:
            for protocol in self.protocols:
                if kind in protocol.kinds:
                    flag = " (default)" if self.defaults[kind] == protocol.name else ""
                    out.append(f"{kind}: {protocol.name}{flag} ← {protocol.source_for(kind)}: {protocol.summary}")
        return out


def single_protocol_table(name: str, kinds: Sequence[str], source: str, summary: str) -> ProtocolTable:
    """A backend with one protocol for all its kinds (oracle, replay, plain generators)."""
    return ProtocolTable((GenerationProtocol(name, tuple(kinds), source, summary),), {kind: name for kind in kinds})
