"""Training and scoring the RoboDesk success classifier (`maskvit.plan.success_classifier`).

Frames come from an episode store's split, labels from the state saved beside each frame.
Successes are rare (1–6 % of frames per task in a collected store), so each task's loss
weighs its positives by its negatives-to-positives ratio (at most `MAX_POS_WEIGHT`), and the
scores reported are per-task recall, precision and balanced accuracy, not plain accuracy
(which "never solved" would win).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from maskvit.errors import UserError
from maskvit.plan.success_classifier import SuccessNet

MAX_POS_WEIGHT = 30.0
MAX_SHIFT = 2  # pixels: a random translation per batch, so a blurry or shifted prediction still reads


def labelled_frames(store, split: str, tasks: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (N, S, S, 3) of `split` and bool labels (N, len(tasks)) from their states."""
    from maskvit.sim.desk_world import solved_in_states

    frames, states = frames_and_states(store, split, "success labels")
    return frames, np.stack([solved_in_states(states, t) for t in tasks], axis=1)


def frames_and_states(store, split: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (N, S, S, 3) of `split` and the RoboDesk states saved beside them (N, 19);
    a one-line error naming `what` is read from them where a store has none."""
    from maskvit.sim.desk_world import STATE_COLUMNS

    ids = store.episode_ids(split)
    if not ids:
        raise UserError(f"{store.path} has no {split} episodes")
    frames, states = [], []
    for episode_id in ids:
        episode = store.load(episode_id)
        rows = episode.get("states")
        if rows is None or rows.ndim != 2 or rows.shape[1] != len(STATE_COLUMNS):
            raise UserError(f"{store.path} holds no RoboDesk states beside its frames; {what} "
                            "are read from them: collect it with `maskvit collect --env robodesk`")
        frames.append(episode["frames"])
        states.append(rows)
    return np.concatenate(frames), np.concatenate(states)


def positive_weights(labels: np.ndarray) -> torch.Tensor:
    """Per task: negatives / positives, clipped to [1, MAX_POS_WEIGHT] (1 where none is positive)."""
    positives = labels.sum(axis=0).astype(np.float64)
    ratio = np.where(positives > 0, (len(labels) - positives) / np.maximum(positives, 1), 1.0)
    return torch.tensor(np.clip(ratio, 1.0, MAX_POS_WEIGHT), dtype=torch.float32)


def train_classifier(frames: np.ndarray, labels: np.ndarray, tasks: tuple[str, ...], *, steps: int,
                     batch: int, lr: float, seed: int, progress: bool = True) -> SuccessNet:
    """Adam on the weighted binary cross-entropy of every task's logit, batches drawn at random."""
    torch.manual_seed(seed)
    net = SuccessNet(tasks, image_size=frames.shape[1])
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=positive_weights(labels))
    return _fit(net, frames, labels.astype(np.float32), loss_fn, steps=steps, batch=batch, lr=lr,
                seed=seed, progress=progress)


