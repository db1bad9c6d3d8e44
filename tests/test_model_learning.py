"""Learning works: a tiny MaskViT learns a moving-bar token video on the CPU.

A vertical bar (code 1) on a background (code 0) moves one column per frame. Without
actions it always moves right, so the context frame determines the future; with actions,
the action (+1 right / −1 left, given at every frame) sets the direction of each video, so
only a model that reads its actions can predict the future (ignoring them is right for
about half of the videos).

Training is chaotic: a CPU's floating-point details change the trajectory as much as a new
seed, so each test trains one seed with steps to spare; measured on seeds 0–19 (no
actions) and 0–9 (actions), see `train_model`.
"""

import torch

from maskvit.config import TransformerConfig
from maskvit.model import MaskViT
from maskvit.model.masking import mask_for_training, masked_cross_entropy

GRID = 4
FRAMES = 4
PEAK_LR = 1e-3


def bar_videos(batch: int, generator: torch.Generator, with_actions: bool, rows: int = GRID):
    start = torch.randint(0, GRID, (batch,), generator=generator)
    if with_actions:
        direction = torch.randint(0, 2, (batch, 1), generator=generator) * 2 - 1
        moves = direction.expand(batch, FRAMES)
    else:
        moves = torch.ones(batch, FRAMES, dtype=torch.long)
    # actions[t] leads from frame t to frame t+1.
    column = (start[:, None] + torch.cat([torch.zeros(batch, 1, dtype=torch.long),
                                          moves[:, :-1].cumsum(1)], 1)) % GRID  # (B, T)
    cols = torch.arange(GRID).view(1, 1, 1, GRID)
    tokens = (cols == column.view(batch, FRAMES, 1, 1)).long().expand(batch, FRAMES, rows, GRID)
    return tokens.contiguous(), moves.float().unsqueeze(-1)


def learning_rate(step: int, steps: int) -> float:
    """PEAK_LR for 60 % of the steps, then linear decay to 0.

    Why: at a constant rate the model keeps jumping in and out of the solution (frame
    accuracy 0.99 → 0.73 → 0.97 between checks); the decay settles it there.
    """
    progress = step / steps
    return PEAK_LR if progress < 0.6 else PEAK_LR * (1.0 - progress) / 0.4


def train_model(with_actions: bool, steps: int, seed: int = 0, batch: int = 32,
                rows: int = GRID) -> MaskViT:
    """Train on fresh bar videos of `rows` × GRID tokens; `seed` sets weights, data, masks."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = TransformerConfig(
        num_frames=FRAMES, context_frames=1, tokens_h=rows, tokens_w=GRID, codebook_size=4,
        spatial_window=(1, rows, GRID), spatiotemporal_window=(0, min(2, rows), 2), depth=2,
        heads=2, dim=48, mlp_dim=96, action_dim=1 if with_actions else 0,
    )
    model = MaskViT(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        tokens, actions = bar_videos(batch, gen, with_actions, rows)
        inputs, mask = mask_for_training(tokens, 1, "variable", generator=gen,
                                         mask_token_id=cfg.mask_token_id)
        loss, _ = masked_cross_entropy(model(inputs, actions if with_actions else None),
                                       tokens, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def generated_accuracy(model: MaskViT, actions_sign: float = 1.0) -> tuple[float, float]:
    """(token accuracy, whole-frame accuracy) of generated future frames on fresh videos.

    `actions_sign=-1` feeds the opposite directions: a model that follows its actions then
    predicts the mirrored motion and scores low.
    """
    with_actions = model.cfg.action_dim > 0
    tokens, actions = bar_videos(64, torch.Generator().manual_seed(123), with_actions,
                                 model.cfg.tokens_h)
    generated = model.generate(tokens[:, :1], FRAMES - 1, steps=4, temperature=1.0,
                               actions=actions * actions_sign if with_actions else None,
                               generator=torch.Generator().manual_seed(0))
    correct = generated[:, 1:] == tokens[:, 1:]
    return float(correct.float().mean()), float(correct.flatten(2).all(-1).float().mean())


def test_generated_future_frames_reach_high_token_accuracy_from_context_alone():
    # Frame accuracy after 400 steps, seeds 0-19: all ≥ 0.969 (seeds 0-4: 0.99-0.995);
    # already ≥ 0.953 after 350 (seeds 0-9). A constant rate for 250 steps gave 0.76-0.98.
    token_accuracy, frame_accuracy = generated_accuracy(train_model(False, steps=400))
    assert token_accuracy > 0.9
    assert frame_accuracy > 0.9  # whole frames right, not just the background


def test_action_conditioned_model_follows_the_given_actions():
    # One row of tokens, 128 videos a step: with GRID rows every row repeats the answer, so
    # the visible future tokens nearly always give the direction away, the actions rarely
    # matter in training, and some seeds stayed on the action-ignoring plateau (frame
    # accuracy ≈ flipped ≈ 0.62) for over 1000 steps. Here, seeds 0-9: every frame right
    # after 600 steps; all but one seed already pass after 500.
    model = train_model(True, steps=600, batch=128, rows=1)
    token_accuracy, frame_accuracy = generated_accuracy(model)
    _, flipped_frame_accuracy = generated_accuracy(model, actions_sign=-1.0)
    assert token_accuracy > 0.9
    # Opposite actions give the mirrored motion: the model's futures follow its actions.
    assert frame_accuracy > flipped_frame_accuracy + 0.3
