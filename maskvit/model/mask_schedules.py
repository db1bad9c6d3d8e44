"""Mask scheduling functions γ (paper §3.4, Fig. 3).

γ maps decoding progress r ∈ [0, 1] to the fraction of future tokens still masked, with
γ(0) = 1 and γ(1) = 0, monotonically decreasing. Concave: cosine, square, cubic,
exponential; linear; convex: sqrt. Pure functions, no model inside.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from maskvit.errors import UserError

EXPONENTIAL_RATE = 3.0  # k in (e^k − e^{k r}) / (e^k − 1); larger = flatter start


def cosine(r: float) -> float:
    return math.cos(math.pi / 2 * r)


def square(r: float) -> float:
    return 1.0 - r**2


def cubic(r: float) -> float:
    return 1.0 - r**3


def exponential(r: float) -> float:
    k = EXPONENTIAL_RATE
    return (math.exp(k) - math.exp(k * r)) / (math.exp(k) - 1.0)


def linear(r: float) -> float:
    return 1.0 - r


def sqrt(r: float) -> float:
    return 1.0 - math.sqrt(r)


SCHEDULES: dict[str, Callable[[float], float]] = {
    "cosine": cosine, "square": square, "cubic": cubic,
    "exponential": exponential, "linear": linear, "sqrt": sqrt,
}


def get_schedule(name: str) -> Callable[[float], float]:
    if name not in SCHEDULES:
        raise UserError(f"unknown mask schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def masked_counts(name: str, steps: int, total: int) -> list[int]:
    """Tokens still masked after each of `steps` decoding steps: ceil(γ(s/T)·N), s = 1..T.

    Clamped so it never increases; the last entry is 0, so decoding always finishes.
    """
    gamma = get_schedule(name)
    counts, previous = [], total
    for s in range(1, steps + 1):
        # The small epsilon absorbs float error (γ(1) = 6e-17 for cosine, not 0).
        n = math.ceil(gamma(s / steps) * total - 1e-9)
        previous = max(0, min(previous, n))
        counts.append(previous)
    counts[-1] = 0
    return counts