def reach_frames(store, split: str, tasks: tuple[str, ...],
                 targets: str = "object") -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (N, S, S, 3) of `split` and float32 reach distances in metres (N, len(tasks)):
    to the task's object from the saved states (`reach_labels`), or along the way to where the
    task is begun from the saved simulator states (`approach_labels`, the slide's way to its bar
    for "approach", to its panel for "panel", the drawer's inside for "inside" and "inside_clear";
    `maskvit.plan.reach_reader.TARGET_PLACES`)."""
    from maskvit.plan.reach_reader import TARGET_PLACES, approach_labels, reach_labels

    frames, states = frames_and_states(store, split, "reach labels")
    if targets == "object":
        return frames, reach_labels(states, tasks)
    sim_states = np.concatenate([store.load_array(i, "sim_states") for i in store.episode_ids(split)])
    slide, drawer = TARGET_PLACES[targets]
    return frames, approach_labels(sim_states, tasks, slide=slide, drawer=drawer)


NEAR_SCALE = 0.05  # metres: `--reach-loss near` weighs a frame's squared error by 1 / (d + this)²
REACH_LOSSES = ("squared", "near")


class NearWeightedLoss(nn.Module):
    """Squared error over (true distance + NEAR_SCALE)²: an error of 4 cm at the target costs
    what 40 cm does half a metre away, so the net spends itself where a planner stops."""

    def forward(self, read: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        return (((read - truth) / (truth + NEAR_SCALE)) ** 2).mean()


def train_reach_reader(frames: np.ndarray, distances: np.ndarray, tasks: tuple[str, ...], *,
                       steps: int, batch: int, lr: float, seed: int, progress: bool = True,
                       targets: str = "object", loss: str = "squared"):
    """Adam on every task's distance (metres), batches drawn at random: the squared error
    (`loss="squared"`) or the near-weighted one (`"near"`, `NearWeightedLoss`); `targets`
    names what the distances were measured to (`reach_frames`)."""
    from maskvit.plan.reach_reader import ReachNet

    if loss not in REACH_LOSSES:
        raise UserError(f"unknown reach loss {loss!r}; choose one of: {', '.join(REACH_LOSSES)}")
    torch.manual_seed(seed)
    net = ReachNet(tasks, image_size=frames.shape[1])
    net.targets = targets
    loss_fn = NearWeightedLoss() if loss == "near" else nn.MSELoss()
    return _fit(net, frames, distances.astype(np.float32), loss_fn, steps=steps, batch=batch,
                lr=lr, seed=seed, progress=progress)


def _fit(net: SuccessNet, frames: np.ndarray, targets: np.ndarray, loss_fn: nn.Module, *, steps: int,
         batch: int, lr: float, seed: int, progress: bool) -> SuccessNet:
    """`steps` Adam steps of `loss_fn(net(frames), targets)` on random batches, each shifted by
    up to MAX_SHIFT pixels."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    all_frames, all_targets = torch.from_numpy(frames), torch.from_numpy(targets)
    bar = tqdm(range(steps), desc=net.kind, disable=not progress, unit="step")
    for _ in bar:
        index = torch.randint(len(all_frames), (batch,), generator=generator)
        x = all_frames[index]
        dx, dy = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=generator).tolist()
        x = torch.roll(x, shifts=(dy, dx), dims=(1, 2))
        loss = loss_fn(net(x), all_targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return net.eval()


NEAR_DISTANCE = 0.10  # metres: the last stretch of a reach, where a planner must read it finely


def reach_scores(net, frames: np.ndarray, distances: np.ndarray) -> dict[str, Any]:
    """Per task: the mean true distance, the reader's mean absolute error (metres), the same
    over the frames within NEAR_DISTANCE of the target (where planned hands stop short when the
    reader blurs; None without such frames) and the correlation of read and true distances
    (what a cost needs: the order, not the scale)."""
    scores: dict[str, Any] = {}
    for i, task in enumerate(net.tasks):
        read, truth = net.distances(frames, task), distances[:, i]
        spread = float(np.std(read) * np.std(truth))
        near = truth < NEAR_DISTANCE
        scores[task] = {
            "frames": len(truth), "mean_distance": float(truth.mean()),
            "mean_absolute_error": float(np.abs(read - truth).mean()),
            "near_frames": int(near.sum()),
            "near_mean_absolute_error": float(np.abs(read - truth)[near].mean()) if near.any() else None,
            "correlation": float(np.mean((read - read.mean()) * (truth - truth.mean())) / spread)
            if spread > 0 else None,
        }
    return scores


def format_score(value: float | None) -> str:
    """A score to three decimals, or — where it is undefined (no positives, nothing said)."""
    return "—" if value is None else f"{value:.3f}"


def classifier_scores(net: SuccessNet, frames: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Per task: positives, recall, precision and balanced accuracy at logit 0."""
    scores: dict[str, Any] = {}
    for i, task in enumerate(net.tasks):
        said = net.logits(frames, task) > 0
        truth = labels[:, i]
        tp, fp = int((said & truth).sum()), int((said & ~truth).sum())
        positives, negatives = int(truth.sum()), int((~truth).sum())
        recall = tp / positives if positives else None
        specificity = 1 - fp / negatives if negatives else None
        scores[task] = {
            "positives": positives, "frames": len(truth),
            "recall": recall,
            "precision": tp / (tp + fp) if tp + fp else None,
            "balanced_accuracy": None if recall is None or specificity is None else (recall + specificity) / 2,
        }
    return scores
