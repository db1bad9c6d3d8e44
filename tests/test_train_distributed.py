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

from maskvit.errors import UserError
from maskvit.train import Trainer, micro_batch_size
from maskvit.train.sampler import GlobalBatchSampler

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


# Run under torchrun: trains the toy task with DDP over gloo, rank 0 saves the weights.
DDP_RUN = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    sys.path.insert(0, {tests!r})
    from test_train_support import ToyDataset, ToyGANTask, ToyTask, toy_config
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
    if env.is_main:
        torch.save({{"weights": task.net.state_dict(), "sizes": sizes,
                     "gan": {{k: v.state_dict() for k, v in gan.modules().items()}}}}, {result!r})
    shutdown_distributed()  # with `trainer` still alive, as in the CLI
""")


def test_two_gloo_processes_make_the_same_update_as_one_process(tmp_path):
    result = tmp_path / "ddp.pt"
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_RUN.format(tests=str(TESTS), out=str(tmp_path / "run"),
                                     result=str(result), accum=1))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", str(script)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(result)
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
