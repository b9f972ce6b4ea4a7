"""Which scored rows ``rewardkit filter`` keeps: pure functions over arrays of scores and prompt keys.

Every rule works on two arrays a pass over the scored rows can collect in constant memory per row: ``scores``
(n,) and, for per-prompt rules, ``groups`` (n,) integer ids of the rows' prompts (equal prompt, equal id).
A rule returns a boolean keep mask (n,) or, for preference pairs, (chosen, rejected) row indices; the caller
streams the rows a second time and writes the ones selected, in input order.

Ties are broken by position, always the same way: the earlier row ranks higher. So a selection is a function
of the scores and the row order alone, and the local and Ray engines (which see the same rows in the same
order) select the same rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

KEEP_HELP = (
    "top:P% (the highest-scoring P percent of all rows), top:N (the N highest), threshold:X (score >= X), "
    "best-per-prompt, top-k-per-prompt:K"
)


@dataclass(frozen=True)
class KeepRule:
    """A parsed ``--keep``: ``kind`` is top, threshold or per-prompt; ``value`` a fraction (top with
    ``percent``), a count (top, per-prompt) or a score (threshold)."""

    kind: str
    value: float
    percent: bool = False

    @property
    def per_prompt(self) -> bool:
        return self.kind == "per-prompt"


def parse_keep(spec: str) -> KeepRule:
    """``--keep`` text -> KeepRule, or a ValueError naming what was expected."""
    text = spec.strip().lower()
    if text == "best-per-prompt":
        return KeepRule("per-prompt", 1)
    if m := re.fullmatch(r"top-k-per-prompt:(\d+)", text):
        if int(m[1]) < 1:
            raise ValueError(f"--keep {spec}: K must be at least 1")
        return KeepRule("per-prompt", int(m[1]))
    if m := re.fullmatch(r"top:([0-9.]+)(%?)", text):
        try:
            value = float(m[1])
        except ValueError:
            raise ValueError(f"--keep {spec}: expected a number after top:") from None
        if m[2]:
            if not 0 < value <= 100:
                raise ValueError(f"--keep {spec}: a percentage must be above 0 and at most 100")
            return KeepRule("top", value / 100, percent=True)
        if value < 1 or value != int(value):
            raise ValueError(f"--keep {spec}: top:N needs a whole number of rows >= 1 (or a percentage: top:20%)")
        return KeepRule("top", value)
    if m := re.fullmatch(r"threshold:(.+)", text):
        try:
            value = float(m[1])
        except ValueError:
            raise ValueError(f"--keep {spec}: expected a number after threshold:, got {m[1]!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"--keep {spec}: the threshold must be a finite number")
        return KeepRule("threshold", value)
    raise ValueError(f"--keep {spec!r}: expected one of {KEEP_HELP}")


def top_count(n: int, rule: KeepRule) -> int:
    """How many of n rows a top rule keeps: ceil(P * n) for a percentage (a row is never split, and a
    non-empty input with P > 0 keeps at least one), at most n."""
    if rule.percent:
        return min(n, math.ceil(round(rule.value * n, 9)))  # round: 0.2 * 10 is 2.0000000000000004
    return min(n, int(rule.value))


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Row indices from the highest score to the lowest, an earlier row first among equal scores."""
    return np.lexsort((np.arange(len(scores)), -scores))


def keep_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k highest-scoring rows (ties: the earlier rows)."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[rank_order(scores)[:k]] = True
    return mask


def keep_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of the rows scoring at least ``threshold`` (a NaN score is never kept)."""
    return scores >= threshold


def group_order(scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Row indices sorted by group, then score descending, then position: each group's rows best first."""
    return np.lexsort((np.arange(len(scores)), -scores, groups))


def rank_in_group(scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n,) each row's 0-based rank within its prompt's rows (0: the best; ties: the earlier row)."""
    order = group_order(scores, groups)
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    # position in the sorted array minus the start of its group's run
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(len(order)) - run_start
    return ranks


def keep_top_per_prompt(scores: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Mask of each prompt's k best rows (best-of-N selection: k=1)."""
    return rank_in_group(scores, groups) < k if len(scores) else np.zeros(0, dtype=bool)


def preference_pairs(scores: np.ndarray, groups: np.ndarray, min_margin: float) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rejected) row indices, one pair per prompt with at least two rows whose best and worst scores
    differ by at least ``min_margin``: the best row (ties: the earlier) against the worst (ties: the later).
    Pairs come in the order of their prompt's first row. This is how on-policy DPO pairs are built from N
    samples per prompt; a small margin means the reward model cannot tell them apart, so no pair."""
    if not len(scores):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = group_order(scores, groups)
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    ends = np.r_[starts[1:], len(order)] - 1
    best, worst = order[starts], order[ends]
    # the worst run's last element is the LATER row among equal worst scores (position ascends within ties)
    ok = (ends > starts) & (scores[best] - scores[worst] >= min_margin)
    best, worst = best[ok], worst[ok]
    first_row = np.minimum.reduceat(order, starts)[ok]  # each pair's prompt: where it first appears
    by_first = np.argsort(first_row, kind="stable")
    return best[by_first], worst[by_first]


def select(rule: KeepRule, scores: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """The keep mask of ``rule`` over (n,) scores (and prompt ``groups`` for per-prompt rules)."""
    if rule.kind == "top":
        return keep_top(scores, top_count(len(scores), rule))
    if rule.kind == "threshold":
        return keep_threshold(scores, rule.value)
    if groups is None:
        raise ValueError("a per-prompt rule needs the rows' prompt groups")
    return keep_top_per_prompt(scores, groups, int(rule.value))


def histogram(scores: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the finite scores, for the summary's before/after plot."""
    finite = scores[np.isfinite(scores)]
    if not len(finite):
        return np.zeros(bins, dtype=np.int64), np.linspace(0, 1, bins + 1)
    return np.histogram(finite, bins=bins)
