"""Ensemble composition with small hand-written members (plain classes with a ``score`` method and a card),
and a saved ensemble of two real tiny BERTs that differ only by a head bias."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from rk_testing.tiny_models import build_tiny_model

from rewardkit.model.card import RewardCard  # noqa: E402
from rewardkit.model.ensemble import (  # noqa: E402
    MEMBER_SCALE,
    Ensemble,
    bootstrap_indices,
    fallback_card,
    member_seeds,
    out_of_bag,
    standardize,
)
from rewardkit.model.loading import load_ensemble  # noqa: E402


class LengthScorer:
    """Scores a response by factor * its length + offset; ``card`` holds its reference mean/std and T."""

    def __init__(
        self, factor: float, offset: float = 0.0, mean: float = 0.0, std: float = 1.0, temperature: float = 1.0
    ) -> None:
        self.factor, self.offset = factor, offset
        self.card = RewardCard(reward_mean=mean, reward_std=std, temperature=temperature)
        self.calls: list[dict] = []

    def score(self, prompts, responses, **kw):
        self.calls.append({"n": len(responses), **kw})
        return np.array([self.factor * len(r) + self.offset for r in responses], dtype=np.float32)


class NoCard:
    def score(self, prompts, responses):
        return np.array([float(len(r)) for r in responses])


class WrongShape:
    def score(self, prompts, responses):
        return np.zeros(len(responses) + 1)


PROMPTS, RESPONSES = ["p", "p"], ["ab", "abcd"]  # lengths 2 and 4
FITTED = RewardCard(temperature=0.5, reward_mean=0.1, reward_std=0.8, members=["a", "b"], member_scale=MEMBER_SCALE)


def test_members_differing_by_offset_and_scale_agree_exactly():
    # raw [2, 4] with reference (3, 1) -> z [-1, 1]; raw [5, 7] = the same + 3, reference (6, 1) -> [-1, 1];
    # raw [4, 8] = twice the first, reference (6, 2) -> [-1, 1]. BT cannot tell these three apart: std 0.
    # (On raw rewards the first two alone have std 1.5 on every row.)
    ens = Ensemble(
        [LengthScorer(1.0, mean=3.0), LengthScorer(1.0, offset=3.0, mean=6.0), LengthScorer(2.0, mean=6.0, std=2.0)]
    )
    assert ens.member_scores(PROMPTS, RESPONSES).tolist() == [[-1.0, 1.0]] * 3
    mean, std = ens.score_with_uncertainty(PROMPTS, RESPONSES)
    assert mean.tolist() == [-1.0, 1.0] and std.tolist() == [0.0, 0.0]


def test_mean_std_normalization_and_prob_better_by_hand():
    # member a: z = (len - 3) / 1 = [-1, 1]; member b: raw 3 * len = [6, 12], reference (6, 2) -> z [0, 3]
    # s = [-0.5, 2.0], std (ddof 0) = [0.5, 1.0]
    ens = Ensemble([LengthScorer(1.0, mean=3.0), LengthScorer(3.0, mean=6.0, std=2.0)], FITTED)
    assert ens.card is FITTED
    mean, std = ens.score_with_uncertainty(PROMPTS, RESPONSES)
    assert mean.tolist() == [-0.5, 2.0] and std.tolist() == [0.5, 1.0]
    # normalized with the ENSEMBLE's card (0.1, 0.8): (-0.6 / 0.8, 1.9 / 0.8); the std in those units: std / 0.8
    mean_n, std_n = ens.score_with_uncertainty(PROMPTS, RESPONSES, normalize=True)
    assert mean_n.tolist() == pytest.approx([-0.75, 2.375]) and std_n.tolist() == pytest.approx([0.625, 1.25])
    assert ens.score(PROMPTS, RESPONSES, normalize=True).tolist() == pytest.approx([-0.75, 2.375])
    # P("ab" better than "abcd") = sigmoid((-0.5 - 2.0) / 0.5) = sigmoid(-5)
    assert ens.prob_better(["p"], ["ab"], ["abcd"]).tolist() == pytest.approx([1 / (1 + math.exp(5))])


def test_keywords_reach_every_member_and_single_member_has_zero_std():
    members = [LengthScorer(1.0), LengthScorer(3.0)]
    Ensemble(members).score(PROMPTS, RESPONSES, batch_size=7)
    assert [c["batch_size"] for m in members for c in m.calls] == [7, 7]
    mean, std = Ensemble([LengthScorer(1.0)]).score_with_uncertainty(PROMPTS, RESPONSES)
    assert mean.tolist() == [2.0, 4.0] and std.tolist() == [0.0, 0.0]
    assert Ensemble([NoCard()]).member_scores(PROMPTS, RESPONSES).tolist() == [[2.0, 4.0]]  # no card: as scored


def test_an_ensemble_without_a_fitted_card_falls_back_to_its_members():
    # member T on its standardized scale is T / reward_std: 2 / 1 and 3 / 2; T = their mean 1.75; mean 0, std 1
    members = [LengthScorer(1.0, temperature=2.0), LengthScorer(1.0, std=2.0, temperature=3.0)]
    assert Ensemble(members).card.temperature == pytest.approx(1.75)
    old = RewardCard(
        temperature=1.0, reward_mean=0.0, reward_std=1.0, max_length=77, members=["a", "b"]
    )  # saved before
    card = Ensemble(members, old).card
    assert (card.temperature, card.reward_mean, card.reward_std, card.max_length, card.members) == (
        1.75,
        0.0,
        1.0,
        77,
        ["a", "b"],
    )
    assert fallback_card(None, [NoCard()]).temperature == 1.0
    with pytest.raises(ValueError, match="member_scale"):
        RewardCard(member_scale="raw")


def test_member_scores_refuse_a_normalize_that_would_standardize_twice():
    ens = Ensemble([LengthScorer(1.0), LengthScorer(2.0)])
    with pytest.raises(TypeError, match="normalize"):
        ens.member_scores(PROMPTS, RESPONSES, normalize=True)


def test_standardize_by_hand_and_shape_errors():
    assert standardize(np.array([[1.0, 3.0], [10.0, 20.0]]), [(1.0, 2.0), (10.0, 5.0)]).tolist() == [
        [0.0, 1.0],
        [0.0, 2.0],
    ]
    with pytest.raises(ValueError, match=r"shape \(2, 2\) for 3 members"):
        standardize(np.zeros((2, 2)), [(0.0, 1.0)] * 3)


def test_members_exposed_and_validated():
    a, b = LengthScorer(1.0), LengthScorer(2.0)
    ens = Ensemble([a, b])
    assert ens.members == (a, b) and len(ens) == 2
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(ValueError, match="member 1 .*no .score"):
        Ensemble([a, object()])
    with pytest.raises(ValueError, match=r"member 1 returned shape \(3,\), expected \(2,\)"):
        Ensemble([a, WrongShape()]).score(PROMPTS, RESPONSES)


def save_biased_pair(folder: Path, card_extra: dict) -> list[str]:
    """Two saved tiny BERTs, identical but for +3 on member_1's head bias, each with the reward mean/std that
    training would store (its own scores on a reference set); the ensemble card gets ``card_extra``."""
    import torch

    from rewardkit.model.calibration import reward_stats
    from rewardkit.model.card import write_card
    from rewardkit.model.loading import load_reward_model

    reference_p, reference_r = (
        ["question 1: tell me about tea"] * 4,
        ["excellent answer", "terrible answer", "so so", "fine"],
    )
    rm = load_reward_model(build_tiny_model(folder / "member_0"))
    for i in range(2):
        if i:
            with torch.no_grad():
                rm.model.classifier.bias += 3.0
        mean, std = reward_stats(rm.score(reference_p, reference_r))
        rm.card = RewardCard(max_length=64, reward_mean=mean, reward_std=std, temperature=0.5 + i)
        rm.save(folder / f"member_{i}")
    write_card(folder, RewardCard(max_length=64, members=["member_0", "member_1"], **card_extra))
    return reference_r


def test_a_saved_ensemble_whose_members_differ_by_a_head_bias_has_no_spread(tmp_path, caplog):
    responses = save_biased_pair(
        tmp_path / "ens", {"temperature": 0.7, "reward_mean": 0.25, "reward_std": 0.5, "member_scale": MEMBER_SCALE}
    )
    with caplog.at_level(logging.WARNING):
        ens = load_ensemble(tmp_path / "ens")
    assert not caplog.records  # a fitted card: no fallback
    raw = np.stack([m.score(["q"] * 4, responses) for m in ens.members])
    assert np.allclose(raw[1] - raw[0], 3.0, atol=1e-4)  # the members really differ by the bias
    mean, std = ens.score_with_uncertainty(["q"] * 4, responses)
    assert np.abs(std).max() < 1e-5  # was 1.5 on every row
    assert ens.card.temperature == 0.7 and ens.card.reward_std == 0.5  # the ensemble's own, not member 0's 0.5 T
    from rewardkit.model import load_reward_model

    assert load_reward_model(tmp_path / "ens").card == ens.card  # the public loader gives the same ensemble


def test_an_ensemble_saved_before_its_own_calibration_loads_with_a_warning(tmp_path, caplog):
    save_biased_pair(tmp_path / "old", {})  # the old top card: T 1, mean 0, std 1, no member_scale
    card = json.loads((tmp_path / "old" / "rewardkit.json").read_text())
    del card["member_scale"]
    (tmp_path / "old" / "rewardkit.json").write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        ens = load_ensemble(tmp_path / "old")
    assert "saved before" in caplog.text and "retrain" in caplog.text
    # the members' T on their standardized scales: 0.5 / std_0 and 1.5 / std_1 (equal stds: the same head)
    std0 = ens.members[0].card.reward_std
    assert ens.card.temperature == pytest.approx((0.5 + 1.5) / 2 / std0, rel=1e-4)
    assert (ens.card.reward_mean, ens.card.reward_std) == (0.0, 1.0)
    with pytest.raises(ValueError, match="lists no members"):
        load_ensemble(tmp_path / "old" / "member_0")


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
