"""Scale-out: global batch bookkeeping and DDP over gloo matching one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_train_support import ToyDataset, ToyGANTask, ToyTask, toy_config
from torch.utils.data import Dataset

from maskvit.config import TransformerConfig
from maskvit.errors import UserError
from maskvit.model.masked_video_task import MaskedVideoTask
from maskvit.train import StepContext, Trainer, micro_batch_size
from maskvit.train.distributed import GlobalBatchSampler

TESTS = Path(__file__).parent


@pytest.mark.parametrize("world,accum", [(1, 1), (1, 4), (2, 1), (2, 2), (4, 1), (8, 1)])
def test_global_batch_is_the_same_whatever_processes_and_accumulation(world, accum):
    reference = GlobalBatchSampler(50, 8, seed=1)
    for step in (0, 3, 6, 7):  # 6 batches per epoch: step 6 and 7 are in epoch 1
        seen = []
        for rank in range(world):
            sampler = GlobalBatchSampler(50, 8, rank=rank, world_size=world,
                                         grad_accum=accum, seed=1)
            micro = sampler.micro_batches(step)
            assert len(micro) == accum and all(len(m) == 8 // (world * accum) for m in micro)
            seen += [i for m in micro for i in m]
        assert sorted(seen) == sorted(reference.global_batch_indices(step))
        assert len(set(seen)) == 8


def test_sampler_iteration_resumes_at_any_step():
    full = GlobalBatchSampler(30, 4, rank=1, world_size=2, seed=0)
    it = iter(full)
    expected = [next(it) for _ in range(20)]
    resumed = iter(GlobalBatchSampler(30, 4, rank=1, world_size=2, seed=0, start_step=9))
    assert [next(resumed) for _ in range(11)] == expected[9:]


def test_indivisible_batch_is_a_user_error():
    assert micro_batch_size(32, 2, 4) == 4
    with pytest.raises(UserError, match="not divisible by 3 process"):
        micro_batch_size(32, 3, 1)
    with pytest.raises(UserError, match="not divisible by 3 process"):
        GlobalBatchSampler(50, 8, world_size=3)
    with pytest.raises(UserError, match="fewer than one global batch"):
        GlobalBatchSampler(5, 8)


def test_accumulation_feeds_the_whole_global_batch_per_step():
    task = ToyTask(noise=0.0)
    Trainer(task, toy_config(steps=3, grad_accum=4), ToyDataset(n=40), progress=False).fit()
    assert [len(m) for m in task.seen] == [2] * 12
    per_step = [sum(task.seen[4 * s:4 * s + 4], []) for s in range(3)]
    sampler = GlobalBatchSampler(40, 8, seed=3)
    assert [sorted(b) for b in per_step] == [sorted(sampler.global_batch_indices(s))
                                             for s in range(3)]


class TokenClips(Dataset):
    """Item i: a fixed random clip of 4 frames of 4×4 codes (K = 8) with 1-D actions."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(i)
        return {"tokens": torch.randint(0, 8, (4, 4, 4), generator=gen),
                "actions": torch.randn(4, 1, generator=gen)}


def masked_video_task(accum: int = 1) -> MaskedVideoTask:
    """The real masked-video task on a tiny transformer, same initial weights every time."""
    cfg = TransformerConfig(
        num_frames=4, context_frames=1, tokens_h=4, tokens_w=4, codebook_size=8,
        spatial_window=(1, 4, 4), spatiotemporal_window=(0, 2, 2), depth=1, heads=2,
        dim=16, mlp_dim=32, dropout=0.0, action_dim=1)
    torch.manual_seed(0)
    return MaskedVideoTask(cfg, toy_config(steps=3, grad_accum=accum))


def test_masked_video_task_refuses_micro_batches_off_the_global_layout():
    task = masked_video_task()  # global batch 8, one process, no accumulation
    batch = {"tokens": torch.zeros(4, 4, 4, 4, dtype=torch.long), "actions": torch.zeros(4, 4, 1)}
    ctx = StepContext(step=0, modules=task.modules(), generator=torch.Generator(),
                      device=torch.device("cpu"))
    with pytest.raises(UserError, match="micro-batch of 4 clips.*micro-batches of 8"):
        task.loss("model", batch, ctx)


