"""Calibration maths against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.model.calibration import (
    bin_index,
    brier_score,
    calibrate,
    calibrated_nll,
    expected_calibration_error,
    fit_temperature,
    normalize,
    reference_pairs,
    reliability_bins,
    reward_stats,
    temperature_at_bound,
    temperature_nll,
)

# 4 predictions, 10 equal-width bins:
#   0.10 -> bin 1 [0.1, 0.2): conf 0.10, acc 0/1
#   0.30, 0.35 -> bin 3 [0.3, 0.4): conf 0.325, acc 1/2
#   0.90 -> bin 9 [0.9, 1.0]: conf 0.90, acc 1/1
# ECE = 1/4 * 0.10 + 2/4 * |0.5 - 0.325| + 1/4 * 0.10 = 0.025 + 0.0875 + 0.025 = 0.1375
PROBS = np.array([0.10, 0.30, 0.35, 0.90])
LABELS = np.array([0, 1, 0, 1])


def test_ece_four_samples_by_hand():
    assert expected_calibration_error(PROBS, LABELS) == pytest.approx(0.1375)


def test_reliability_bins_by_hand():
    bins = reliability_bins(PROBS, LABELS)
    assert [b["count"] for b in bins] == [1, 2, 1]  # empty bins left out
    assert [b["lo"] for b in bins] == pytest.approx([0.1, 0.3, 0.9])
    assert [b["confidence"] for b in bins] == pytest.approx([0.10, 0.325, 0.90])
    assert [b["accuracy"] for b in bins] == pytest.approx([0.0, 0.5, 1.0])


def test_bin_edges():
    # 1.0 joins the last bin; 0.2 starts bin 2 (left-closed)
    assert bin_index(np.array([0.0, 0.2, 0.999, 1.0]), 10).tolist() == [0, 2, 9, 9]
    assert bin_index(np.array([0.5]), 1).tolist() == [0]
    with pytest.raises(ValueError, match="n_bins"):
        bin_index(np.array([0.5]), 0)


def test_ece_perfect_and_worst():
    # every prediction equals its bin's frequency -> 0; confident and always wrong -> 1
    assert expected_calibration_error([0.5, 0.5], [1, 0]) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 0.0], [0, 1]) == pytest.approx(1.0)


def test_brier_by_hand():
    # (0.1^2 + 0.7^2 + 0.35^2 + 0.1^2) / 4 = (0.01 + 0.49 + 0.1225 + 0.01) / 4 = 0.158125
    assert brier_score(PROBS, LABELS) == pytest.approx(0.158125)
    assert brier_score([0.5, 0.5], [1, 0]) == pytest.approx(0.25)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="differ in length"):
        brier_score([0.5], [1, 0])
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([1.5], [1])
    with pytest.raises(ValueError, match="labels"):
        brier_score([0.5], [2])
    with pytest.raises(ValueError, match="at least one"):
        brier_score([], [])


def test_temperature_nll_by_hand():
    # d = 0: log 2; d = 2, T = 2, y = 1: -log s(1) = 0.3132617
    assert temperature_nll(np.array([0.0]), np.array([1.0]), 1.0) == pytest.approx(math.log(2))
    assert temperature_nll(np.array([2.0]), np.array([1.0]), 2.0) == pytest.approx(0.3132617, abs=1e-6)


@pytest.mark.parametrize("true_t", [0.5, 2.0, 5.0])
def test_fit_temperature_recovers_known_t(true_t):
    # labels drawn from sigmoid(d / T_true): the NLL minimiser converges to T_true (20k samples: within 6%)
    rng = np.random.default_rng(0)
    d = rng.normal(0.0, 3.0, 20_000)
    y = (rng.random(d.size) < 1 / (1 + np.exp(-d / true_t))).astype(float)
    t = fit_temperature(d, y)
    assert t == pytest.approx(true_t, rel=0.06)
    # it is the minimiser: nudging T either way raises the NLL
    assert temperature_nll(d, y, t) < min(temperature_nll(d, y, t * 1.05), temperature_nll(d, y, t / 1.05))
    assert fit_temperature(d, y) == t  # deterministic


def test_fit_temperature_lowers_ece_of_overconfident_scores():
    rng = np.random.default_rng(1)
    d = rng.normal(0.0, 2.0, 5_000)
    y = (rng.random(d.size) < 1 / (1 + np.exp(-d / 3.0))).astype(float)  # scores 3x too sharp
    t = fit_temperature(d, y)
    before = expected_calibration_error(1 / (1 + np.exp(-d)), y)
    after = expected_calibration_error(1 / (1 + np.exp(-d / t)), y)
    assert after < before / 2


def test_fit_temperature_bounds():
    d = np.array([1.0, 2.0, -1.0])
    assert fit_temperature(d, np.array([1.0, 1.0, 0.0])) == 1e-2  # perfectly separated: sharpest allowed
    assert fit_temperature(d, np.array([0.0, 0.0, 1.0])) == 1e2  # anti-correlated: flattest allowed
    with pytest.raises(ValueError, match="t_min"):
        fit_temperature(d, np.array([1.0, 0.0, 0.0]), t_min=2.0, t_max=1.0)
    with pytest.raises(ValueError, match="equal in length"):
        fit_temperature(d, np.array([1.0]))


def test_reward_stats_and_normalize():
    # [1, 2, 3, 6]: mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5 (ddof 0), std 1.8708287
    mean, std = reward_stats(np.array([1.0, 2.0, 3.0, 6.0]))
    assert (mean, std) == pytest.approx((3.0, math.sqrt(3.5)))
    assert normalize(np.array([3.0, 6.0]), mean, std).tolist() == pytest.approx([0.0, 3.0 / math.sqrt(3.5)])
    assert reward_stats(np.array([2.0, 2.0])) == (2.0, 1.0)  # constant: std 1, normalize only shifts
    with pytest.raises(ValueError, match="non-empty"):
        reward_stats(np.array([]))
    with pytest.raises(ValueError, match="std"):
        normalize(np.array([1.0]), 0.0, 0.0)


def test_accepts_torch_tensors():
    # the training loop passes tensors (bf16 included); results match the numpy path
    import torch

    assert expected_calibration_error(torch.tensor(PROBS), torch.tensor(LABELS)) == pytest.approx(0.1375)
    assert brier_score(torch.tensor(PROBS, dtype=torch.bfloat16), torch.tensor(LABELS)) == pytest.approx(
        0.158125, abs=2e-3
    )
    assert normalize(torch.tensor([[3.0, 5.0]]), 3.0, 2.0).tolist() == [[0.0, 1.0]]  # shape kept


def test_reference_pairs_spread_evenly_and_take_both_sides():
    # 512 responses from 1,000 pairs: 256 pairs, i * 1000 // 256 -> 0, 3, 7, 11, ..., 996
    rows = reference_pairs(1000, 512)
    assert len(rows) == 256 and len(set(rows.tolist())) == 256
    assert rows[:4].tolist() == [0, 3, 7, 11] and rows[-1] == 996
    assert reference_pairs(10, 512).tolist() == list(range(10))  # fewer pairs than asked: every pair
    assert reference_pairs(5, 1).tolist() == [0]  # at least one pair
    with pytest.raises(ValueError, match="size >= 1"):
        reference_pairs(5, 0)


def test_the_reference_holds_equal_numbers_of_chosen_and_rejected():
    # 1,000 pairs, chosen reward 1 and rejected 0 everywhere: a reference of both sides has mean 0.5 and
    # std 0.5. The old reference, the first 1,024 rows of [chosen..., rejected...], was 1,000 chosen and 24
    # rejected: mean 0.977
    chosen, rejected = np.ones(1000), np.zeros(1000)
    cal = calibrate(chosen, rejected, np.ones(1000, dtype=bool), reference_size=512)
    assert (cal.reward_mean, cal.reward_std) == (0.5, 0.5)


def test_calibrate_matches_the_statistics_of_all_responses_on_noisy_scores():
    # the reviewer's case: rejected ~ N(0, 1), chosen = rejected + 1 + N(0, 0.5^2); over all 2,000 responses the
    # mean is about 0.5. An evenly spread half of the pairs, both sides, lands within 0.1 of it
    rng = np.random.default_rng(0)
    rejected = rng.normal(size=1000)
    chosen = rejected + 1.0 + 0.5 * rng.normal(size=1000)
    cal = calibrate(chosen, rejected, np.ones(1000, dtype=bool), reference_size=512)
    every = reward_stats(np.concatenate([chosen, rejected]))
    assert abs(cal.reward_mean - every[0]) < 0.1 and abs(cal.reward_std - every[1]) < 0.1


def test_calibrate_fits_t_on_both_orientations_of_the_decided_pairs_only():
    # d = [2, -1] decided, plus a tie whose d = 50 must not count: T is fitted on (2, 1), (-1, 1), (-2, 0), (1, 0)
    chosen, rejected = np.array([2.0, 0.0, 50.0]), np.array([0.0, 1.0, 0.0])
    cal = calibrate(chosen, rejected, np.array([True, True, False]), reference_size=512)
    assert cal.temperature == fit_temperature(np.array([2.0, -1.0, -2.0, 1.0]), np.array([1.0, 1.0, 0.0, 0.0]))
    assert cal.at_bound is None and cal.ece_before is not None
    # the reference includes the tie: mean of [2, 0, 50, 0, 1, 0] = 53 / 6
    assert cal.reward_mean == pytest.approx(53 / 6)
    # fewer than two decided pairs: T = 1, and no ECE without any
    lone = calibrate(np.array([1.0]), np.array([0.0]), np.array([False]), reference_size=512)
    assert (lone.temperature, lone.at_bound, lone.ece_before, lone.ece_after) == (1.0, None, None, None)


def test_a_temperature_at_a_search_bound_is_flagged():
    assert temperature_at_bound(1e-2) == "lower" and temperature_at_bound(1e2) == "upper"
    assert temperature_at_bound(0.7) is None
    # every chosen above its rejected: the NLL falls all the way down, T stops at the lower bound
    cal = calibrate(np.array([1.0, 2.0, 3.0]), np.zeros(3), np.ones(3, dtype=bool), reference_size=512)
    assert (cal.temperature, cal.at_bound) == (1e-2, "lower")
    anti = calibrate(np.zeros(3), np.array([1.0, 2.0, 3.0]), np.ones(3, dtype=bool), reference_size=512)
    assert anti.at_bound == "upper"


def test_cross_fitted_ece_uses_a_temperature_fitted_on_the_other_fold():
    from rewardkit.model.calibration import calibrate, cross_fitted_ece, expected_calibration_error, fit_temperature

    assert cross_fitted_ece(np.array([1.0, 2.0, 3.0])) is None  # under 4 pairs: no two folds to fit on
    # every difference twice in a row: the even and odd folds are the same pairs, so each fold's T is the
    # whole set's and the cross-fitted ECE equals the in-sample one
    twice = np.repeat(np.array([0.3, -0.2, 1.5, 0.8, 2.5, -1.0]), 2)
    cal = calibrate(twice, np.zeros_like(twice), np.ones_like(twice), 8)
    assert cal.ece_after_cross_fit == pytest.approx(cal.ece_after, abs=1e-9)
    # folds that differ: the hand-made two-fold computation
    d = np.array([0.3, -0.2, 1.5, 0.8, 2.5, -1.0, 0.1, 1.2])
    even, odd = d[0::2], d[1::2]

    def t_of(x):
        return fit_temperature(np.concatenate([x, -x]), np.concatenate([np.ones_like(x), np.zeros_like(x)]))

    p = [1 / (1 + np.exp(-x)) for x in (odd / t_of(even), -odd / t_of(even), even / t_of(odd), -even / t_of(odd))]
    y = [np.ones(4), np.zeros(4), np.ones(4), np.zeros(4)]
    assert cross_fitted_ece(d) == pytest.approx(expected_calibration_error(np.concatenate(p), np.concatenate(y)))


def test_calibrate_fits_the_reference_distribution_on_the_reference_set() -> None:
    from rewardkit.model.calibration import calibrate

    rng = np.random.default_rng(0)
    chosen, rejected = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 300)
    cal = calibrate(chosen, rejected, np.ones(300, bool), reference_size=100)
    ref = cal.reference
    assert ref is not None and ref["source"] == "card" and len(ref["edges"]) == 19
    assert abs(sum(ref["proportions"]) - 1) < 1e-9 and max(ref["proportions"]) < 0.1  # 20 equal-mass bins
    assert ref["reward_mean"] == pytest.approx(cal.reward_mean)  # the same 200 scores as the card's mean
    assert calibrate(chosen[:20], rejected[:20], np.ones(20, bool), reference_size=100).reference is None


def test_calibrated_nll_by_hand_and_blind_to_scale():
    # d = (1, 1, -1): NLL(beta) = (2 softplus(-beta) + softplus(beta)) / 3, minimised where sigmoid(beta) = 2/3,
    # beta = ln 2 (T = 1 / ln 2 = 1.4427): NLL = (2 ln 1.5 + ln 3) / 3 = 0.636514
    by_hand = (2 * math.log(1.5) + math.log(3)) / 3
    assert calibrated_nll(np.array([1.0, 1.0, -1.0])) == pytest.approx(by_hand, rel=1e-6)
    # rewards that only spread out (every d times 10) raise the raw loss, not the calibrated one
    assert calibrated_nll(np.array([10.0, 10.0, -10.0])) == pytest.approx(by_hand, rel=1e-6)
    assert calibrated_nll(np.zeros(4)) == pytest.approx(math.log(2))  # no signal: P = 0.5 at any T
    assert calibrated_nll(np.array([2.0])) == pytest.approx(math.log(1 + math.exp(-2.0)))  # one pair: T = 1
    assert math.isnan(calibrated_nll(np.array([])))
    # a fixed term per pair (length control's beta * length feature): d = 0 leaves sigmoid(o) at any T,
    # NLL = softplus(-ln 3) = ln(4/3); zero offsets change nothing
    assert calibrated_nll(np.zeros(2), np.full(2, math.log(3))) == pytest.approx(math.log(4 / 3))
    assert calibrated_nll(np.array([1.0, 1.0, -1.0]), np.zeros(3)) == pytest.approx(by_hand, rel=1e-6)
    # a better ordering is a lower calibrated loss, whatever the scale
    assert calibrated_nll(np.array([1.0, 1.0, 1.0, -1.0])) < calibrated_nll(np.array([5.0, 5.0, -5.0, -5.0]))
