"""Typed backend options: one frozen dataclass per backend, parsed and validated once from `--model-args`.

A backend declares its options as a subclass of `BackendOptions`; each field has a default (or
`REQUIRED`) and `option(...)` metadata: a one-line help, and optionally the allowed `choices`, a
`minimum`, or `path=True` (a file or folder; never part of a fingerprint, which hashes the files
instead — docs/cache.md). `parse(args)` turns the `k=v` strings into typed values:

    int      decimal integer (then `minimum` if given)      bool   true/false (also 1/0, yes/no)
    float    any float literal                              str    as given (then `choices` if given)
    Path     `~` expanded; empty string = not given (None)

and raises one `InputError` naming the argument for an unknown key, a missing required value, a value
of the wrong type or outside its range. `describe()` lists the options for `gcgbench models`;
`to_json()` is what results.json records (`config.model_options`); `fingerprint_args()` is the same
without the path options.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.errors import InputError

REQUIRED: Any = dataclasses.MISSING
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def option(help: str, default: Any = REQUIRED, *, choices: tuple[str, ...] = (), minimum: float | None = None,
           path: bool = False) -> Any:
    """A dataclass field of a `BackendOptions` with its help text and checks."""
    metadata = {"help": help, "choices": tuple(choices), "minimum": minimum, "path": path}
    if default is REQUIRED:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionInfo:
    """One option as `gcgbench models` shows it."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    def line(self) -> str:
        default = "required" if self.default is REQUIRED else f"default {self.default!r}"
        choices = f" [{'|'.join(self.choices)}]" if self.choices else ""
        return f"{self.name} ({self.type}{choices}, {default}): {self.help}"


@dataclass(frozen=True)
class BackendOptions:
    """Base class of a backend's options (see the module docstring). Subclasses add fields only."""

    @classmethod
    def parse(cls, args: Mapping[str, str], backend: str = "backend") -> "BackendOptions":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise InputError("--model-args", None, f"{backend} takes no argument(s) {unknown}; it takes {sorted(known)}")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for name, spec in known.items():
            if name in args:
                values[name] = _convert(name, str(args[name]), hints[name], spec.metadata, backend)
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise InputError("--model-args", name, f"{backend} needs {name}=... ({spec.metadata.get('help', '')})")
        try:
            parsed = cls(**values)
        except ValueError as error:       # a subclass's __post_init__ cross-field check
            raise InputError("--model-args", None, f"{backend}: {error}") from None
        return parsed

    @classmethod
    def describe(cls) -> list[OptionInfo]:
        hints = typing.get_type_hints(cls)
        return [OptionInfo(f.name, _type_name(hints[f.name]), f.default, f.metadata.get("help", ""),
                           f.metadata.get("choices", ())) for f in fields(cls)]

    @classmethod
    def path_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.metadata.get("path"))

    def to_json(self) -> dict[str, Any]:
        """Every option, paths as strings (results.json `config.model_options`)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    def fingerprint_args(self) -> dict[str, Any]:
        """Every option but the paths: a moved checkpoint keeps its cache (its files are hashed instead)."""
        paths = set(self.path_names())
        return {name: value for name, value in self.to_json().items() if name not in paths}

    def replace(self, **changes: Any) -> "BackendOptions":
        return dataclasses.replace(self, **changes)


def _convert(name: str, text: str, hint: Any, metadata: Mapping[str, Any], backend: str) -> Any:
    base, optional = _unwrap_optional(hint)
    text = text.strip()
    if base is Path:
        if not text:
            if optional:
                return None
            raise InputError("--model-args", name, "needs a path")
        return Path(text).expanduser()
    if base is bool:
        lowered = text.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise InputError("--model-args", name, f"must be true or false, got {text!r}")
    if base is int:
        try:
            value: Any = int(text, 10)
        except ValueError:
            raise InputError("--model-args", name, f"must be an integer, got {text!r}") from None
    elif base is float:
        try:
            value = float(text)
        except ValueError:
            raise InputError("--model-args", name, f"must be a number, got {text!r}") from None
    else:
        value = text
    minimum = metadata.get("minimum")
    if minimum is not None and value < minimum:
        raise InputError("--model-args", name, f"must be at least {minimum:g}, got {text!r}")
    choices = metadata.get("choices") or ()
    if choices and value not in choices:
        raise InputError("--model-args", name, f"must be one of {', '.join(choices)}; got {text!r}")
    return value


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    arguments = typing.get_args(hint)
    if arguments and type(None) in arguments:
        rest = [a for a in arguments if a is not type(None)]
        return (rest[0] if len(rest) == 1 else str), True
    return hint, False


def _type_name(hint: Any) -> str:
    base, optional = _unwrap_optional(hint)
    name = {Path: "path", bool: "bool", int: "int", float: "float", str: "str"}.get(base, str(base))
    return f"{name}?" if optional else name


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
