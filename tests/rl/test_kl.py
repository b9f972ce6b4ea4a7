"""KL-shaped per-token rewards against numbers worked out by hand.

The example: three response tokens, policy log-probs [-1.0, -2.0, -0.5], reference [-1.5, -1.0, -0.5],
so log_ratio = [0.5, -1.0, 0.0]; beta = 0.1 and sequence score 2.0.
  k1 = log_ratio                    = [0.5, -1.0, 0.0]
  k2 = log_ratio^2 / 2              = [0.125, 0.5, 0.0]
  k3 = exp(-lr) - 1 + lr            = [e^-0.5 - 0.5, e - 2, 0] = [0.10653066, 0.71828183, 0.0]
  rewards = -0.1 * KL, plus 2.0 on the last token.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.rl.kl import kl_estimate, shaped_rewards, shaped_rewards_batch, shaped_rewards_ragged

LOGP = [-1.0, -2.0, -0.5]
REF = [-1.5, -1.0, -0.5]


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        ("k1", [-0.05, 0.1, 2.0]),
        ("k2", [-0.0125, -0.05, 2.0]),
        ("k3", [-0.1 * (math.exp(-0.5) - 0.5), -0.1 * (math.e - 2.0), 2.0]),
    ],
)
def test_worked_example(estimator: str, expected: list[float]) -> None:
    np.testing.assert_allclose(shaped_rewards(2.0, LOGP, REF, beta=0.1, estimator=estimator), expected, atol=1e-12)


def test_k3_hand_values_and_k2_k3_never_negative() -> None:
    np.testing.assert_allclose(kl_estimate(LOGP, REF, "k3"), [0.10653066, 0.71828183, 0.0], atol=1e-8)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert (kl_estimate(a, b, "k2") >= 0).all() and (kl_estimate(a, b, "k3") >= 0).all()
    assert (kl_estimate(a, b, "k1") < 0).any()  # k1 is unbiased but per token can be negative


def test_sum_of_rewards_is_score_minus_beta_total_kl() -> None:
    r = shaped_rewards(1.5, LOGP, REF, beta=0.2, estimator="k1")
    assert r.sum() == pytest.approx(1.5 - 0.2 * (0.5 - 1.0 + 0.0))


def test_clamp_as_openrlhf() -> None:
    assert kl_estimate([20.0], [0.0], "k1", clamp=10.0).tolist() == [10.0]
    assert kl_estimate([20.0], [0.0], "k1").tolist() == [20.0]


def test_batch_with_padding_matches_per_sequence() -> None:
    # row 0 right-padded (2 tokens), row 1 left-padded (3 tokens); pads hold -inf, which must not leak
    logp = np.array([[-1.0, -2.0, -np.inf], [-np.inf, -1.0, -2.0]])
    ref = np.array([[-1.5, -1.0, 0.0], [0.0, -1.5, -1.0]])
    mask = np.array([[1, 1, 0], [0, 1, 1]])
    out = shaped_rewards_batch(np.array([2.0, -1.0]), logp, ref, mask, beta=0.1)
    np.testing.assert_allclose(out[0], [-0.05, 2.1, 0.0])
    np.testing.assert_allclose(out[1], [0.0, -0.05, -0.9])
    np.testing.assert_allclose(out[1, 1:], shaped_rewards(-1.0, [-1.0, -2.0], [-1.5, -1.0], 0.1))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: shaped_rewards(1.0, [-1.0], [-1.0, -2.0], 0.1), "differ in shape"),
        (lambda: shaped_rewards(1.0, [], [], 0.1), "non-empty"),
        (lambda: shaped_rewards(1.0, [-1.0], [-1.0], -0.1), "beta"),
        (lambda: shaped_rewards(1.0, [float("nan")], [-1.0], 0.1), "finite"),
        (lambda: shaped_rewards(1.0, [-1.0], [-1.0], 0.1, estimator="k4"), "k1, k2, k3"),
        (lambda: shaped_rewards_batch(np.zeros(1), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), 0.1), "row 0"),
    ],
)
def test_bad_input_is_one_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_ragged_lists_for_the_service() -> None:
    out = shaped_rewards_ragged([2.0, -1.0], [LOGP, [-1.0]], [REF, [-1.0]], beta=0.1)
    np.testing.assert_allclose(out[0], [-0.05, 0.1, 2.0])
    assert out[1] == [-1.0] and isinstance(out[0], list)
    with pytest.raises(ValueError, match="response 1: logprobs .* differ in shape"):
        shaped_rewards_ragged([2.0, 1.0], [LOGP, [-1.0]], [REF, [-1.0, -2.0]], beta=0.1)
    with pytest.raises(ValueError, match="one score, logprobs and ref_logprobs list per response"):
        shaped_rewards_ragged([2.0], [LOGP, LOGP], [REF, REF], beta=0.1)
    with pytest.raises(ValueError, match="response 0"):
        shaped_rewards_ragged([2.0], [["x"]], [[1.0]], beta=0.1)
