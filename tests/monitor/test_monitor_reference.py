"""The reference distribution: fitting, the normal fallback, the binning convention, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.model.reference import (
    bin_counts,
    check_reference,
    fit_reference,
    normal_reference,
    reference_for_card,
)


def test_bin_counts_puts_a_score_on_an_edge_in_the_bin_above() -> None:
    # edges 0, 1, 2 -> bins (-inf, 0), [0, 1), [1, 2), [2, inf)
    # -1 -> bin 0; 0 and 0.5 -> bin 1; 1 and 1.99 -> bin 2; 2 and 3 -> bin 3
    counts = bin_counts(np.array([-1, 0, 0.5, 1, 1.99, 2, 3]), [0, 1, 2])
    assert counts.tolist() == [1, 2, 2, 2]


def test_fit_reference_on_1_to_20_in_4_bins() -> None:
    # np.quantile (linear) of 1..20 at q sits at position 19 q: 0.25 -> 4.75 -> 5.75, 0.5 -> 9.5 -> 10.5,
    # 0.75 -> 14.25 -> 15.25. Bins: 1-5, 6-10, 11-15, 16-20: five scores each, 0.25.
    # Mean 10.5; sample variance of 1..n is n (n + 1) / 12 = 35.
    ref = fit_reference(np.arange(1, 21, dtype=float), bins=4)
    assert ref["edges"] == pytest.approx([5.75, 10.5, 15.25])
    assert ref["proportions"] == pytest.approx([0.25] * 4)
    assert ref["reward_mean"] == pytest.approx(10.5)
    assert ref["reward_std"] == pytest.approx(math.sqrt(35))
    assert ref["source"] == "card"


def test_fit_reference_merges_tied_edges_and_keeps_proportions_honest() -> None:
    # 16 zeros and 4 ones: the 0.25, 0.5 and 0.75 quantiles are all 0 -> one edge at 0;
    # below 0: none; at or above 0: all 20
    ref = fit_reference(np.array([0.0] * 16 + [1.0] * 4), bins=4)
    assert ref["edges"] == [0.0]
    assert ref["proportions"] == [0.0, 1.0]


def test_fit_reference_refuses_too_few_or_non_finite_scores() -> None:
    with pytest.raises(ValueError, match="at least 20 finite scores"):
        fit_reference(np.arange(5, dtype=float))
    with pytest.raises(ValueError, match="NaN"):
        fit_reference(np.array([np.nan] * 30))


def test_normal_reference_has_equal_mass_bins_at_mean_plus_std_z() -> None:
    # standard normal quartiles: -0.67449, 0, 0.67449; mean 1, std 2 -> -0.34898, 1, 2.34898
    ref = normal_reference(1.0, 2.0, bins=4)
    assert ref["edges"] == pytest.approx([-0.348980, 1.0, 2.348980], abs=1e-5)
    assert ref["proportions"] == [0.25] * 4
    assert ref["source"] == "normal"
    with pytest.raises(ValueError, match="std > 0"):
        normal_reference(0.0, 0.0)


def test_reference_for_card_falls_back_to_a_normal_with_a_warning() -> None:
    ref, warning = reference_for_card(None, 0.5, 1.5)
    assert ref["source"] == "normal" and len(ref["proportions"]) == 20
    assert warning and "no fitted reference" in warning
    fitted = fit_reference(np.arange(100, dtype=float))
    ref, warning = reference_for_card(fitted, 0.5, 1.5)
    assert warning is None and ref["edges"] == fitted["edges"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"edges": [1, 0], "proportions": [0.3, 0.4, 0.3]}, "strictly increasing"),
        ({"edges": [0, 1], "proportions": [0.5, 0.5]}, "expected 3 values"),
        ({"edges": [0, 1], "proportions": [0.5, 0.5, 0.5]}, "summing to 1"),
        ({"edges": [0]}, "missing field 'proportions'"),
        ({"edges": [0], "proportions": [0.5, 0.5], "source": "guess"}, "source"),
    ],
)
def test_check_reference_names_the_bad_field(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_reference(bad)
