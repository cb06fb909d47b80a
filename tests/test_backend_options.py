"""Typed backend options, generation protocol tables and the one backend fingerprint helper."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.hashing import backend_fingerprint, file_sha256
from gcgbench.api.options import REQUIRED, BackendOptions, option
from gcgbench.api.protocols import GenerationProtocol, ProtocolTable


@dataclass(frozen=True)
class DemoOptions(BackendOptions):
    model_path: Path = option("checkpoint folder", REQUIRED, path=True)
    sam: Path | None = option("SAM weights", None, path=True)
    max_new_tokens: int = option("generation length", 512, minimum=1)
    temperature: float = option("sampling temperature", 0.0, minimum=0)
    kv_cache: bool = option("KV cache", True)
    dtype: str = option("dtype", "auto", choices=("auto", "float32"))
    protocol: str = option("generation protocol", "")


TABLE = ProtocolTable(
    (GenerationProtocol("aas", ("grounded_caption", "segment"), "Shengcao-Cao/groundLMM:aas/infer_attn.py", "a&s"),
     GenerationProtocol("task-prompt", ("grounded_caption",), "gcgbench", "the task prompt")),
    {"grounded_caption": "aas", "segment": "aas"},
)


def test_parse_types_and_defaults(tmp_path):
    parsed = DemoOptions.parse({"model_path": str(tmp_path), "max_new_tokens": "7", "kv_cache": "false",
                                "temperature": "0.5"}, "demo")
    assert parsed.model_path == tmp_path and parsed.sam is None
    assert parsed.max_new_tokens == 7 and parsed.kv_cache is False and parsed.temperature == 0.5
    assert parsed.dtype == "auto"
    assert parsed.to_json()["model_path"] == str(tmp_path)
    assert "model_path" not in parsed.fingerprint_args() and "sam" not in parsed.fingerprint_args()
    assert parsed.fingerprint_args()["max_new_tokens"] == 7


@pytest.mark.parametrize("args, needle", [
    ({"model_path": "x", "max_new_tokens": "0"}, "max_new_tokens: must be at least 1"),
    ({"model_path": "x", "max_new_tokens": "-3"}, "max_new_tokens: must be at least 1"),
    ({"model_path": "x", "max_new_tokens": "1.5"}, "max_new_tokens: must be an integer"),
    ({"model_path": "x", "kv_cache": "maybe"}, "kv_cache: must be true or false"),
    ({"model_path": "x", "dtype": "int8"}, "dtype: must be one of auto, float32"),
    ({"model_path": "x", "temperature": "-1"}, "temperature: must be at least 0"),
    ({"model_path": "x", "colour": "red"}, "demo takes no argument(s) ['colour']"),
    ({}, "model_path: demo needs model_path="),
])
def test_parse_refuses_with_one_line(args, needle):
    with pytest.raises(InputError) as error:
        DemoOptions.parse(args, "demo")
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_describe_lists_every_option():
    lines = [info.line() for info in DemoOptions.describe()]
    assert lines[0] == "model_path (path, required): checkpoint folder"
    assert any(line.startswith("dtype (str [auto|float32], default 'auto')") for line in lines)
    assert any(line.startswith("sam (path?, default None)") for line in lines)


def test_protocol_defaults_and_plan():
    assert TABLE.kinds == ("grounded_caption", "segment")
    assert TABLE.plan([("gcg_val", "grounded_caption"), ("res_refcoco_val", "segment")], None) == \
        {"gcg_val": "aas", "res_refcoco_val": "aas"}
    assert TABLE.plan([("gcg_val", "grounded_caption")], "task-prompt") == {"gcg_val": "task-prompt"}
    assert TABLE.resolved("task-prompt") == {"grounded_caption": "task-prompt", "segment": "aas"}
    assert TABLE.resolved(None) == TABLE.resolved("aas")


def test_protocol_refusals_name_the_task():
    with pytest.raises(InputError, match="unknown generation protocol 'nope'; this backend has aas, task-prompt"):
        TABLE.plan([("gcg_val", "grounded_caption")], "nope")
    with pytest.raises(InputError, match=r"protocol 'task-prompt' does not apply to task res_refcoco_val \(requests "
                                         r"of kind segment\); it offers aas"):
        TABLE.plan([("gcg_val", "grounded_caption"), ("res_refcoco_val", "segment")], "task-prompt")
    with pytest.raises(InputError, match="no protocol for task png_val"):
        TABLE.plan([("png_val", "segment_phrases")], None)


def test_table_checks_its_defaults():
    protocol = GenerationProtocol("a", ("segment",), "gcgbench", "")
    with pytest.raises(ValueError, match="no default"):
        ProtocolTable((protocol,), {})
    with pytest.raises(ValueError, match="not one of its protocols"):
        ProtocolTable((protocol,), {"segment": "b"})
    with pytest.raises(ValueError, match="unknown request kind"):
        ProtocolTable((GenerationProtocol("a", ("segmentation",), "gcgbench", ""),), {"segmentation": "a"})
    assert any("(default) ← Shengcao-Cao/groundLMM:aas/infer_attn.py" in line for line in TABLE.lines())


def test_fingerprint_hashes_files_not_paths(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        (folder / "sub").mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "sub" / "w.bin").write_bytes(b"\x00\x01")
    sam = tmp_path / "sam.pth"
    sam.write_bytes(b"sam")
    make = lambda folder, **kw: backend_fingerprint(
        "demo", DemoOptions.parse({"model_path": str(folder), **kw}),
        {"model": folder, "sam": sam, "tokenizer": (folder, [folder / "config.json", folder / "absent.json"]),
         "proposals": None},
        TABLE, conversation="llava_v1")
    moved, here = make(second), make(first)
    assert moved == here                                   # a moved folder keeps its cache
    assert str(tmp_path) not in repr(here)
    assert here["files_sha256"]["model"] == {"config.json": file_sha256(first / "config.json"),
                                             "sub/w.bin": file_sha256(first / "sub" / "w.bin")}
    assert here["files_sha256"]["sam"] == file_sha256(sam)
    assert here["files_sha256"]["tokenizer"] == {"config.json": file_sha256(first / "config.json")}
    assert here["files_sha256"]["proposals"] is None
    assert here["protocols"] == {"grounded_caption": "aas", "segment": "aas"} and "protocol" not in here["args"]
    assert make(first, protocol="aas") == here             # naming the default changes nothing
    assert make(first, protocol="task-prompt") != here     # another protocol never shares a cache entry
    assert make(first, max_new_tokens="8") != here
    (second / "sub" / "w.bin").write_bytes(b"\x00\x02")
    assert make(second) != here


def test_sam_types_are_the_registry_names_and_an_unknown_one_is_refused_before_loading(tmp_path, capsys):
    """`SAM_TYPES` (checked at option parsing, torch-free) names exactly what `sam_builders()` can build, and every
    backend that takes `sam_type` refuses another name in one line before any weight or data is read."""
    from gcgbench.cli.app import main
    from gcgbench.grounding.sam_refine import SAM_TYPES, sam_builders

    assert sorted(SAM_TYPES) == sorted(sam_builders())
    model = tmp_path / "vlm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llava"}')
    for backend, extra in (("llava-as", ""), ("difflmm", ""), ("aas", f",model_path={model}"),
                           ("flmm", f",model_path={model},checkpoint={model},sam_checkpoint={model}")):
        output = tmp_path / backend
        code = main(["run", "--model", backend, "--task", "gcg_val", "--model-args", f"sam_type=vit_x{extra}",
                     "--output", str(output)])
        text = capsys.readouterr().err
        assert code == 2 and "error: --model-args: sam_type: must be one of default, vit_h, vit_l, vit_b" in text, text
        assert not output.exists() and "Traceback" not in text
