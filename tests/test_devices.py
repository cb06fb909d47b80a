"""`--device` is checked before anything loads: spelling first, then what this torch can reach."""

from __future__ import annotations

import pytest

from gcgbench.api.errors import InputError
from gcgbench.cli.app import main
from gcgbench.runner.devices import check_device


@pytest.mark.parametrize("spelling", ["gpu", "cuda:", "cuda:x", "CPU", "cuda:0,1", " cpu", "npu"])
def test_misspelt_devices_are_refused(spelling):
    with pytest.raises(InputError, match="must be cpu, cuda, cuda:N or mps"):
        check_device(spelling)


def test_cuda_without_a_gpu_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for requested in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(InputError, match=rf"--device: {requested}: this torch \(.*\) sees no CUDA GPU"):
            check_device(requested)
    assert check_device("cpu") == "cpu"


def test_cuda_index_beyond_the_gpus_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [check_device(d) for d in ("cuda", "cuda:0", "cuda:1")] == ["cuda", "cuda:0", "cuda:1"]
    with pytest.raises(InputError, match=r"cuda:2: this machine has 2 CUDA GPU\(s\), cuda:0 … cuda:1"):
        check_device("cuda:2")


def test_mps_without_metal_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(InputError, match="mps: this torch .* sees no Metal device"):
        check_device("mps")


@pytest.mark.parametrize("command", ["run", "infer"])
def test_cli_refuses_an_unreachable_device_in_one_line_before_writing(command, monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    output = tmp_path / "run"
    code = main([command, "--model", "oracle", "--task", "gcg_val", "--device", "cuda:7", "--output", str(output)])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2 and "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: --device: cuda:7: this torch ("), text
    assert not output.exists()
