"""Length-controlled Bradley-Terry: the length feature and the fitted coefficient, against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewardkit.model.length_control import fit_length_coefficient, length_feature, pearson


def test_length_feature_is_the_log_length_ratio():
    # log(1 + 9) - log(1 + 0) = log 10; equal lengths give 0; the chosen one shorter gives a negative value
    assert np.allclose(length_feature([9, 4, 0], [0, 4, 9]), [math.log(10), 0.0, -math.log(10)])


def test_fitted_coefficient_matches_the_closed_form():
    # x = 1 three times (chosen longer, chosen won), x = -1 once (chosen shorter, chosen won):
    # the gradient -3 s(-b) + s(b) = 0 gives s(b) = 3/4, so b = log 3.
    assert fit_length_coefficient([1, 1, 1, -1], l2=0) == pytest.approx(math.log(3), abs=1e-9)
    # doubling the feature halves the coefficient: b * x is what the model sees
    assert fit_length_coefficient([2, 2, 2, -2], l2=0) == pytest.approx(math.log(3) / 2, abs=1e-9)
    # the longer one loses 3 times of 4: the same size, the other sign
    assert fit_length_coefficient([-1, -1, -1, 1], l2=0) == pytest.approx(-math.log(3), abs=1e-9)


def test_ties_and_equal_lengths_carry_no_length_effect():
    assert fit_length_coefficient([1, -1], [0.5, 0.5]) == pytest.approx(0.0, abs=1e-12)
    assert fit_length_coefficient([0.0, 0.0, 0.0]) == 0.0
    assert fit_length_coefficient([]) == 0.0


def test_length_that_separates_every_pair_gives_a_finite_coefficient():
    # every chosen response longer: without the l2 term beta would run to infinity
    beta = fit_length_coefficient([1.0, 0.5, 2.0])
    assert math.isfinite(beta) and beta > 3


def test_pearson_hand_values():
    # deviations x: (-1, 1, 0), y: (-1, 0, 1): sum of products 1, norms sqrt(2) each -> 1/2
    assert pearson(torch.tensor([1.0, 3.0, 2.0]), torch.tensor([1.0, 2.0, 3.0])).item() == pytest.approx(0.5)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([30.0, 20.0, 10.0])).item() == pytest.approx(-1.0)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([5.0, 5.0, 5.0])).item() == 0.0  # constant: 0, not NaN


def test_mismatched_inputs_name_the_problem():
    with pytest.raises(ValueError, match="differ in length"):
        fit_length_coefficient([1.0, 2.0], [1.0])
