"""Pairwise accuracy: strict (a tie in score counts as wrong, the RewardBench rule), per group, with 95%
intervals that respect how the pairs were sampled.

    >>> strict_correct(np.array([2.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.7])).tolist()
    [True, False, False]

**Intervals.** Pairs that share a prompt are not independent (AlpacaEval's 600 test pairs come from 128
prompts): a prompt the model finds easy makes all its pairs right together. Resampling pairs one by one
then pretends there are 600 independent draws and gives too narrow an interval. So the bootstrap resamples
**prompts** (a cluster bootstrap: draw prompts with replacement, accuracy = correct pairs / pairs over the
drawn prompts). Where the bootstrap cannot work it gives way to a **Wilson score interval**:

- at an accuracy of exactly 0 or 1 every resample gives the same value, so the bootstrap says [1, 1] for
  28 of 28 right, as if 100% were certain (Wilson: [0.879, 1]);
- with fewer than ``MIN_BOOTSTRAP_CLUSTERS`` prompts the percentile bootstrap is known to be too narrow.

Wilson is computed on the *effective* number of pairs ``n_eff = n^2 / sum_c m_c^2`` (``m_c`` pairs of
prompt c): n when every pair has its own prompt, the number of prompts when they are equal-sized, i.e. the
sample size if the pairs of a prompt were perfectly correlated. That is the cautious choice, since at 0 or 1
the data cannot tell how correlated they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

MIN_BOOTSTRAP_CLUSTERS = 30
"""Below this many prompts (or pairs, without prompts) an interval is Wilson's, not the bootstrap's."""


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with its 95% interval over ``n`` pairs from ``clusters`` prompts; ``method`` says how the
    interval was made: 'cluster bootstrap', 'bootstrap' (every pair its own prompt) or 'wilson'."""

    accuracy: float
    low: float
    high: float
    n: int
    method: str = "bootstrap"
    clusters: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def strict_correct(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """(n,) bool: the chosen response scored strictly higher. Equal scores are wrong: a model that gives
    everything the same score must not get 50% for free."""
    chosen, rejected = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if chosen.shape != rejected.shape:
        raise ValueError(f"chosen and rejected scores differ in shape: {chosen.shape} vs {rejected.shape}")
    return chosen > rejected


def cluster_index(clusters: Sequence[Any] | None, n: int) -> np.ndarray:
    """(n,) int cluster number of each row (first appearance order); every row its own cluster for None."""
    if clusters is None:
        return np.arange(n)
    labels = list(clusters)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} cluster labels for {n} rows")
    numbers: dict[Any, int] = {}
    return np.asarray([numbers.setdefault(c, len(numbers)) for c in labels], dtype=int)


def bootstrap_interval(
    values: np.ndarray, *, clusters: Sequence[Any] | None = None, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (n,). With ``clusters`` (n labels: the
    prompt of each row) whole clusters are resampled with replacement and the mean is taken over the rows of
    the drawn clusters; without, every row is its own cluster. Empty input gives (nan, nan)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    index = cluster_index(clusters, values.size)
    sums = np.bincount(index, weights=values)  # (C,) per-cluster sum and size
    sizes = np.bincount(index).astype(float)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // sums.size)  # (chunk, C) index arrays keep memory bounded for large C
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, sums.size, size=(stop - start, sums.size))
        means[start:stop] = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def wilson_interval(successes: float, n: float, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` (n may be an effective, non-integer size):
    centre (p + z^2/2n) / (1 + z^2/n), half-width z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + level / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z / denom * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def effective_n(clusters: Sequence[Any] | None, n: int) -> float:
    """n^2 / sum of squared cluster sizes: n for singletons, the number of clusters when equal-sized."""
    sizes = np.bincount(cluster_index(clusters, n)).astype(float)
    return float(n * n / np.sum(sizes * sizes)) if n else 0.0


def proportion_interval(
    hits: np.ndarray, *, clusters: Sequence[Any] | None = None, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, str]:
    """95% interval of a share of 0/1 ``hits`` (n,) and the method used (module docstring): the cluster
    bootstrap, or Wilson on the effective n at a share of 0 or 1 or with few clusters."""
    hits = np.asarray(hits, dtype=float)
    if hits.size == 0:
        return float("nan"), float("nan"), "none"
    n_clusters = int(cluster_index(clusters, hits.size).max()) + 1
    share = float(hits.mean())
    if share in (0.0, 1.0) or n_clusters < MIN_BOOTSTRAP_CLUSTERS:
        n_eff = effective_n(clusters, hits.size)
        return (*wilson_interval(share * n_eff, n_eff), "wilson")
    low, high = bootstrap_interval(hits, clusters=clusters, n_boot=n_boot, seed=seed)
    return low, high, "bootstrap" if n_clusters == hits.size else "cluster bootstrap"


def accuracy_with_interval(
    correct: np.ndarray, *, clusters: Sequence[Any] | None = None, n_boot: int = 1000, seed: int = 0
) -> Accuracy:
    """Accuracy of (n,) 0/1 ``correct`` with its interval; ``clusters`` are the pairs' prompts."""
    correct = np.asarray(correct, dtype=float)
    low, high, method = proportion_interval(correct, clusters=clusters, n_boot=n_boot, seed=seed)
    acc = float(correct.mean()) if correct.size else float("nan")
    n_clusters = int(cluster_index(clusters, correct.size).max()) + 1 if correct.size else 0
    return Accuracy(acc, low, high, int(correct.size), method, n_clusters)


def accuracy_by_group(
    correct: np.ndarray,
    groups: Sequence[str],
    *,
    clusters: Sequence[Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Accuracy]:
    """Accuracy per distinct group label (sorted), each with its own interval over its own prompts."""
    correct = np.asarray(correct, dtype=float)
    labels = np.asarray(list(groups), dtype=object)
    if labels.shape[0] != correct.shape[0]:
        raise ValueError(f"{labels.shape[0]} group labels for {correct.shape[0]} pairs")
    prompts = None if clusters is None else np.asarray(list(clusters), dtype=object)
    out = {}
    for g in sorted(set(labels.tolist())):
        member = labels == g
        out[str(g)] = accuracy_with_interval(
            correct[member], clusters=None if prompts is None else prompts[member].tolist(), n_boot=n_boot, seed=seed
        )
    return out
