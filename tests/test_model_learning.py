"""Learning works: a tiny MaskViT learns a moving-bar token video on the CPU.

A vertical bar (code 1) on a background (code 0) moves one column per frame. Without
actions it always moves right, so the context frame determines the future; with actions,
the action (+1 right / −1 left, given at every frame) sets the direction of each video, so
only a model that reads its actions can predict the future (ignoring them is right for
about half of the videos).

Training is chaotic: a CPU's floating-point details (and the thread count) change the
trajectory as much as a new seed. The test without actions trains one seed for a fixed
schedule with steps to spare (measured on seeds 0–19, see its comment). Learning to read
the actions takes a symmetry-breaking step whose time varies widely (150–575 steps over
seeds 0–49 at 1 and 2 threads), so the action test trains until the model predicts
held-out videos and fails only if that takes far longer than it ever did; see
`train_until_it_predicts`.
"""

import torch

from maskvit.config import DecodingConfig, TransformerConfig
from maskvit.model import MaskViT
from maskvit.model.decoding import generate
from maskvit.model.masking import mask_for_training, masked_cross_entropy

GRID = 4
FRAMES = 4
PEAK_LR = 1e-3
DECODING = DecodingConfig(steps=4, temperature=1.0)


def bar_videos(batch: int, generator: torch.Generator, with_actions: bool, rows: int = GRID,
               frames: int = FRAMES):
    start = torch.randint(0, GRID, (batch,), generator=generator)
    if with_actions:
        direction = torch.randint(0, 2, (batch, 1), generator=generator) * 2 - 1
        moves = direction.expand(batch, frames)
    else:
        moves = torch.ones(batch, frames, dtype=torch.long)
    # actions[t] leads from frame t to frame t+1.
    column = (start[:, None] + torch.cat([torch.zeros(batch, 1, dtype=torch.long),
                                          moves[:, :-1].cumsum(1)], 1)) % GRID  # (B, T)
    cols = torch.arange(GRID).view(1, 1, 1, GRID)
    tokens = (cols == column.view(batch, frames, 1, 1)).long().expand(batch, frames, rows, GRID)
    return tokens.contiguous(), moves.float().unsqueeze(-1)


def learning_rate(step: int, steps: int) -> float:
    """PEAK_LR for 60 % of the steps, then linear decay to 0.

    Why: at a constant rate the model keeps jumping in and out of the solution (frame
    accuracy 0.99 → 0.73 → 0.97 between checks); the decay settles it there.
    """
    progress = step / steps
    return PEAK_LR if progress < 0.6 else PEAK_LR * (1.0 - progress) / 0.4


def bar_model(with_actions: bool, rows: int = GRID, frames: int = FRAMES) -> MaskViT:
    return MaskViT(TransformerConfig(
        num_frames=frames, context_frames=1, tokens_h=rows, tokens_w=GRID, codebook_size=4,
        spatial_window=(1, rows, GRID), spatiotemporal_window=(0, min(2, rows), 2), depth=2,
        heads=2, dim=48, mlp_dim=96, action_dim=1 if with_actions else 0,
    ))


