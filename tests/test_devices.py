"""`--precision auto`: bf16 only where it was measured to pay (a GPU, or a CPU with AMX)."""

import pytest
import torch

import maskvit.devices as devices
from maskvit.errors import UserError


def test_amx_is_read_from_the_cpu_flags(tmp_path):
    amx, plain = tmp_path / "amx", tmp_path / "plain"
    amx.write_text("processor : 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    plain.write_text("processor : 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert devices.cpu_has_amx(amx) and not devices.cpu_has_amx(plain)
    assert not devices.cpu_has_amx(tmp_path / "missing")


def test_auto_precision_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    assert devices.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: False)
    assert devices.resolve_precision("auto", cpu) == "fp32"
    assert devices.resolve_precision("bf16", cpu) == "bf16"  # an explicit choice stands
    with pytest.raises(UserError, match="precision must be one of"):
        devices.resolve_precision("fp16", cpu)
