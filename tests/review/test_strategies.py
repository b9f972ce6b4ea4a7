"""Each active-learning strategy on numbers small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.review.candidates import Candidate, StrategyError, choose, embed_prompts
from rewardkit.review.strategies import (
    disagreement_priority,
    diversity_pick,
    margin_priority,
    top,
    uncertainty_priority,
)


def test_uncertainty_prefers_p_near_one_half() -> None:
    # |p - 0.5| = 0.4, 0.02, 0.25, 0.1 -> most uncertain: index 1, then 3, 2, 0
    prio = uncertainty_priority([0.9, 0.52, 0.25, 0.6])
    np.testing.assert_allclose(prio, [-0.4, -0.02, -0.25, -0.1])
    assert top(prio, 3).tolist() == [1, 3, 2]


def test_margin_prefers_small_score_gaps() -> None:
    # gaps |1-3| = 2, |0.5-0.4| = 0.1, |-1-(-1.5)| = 0.5
    prio = margin_priority([1.0, 0.5, -1.0], [3.0, 0.4, -1.5])
    np.testing.assert_allclose(prio, [-2.0, -0.1, -0.5])
    assert top(prio, 2).tolist() == [1, 2]


def test_disagreement_from_member_margins_and_from_stds() -> None:
    # members' margins (1, -1): population std 1; (2, 2): 0; (0, 4): 2
    prio = disagreement_priority(member_margins=[[1.0, -1.0], [2.0, 2.0], [0.0, 4.0]])
    np.testing.assert_allclose(prio, [1.0, 0.0, 2.0])
    # sqrt(3^2 + 4^2) = 5, sqrt(0 + 0) = 0
    np.testing.assert_allclose(disagreement_priority(std_a=[3.0, 0.0], std_b=[4.0, 0.0]), [5.0, 0.0])
    with pytest.raises(ValueError, match="member_margins"):
        disagreement_priority(member_margins=[[1.0], [2.0]])


def test_diversity_takes_one_per_cluster_first() -> None:
    # two tight clusters around (0, 0) and (10, 10): a budget of 2 takes one from each
    points = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [10.0, 10.0], [10.1, 10.0]])
    picked = diversity_pick(points, 2)
    assert sorted(int(i) // 3 for i in picked) == [0, 1]
    # a budget larger than the clusters fills up from the clusters' next-nearest members, never repeating
    assert sorted(diversity_pick(points, 4).tolist()) == sorted(set(diversity_pick(points, 4).tolist()))
    assert len(diversity_pick(points, 4)) == 4


def test_choose_random_and_diversity_need_no_scores() -> None:
    cands = [Candidate(f"prompt about topic {i % 3}", ("x", "y")) for i in range(9)]
    assert len(choose(cands, "random", 4, seed=1)) == 4
    assert choose(cands, "random", 4, seed=1) == choose(cands, "random", 4, seed=1)
    div = choose(cands, "diversity", 3)
    assert len({cands[i].prompt for i, _ in div}) == 3  # three different topics
    priorities = [p for _, p in div]
    assert priorities == sorted(priorities, reverse=True)  # served in the order picked


def test_choose_names_the_missing_field() -> None:
    cands = [Candidate("p", ("x", "y"), p_a=0.5), Candidate("q", ("x", "y"))]
    with pytest.raises(StrategyError, match="'p_a'.*1 of 2"):
        choose(cands, "uncertainty", 1)
    with pytest.raises(StrategyError, match="unknown strategy"):
        choose(cands, "smart", 1)


def test_embeddings_are_normalised_and_topic_sensitive() -> None:
    e = embed_prompts(["the cat sat on the mat", "the cat sat on a mat", "compile the rust crate"])
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0)
    assert e[0] @ e[1] > e[0] @ e[2]
