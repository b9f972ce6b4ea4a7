"""One score for a whole solution from its per-step scores: small pure functions, one rule each.

A process reward model gives each step p_i = sigmoid(logit at the step's token), the probability that the
step is sound. How a solution is ranked from them (Lightman et al. 2023 used ``product`` and ``min``;
Wang et al.'s Math-Shepherd ``min``; many PRMs in use read ``last``):

    min      min_i p_i          the weakest step: a solution is as good as its first wrong step
    product  prod_i p_i         P(every step sound) if the steps' errors were independent (longer = lower)
    mean     mean_i p_i         the average step
    last     p_n                the last step's score (a value-model reading: "will this end well")

Steps the model did not read (dropped by truncation: None) are left out; a solution with no scored step has
no aggregate (None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, get_args

StepAggregate = Literal["min", "product", "mean", "last"]
STEP_AGGREGATES: tuple[str, ...] = get_args(StepAggregate)
DEFAULT_STEP_AGGREGATE: StepAggregate = "min"
"""The aggregate a PRM is scored with unless asked otherwise (benchmarks/prm_bench.py compares them)."""


def step_min(p: Sequence[float]) -> float:
    return min(p)


def step_product(p: Sequence[float]) -> float:
    return math.prod(p)


def step_mean(p: Sequence[float]) -> float:
    return sum(p) / len(p)


def step_last(p: Sequence[float]) -> float:
    return p[-1]


AGGREGATE_FNS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": step_min,
    "product": step_product,
    "mean": step_mean,
    "last": step_last,
}


def check_step_aggregate(name: str) -> None:
    if name not in AGGREGATE_FNS:
        raise ValueError(f"step aggregate must be one of {', '.join(STEP_AGGREGATES)}, got {name!r}")


def aggregate_steps(step_scores: Sequence[float | None], how: str = DEFAULT_STEP_AGGREGATE) -> float | None:
    """The ``how`` aggregate of one solution's step scores, unscored steps (None) left out; None when none
    was scored."""
    check_step_aggregate(how)
    scored = [p for p in step_scores if p is not None]
    return AGGREGATE_FNS[how](scored) if scored else None
