"""Each metric against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.accuracy import accuracy_by_group, accuracy_with_interval, bootstrap_interval, strict_correct
from rewardkit.evaluate.agreement import cohen_kappa, positional_labels, rank_correlation, repeated_label_agreement
from rewardkit.evaluate.length_bias import length_bias_report, length_rule_accuracy
from rewardkit.evaluate.model_ranking import model_ranking
from rewardkit.evaluate.rewardbench import EXAMPLE_COUNTS, SECTIONS, section_scores


def test_strict_accuracy_counts_ties_as_wrong() -> None:
    correct = strict_correct(np.array([2.0, 1.0, 0.5, 3.0]), np.array([1.0, 1.0, 0.7, -1.0]))
    assert correct.tolist() == [True, False, False, True]
    assert accuracy_with_interval(correct).accuracy == 0.5


def test_strict_accuracy_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        strict_correct(np.zeros(3), np.zeros(2))


def test_bootstrap_interval_brackets_mean_and_degenerates() -> None:
    assert bootstrap_interval(np.ones(10)) == (1.0, 1.0)  # no variance, no width
    lo, hi = bootstrap_interval(np.array([0, 1] * 50, dtype=float), n_boot=2000)
    # binomial sd of a mean of 100 fair coins is 0.05: the 95% interval is about 0.5 +- 0.098
    assert 0.38 < lo < 0.44 and 0.56 < hi < 0.62
    assert all(math.isnan(v) for v in bootstrap_interval(np.array([])))


def test_accuracy_by_group() -> None:
    by = accuracy_by_group(np.array([1, 0, 1, 1]), ["x", "x", "y", "y"], n_boot=50)
    assert by["x"].accuracy == 0.5 and by["x"].n == 2
    assert by["y"].accuracy == 1.0 and (by["y"].low, by["y"].high) == (1.0, 1.0)


def test_cohen_kappa_hand_computed() -> None:
    # a: a a b b, b: a b b b -> p_o = 3/4; p_e = P(a)P(a) + P(b)P(b) = 0.5*0.25 + 0.5*0.75 = 0.5 -> 0.5
    assert cohen_kappa(list("aabb"), list("abbb")) == pytest.approx(0.5)
    assert cohen_kappa(list("abab"), list("abab")) == 1.0
    assert cohen_kappa(list("abab"), list("baba")) == pytest.approx(-1.0)
    assert cohen_kappa(list("aaaa"), list("aaaa")) == 1.0


def test_positional_labels_follow_positions_and_ties() -> None:
    human, model = positional_labels(np.array([2.0, 1.0, 1.0]), np.array([1.0, 3.0, 1.0]), np.array([True, False, True]))
    assert human == ["a", "b", "a"]
    assert model == ["a", "a", "tie"]  # pair 2: rejected (in position a) scored 3 > 1


def test_rank_correlation_hand_computed() -> None:
    r = rank_correlation([1, 2, 3, 4], [1, 3, 2, 4])
    # d^2 = 0+1+1+0 = 2: rho = 1 - 6*2/(4*15) = 0.8; tau: 5 concordant, 1 discordant of 6 -> 4/6
    assert r["spearman"] == pytest.approx(0.8)
    assert r["kendall"] == pytest.approx(4 / 6)
    assert math.isnan(rank_correlation([1, 1], [1, 2])["spearman"])


def test_length_rules_and_chosen_shorter_subset() -> None:
    rules = length_rule_accuracy(np.array([10, 5, 7, 3]), np.array([5, 10, 7, 1]))
    assert rules == {"longer_wins": 0.5, "shorter_wins": 0.25}  # the equal-length pair counts for neither
    # a pure length scorer: score = length. Correct exactly where chosen is longer
    cl, rl = np.array([10.0, 5.0, 7.0, 3.0]), np.array([5.0, 10.0, 6.0, 1.0])
    report = length_bias_report(cl, rl, cl, rl, n_boot=50)
    assert report["accuracy_chosen_shorter"]["accuracy"] == 0.0
    assert report["accuracy_chosen_shorter"]["n"] == 1
    assert report["accuracy_chosen_longer"]["accuracy"] == 1.0
    assert report["score_length_correlation"]["spearman"] == pytest.approx(1.0)


def test_model_ranking_mean_per_generator() -> None:
    out = model_ranking([1.0, 3.0, 2.0, 4.0, 5.0, 7.0], [0.1, 0.3, 0.4, 0.6, 0.8, 0.9], ["m1", "m1", "m2", "m2", "m3", "m3"])
    table = {m["generator"]: m for m in out["models"]}
    assert table["m1"]["mean_reward"] == 2.0 and table["m3"]["mean_reward"] == 6.0
    assert table["m2"]["reference"] == pytest.approx(0.5)
    assert out["spearman"] == pytest.approx(1.0) and out["kendall"] == pytest.approx(1.0)
    assert [m["generator"] for m in out["models"]] == ["m3", "m2", "m1"]  # best mean reward first
    assert table["m1"]["count"] == 2


def test_rewardbench_section_weighting_hand_computed() -> None:
    # Chat: easy 1.0 (100 prompts) and hard 0.5 (95 prompts) -> (100 + 47.5) / 195
    out = section_scores({"alpacaeval-easy": 1.0, "alpacaeval-hard": 0.5, "math-prm": 0.25, "my-own": 0.9})
    assert out["sections"]["Chat"] == pytest.approx(147.5 / 195)
    assert out["sections"]["Reasoning"] == pytest.approx(0.25)
    assert out["overall"] == pytest.approx((147.5 / 195 + 0.25) / 2)
    assert not out["complete"] and "hep-cpp" in out["missing_subsets"] and "math-prm" not in out["missing_subsets"]
    assert section_scores({s: 1.0 for subsets in SECTIONS.values() for s in subsets})["complete"]
    assert out["unmapped_subsets"] == ["my-own"]
    assert set(EXAMPLE_COUNTS) == {s for subsets in SECTIONS.values() for s in subsets}


def test_repeated_label_agreement_hand_computed() -> None:
    # k1: T,T (its third label ignored); k2: T,F; k3: F,F; k4 labelled once -> raters [T,T,F] vs [T,F,F]
    # p_o = 2/3; p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9; kappa = (2/3 - 4/9) / (5/9) = 0.4
    keys = ["k1", "k2", "k3", "k1", "k2", "k3", "k4", "k1"]
    wins = [True, True, False, True, False, False, True, False]
    out = repeated_label_agreement(keys, wins)
    assert out["n"] == 3 and out["agreement"] == pytest.approx(2 / 3) and out["kappa"] == pytest.approx(0.4)
    assert math.isnan(repeated_label_agreement(["a", "b"], [True, False])["kappa"])
