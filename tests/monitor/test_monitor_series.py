"""Windows from aggregate rows: the statistics, each against numbers worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from rewardkit.monitor.series import (
    binned_ks,
    histogram_quantiles,
    mean_std,
    parse_duration,
    psi_from_proportions,
    roll_windows,
    window_starts,
)


def test_parse_duration() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("2w") == timedelta(days=14)
    for bad in ("0h", "1y", "h", "1.5h", "", "-1h"):
        with pytest.raises(ValueError, match="expected a duration like 30m"):
            parse_duration(bad)


def test_windows_are_anchored_at_until() -> None:
    until = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    # 2h30m back in 1h windows: 3 windows, the oldest starting at 09:30 (before since = 10:00)
    starts = window_starts(until - timedelta(hours=2, minutes=30), until, timedelta(hours=1))
    assert [s.strftime("%H:%M") for s in starts] == ["09:30", "10:30", "11:30"]


def test_mean_std_from_sums() -> None:
    # scores 1, 2, 3, 4: n 4, total 10, total_sq 30; mean 2.5; var = (30 - 100 / 4) / 3 = 5/3
    mean, std = mean_std(4, 10.0, 30.0)
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std(0, 0.0, 0.0) == (None, None)
    assert mean_std(1, 2.0, 4.0) == (2.0, None)


def test_histogram_quantiles_interpolate_inside_the_bin() -> None:
    # edges 0, 1, 2; counts 0 | 10 in [0, 1) | 30 in [1, 2) | 0; n = 40
    # p05: target 2 -> in [0, 1): 0 + 2/10 = 0.2
    # p50: target 20 -> 10 below [1, 2): 1 + (20 - 10)/30 = 1.3333
    # p95: target 38 -> 1 + 28/30 = 1.9333
    assert histogram_quantiles([0, 10, 30, 0], [0, 1, 2]) == pytest.approx([0.2, 4 / 3, 1 + 28 / 30])


def test_histogram_quantiles_in_an_open_tail_read_a_normal_tail() -> None:
    # all 5 scores at or above the last edge 2, the window's mean 3 and std 1. p50: half way into the top bin.
    # The normal N(3, 1) has Phi(-1) = 0.158655 below the edge; half of the rest above it: 0.158655 + 0.5 *
    # 0.841345 = 0.579328; Phi(0.2) = 0.579260, and the 0.000068 left over / the density 0.391043 at 0.2 =
    # 0.000174: Phi^-1 = 0.200174, the quantile 3.200174
    assert histogram_quantiles([0, 0, 0, 5], [0, 1, 2], [0.5], mean=3.0, std=1.0) == pytest.approx([3.200174], abs=1e-5)
    # all 5 below the first edge 0, mean -3: the normal has Phi(3) = 0.998650 below the edge; p50 is half way
    # down from it: 0.5 * 0.998650 = 0.499325 = Phi(-0.001692): -3.0017
    low = histogram_quantiles([5, 0, 0, 0], [0, 1, 2], [0.5], mean=-3.0, std=1.0)
    assert low == pytest.approx([-3.001692], abs=1e-5)
    # no std to read a tail from: the edge, a bound
    assert histogram_quantiles([0, 0, 0, 5], [0, 1, 2]) == [2.0, 2.0, 2.0]
    assert all(math.isnan(q) for q in histogram_quantiles([0, 0, 0, 0], [0, 1, 2]))


def test_psi_hand_worked() -> None:
    # p = .1 .2 .3 .4 against q = .25 each:
    #   (.1 - .25) ln(.1/.25) = -.15 * -0.916291 = 0.137444
    #   (.2 - .25) ln(.2/.25) = -.05 * -0.223144 = 0.011157
    #   (.3 - .25) ln(.3/.25) =  .05 *  0.182322 = 0.009116
    #   (.4 - .25) ln(.4/.25) =  .15 *  0.470004 = 0.070501
    #   sum 0.228218
    assert psi_from_proportions([0.1, 0.2, 0.3, 0.4], [0.25] * 4) == pytest.approx(0.228218, abs=1e-6)
    assert psi_from_proportions([0.25] * 4, [0.25] * 4) == 0.0


def test_psi_floors_an_empty_bin() -> None:
    # p = 0 .5 .5 against q = 1/3 each; the empty bin counts as 1e-4:
    #   (1e-4 - 1/3) ln(3e-4) = -0.333233 * -8.111728 = 2.703157
    #   2 * (.5 - 1/3) ln(1.5) = 2 * 0.166667 * 0.405465 = 0.135155
    #   sum 2.838312... to 4 decimals 2.8383
    assert psi_from_proportions([0.0, 0.5, 0.5], [1 / 3] * 3) == pytest.approx(2.8383, abs=1e-4)


def test_binned_ks_hand_worked() -> None:
    # cumulative shares at the 3 inner edges: observed .1 .3 .6, reference .25 .5 .75 -> gaps .15 .2 .15: D = .2
    # p: Kolmogorov's limit P(D > d) ~ 2 sum (-1)^(k-1) exp(-2 k^2 n d^2), n d^2 = 4: 2 e^-8 = 0.00067;
    # the exact n = 100 value is a little smaller
    d, p = binned_ks([10, 20, 30, 40], [0.25] * 4)
    assert d == pytest.approx(0.2)
    assert 0.0003 < p < 0.00067


def _row(minute: datetime, scores: list[float], edges: list[float], **extra: object) -> dict:
    import numpy as np

    from rewardkit.model.reference import bin_counts

    s = np.asarray(scores, float)
    return {
        "model_version": "m",
        "route": "/v1/score",
        "minute": minute,
        "count": s.size,
        "total": float(s.sum()),
        "total_sq": float((s * s).sum()),
        "edges": edges,
        "histogram": bin_counts(s, edges).tolist(),
        "uncertain": 0,
        "uncertainty_total": 0.0,
        "uncertainty_count": 0,
        "length_total": 10.0 * s.size,
        **extra,
    }


def test_roll_windows_sums_partial_rows_and_fills_empty_windows() -> None:
    until = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    edges = [-1.0, 0.0, 1.0]
    ref = {"edges": edges, "proportions": [0.25] * 4, "source": "card"}
    # window 00:00-01:00: two replicas' rows of one minute, 10 + 20 + 30 + 40 = 100 scores spread as .1 .2 .3 .4
    first = [-2.0] * 10 + [-0.5] * 20
    second = [0.5] * 30 + [2.0] * 40
    rows = [
        _row(until - timedelta(hours=3), first, edges, uncertain=3, uncertainty_total=6.0, uncertainty_count=30),
        _row(until - timedelta(hours=3), second, edges),
        _row(until - timedelta(minutes=1), [0.0] * 5, edges),  # last window: 5 scores, too few for drift
        _row(until, [9.0], edges),  # at until: outside the period
    ]
    windows = roll_windows(
        rows,
        references={"m": ref},
        since=until - timedelta(hours=3),
        until=until,
        window=timedelta(hours=1),
        min_count=100,
    )
    assert [w.served for w in windows] == [100, 0, 5]
    w = windows[0]
    assert w.psi == pytest.approx(0.228218, abs=1e-6)  # test_psi_hand_worked's shares
    assert w.ks == pytest.approx(0.2)
    # mean (-20 - 10 + 15 + 80) / 100 = 0.65
    assert w.mean == pytest.approx(0.65)
    assert w.uncertain_share == pytest.approx(0.03)
    assert w.uncertainty_mean == pytest.approx(0.2)  # 6 / 30 scores that came with one
    assert w.length_mean == pytest.approx(10.0)
    assert windows[1].mean is None and windows[1].psi is None and windows[1].drift_note is None
    assert windows[2].psi is None and windows[2].drift_note == "n too small (5 < 100)"
    # the default minimum is 500 (on 20 bins noise alone gives PSI ~ 19 / n): 100 scores are too few
    default = roll_windows(
        rows, references={"m": ref}, since=until - timedelta(hours=3), until=until, window=timedelta(hours=1)
    )
    assert default[0].psi is None and default[0].drift_note == "n too small (100 < 500)"


def test_roll_windows_without_a_reference_gives_quantiles_but_no_drift() -> None:
    until = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    rows = [_row(until - timedelta(minutes=30), [0.5] * 200, [0.0, 1.0])]
    (w,) = roll_windows(rows, references={}, since=until - timedelta(hours=1), until=until, window=timedelta(hours=1))
    assert w.psi is None and w.drift_note == "no reference for this model version"
    assert w.p50 == pytest.approx(0.5)  # all 200 in [0, 1): target 100 -> 0 + 100/200


def test_rows_on_other_edges_are_left_out_of_drift() -> None:
    until = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    ref = {"edges": [0.0, 1.0], "proportions": [0.25, 0.5, 0.25], "source": "card"}
    rows = [
        _row(until - timedelta(minutes=30), [0.5] * 200, [0.0, 1.0]),
        _row(until - timedelta(minutes=20), [0.5] * 50, [0.0, 2.0]),  # binned on other edges
    ]
    (w,) = roll_windows(
        rows,
        references={"m": ref},
        since=until - timedelta(hours=1),
        until=until,
        window=timedelta(hours=1),
        min_count=100,
    )
    assert w.served == 250
    # 200 scores all in the middle bin: p = 1e-4, 1, 1e-4 (floored)
    #   2 * (1e-4 - .25) ln(1e-4 / .25) = 2 * -0.2499 * -7.824046 = 3.910457
    #   (1 - .5) ln(2) = 0.346574; sum 4.257031
    assert w.psi == pytest.approx(4.25703, abs=1e-4)
    assert "50 of 250 scores binned on other edges" in w.drift_note
