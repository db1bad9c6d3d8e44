"""A tiny push-world model for the server's tests and benchmark smoke runs.

Untrained and small (one transformer block of width 16, an 8-channel tokenizer) so it
loads and predicts in milliseconds, but with the shipped model's interface: 64×64 frames,
8×8 tokens, 2 context frames, 2-D push actions. Its frames are noise; what it is for is
exercising every code path of the server fast.
"""

from __future__ import annotations

from pathlib import Path


def tiny_config(goal: bool = False):
    """The tiny model's config (push dataset, 6-frame clips, 2 → 4 frames; with `goal`,
    goal-conditioned for half its training clips: 2 → 3 frames + the goal)."""
    from maskvit.config import (
        Config,
        DataConfig,
        DecodingConfig,
        EvalConfig,
        PlanConfig,
        TokenizerConfig,
        TransformerConfig,
    )

    return Config(
        name="tiny-push",
        data=DataConfig(dataset="push", resolution=64, action_dim=2),
        tokenizer=TokenizerConfig(resolution=64, downsample=8, channels=8, num_res_blocks=1,
                                  codebook_size=16, code_dim=8),
        transformer=TransformerConfig(num_frames=6, context_frames=2, tokens_h=8, tokens_w=8,
                                      codebook_size=16, spatial_window=(1, 8, 8),
                                      spatiotemporal_window=(0, 4, 4), depth=1, heads=1, dim=16,
                                      mlp_dim=32, dropout=0.0, action_dim=2,
                                      goal_conditioned=goal, goal_prob=0.5),
        eval=EvalConfig(context_frames=2, predicted_frames=3 if goal else 4,
                        decoding=DecodingConfig(steps=3, temperature=4.5)),
        plan=PlanConfig(horizon=3, samples=4, iterations=1, decoding=DecodingConfig(steps=2),
                        init_mean=(0.0, 0.0),
                        init_std=(0.05, 0.05), round_gripper=False, chunk_size=4),
    )


def tiny_predictor(seed: int = 0, goal: bool = False):
    """A `Predictor` around freshly initialised tiny networks (weights fixed by `seed`)."""
    import torch

    from maskvit.model import MaskViT
    from maskvit.predictor import Predictor
    from maskvit.tokenizer.vqgan import VQGAN

    config = tiny_config(goal)
    torch.manual_seed(seed)
    return Predictor(VQGAN(config.tokenizer), MaskViT(config.transformer), config)


def save_tiny_bundle(out: str | Path, seed: int = 0, goal: bool = False) -> Path:
    """The tiny model as a bundle directory `maskvit serve --model` can load."""
    from maskvit.config import save_config
    from maskvit.run_dir import CONFIG_FILE, save_checkpoint
    from maskvit.tokenizer.vqgan import MODULE

    predictor = tiny_predictor(seed, goal)
    out = Path(out)
    for part, module, net in (("tokenizer", MODULE, predictor.tokenizer),
                              ("transformer", "model", predictor.transformer)):
        (out / part).mkdir(parents=True, exist_ok=True)
        save_config(predictor.config, out / part / CONFIG_FILE)
        save_checkpoint(out / part, 1, {module: net.state_dict()}, {}, {}, keep=1)
    return out