def training_step(model: MaskViT, optimizer: torch.optim.Optimizer, lr: float, batch: int,
                  generator: torch.Generator) -> None:
    """One step of masked visual modeling (variable ratio, as `maskvit train`) on fresh videos."""
    cfg = model.cfg
    for group in optimizer.param_groups:
        group["lr"] = lr
    tokens, actions = bar_videos(batch, generator, cfg.action_dim > 0, cfg.tokens_h, cfg.num_frames)
    inputs, mask = mask_for_training(tokens, 1, "variable", generator=generator,
                                     mask_token_id=cfg.mask_token_id)
    loss, _ = masked_cross_entropy(model(inputs, actions if cfg.action_dim else None), tokens, mask)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train_model(with_actions: bool, steps: int, seed: int = 0, batch: int = 32,
                rows: int = GRID) -> MaskViT:
    """Train on fresh bar videos of `rows` × GRID tokens; `seed` sets weights, data, masks."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = bar_model(with_actions, rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR)
    for step in range(steps):
        training_step(model, optimizer, learning_rate(step, steps), batch, gen)
    return model


# The action test: one row of tokens and two frames to predict. The first frame is where
# the action moves the bar; the second is two columns on, the same for either direction
# (GRID 4), so it checks the rest of the prediction. Training shows some future tokens, and
# any of the bar's neighbours gives the direction away: here the direction stays hidden in
# about half of the training videos, so the actions matter (a quarter with three frames
# to predict; rarely with GRID rows, where some seeds stayed on the action-ignoring
# plateau for over 1000 steps).
ACTION_ROWS, ACTION_FRAMES, ACTION_BATCH = 1, 3, 128
CHECK_EVERY = 25  # steps between checks on held-out videos
SETTLE_STEPS = 100  # linear decay to 0 once learned: a constant rate keeps jumping out
# Steps to learn, seeds 0–49 at 1 and 2 threads: 150–575 (median 275); the bound is 3.5
# times the slowest.
MAX_STEPS = 2000


def predicted_frames(model: MaskViT) -> float:
    """Share of held-out future frames the model gets whole from context and actions alone
    (every future token masked, most likely token each), on videos training never sees."""
    cfg = model.cfg
    tokens, actions = bar_videos(256, torch.Generator().manual_seed(7), True, cfg.tokens_h,
                                 cfg.num_frames)
    inputs = tokens.clone()
    inputs[:, 1:] = cfg.mask_token_id
    was_training = model.training
    model.eval()
    with torch.no_grad():
        guess = model(inputs, actions).argmax(-1)
    model.train(was_training)
    return float((guess[:, 1:] == tokens[:, 1:]).flatten(2).all(-1).float().mean())


def train_until_it_predicts(seed: int = 0) -> tuple[MaskViT, int]:
    """Train the action-conditioned model until it predicts ≥ 95 % of held-out frames at
    two checks in a row (at most MAX_STEPS), then settle it; returns (model, steps to learn).

    Why not a fixed schedule: the steps needed vary threefold between seeds and CPUs, so a
    fixed budget is either slow for most runs or fails for a few; here the bound that can
    fail (MAX_STEPS) sits far beyond the slowest run measured.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = bar_model(True, ACTION_ROWS, ACTION_FRAMES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PEAK_LR)
    good_checks, step = 0, 0
    while good_checks < 2:
        if step >= MAX_STEPS:
            raise AssertionError(f"the action-conditioned model did not learn in {MAX_STEPS} steps")
        for _ in range(CHECK_EVERY):
            training_step(model, optimizer, PEAK_LR, ACTION_BATCH, gen)
        step += CHECK_EVERY
        good_checks = good_checks + 1 if predicted_frames(model) >= 0.95 else 0
    for i in range(SETTLE_STEPS):
        training_step(model, optimizer, PEAK_LR * (1 - i / SETTLE_STEPS), ACTION_BATCH, gen)
    return model, step


def generated_accuracy(model: MaskViT, actions_sign: float = 1.0) -> tuple[float, float]:
    """(token accuracy, whole-frame accuracy) of generated future frames on fresh videos."""
    correct = generated_frames_correct(model, actions_sign)
    return float(correct.float().mean()), float(correct.flatten(2).all(-1).float().mean())


def generated_frames_correct(model: MaskViT, actions_sign: float = 1.0) -> torch.Tensor:
    """(B, T - 1, h, w) bool: which tokens of the generated future frames are right.

    Iterative decoding with sampling, as `maskvit predict` runs it. `actions_sign=-1` feeds
    the opposite directions: a model that follows its actions then predicts the mirrored
    motion.
    """
    cfg = model.cfg
    with_actions = cfg.action_dim > 0
    tokens, actions = bar_videos(64, torch.Generator().manual_seed(123), with_actions,
                                 cfg.tokens_h, cfg.num_frames)
    generated = generate(model, tokens[:, :1], cfg.num_frames - 1, DECODING,
                         actions=actions * actions_sign if with_actions else None,
                         generator=torch.Generator().manual_seed(0)).codes
    return generated[:, 1:] == tokens[:, 1:]


def test_generated_future_frames_reach_high_token_accuracy_from_context_alone():
    # Frame accuracy after 400 steps, seeds 0-19: all ≥ 0.969 (seeds 0-4: 0.99-0.995);
    # already ≥ 0.953 after 350 (seeds 0-9). A constant rate for 250 steps gave 0.76-0.98.
    token_accuracy, frame_accuracy = generated_accuracy(train_model(False, steps=400))
    assert token_accuracy > 0.9
    assert frame_accuracy > 0.9  # whole frames right, not just the background


def frame_accuracies(correct: torch.Tensor) -> list[float]:
    """Share of videos whose generated frame is right, per future frame."""
    return correct.flatten(2).all(-1).float().mean(0).tolist()


def test_action_conditioned_model_follows_the_given_actions():
    # Seeds 0-49 at 1 and 2 threads (100 runs): with the given actions the moved frame was
    # right in >= 98.4 % of the videos (all of them in 99 runs), the landed frame in all;
    # with the opposite actions the moved frame was right in none, the landed one in all.
    model, _ = train_until_it_predicts()
    moved, landed = frame_accuracies(generated_frames_correct(model))
    moved_opposite, landed_opposite = frame_accuracies(generated_frames_correct(model, -1.0))
    # A model that ignores its actions gets the frame the action decides right in about
    # half of the videos, whichever actions it is given; this one, with the given ones ...
    assert moved > 0.8 and landed > 0.8
    # ... predicts the mirrored move when given the opposite ones: it follows its actions.
    assert moved_opposite < 0.2
    assert landed_opposite > 0.8  # two columns on either way: the rest is unchanged
