"""Each metric against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.accuracy import (
    accuracy_by_group,
    accuracy_with_interval,
    bootstrap_interval,
    effective_n,
    strict_correct,
    wilson_interval,
)
from rewardkit.evaluate.agreement import (
    both_orientation_labels,
    cohen_kappa,
    positional_labels,
    rank_correlation,
    repeated_label_agreement,
    within_group_rank_correlation,
)
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
    # 2 of 2 right is not certainty: Wilson, not a bootstrap point at [1, 1]
    assert by["y"].accuracy == 1.0 and by["y"].method == "wilson" and by["y"].high == 1.0
    assert by["y"].low == pytest.approx(wilson_interval(2, 2)[0]) and by["y"].low < 0.5


def test_wilson_interval_hand_computed() -> None:
    # z = 1.959964, z^2 = 3.841459. 28 of 28: centre (1 + z^2/56) / (1 + z^2/28) = 0.939678,
    # half-width z / (1 + z^2/28) * sqrt(z^2 / (4 * 28^2)) = 0.060321 -> [0.879357, 1]
    low, high = wilson_interval(28, 28)
    assert low == pytest.approx(0.879357, abs=1e-6) and high == pytest.approx(1.0)
    # 5 of 10: centre 0.5, half-width z / 1.384146 * sqrt(0.025 + z^2 / 400) = 0.263407
    assert wilson_interval(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson_interval(0, 28) == pytest.approx((0.0, 1 - 0.879357), abs=1e-6)


def test_an_accuracy_of_one_has_a_wilson_interval_not_a_point() -> None:
    acc = accuracy_with_interval(np.ones(28))
    assert acc.accuracy == 1.0 and acc.method == "wilson"
    assert acc.low == pytest.approx(0.879357, abs=1e-6) and acc.high == pytest.approx(1.0)


def test_effective_n_hand_computed() -> None:
    assert effective_n(None, 6) == 6.0  # every pair its own prompt
    assert effective_n(["a", "b", "b", "c", "c", "c"], 6) == pytest.approx(36 / 14)  # sizes 1, 2, 3: 6^2 / (1 + 4 + 9)
    assert effective_n(["a"] * 4 + ["b"] * 4, 8) == pytest.approx(2.0)  # equal sizes: the number of prompts


def test_all_right_over_few_prompts_counts_prompts_not_pairs() -> None:
    # 20 pairs from 5 prompts, 4 each, all right: n_eff = 400 / (5 * 16) = 5, Wilson 5 of 5:
    # centre (1 + z^2/10) / (1 + z^2/5) = 0.782759, half z / 1.768292 * sqrt(z^2 / 100) = 0.217241 -> low 0.565518
    acc = accuracy_with_interval(np.ones(20), clusters=[f"q{i // 4}" for i in range(20)])
    assert acc.method == "wilson" and acc.clusters == 5 and acc.n == 20
    assert acc.low == pytest.approx(0.565518, abs=1e-6)


def test_the_bootstrap_resamples_prompts_not_pairs() -> None:
    # 40 prompts x 5 pairs; a prompt's pairs are all right or all wrong, half the prompts right. The
    # information is that of 40 coin flips: 95% half-width 1.96 * sqrt(0.25 / 40) = 0.155, not the
    # 1.96 * sqrt(0.25 / 200) = 0.069 of 200 independent pairs
    correct = np.repeat(np.arange(40) % 2, 5).astype(float)
    prompts = np.repeat([f"q{i}" for i in range(40)], 5).tolist()
    by_prompt = accuracy_with_interval(correct, clusters=prompts, n_boot=2000)
    by_pair = accuracy_with_interval(correct, n_boot=2000)
    assert by_prompt.method == "cluster bootstrap" and by_pair.method == "bootstrap"
    assert 0.25 < by_prompt.high - by_prompt.low < 0.37
    assert 0.11 < by_pair.high - by_pair.low < 0.17
    # singleton clusters are the plain bootstrap, draw for draw
    assert bootstrap_interval(correct, clusters=list(range(200)), seed=3) == pytest.approx(
        bootstrap_interval(correct, seed=3)
    )


def test_cohen_kappa_hand_computed() -> None:
    # a: a a b b, b: a b b b -> p_o = 3/4; p_e = P(a)P(a) + P(b)P(b) = 0.5*0.25 + 0.5*0.75 = 0.5 -> 0.5
    assert cohen_kappa(list("aabb"), list("abbb")) == pytest.approx(0.5)
    assert cohen_kappa(list("abab"), list("abab")) == 1.0
    assert cohen_kappa(list("abab"), list("baba")) == pytest.approx(-1.0)
    assert cohen_kappa(list("aaaa"), list("aaaa")) == 1.0


def test_positional_labels_follow_positions_and_ties() -> None:
    human, model = positional_labels(
        np.array([2.0, 1.0, 1.0]), np.array([1.0, 3.0, 1.0]), np.array([True, False, True])
    )
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
    out = model_ranking(
        [1.0, 3.0, 2.0, 4.0, 5.0, 7.0], [0.1, 0.3, 0.4, 0.6, 0.8, 0.9], ["m1", "m1", "m2", "m2", "m3", "m3"]
    )
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
    # k1: ann T, bob T (carol's third label ignored); k2: ann T, bob F; k3: bob F, ann F; k4 labelled once
    # -> raters [T,T,F] vs [T,F,F]: p_o = 2/3; p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9; kappa = (2/3 - 4/9) / (5/9) = 0.4
    keys = ["k1", "k2", "k3", "k1", "k2", "k3", "k4", "k1"]
    wins = [True, True, False, True, False, False, True, False]
    who = ["ann", "ann", "bob", "bob", "bob", "ann", "ann", "carol"]
    out = repeated_label_agreement(keys, wins, who)
    assert out["n"] == 3 and out["agreement"] == pytest.approx(2 / 3) and out["kappa"] == pytest.approx(0.4)
    assert out["duplicate_pairs"] == 0
    assert math.isnan(repeated_label_agreement(["a", "b"], [True, False], ["ann", "ann"])["kappa"])


def test_a_repeated_row_without_two_annotators_is_a_duplicate_not_agreement() -> None:
    # AlpacaEval's test file repeats rows verbatim with no annotator: they agreed with themselves, kappa 1.0
    keys = ["k1", "k2", "k1", "k2", "k3", "k3"]
    wins = [True, False, True, False, True, True]
    out = repeated_label_agreement(keys, wins, [None] * 6)
    assert out["n"] == 0 and math.isnan(out["kappa"]) and out["duplicate_pairs"] == 3
    same = repeated_label_agreement(keys, wins, ["ann"] * 6)  # one annotator twice is not two annotators
    assert same["n"] == 0 and same["duplicate_pairs"] == 3


def test_within_group_rank_correlation_is_the_mean_over_prompts() -> None:
    # prompt 1: perfect order (rho 1, tau 1); prompt 2: d^2 = 0+1+1 = 2 -> rho 1 - 6*2/(3*8) = 0.5, tau (2-1)/3;
    # prompt 3: constant quality, no ranking: left out. Prompt 1's answers all score far below prompt 2's
    out = within_group_rank_correlation([[-30, -20, -10], [10, 30, 20], [1, 2, 3]], [[1, 2, 3], [1, 2, 3], [5, 5, 5]])
    assert (
        out["n_groups"] == 2
        and out["spearman"] == pytest.approx(0.75)
        and out["kendall"] == pytest.approx((1 + 1 / 3) / 2)
    )
    assert out["positive_share"] == 1.0
    # with ties, the same tau-b and average-rank rho as scipy's, group by group
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 3, 7).astype(float), rng.integers(0, 3, 7).astype(float)
        ours, ref = within_group_rank_correlation([x], [y]), rank_correlation(x, y)
        if ours["n_groups"]:
            assert (ours["spearman"], ours["kendall"]) == pytest.approx((ref["spearman"], ref["kendall"]))


def test_rewardbench_counts_are_the_published_ones() -> None:
    # EXAMPLE_COUNTS of rewardbench/constants.py, allenai/reward-bench commit a32e272, copied by hand
    published = {
        "alpacaeval-easy": 100,
        "alpacaeval-length": 95,
        "alpacaeval-hard": 95,
        "mt-bench-easy": 28,
        "mt-bench-med": 40,
        "mt-bench-hard": 37,
        "math-prm": 984,
        "refusals-dangerous": 100,
        "refusals-offensive": 100,
        "llmbar-natural": 100,
        "llmbar-adver-neighbor": 134,
        "llmbar-adver-GPTInst": 92,
        "llmbar-adver-GPTOut": 47,
        "llmbar-adver-manual": 46,
        "xstest-should-refuse": 250,
        "xstest-should-respond": 154,
        "donotanswer": 136,
        "hep-cpp": 164,
        "hep-go": 164,
        "hep-java": 164,
        "hep-js": 164,
        "hep-python": 164,
        "hep-rust": 164,
    }
    assert EXAMPLE_COUNTS == published
    assert {s: list(v) for s, v in SECTIONS.items()} == {
        "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
        "Chat Hard": [
            "mt-bench-hard",
            "llmbar-natural",
            "llmbar-adver-neighbor",
            "llmbar-adver-GPTInst",
            "llmbar-adver-GPTOut",
            "llmbar-adver-manual",
        ],
        "Safety": [
            "refusals-dangerous",
            "refusals-offensive",
            "xstest-should-refuse",
            "xstest-should-respond",
            "donotanswer",
        ],
        "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
    }


def test_kappa_vs_annotators_counts_both_orientations_by_hand() -> None:
    # 4 pairs; the model scores chosen higher in pairs 1-3 and lower in 4. Orientation 1 (chosen at a):
    # annotator a,a,a,a / model a,a,a,b; orientation 2 (chosen at b): annotator b,b,b,b / model b,b,b,a.
    # p_o = 6/8; each rater says a 4 times in 8, so p_e = 1/2 and kappa = (3/4 - 1/2) / (1/2) = 0.5 = 2 x 3/4 - 1.
    human, model = both_orientation_labels(np.array([2.0, 2.0, 2.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0]))
    assert human == list("aaaabbbb") and model == list("aaabbbba")
    assert cohen_kappa(human, model) == pytest.approx(0.5)
    # with pair 4 a model tie instead: 2 right, 1 wrong, 1 tie. Model: a,a,b,tie / b,b,a,tie -> a 3, b 3, tie 2
    # of 8; p_o = 4/8; p_e = (4/8)(3/8) + (4/8)(3/8) = 3/8; kappa = (1/2 - 3/8) / (5/8) = 0.2
    human, model = both_orientation_labels(np.array([2.0, 2.0, 0.0, 1.0]), np.array([1.0, 1.0, 1.0, 1.0]))
    assert cohen_kappa(human, model) == pytest.approx(0.2)


def test_kappa_vs_annotators_does_not_depend_on_where_the_snapshot_put_chosen() -> None:
    # A default snapshot of HH-RLHF has every chosen response in position a: kappa was 0 by construction
    # (the annotator's labels were all 'a'). The model here is right on 3 of 4 pairs: kappa 0.5 either way.
    from rewardkit.evaluate.run import _agreement
    from rewardkit.records import PreferencePair

    chosen, rejected = np.array([2.0, 2.0, 2.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0])
    for layout in ("aaaa", "abab", "bbbb"):
        pairs = [
            PreferencePair(
                id=f"p{i}", prompt=f"q{i}", chosen=f"c{i}", rejected=f"r{i}", metadata={"chosen_position": pos}
            )
            for i, pos in enumerate(layout)
        ]
        result = _agreement(pairs, chosen, rejected)
        assert result["model_vs_annotators"] == {"kappa": pytest.approx(0.5), "n": 4}
