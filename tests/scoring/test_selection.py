"""``rewardkit.scoring.selection`` against tables worked out by hand.

The table used throughout (ties: the earlier row ranks higher):

    row  prompt  score   rank overall  rank in its prompt
    0    A        0.5    3             2  (A: row 1, row 3, row 0)
    1    A        2.0    0             0  (ties row 3, earlier)
    2    B       -1.0    5             1
    3    A        2.0    1             1
    4    B        1.0    2             0
    5    C        0.0    4             0
"""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.scoring.selection import (
    KeepRule,
    keep_threshold,
    keep_top,
    keep_top_per_prompt,
    parse_keep,
    preference_pairs,
    rank_in_group,
    rank_order,
    select,
    top_count,
)

SCORES = np.array([0.5, 2.0, -1.0, 2.0, 1.0, 0.0])
GROUPS = np.array([10, 10, 20, 10, 20, 30], dtype=np.uint64)  # A=10, B=20, C=30


def test_rank_order_breaks_ties_by_position() -> None:
    assert rank_order(SCORES).tolist() == [1, 3, 4, 0, 5, 2]


@pytest.mark.parametrize(
    ("k", "kept"),
    [(0, []), (1, [1]), (2, [1, 3]), (3, [1, 3, 4]), (6, [0, 1, 2, 3, 4, 5])],
)
def test_keep_top_k(k: int, kept: list[int]) -> None:
    assert np.flatnonzero(keep_top(SCORES, k)).tolist() == kept


def test_top_percent_rounds_up_and_never_exceeds_n() -> None:
    assert top_count(6, parse_keep("top:20%")) == 2  # 1.2 rows -> 2
    assert top_count(10, parse_keep("top:20%")) == 2  # exactly 2, not 3 (0.2 * 10 = 2.0000000000000004)
    assert top_count(6, parse_keep("top:100%")) == 6
    assert top_count(6, parse_keep("top:50")) == 6
    assert top_count(1, parse_keep("top:0.1%")) == 1


def test_threshold_keeps_at_or_above_and_never_nan() -> None:
    scores = np.array([0.5, 1.0, np.nan, 1.5])
    assert keep_threshold(scores, 1.0).tolist() == [False, True, False, True]


def test_rank_in_group_by_hand() -> None:
    assert rank_in_group(SCORES, GROUPS).tolist() == [2, 0, 1, 1, 0, 0]


def test_best_and_top_k_per_prompt() -> None:
    assert np.flatnonzero(keep_top_per_prompt(SCORES, GROUPS, 1)).tolist() == [1, 4, 5]
    assert np.flatnonzero(keep_top_per_prompt(SCORES, GROUPS, 2)).tolist() == [1, 2, 3, 4, 5]
    assert keep_top_per_prompt(SCORES, GROUPS, 3).all()
    assert np.flatnonzero(select(parse_keep("best-per-prompt"), SCORES, GROUPS)).tolist() == [1, 4, 5]


def test_preference_pairs_best_against_worst_with_a_margin() -> None:
    # A: best row 1 (2.0, earlier of the tie), worst row 0 (0.5): margin 1.5
    # B: best row 4 (1.0), worst row 2 (-1.0): margin 2.0
    # C: one row, no pair
    chosen, rejected = preference_pairs(SCORES, GROUPS, 0.0)
    assert list(zip(chosen.tolist(), rejected.tolist())) == [(1, 0), (4, 2)]  # in the order of first rows: A, B
    chosen, rejected = preference_pairs(SCORES, GROUPS, 1.6)
    assert list(zip(chosen.tolist(), rejected.tolist())) == [(4, 2)]  # A's 1.5 is under the margin
    chosen, rejected = preference_pairs(SCORES, GROUPS, 2.0)
    assert list(zip(chosen.tolist(), rejected.tolist())) == [(4, 2)]  # at the margin counts


def test_pairs_of_equal_scores_take_the_later_row_as_worst() -> None:
    scores = np.array([1.0, 1.0, 1.0])
    groups = np.array([5, 5, 5], dtype=np.uint64)
    chosen, rejected = preference_pairs(scores, groups, 0.0)
    assert (chosen.tolist(), rejected.tolist()) == ([0], [2])
    assert preference_pairs(scores, groups, 0.01)[0].tolist() == []


def test_pairs_follow_each_prompts_first_row() -> None:
    scores = np.array([1.0, 5.0, 0.0, 3.0])
    groups = np.array([9, 1, 9, 1], dtype=np.uint64)  # prompt 9 first appears at row 0, prompt 1 at row 1
    chosen, rejected = preference_pairs(scores, groups, 0.0)
    assert list(zip(chosen.tolist(), rejected.tolist())) == [(0, 2), (1, 3)]


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("top:20%", KeepRule("top", 0.2, percent=True)),
        ("top:5", KeepRule("top", 5)),
        ("threshold:-0.5", KeepRule("threshold", -0.5)),
        ("best-per-prompt", KeepRule("per-prompt", 1)),
        ("top-k-per-prompt:4", KeepRule("per-prompt", 4)),
    ],
)
def test_parse_keep(spec: str, rule: KeepRule) -> None:
    assert parse_keep(spec) == rule


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("top:0%", "above 0 and at most 100"),
        ("top:120%", "above 0 and at most 100"),
        ("top:2.5", "whole number"),
        ("threshold:abc", "expected a number after threshold:"),
        ("threshold:nan", "finite"),
        ("top-k-per-prompt:0", "at least 1"),
        ("bottom:3", "expected one of"),
    ],
)
def test_parse_keep_errors_name_the_rule(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_keep(spec)
