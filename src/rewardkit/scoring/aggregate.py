"""Conservative ensemble rewards (Coste et al., 2023, "Reward Model Ensembles Help Mitigate Overoptimization").

A policy optimized against one reward model finds the responses that model over-rates. An ensemble's members
disagree most exactly there, so a reward that is penalized by the disagreement is harder to exploit:

- ``mean``: the members' mean (what the scorer always served);
- ``uwo`` (uncertainty-weighted optimization): mean - lambda * std over members, a tunable middle ground;
- ``wco`` (worst-case optimization): the lowest member, the most conservative.

Members' scores must be comparable, i.e. standardized with each member's own reference mean/std
(``rewardkit.model.ensemble.standardize``; Bradley-Terry leaves each member's offset and scale arbitrary), which
is what ``BatchScorer.score_encoded`` returns. With one member all three are the member's score (std is 0).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

Aggregate = Literal["mean", "uwo", "wco"]
AGGREGATES: tuple[str, ...] = get_args(Aggregate)

# Coste et al. sweep lambda over {0.01 .. 1} for UWO and report their best gold-reward results around 0.1-0.5
# depending on the KL budget; 0.5 is a penalty that visibly changes the optimum (half a member-std) without
# dominating the mean at the member std our 3-5 member ensembles show (about 0.2-0.5 reference stds)
DEFAULT_UWO_LAMBDA = 0.5


def check_aggregate(aggregate: str, uwo_lambda: float) -> None:
    """ValueError naming the option for an unknown aggregate or a negative/non-finite lambda."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}; got {aggregate!r}")
    if not np.isfinite(uwo_lambda) or uwo_lambda < 0:
        raise ValueError(f"uwo_lambda must be a finite number >= 0; got {uwo_lambda}")


def member_std(member_scores: np.ndarray) -> np.ndarray:
    """(N,) std over members (ddof 0, as the scorer's ``uncertainty``): the population of members, not a sample."""
    return np.asarray(member_scores, dtype=np.float64).std(axis=0)


def uwo(mean: np.ndarray, std: np.ndarray, uwo_lambda: float) -> np.ndarray:
    """mean - lambda * std, elementwise."""
    return np.asarray(mean) - uwo_lambda * np.asarray(std)


def combine(
    member_scores: np.ndarray, aggregate: Aggregate = "mean", uwo_lambda: float = DEFAULT_UWO_LAMBDA
) -> np.ndarray:
    """(N,) reward of (M, N) standardized member scores: the members' mean, mean - lambda * std, or their min."""
    check_aggregate(aggregate, uwo_lambda)
    scores = np.asarray(member_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 1:
        raise ValueError(f"member_scores must be (members, rows) with at least one member; got shape {scores.shape}")
    if aggregate == "wco":
        return scores.min(axis=0)
    mean = scores.mean(axis=0)
    return mean if aggregate == "mean" else uwo(mean, member_std(scores), uwo_lambda)
