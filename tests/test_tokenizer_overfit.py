"""The tokenizer can memorise a handful of frames through the shared training engine."""

from __future__ import annotations

import pytest
import torch

from maskvit.config import TokenizerConfig, TrainConfig
from maskvit.metrics.pixel import psnr
from maskvit.tokenizer.vqgan_task import TokenizerTask
from maskvit.train import Trainer


def box_frames(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, size, size, 3) uint8: plain background with three coloured boxes per frame."""
    box = size // 4
    g = torch.Generator().manual_seed(seed)
    frames = torch.empty(n, size, size, 3, dtype=torch.uint8)
    frames[...] = torch.tensor([160, 130, 100], dtype=torch.uint8)
    for i in range(n):
        for _ in range(3):
            r, c = torch.randint(0, size - box, (2,), generator=g).tolist()
            frames[i, r : r + box, c : c + box] = torch.randint(0, 256, (3,), generator=g).to(torch.uint8)
    return frames


@pytest.fixture
def one_thread():
    """Convolutions this small gain nothing from threads, and on shared cores lose a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_overfitting_four_frames_reaches_30db_psnr(one_thread):
    torch.manual_seed(0)
    frames = box_frames(4)
    data = [{"frames": f} for f in frames]
    # 16×16 frames -> 8×8 codes; ~200 steps take a few CPU seconds.
    cfg = TokenizerConfig(resolution=16, downsample=2, channels=16, num_res_blocks=1,
                          codebook_size=128, code_dim=32, quantizer="ema", l1_weight=1.0,
                          l2_weight=1.0, perceptual_weight=0.0, usage_decay=0.9)
    train = TrainConfig(batch_size=4, lr=3e-3, steps=200, warmup_steps=0, optimizer="adam",
                        betas=(0.5, 0.9), weight_decay=0.0, grad_clip=0.0, precision="fp32",
                        log_every=1000, val_every=0, checkpoint_every=0)
    task = TokenizerTask(cfg)
    Trainer(task, train, data, progress=False, tensorboard=False).fit()
    recon = task.vqgan.eval().reconstruct(frames)
    score = float(psnr(frames, recon).mean())
    assert score > 30.0, f"PSNR after overfitting is only {score:.1f} dB"
