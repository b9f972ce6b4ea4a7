"""Length bias: does the model reward length rather than quality?

- ``length_rule_accuracy``: accuracy of the rules "the longer response wins" / "the shorter wins" on the
  same pairs (strict: equal lengths count as wrong, like tied scores). A model should beat the better rule.
- the Spearman correlation between score and response length over every scored response;
- accuracy on the pairs where the chosen response is the shorter one: a model that learned only length
  scores below 50% there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.accuracy import accuracy_with_interval, strict_correct
from rewardkit.evaluate.agreement import rank_correlation


def length_rule_accuracy(chosen_len: np.ndarray, rejected_len: np.ndarray) -> dict[str, float]:
    """Strict accuracy of 'longer wins' and 'shorter wins' (ties in length are wrong for both)."""
    chosen_len, rejected_len = np.asarray(chosen_len, float), np.asarray(rejected_len, float)
    return {
        "longer_wins": float(np.mean(chosen_len > rejected_len)) if chosen_len.size else float("nan"),
        "shorter_wins": float(np.mean(chosen_len < rejected_len)) if chosen_len.size else float("nan"),
    }


def _subset_accuracy(
    correct: np.ndarray, member: np.ndarray, clusters: Sequence[Any] | None, n_boot: int, seed: int
) -> dict[str, Any]:
    prompts = None if clusters is None else [c for c, m in zip(clusters, member, strict=True) if m]
    return accuracy_with_interval(correct[member], clusters=prompts, n_boot=n_boot, seed=seed).as_json()


def length_bias_report(
    chosen: np.ndarray,
    rejected: np.ndarray,
    chosen_len: np.ndarray,
    rejected_len: np.ndarray,
    *,
    clusters: Sequence[Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything above for (n,) score and (n,) length arrays (lengths in characters or tokens);
    ``clusters`` (the pairs' prompts) make the accuracy intervals resample prompts (``accuracy.py``)."""
    chosen_len, rejected_len = np.asarray(chosen_len, float), np.asarray(rejected_len, float)
    correct = strict_correct(chosen, rejected)
    shorter = chosen_len < rejected_len
    scores = np.concatenate([np.asarray(chosen, float), np.asarray(rejected, float)])
    lengths = np.concatenate([chosen_len, rejected_len])
    return {
        **length_rule_accuracy(chosen_len, rejected_len),
        "score_length_correlation": rank_correlation(scores, lengths),
        "accuracy_chosen_shorter": _subset_accuracy(correct, shorter, clusters, n_boot, seed),
        "accuracy_chosen_longer": _subset_accuracy(correct, chosen_len > rejected_len, clusters, n_boot, seed),
    }
