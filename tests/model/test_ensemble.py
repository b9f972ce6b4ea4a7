"""Ensemble composition with small hand-written members (plain classes with a ``score`` method)."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.model.ensemble import Ensemble, bootstrap_indices, member_seeds, out_of_bag


class LengthScorer:
    """Scores a response by its length times a factor, plus an offset when normalize=True."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.calls: list[dict] = []

    def score(self, prompts, responses, normalize: bool = False):
        self.calls.append({"n": len(responses), "normalize": normalize})
        out = np.array([self.factor * len(r) for r in responses], dtype=np.float32)
        return out - 1.0 if normalize else out


class WrongShape:
    def score(self, prompts, responses):
        return np.zeros(len(responses) + 1)


PROMPTS, RESPONSES = ["p", "p"], ["ab", "abcd"]  # lengths 2 and 4


def test_member_scores_mean_and_std_by_hand():
    ens = Ensemble([LengthScorer(1.0), LengthScorer(2.0), LengthScorer(3.0)])
    # member rows [2, 4], [4, 8], [6, 12]
    assert ens.member_scores(PROMPTS, RESPONSES).tolist() == [[2, 4], [4, 8], [6, 12]]
    # mean [4, 8]; population std (ddof 0): sqrt(((2-4)^2 + 0 + (6-4)^2) / 3) = sqrt(8/3) = 1.6329932,
    # second column twice that: 3.2659863
    mean, std = ens.score_with_uncertainty(PROMPTS, RESPONSES)
    assert mean.tolist() == [4.0, 8.0]
    assert std.tolist() == pytest.approx([1.6329932, 3.2659863])
    assert ens.score(PROMPTS, RESPONSES).tolist() == [4.0, 8.0]


def test_keywords_reach_every_member_and_single_member_has_zero_std():
    members = [LengthScorer(1.0), LengthScorer(3.0)]
    ens = Ensemble(members)
    # normalize shifts every member by -1: mean of [1, 3] and [5, 11] = [3, 7]
    assert ens.score(PROMPTS, RESPONSES, normalize=True).tolist() == [3.0, 7.0]
    assert [c["normalize"] for m in members for c in m.calls] == [True, True]
    mean, std = Ensemble([LengthScorer(1.0)]).score_with_uncertainty(PROMPTS, RESPONSES)
    assert mean.tolist() == [2.0, 4.0] and std.tolist() == [0.0, 0.0]


def test_members_exposed_and_validated():
    a, b = LengthScorer(1.0), LengthScorer(2.0)
    ens = Ensemble([a, b])
    assert ens.members == (a, b) and len(ens) == 2
    assert ens.card is None  # these members carry no card
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(ValueError, match="member 1 .*no .score"):
        Ensemble([a, object()])
    with pytest.raises(ValueError, match=r"member 1 returned shape \(3,\), expected \(2,\)"):
        Ensemble([a, WrongShape()]).score(PROMPTS, RESPONSES)


def test_member_seeds():
    assert member_seeds(7, 3) == [7, 1007, 2007]
    assert member_seeds(7, 1) == [7]  # a one-member ensemble is the single run with the base seed
    assert not set(member_seeds(0, 5)) & set(member_seeds(1, 5))
    with pytest.raises(ValueError, match="n >= 1"):
        member_seeds(0, 0)


def test_bootstrap_indices_deterministic_with_replacement():
    idx = bootstrap_indices(1000, seed=3)
    assert idx.shape == (1000,) and idx.min() >= 0 and idx.max() < 1000
    assert np.array_equal(idx, bootstrap_indices(1000, seed=3))
    assert not np.array_equal(idx, bootstrap_indices(1000, seed=4))
    # with replacement: about 1 - 1/e = 63.2% distinct rows (binomial sd ~1.5 points at n = 1000)
    assert 0.58 < len(np.unique(idx)) / 1000 < 0.68
    with pytest.raises(ValueError, match="n >= 1"):
        bootstrap_indices(0, seed=0)


def test_out_of_bag_by_hand():
    # rows 0..4 resampled as [0, 0, 2, 4, 4]: rows 1 and 3 were left out
    assert out_of_bag(5, np.array([0, 0, 2, 4, 4])).tolist() == [1, 3]
    idx = bootstrap_indices(200, seed=1)
    oob = out_of_bag(200, idx)
    assert not set(oob.tolist()) & set(idx.tolist()) and len(oob) + len(np.unique(idx)) == 200