# Run under torchrun: trains the toy task with DDP over gloo, rank 0 saves the weights.
DDP_RUN = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    sys.path.insert(0, {tests!r})
    from test_train_support import ToyDataset, ToyGANTask, ToyTask, toy_config
    from test_train_distributed import TokenClips, masked_video_task
    from maskvit.train import Trainer, init_distributed
    from maskvit.train.distributed import shutdown_distributed

    env = init_distributed("cpu")
    assert env.world_size == 2 and dist.get_backend() == "gloo"
    task = ToyTask(noise=0.0)
    trainer = Trainer(task, toy_config(steps=3, grad_accum={accum}), ToyDataset(n=40),
                      env=env, progress=False, out={out!r}, tensorboard=False)
    trainer.fit()
    sizes = [len(m) for m in task.seen]
    # Two optimizers, the discriminator behind its own DDP wrapper (the tokenizer's case).
    gan = ToyGANTask(toy_config(steps=3), disc_start=1)
    Trainer(gan, toy_config(steps=3), ToyDataset(n=40), env=env, progress=False).fit()
    # The real masked-video task: each rank masks and weighs its half of the batch.
    video = masked_video_task()
    Trainer(video, toy_config(steps=3), TokenClips(), env=env, progress=False).fit()
    if env.is_main:
        torch.save({{"weights": task.net.state_dict(), "sizes": sizes,
                     "gan": {{k: v.state_dict() for k, v in gan.modules().items()}},
                     "video": video.model.state_dict()}}, {result!r})
    shutdown_distributed()  # with `trainer` still alive, as in the CLI
""")


@pytest.fixture(scope="module")
def two_gloo_processes(tmp_path_factory):
    """Runs DDP_RUN once under torchrun with 2 processes; (saved results, its folder)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    result = tmp_path / "ddp.pt"
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_RUN.format(tests=str(TESTS), out=str(tmp_path / "run"),
                                     result=str(result), accum=1))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", str(script)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(result), tmp_path


def test_two_gloo_processes_make_the_same_update_as_one_process(two_gloo_processes):
    ddp, tmp_path = two_gloo_processes
    assert ddp["sizes"] == [4, 4, 4]  # each rank: half of the global batch of 8 per step

    for accum in (1, 2):  # one process, the combined batch (with and without accumulation)
        task = ToyTask(noise=0.0)
        Trainer(task, toy_config(steps=3, grad_accum=accum), ToyDataset(n=40),
                progress=False).fit()
        start = ToyTask(noise=0.0).net.state_dict()
        for name, value in task.net.state_dict().items():
            assert not torch.equal(value, start[name])  # training did move the weights
            torch.testing.assert_close(ddp["weights"][name], value, rtol=1e-5, atol=1e-6)
    gan = ToyGANTask(toy_config(steps=3), disc_start=1)
    Trainer(gan, toy_config(steps=3), ToyDataset(n=40), progress=False).fit()
    for name, module in gan.modules().items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(ddp["gan"][name][key], value, rtol=1e-5, atol=1e-6)
    # Only rank 0 wrote the run directory (one metrics file, one set of checkpoints).
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()
            if p.name.startswith("step_")] == ["step_00000003"]


def test_two_gloo_processes_train_the_masked_video_task_like_one_process(two_gloo_processes):
    ddp, _ = two_gloo_processes
    start = masked_video_task().model.state_dict()
    for accum in (1, 2):  # one process, the whole batch of 8 (at once, then in two halves)
        task = masked_video_task(accum)
        Trainer(task, toy_config(steps=3, grad_accum=accum), TokenClips(), progress=False).fit()
        for name, value in task.model.state_dict().items():
            other = ddp["video"][name]
            if name.endswith("attn.qkv.bias"):
                # The key bias adds q·b_k to every score of a row, which softmax ignores: its
                # gradient is exactly 0 but for rounding, and Adam turns that noise into full
                # steps of either sign. Only the query and value biases carry information.
                dim = value.shape[0] // 3
                value, other = torch.cat([value[:dim], value[2 * dim:]]), torch.cat([other[:dim], other[2 * dim:]])
            torch.testing.assert_close(other, value, rtol=1e-5, atol=1e-6)
        moved = [n for n, v in task.model.state_dict().items() if not torch.equal(v, start[n])]
        assert len(moved) > len(start) // 2  # training did move the weights
