"""Pairwise accuracy: strict (a tie in score counts as wrong, the RewardBench rule), per group, with
percentile-bootstrap 95% intervals.

    >>> strict_correct(np.array([2.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.7])).tolist()
    [True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with its bootstrap interval; ``n`` pairs."""

    accuracy: float
    low: float
    high: float
    n: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def strict_correct(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """(n,) bool: the chosen response scored strictly higher. Equal scores are wrong: a model that gives
    everything the same score must not get 50% for free."""
    chosen, rejected = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if chosen.shape != rejected.shape:
        raise ValueError(f"chosen and rejected scores differ in shape: {chosen.shape} vs {rejected.shape}")
    return chosen > rejected


def bootstrap_interval(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (n,): resample n rows with replacement
    ``n_boot`` times. Empty input gives (nan, nan); one row gives (v, v)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # (n_boot, n) indices in chunks keep memory bounded for large n
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def accuracy_with_interval(correct: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> Accuracy:
    correct = np.asarray(correct, dtype=float)
    low, high = bootstrap_interval(correct, n_boot=n_boot, seed=seed)
    acc = float(correct.mean()) if correct.size else float("nan")
    return Accuracy(acc, low, high, int(correct.size))


def accuracy_by_group(correct: np.ndarray, groups: Sequence[str], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Accuracy]:
    """Accuracy per distinct group label (sorted), each with its own interval."""
    correct = np.asarray(correct, dtype=float)
    labels = np.asarray(list(groups), dtype=object)
    if labels.shape[0] != correct.shape[0]:
        raise ValueError(f"{labels.shape[0]} group labels for {correct.shape[0]} pairs")
    return {str(g): accuracy_with_interval(correct[labels == g], n_boot=n_boot, seed=seed) for g in sorted(set(labels.tolist()))}
