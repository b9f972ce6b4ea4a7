"""Model ranking (the A/B-testing use): does the mean reward per generating model order the models the
way a reference does?

The reference here is each generator's mean ground-truth quality (for AlpacaEval: the mean judge preference
over the reference output, i.e. a win rate). We report the per-model means and the Spearman and Kendall
correlations between the two orderings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.agreement import rank_correlation


def mean_by_key(values: Sequence[float], keys: Sequence[str]) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for v, k in zip(values, keys, strict=True):
        sums[k].append(float(v))
    return {k: float(np.mean(v)) for k, v in sorted(sums.items())}


def model_ranking(
    rewards: Sequence[float], reference_quality: Sequence[float], generators: Sequence[str], *, min_count: int = 1
) -> dict[str, Any]:
    """Mean reward and mean reference quality per generator (those with at least ``min_count`` rows),
    and the rank correlations between them."""
    counts: dict[str, int] = defaultdict(int)
    for g in generators:
        counts[g] += 1
    keep = [i for i, g in enumerate(generators) if counts[g] >= min_count]
    gens = [generators[i] for i in keep]
    mean_reward = mean_by_key([rewards[i] for i in keep], gens)
    mean_ref = mean_by_key([reference_quality[i] for i in keep], gens)
    names = sorted(mean_reward)
    corr = rank_correlation([mean_reward[n] for n in names], [mean_ref[n] for n in names])
    table = sorted(
        ({"generator": n, "mean_reward": mean_reward[n], "reference": mean_ref[n], "count": counts[n]} for n in names),
        key=lambda r: -r["mean_reward"],
    )
    return {"models": table, **corr}
