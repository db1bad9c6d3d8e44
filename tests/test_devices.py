"""Devices and precision: `auto` picks bf16 only where it was measured to pay (a GPU with
bf16, a CPU with AMX, an AMD CPU with avx512_bf16); torchrun ranks take their own GPU; TF32 only on a GPU.

Nothing here needs a GPU or a particular CPU: CPU flags come from fake /proc/cpuinfo and
`lscpu` text, and CUDA's answers are patched in.
"""

import pytest
import torch

import maskvit.devices as devices
from maskvit.errors import UserError

AMX_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\n"
               "flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n\n"
               "processor\t: 1\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n")
AMD_CPUINFO = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
               "flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
INTEL_NO_AMX_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                        "flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
AMX_LSCPU = ("Architecture:            x86_64\nModel name:              Intel(R) Xeon(R)\n"
             "Flags:                   fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
AMD_LSCPU = "Architecture:            x86_64\nModel name:              AMD EPYC\nFlags:   fpu avx512_bf16\n"


@pytest.fixture
def fake_cpu(monkeypatch, tmp_path):
    """Make this machine look like a CPU described by cpuinfo text (torch agreeing)."""

    def use(cpuinfo_text: str) -> None:
        path = tmp_path / "cpuinfo"
        path.write_text(cpuinfo_text)
        monkeypatch.setattr(devices, "read_cpu_flags",
                            lambda cpuinfo=path: devices.cpu_flags(path.read_text()))
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported",
                            lambda: "amx_tile" in cpuinfo_text, raising=False)

    return use


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)


def test_amx_is_read_from_cpuinfo_and_lscpu_flags():
    for text in (AMX_CPUINFO, AMX_LSCPU):
        assert devices.AMX_FLAG in devices.cpu_flags(text)
    for text in (AMD_CPUINFO, AMD_LSCPU, ""):
        assert devices.AMX_FLAG not in devices.cpu_flags(text)
    assert "avx512_bf16" in devices.cpu_flags(AMD_LSCPU)
    assert "vendor=AuthenticAMD" in devices.cpu_flags(AMD_CPUINFO)
    assert "vendor=AuthenticAMD" in devices.cpu_flags("Vendor ID:               AuthenticAMD\n")


def test_cpu_flags_fall_back_to_lscpu_when_cpuinfo_is_missing(monkeypatch, tmp_path):
    class Done:
        stdout = AMX_LSCPU

    monkeypatch.setattr(devices.subprocess, "run", lambda *a, **k: Done())
    assert devices.AMX_FLAG in devices.read_cpu_flags(tmp_path / "missing")


def test_auto_training_precision_is_bf16_where_measured_faster_and_fp32_elsewhere(fake_cpu, no_cuda):
    cpu = torch.device("cpu")
    fake_cpu(AMX_CPUINFO)
    assert devices.choose_precision("auto", cpu) == ("bf16", "AMX")
    fake_cpu(AMD_CPUINFO)  # Zen 4's avx512_bf16: measured 1.4-1.9x faster training in bf16
    assert devices.choose_precision("auto", cpu) == ("bf16", "avx512_bf16 on AMD")
    fake_cpu(INTEL_NO_AMX_CPUINFO)  # avx512_bf16 on a Xeon without AMX: half the fp32 rate
    assert devices.choose_precision("auto", cpu) == ("fp32", "no fast bf16")
    fake_cpu("flags\t\t: fpu sse2 avx2\n")
    assert devices.choose_precision("auto", cpu) == ("fp32", "no fast bf16")
    assert devices.resolve_precision("bf16", cpu) == "bf16"  # an explicit choice stands
    with pytest.raises(UserError, match="precision must be one of"):
        devices.resolve_precision("fp16", cpu)


def test_amx_flag_without_torch_able_to_use_it_stays_fp32(fake_cpu, monkeypatch, no_cuda):
    fake_cpu(AMX_CPUINFO)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert devices.choose_precision("auto", torch.device("cpu"))[0] == "fp32"


def test_auto_precision_on_a_gpu_follows_its_bf16_support(monkeypatch):
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.choose_precision("auto", gpu) == ("bf16", "GPU with bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert devices.choose_precision("auto", gpu) == ("fp32", "GPU without bf16")


def test_explicit_bf16_on_a_gpu_without_bf16_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(UserError, match="has no bf16 support"):
        devices.choose_precision("bf16", torch.device("cuda", 0))


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_torchrun_ranks_take_their_local_gpu_for_plain_cuda_and_auto(two_gpus):
    env = {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "RANK": "3", "WORLD_SIZE": "4"}
    assert devices.process_device("cuda", env) == torch.device("cuda", 1)
    assert devices.process_device("auto", env) == torch.device("cuda", 1)
    assert devices.process_device("cpu", env) == torch.device("cpu")


def test_cuda_n_under_torchrun_with_several_local_ranks_is_refused(two_gpus):
    env = {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    with pytest.raises(UserError, match="CUDA_VISIBLE_DEVICES"):
        devices.process_device("cuda:0", env)
    # One process per node (or no torchrun): cuda:N is that GPU.
    assert devices.process_device("cuda:1", {"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}) == \
        torch.device("cuda", 1)
    assert devices.process_device("cuda:1", {}) == torch.device("cuda", 1)


def test_a_gpu_that_is_not_there_is_a_one_line_error(two_gpus):
    with pytest.raises(UserError, match="needs GPU 2 but 2 are visible"):
        devices.process_device("cuda:2", {})
    with pytest.raises(UserError, match="needs GPU 2"):
        devices.process_device("cuda", {"LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "3"})
    with pytest.raises(UserError, match="choose auto, cpu, cuda or cuda:N"):
        devices.process_device("cuda:x", {})


def test_without_cuda_auto_is_the_cpu_and_cuda_is_refused(no_cuda):
    assert devices.process_device("auto", {"LOCAL_RANK": "1"}) == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA GPU"):
        devices.resolve_device("cuda")


def test_tf32_is_enabled_for_gpus_only(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", calls.append)
    devices.enable_tf32(torch.device("cpu"))
    assert calls == []
    devices.enable_tf32(torch.device("cuda", 0))
    assert calls == ["high"]


def test_init_distributed_reads_torchruns_variables(two_gpus, monkeypatch):
    """What `torchrun --nproc_per_node 2 -m maskvit train --device ...` gives rank 1 (one
    process per GPU; WORLD_SIZE 1 here so no process group is joined)."""
    from maskvit.train.distributed import init_distributed

    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda mode: None)
    for name, value in {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "RANK": "1",
                        "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)
    assert init_distributed("cuda").device == torch.device("cuda", 1)
    with pytest.raises(UserError, match="all 2 processes of this node on one GPU"):
        init_distributed("cuda:0")


def test_a_decoding_batch_follows_the_device():
    """A GPU takes every video in one forward; a CPU at most CPU_INFERENCE_BATCH."""
    many = devices.CPU_INFERENCE_BATCH * 4
    assert devices.inference_batch(torch.device("cuda", 0), many) == many
    assert devices.inference_batch(torch.device("cpu"), many) == devices.CPU_INFERENCE_BATCH
    assert devices.inference_batch(torch.device("cpu"), 3) == 3
