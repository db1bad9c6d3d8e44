"""Shared test settings: few threads (CI has 2 cores) and tiny configs."""

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread is fastest and spares the other core


@pytest.fixture
def tiny_transformer_config():
    from maskvit.config import TransformerConfig

    return TransformerConfig(
        num_frames=4, context_frames=1, tokens_h=4, tokens_w=4, codebook_size=8,
        spatial_window=(1, 4, 4), spatiotemporal_window=(0, 2, 2), depth=2, heads=2,
        dim=32, mlp_dim=64, dropout=0.0, action_dim=0,
    )


@pytest.fixture
def count_cost_calls(monkeypatch):
    """`count_cost_calls(CostClass)` → a list that records (task, frames shape) of every call of
    that per-task planning cost while the test runs: proof that `plan` scored the model's frames
    with it."""

    def install(cost_class) -> list[tuple[str, tuple[int, ...]]]:
        calls: list[tuple[str, tuple[int, ...]]] = []
        original = cost_class.__call__

        def counted(self, frames, goal, weights):
            calls.append((self.task, frames.shape))
            return original(self, frames, goal, weights)

        monkeypatch.setattr(cost_class, "__call__", counted)
        return calls

    return install
