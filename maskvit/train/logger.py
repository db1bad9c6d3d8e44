"""Training logs: TensorBoard events, `metrics.jsonl` for scripts, a tqdm progress bar.

Only the main process (rank 0) writes anything; other ranks get a logger that does
nothing, so the training loop never branches on rank to log.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from maskvit.atomic import atomic_write_text

# Headline numbers shown on the progress bar, in this order, when present.
HEADLINE = ("loss", "accuracy", "lr", "grad_norm", "tokens_per_s")


class MetricLogger:
    """Writes scalars to TensorBoard and metrics.jsonl; shows a progress bar."""

    def __init__(self, out: Path | None, *, total_steps: int, start_step: int,
                 enabled: bool = True, progress: bool = True,
                 tensorboard: bool = True) -> None:
        self.enabled = enabled and out is not None
        self._jsonl = None
        self._tb = None
        self._bar = None
        self._postfix: dict[str, str] = {}
        if not self.enabled:
            return
        _drop_records_after(out / "metrics.jsonl", start_step)  # a resumed run rewrites them
        self._jsonl = open(out / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self._tb = SummaryWriter(log_dir=str(out / "tb"), purge_step=start_step + 1)
        if progress:
            self._bar = tqdm(total=total_steps, initial=start_step, unit="step",
                             dynamic_ncols=True, desc="train")

    def log(self, step: int, metrics: dict[str, float], split: str = "train") -> None:
        """Record `metrics` for `step` (1-based count of optimizer steps done)."""
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in metrics.items()}
        record: dict[str, Any] = {"step": step, "split": split, **clean}
        self._jsonl.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in clean.items():
                if math.isfinite(value):
                    self._tb.add_scalar(f"{split}/{key}", value, step)
        if self._bar is not None:
            self._postfix.update({("val_" if split != "train" else "") + k: _short(clean[k])
                                  for k in HEADLINE if k in clean})
            self._bar.set_postfix(self._postfix, refresh=False)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def message(self, text: str) -> None:
        """A line for the user on stderr (above the progress bar, if any)."""
        if self.enabled:
            tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
        if self._jsonl is not None:
            self._jsonl.close()


def _short(value: float) -> str:
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def read_metrics(out: Path, split: str | None = "train") -> list[dict[str, Any]]:
    """Records of `RUN/metrics.jsonl` (optionally one split), for scripts and tests."""
    path = Path(out) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def _drop_records_after(path: Path, step: int) -> None:
    """Forget records past `step` (logged after the checkpoint a run resumes from)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))
