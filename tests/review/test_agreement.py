"""Agreement maths against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from rewardkit.review.agreement import (
    by_item,
    coincidences,
    krippendorff_alpha,
    pairwise_kappa,
    percent_agreement,
    summary,
)


def test_percent_agreement_averages_items() -> None:
    # item 1: ann x, y agree (1.0); item 2: 3 labels a, a, b -> pairs (a,a) (a,b) (a,b): 1/3; item 3: one label
    units = by_item([(1, "x", "a"), (1, "y", "a"), (2, "x", "a"), (2, "y", "a"), (2, "z", "b"), (3, "x", "b")])
    assert percent_agreement(units) == pytest.approx((1.0 + 1 / 3) / 2)
    assert math.isnan(percent_agreement(by_item([(1, "x", "a")])))


def test_cohen_kappa_two_annotators_by_hand() -> None:
    # 6 items, x: a a a b b b ; y: a a b b b a. p_o = 4/6; p_e = (3/6 * 3/6) + (3/6 * 3/6) = 1/2
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    xs, ys = "aaabbb", "aabbba"
    units = by_item([(i, "x", xs[i]) for i in range(6)] + [(i, "y", ys[i]) for i in range(6)])
    [row] = pairwise_kappa(units)
    assert (row["a"], row["b"], row["n"]) == ("x", "y", 6)
    assert row["kappa"] == pytest.approx(1 / 3)
    assert row["agreement"] == pytest.approx(4 / 6)


def test_krippendorff_alpha_nominal_by_hand() -> None:
    # Items: 1 (a, a), 2 (a, b), 3 (b, b), 4 (b, b). Coincidences: o_aa = 2, o_ab = o_ba = 1, o_bb = 4.
    # n_a = 3, n_b = 5, n = 8. D_o = (o_ab + o_ba) / n = 2/8; D_e = 2 * n_a * n_b / (n (n - 1)) = 30/56.
    # alpha = 1 - (2/8) / (30/56) = 1 - 56/120 = 8/15
    units = by_item(
        [
            (1, "x", "a"),
            (1, "y", "a"),
            (2, "x", "a"),
            (2, "y", "b"),
            (3, "x", "b"),
            (3, "y", "b"),
            (4, "x", "b"),
            (4, "y", "b"),
        ]
    )
    o = coincidences(units)
    assert (o[("a", "a")], o[("a", "b")], o[("b", "a")], o[("b", "b")]) == (2.0, 1.0, 1.0, 4.0)
    assert krippendorff_alpha(units) == pytest.approx(8 / 15)


def test_krippendorff_alpha_three_coders_missing_values() -> None:
    # Item 1: a, a, b (m=3: each ordered pair weighs 1/2) -> o_aa += 2 * 1/2 = 1, o_ab += 2 * 1/2, o_ba += 1
    # Item 2: b, b (m=2) -> o_bb += 2. Item 3: a alone: not pairable.
    # n_a = 1 + 1 = 2, n_b = 1 + 2 = 3, n = 5; D_o = 2/5; D_e = 2 * 2 * 3 / (5 * 4) = 12/20
    # alpha = 1 - (2/5) / (3/5) = 1/3
    units = by_item([(1, "x", "a"), (1, "y", "a"), (1, "z", "b"), (2, "x", "b"), (2, "z", "b"), (3, "y", "a")])
    assert krippendorff_alpha(units) == pytest.approx(1 / 3)


def test_perfect_and_degenerate_agreement() -> None:
    perfect = by_item([(1, "x", "a"), (1, "y", "a"), (2, "x", "b"), (2, "y", "b")])
    assert krippendorff_alpha(perfect) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha(by_item([(1, "x", "a"), (1, "y", "a")])))  # one category: undefined
    s = summary([(1, "x", "a"), (1, "y", "a"), (2, "x", "b"), (2, "y", "b")])
    assert (s["items"], s["overlapping_items"], s["percent_agreement"]) == (2, 2, 1.0)
