"""Per-task success classifiers for RoboDesk frames, and VP2's planning cost built on them.

VP2 scores a RoboDesk plan by 0.5 × the summed squared pixel error to the goal image plus
10 × the summed logit of a per-task success classifier over the predicted frames, with
classifier weights it downloads (trained on its own data). These machines reach no
downloads, so `maskvit train-classifier` trains ours on our own episode store: every frame
is labelled by the tasks' success predicates read from the state saved beside it
(`maskvit.sim.desk_world.solved_in_states`).

One small strided conv net with one logit per task, not one net per task: the tasks share
what a frame shows (arm, desk), a CPU trains one net in minutes, and planning runs it on
M × H frames per replan (a few MFLOP a frame, ~1/50 of decoding those frames).
The weights are a safetensors file beside a JSON of the tasks and settings: nothing is
unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from maskvit.atomic import atomic_write, atomic_write_json
from maskvit.errors import UserError
from maskvit.plan.planner import pixel_l2_cost

CLASSIFIER_FORMAT = "maskvit-success-classifier-v1"
WEIGHTS_FILE = "classifier.safetensors"
META_FILE = "classifier.json"
# VP2's RoboDesk objective (combined_classifier_mse): reward = −0.5 × SE + 10 × Σ logits.
# Our pixel_l2 is SE and MPPI's γ is VP2's × 0.5 (maskvit/presets/robodesk64.yaml), so the
# same objective in our units is SE − 20 × Σ logits.
VP2_LOGIT_WEIGHT = 20.0


class SuccessNet(nn.Module):
    """uint8 frames (N, S, S, 3) → one success logit per task (N, len(tasks)).

    Four 3×3 stride-2 convolutions (S → S/16) and a two-layer head."""

    kind = "success"  # what its outputs are; a reach reader (`maskvit.plan.reach_reader`) reads distances

    def __init__(self, tasks: tuple[str, ...], image_size: int = 64, width: int = 32):
        super().__init__()
        if image_size % 16:
            raise UserError(f"a success classifier needs frames whose size divides by 16, got {image_size}")
        self.tasks, self.image_size, self.width = tuple(tasks), image_size, width
        channels = [3, width, 2 * width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        side = image_size // 16
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(channels[-1] * side * side, 128), nn.ReLU(),
                                  nn.Linear(128, len(self.tasks)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(self.features(x))

    @torch.no_grad()
    def logits(self, frames: np.ndarray, task: str, batch: int = 1024) -> np.ndarray:
        """float32 logits of `task` for uint8 frames of any leading shape (..., S, S, 3)."""
        index = self.task_index(task)
        flat = np.ascontiguousarray(frames).reshape(-1, *frames.shape[-3:])
        out = [self(torch.from_numpy(flat[i:i + batch]))[:, index] for i in range(0, len(flat), batch)]
        return torch.cat(out).numpy().reshape(frames.shape[:-3]) if out else np.zeros(frames.shape[:-3], np.float32)

    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise UserError(f"this success classifier knows {', '.join(self.tasks)}, not {task!r}")
        return self.tasks.index(task)


@dataclass
class ClassifierCost:
    """VP2's RoboDesk planning cost: Σ_i c_i ‖frame_i − goal‖² − logit_weight × Σ_i c_i logit_i.

    A `FrameCost` (`maskvit.plan.planner`) for one task: frames (M, H, S, S, 3) uint8."""

    net: SuccessNet
    task: str
    logit_weight: float = VP2_LOGIT_WEIGHT

    def __post_init__(self) -> None:
        if self.net.kind != "success":
            raise UserError(f"plan.cost=pixel_l2_classifier needs a success classifier, not a {self.net.kind} "
                            "reader (maskvit train-classifier --kind success)")
        self.net.task_index(self.task)

    def __call__(self, frames: np.ndarray, goal: np.ndarray, weights: np.ndarray) -> np.ndarray:
        logits = self.net.logits(frames, self.task)  # (M, H)
        return pixel_l2_cost(frames, goal, weights) - self.logit_weight * (logits @ np.asarray(weights, np.float32))


# ---------------------------------------------------------------- files

def save_classifier(net: SuccessNet, folder: str | Path, info: dict[str, Any]) -> None:
    """The weights (safetensors) and the JSON that rebuilds the net, each written atomically;
    the JSON last, so a folder with a JSON holds finished weights."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(folder / WEIGHTS_FILE, lambda f: f.write(save(state)))
    targets = {"reach_targets": net.targets} if net.kind == "reach" else {}
    atomic_write_json(folder / META_FILE, {"format": CLASSIFIER_FORMAT, "kind": net.kind, "tasks": list(net.tasks),
                                           "image_size": net.image_size, "width": net.width, **targets, **info})


def load_classifier(folder: str | Path) -> SuccessNet:
    """The classifier `maskvit train-classifier` wrote to `folder` (a `SuccessNet`, or a
    `ReachNet` for `--kind reach`); one-line errors for a missing, damaged or foreign folder."""
    from maskvit.plan.reach_reader import REACH_TARGETS, ReachNet
    from maskvit.run_dir import read_tensors

    kinds = {net.kind: net for net in (SuccessNet, ReachNet)}
    folder = Path(folder)
    fix = "train one with `maskvit train-classifier --data STORE --out DIR`"
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise UserError(f"no success classifier in {folder} (no {META_FILE}); {fix}")
    try:
        meta = json.loads(meta_path.read_text())
        tasks, size, width = tuple(meta["tasks"]), int(meta["image_size"]), int(meta["width"])
        if meta.get("format") != CLASSIFIER_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        kind = meta.get("kind", "success")  # files written before reach readers have none
        if kind not in kinds:
            raise ValueError(f"kind {kind!r}")
        targets = meta.get("reach_targets", "object")  # readers from before the choice: object
        if kind == "reach" and targets not in REACH_TARGETS:
            raise ValueError(f"reach targets {targets!r}")
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{meta_path} is damaged or not a success classifier ({err}); {fix}") from None
    net = kinds[kind](tasks, size, width)
    if kind == "reach":
        net.targets = targets
    try:
        net.load_state_dict(read_tensors(folder / WEIGHTS_FILE))
    except (UserError, RuntimeError) as err:  # missing, damaged, or another architecture's
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"the weights in {folder / WEIGHTS_FILE} cannot be read ({first}); {fix}") from None
    return net.eval()
