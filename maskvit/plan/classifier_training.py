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
    from maskvit.sim.desk_world import STATE_COLUMNS, solved_in_states

    ids = store.episode_ids(split)
    if not ids:
        raise UserError(f"{store.path} has no {split} episodes")
    frames, labels = [], []
    for episode_id in ids:
        episode = store.load(episode_id)
        states = episode.get("states")
        if states is None or states.ndim != 2 or states.shape[1] != len(STATE_COLUMNS):
            raise UserError(f"{store.path} holds no RoboDesk states beside its frames; success labels "
                            "are read from them: collect it with `maskvit collect --env robodesk`")
        frames.append(episode["frames"])
        labels.append(np.stack([solved_in_states(states, t) for t in tasks], axis=1))
    return np.concatenate(frames), np.concatenate(labels)


def positive_weights(labels: np.ndarray) -> torch.Tensor:
    """Per task: negatives / positives, clipped to [1, MAX_POS_WEIGHT] (1 where none is positive)."""
    positives = labels.sum(axis=0).astype(np.float64)
    ratio = np.where(positives > 0, (len(labels) - positives) / np.maximum(positives, 1), 1.0)
    return torch.tensor(np.clip(ratio, 1.0, MAX_POS_WEIGHT), dtype=torch.float32)


def train_classifier(frames: np.ndarray, labels: np.ndarray, tasks: tuple[str, ...], *, steps: int,
                     batch: int, lr: float, seed: int, progress: bool = True) -> SuccessNet:
    """Adam on the weighted binary cross-entropy of every task's logit, batches drawn at random."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = SuccessNet(tasks, image_size=frames.shape[1])
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=positive_weights(labels))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    all_frames, all_labels = torch.from_numpy(frames), torch.from_numpy(labels.astype(np.float32))
    bar = tqdm(range(steps), desc="classifier", disable=not progress, unit="step")
    for _ in bar:
        index = torch.randint(len(all_frames), (batch,), generator=generator)
        x = all_frames[index]
        dx, dy = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=generator).tolist()
        x = torch.roll(x, shifts=(dy, dx), dims=(1, 2))
        loss = loss_fn(net(x), all_labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return net.eval()


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
