"""Synthetic score aggregates, as the service would log them, for the monitoring tests.

Scores are "perfect" normal samples (the n quantiles at (k + 0.5) / n), not random draws, so each window's
histogram, mean and PSI can be worked out by hand: see test_monitor_store.py for the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from rewardkit.model.reference import bin_counts, fit_reference
from rewardkit.store import session_scope
from rewardkit.store.score_log import add_score_aggregates, put_score_reference

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # the first synthetic minute
UNCERTAIN_AT = 0.5  # the service's uncertainty threshold in these tests


def perfect_normal(n: int, mean: float, std: float) -> np.ndarray:
    return mean + std * stats.norm.ppf((np.arange(n) + 0.5) / n)


def minute_rows(
    model_version: str,
    route: str,
    start: datetime,
    scores: np.ndarray,
    edges: Sequence[float],
    *,
    minutes: int = 60,
    uncertainty: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The scores spread over ``minutes`` minute rows (shuffled, seeded), each a partial sum as one replica's
    flush; every third minute split into two rows, as two replicas would write it."""
    order = np.random.default_rng(seed).permutation(scores.size)
    scores = scores[order]
    uncertainty = uncertainty[order] if uncertainty is not None else None
    lengths = lengths[order] if lengths is not None else np.full(scores.size, 100.0)
    rows = []
    for m, idx in enumerate(np.array_split(np.arange(scores.size), minutes)):
        parts = np.array_split(idx, 2) if m % 3 == 0 else [idx]
        for part in parts:
            s = scores[part]
            u = uncertainty[part] if uncertainty is not None else None
            rows.append(
                {
                    "model_version": model_version,
                    "route": route,
                    "minute": start + timedelta(minutes=m),
                    "count": int(s.size),
                    "total": float(s.sum()),
                    "total_sq": float((s * s).sum()),
                    "edges": list(edges),
                    "histogram": bin_counts(s, edges).tolist(),
                    "uncertain": int((u >= UNCERTAIN_AT).sum()) if u is not None else 0,
                    "uncertainty_total": float(u.sum()) if u is not None else 0.0,
                    "uncertainty_count": int(u.size) if u is not None else 0,
                    "length_total": float(lengths[part].sum()),
                }
            )
    return rows


def reference_4() -> dict[str, Any]:
    """A 4-bin reference fitted on a perfect N(0, 1) sample of 4,000: edges at about -0.6745, 0, 0.6745 (the
    quartiles), proportions 0.25 each."""
    return fit_reference(perfect_normal(4000, 0.0, 1.0), bins=4)


def drift_rows(reference: dict[str, Any], model_version: str = "rm-v1") -> list[dict[str, Any]]:
    """12 hours of /v1/score from T0, 1,200 scores an hour: N(0, 1) for 6 hours, then N(1, 1) (+1 std)."""
    rows = []
    for hour in range(12):
        scores = perfect_normal(1200, 0.0 if hour < 6 else 1.0, 1.0)
        uncertainty = np.where(np.arange(1200) % 10 == 0, 0.8, 0.2)  # 10% at or over UNCERTAIN_AT
        lengths = np.full(1200, 400.0)
        start = T0 + timedelta(hours=hour)
        rows += minute_rows(
            model_version, "/v1/score", start, scores, reference["edges"], uncertainty=uncertainty, lengths=lengths
        )
    return rows


def rl_rows(
    reference: dict[str, Any], model_version: str = "rm-rl", *, reward_step: float, length_step: float, hours: int = 10
) -> list[dict[str, Any]]:
    """A simulated RL run on /get_reward from T0: 600 rollouts an hour, the mean reward rising by
    ``reward_step`` an hour and the mean response length by ``length_step`` characters an hour from 500."""
    rows = []
    for hour in range(hours):
        scores = perfect_normal(600, reward_step * hour, 1.0)
        lengths = 500.0 + length_step * hour + np.linspace(-50, 50, 600)
        uncertainty = np.full(600, 0.3)
        rows += minute_rows(
            model_version,
            "/get_reward",
            T0 + timedelta(hours=hour),
            scores,
            reference["edges"],
            uncertainty=uncertainty,
            lengths=lengths,
            seed=hour,
        )
    return rows


def fill_store(factory: Any, references: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    with session_scope(factory) as session:
        for model_version, reference in references.items():
            put_score_reference(session, model_version=model_version, reference=reference)
        add_score_aggregates(session, rows)
