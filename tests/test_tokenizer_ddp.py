"""Two gloo processes train the tokenizer (GAN phase included) and keep one codebook."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch

DDP_RUN = textwrap.dedent("""
    import torch, torch.distributed as dist
    from maskvit.config import TokenizerConfig, TrainConfig
    from maskvit.tokenizer.vqgan_task import TokenizerTask
    from maskvit.train import Trainer, init_distributed

    env = init_distributed("cpu")
    torch.manual_seed(0)  # same initial weights on both ranks, as the CLI does
    cfg = TokenizerConfig(resolution=16, downsample=4, channels=8, num_res_blocks=1,
                          codebook_size=64, code_dim=8, perceptual_weight=0.0,
                          disc_start=1, disc_channels=8, disc_layers=2)
    train = TrainConfig(batch_size=8, steps=3, warmup_steps=0, precision="fp32",
                        log_every=1000, val_every=0, checkpoint_every=0)
    g = torch.Generator().manual_seed(1)
    data = [{{"frames": torch.randint(0, 256, (16, 16, 3), generator=g, dtype=torch.uint8)}}
            for _ in range(32)]
    task = TokenizerTask(cfg)
    result = Trainer(task, train, data, env=env, progress=False, tensorboard=False).fit()
    torch.save({{"state": task.vqgan.state_dict(), "step": result.step,
                 "last": result.last_train}}, {out!r} + f"/rank{{env.rank}}.pt")
    dist.destroy_process_group()
""")


def test_ranks_keep_identical_weights_and_codebook_through_restarts(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(DDP_RUN.format(out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", str(script)], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["step"] == r1["step"] == 3
    assert r0["last"]["vqgan_restarted"] > 0  # the first step restarted codes on both ranks
    assert "vqgan_g_loss" in r0["last"]  # the adversarial phase ran under DDP
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), f"{key} differs between ranks"
