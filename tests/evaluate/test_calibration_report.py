"""Calibration framing of pairs, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.evaluate.calibration_report import calibration_report, symmetric_probabilities


def test_symmetric_probabilities() -> None:
    probs, labels = symmetric_probabilities(np.array([0.0, np.log(3.0)]))
    # sigmoid(0) = 0.5, sigmoid(ln 3) = 3/4; then the mirrored order
    assert probs.tolist() == pytest.approx([0.5, 0.75, 0.5, 0.25])
    assert labels.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert symmetric_probabilities(np.array([np.log(3.0)]), temperature=2.0)[0][0] == pytest.approx(
        np.sqrt(3) / (1 + np.sqrt(3))
    )


def test_calibration_hand_computed() -> None:
    # a coin-flip model (every margin 0): P = 0.5 everywhere, observed rate 0.5: ECE 0, Brier 0.25
    report, curves = calibration_report(np.zeros(4), None)
    assert report["raw"]["ece"] == pytest.approx(0.0) and report["raw"]["brier"] == pytest.approx(0.25)
    assert report["stored_temperature"] is None and report["fitted_temperature"] is None
    # a card that stores T = 1.0 has a stored temperature (the same numbers as raw), unlike one that stores none
    stored_one, curves_one = calibration_report(np.zeros(4), 1.0)
    assert stored_one["stored_temperature"] == stored_one["raw"] and len(curves_one) == 2
    # confidently wrong (margin -20): P(chosen) ~ 0 but chosen always wins: ECE ~ 1, Brier ~ 1
    report, _ = calibration_report(np.array([-20.0, -20.0, -19.0]), None)
    assert report["raw"]["ece"] == pytest.approx(1.0, abs=1e-6) and report["raw"]["brier"] == pytest.approx(
        1.0, abs=1e-6
    )
    # every margin on the wrong side: no temperature makes it right, the fit stops at the flattest bound
    assert report["fitted_temperature"] == 100.0 and report["fitted_temperature_at_bound"]
    # margins ln 3 and -ln 3: P(chosen) 0.75 and 0.25, each pair counted both ways -> four cases
    # (0.75, 1), (0.25, 0), (0.25, 1), (0.75, 0): each bin holds one win in two, |0.5 - 0.75| = |0.5 - 0.25| = 0.25,
    # so ECE = 0.25; Brier = (0.25^2 + 0.25^2 + 0.75^2 + 0.75^2) / 4 = 0.3125
    report, _ = calibration_report(np.array([np.log(3.0), -np.log(3.0)]), None)
    assert report["raw"]["ece"] == pytest.approx(0.25) and report["raw"]["brier"] == pytest.approx(0.3125)


def test_stored_temperature_softens_overconfident_scores() -> None:
    rng = np.random.default_rng(0)
    # margins whose true P(correct) = sigmoid(m / 4) but the raw model claims sigmoid(m): overconfident
    m = rng.normal(0.0, 6.0, 4000)
    flip = rng.random(4000) > 1.0 / (1.0 + np.exp(-m / 4.0))
    margins = np.where(flip, -m, m)  # margins as seen on (chosen, rejected) pairs
    report, curves = calibration_report(margins, 4.0)
    assert report["stored_temperature"]["ece"] < report["raw"]["ece"] / 2
    assert 3.0 < report["fitted_temperature"] < 5.0 and not report["fitted_temperature_at_bound"]
    assert len(curves) == 2 and all(b["count"] > 0 for b in next(iter(curves.values())))
