"""Active-learning strategies: which candidate pairs are worth a human's time.

Each strategy is a small pure function from per-candidate numbers to a priority (higher = label sooner);
``select`` takes the top ``budget``. Candidates are pairs (a, b) of one prompt:

- ``uncertainty``: the calibrated P(a > b) closest to 0.5 (``p_a``: what ``rewardkit score`` writes as
  ``p_a_better``), priority ``-|p - 0.5|``. With a temperature-only calibration P = sigmoid((s_a - s_b) / T)
  this orders pairs exactly as ``margin`` does; it differs when probabilities come from elsewhere (a served
  ``/v1/compare``, an ensemble's averaged probability).
- ``disagreement``: how much ensemble members disagree about the pair: the std over members of the member
  margins s_a - s_b when the members' scores are known, else sqrt(std_a^2 + std_b^2) from the per-response
  ensemble stds (members treated as independent per response).
- ``margin``: the smallest raw score gap ``|s_a - s_b|``, priority ``-|s_a - s_b|``.
- ``diversity``: one pick per cluster of prompt embeddings (k-means, k = budget), the member nearest each
  centroid: covers the prompt space instead of piling the budget onto one confusing topic.
- ``random``: a uniform sample (the baseline every other strategy must beat).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STRATEGIES: tuple[str, ...] = ("uncertainty", "disagreement", "margin", "diversity", "random")


def uncertainty_priority(p_a: Sequence[float]) -> np.ndarray:
    """(n,) calibrated P(a > b) -> (n,) priority -|p - 0.5| (0 is the most uncertain)."""
    return -np.abs(np.asarray(p_a, dtype=np.float64) - 0.5)


def margin_priority(score_a: Sequence[float], score_b: Sequence[float]) -> np.ndarray:
    """(n,) scores of a and b -> (n,) priority -|s_a - s_b|."""
    return -np.abs(np.asarray(score_a, dtype=np.float64) - np.asarray(score_b, dtype=np.float64))


def disagreement_priority(
    *,
    member_margins: Sequence[Sequence[float]] | None = None,
    std_a: Sequence[float] | None = None,
    std_b: Sequence[float] | None = None,
) -> np.ndarray:
    """Ensemble disagreement per pair: ``member_margins`` (n, m) member score gaps -> their std over the m
    members (population std); or, lacking member scores, sqrt(std_a^2 + std_b^2) from per-response stds."""
    if member_margins is not None:
        margins = np.asarray(member_margins, dtype=np.float64)
        if margins.ndim != 2 or margins.shape[1] < 2:
            raise ValueError(f"member_margins must be (pairs, members >= 2), got shape {margins.shape}")
        return margins.std(axis=1)
    if std_a is None or std_b is None:
        raise ValueError("disagreement needs member margins or both per-response stds (an ensemble's scores)")
    a, b = np.asarray(std_a, dtype=np.float64), np.asarray(std_b, dtype=np.float64)
    return np.sqrt(a * a + b * b)


def kmeans(points: np.ndarray, k: int, *, seed: int = 0, iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Plain Lloyd's k-means with k-means++ seeding: (n, d) points -> ((k, d) centroids, (n,) assignment)."""
    rng = np.random.default_rng(seed)
    n = len(points)
    k = min(k, n)
    centroids = [points[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.asarray(centroids)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        # every point equal to a centroid already: any pick is as good as another
        centroids.append(points[rng.choice(n, p=d2 / total)] if total > 0 else points[rng.integers(n)])
    centres = np.asarray(centroids, dtype=np.float64)
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1)  # (n, k)
        new = d2.argmin(axis=1)
        if _ > 0 and np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = points[assign == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    return centres, assign


def diversity_pick(embeddings: np.ndarray, budget: int, *, seed: int = 0) -> np.ndarray:
    """(n, d) prompt embeddings -> indices of ``min(budget, n)`` candidates, in pick order: first the member
    nearest each k-means centroid (k = budget), then, where clusters came out empty or tiny (many identical
    prompts), the next-nearest members cluster by cluster until the budget is spent."""
    points = np.asarray(embeddings, dtype=np.float64)
    if budget >= len(points):
        return np.arange(len(points))
    centres, assign = kmeans(points, budget, seed=seed)
    queues = []
    for c in range(len(centres)):
        members = np.flatnonzero(assign == c)
        d2 = ((points[members] - centres[c]) ** 2).sum(-1)
        queues.append(members[np.argsort(d2, kind="stable")].tolist())
    picks: list[int] = []
    depth = 0
    while len(picks) < budget:
        for queue in queues:
            if depth < len(queue) and len(picks) < budget:
                picks.append(int(queue[depth]))
        depth += 1
    return np.asarray(picks, dtype=np.int64)


def top(priority: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the ``budget`` highest priorities, highest first (ties: the earlier candidate first)."""
    order = np.argsort(-np.asarray(priority, dtype=np.float64), kind="stable")
    return order[: max(0, budget)]


def random_pick(n: int, budget: int, *, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)[: max(0, budget)]
