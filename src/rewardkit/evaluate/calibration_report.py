"""Calibration of P(chosen better) = sigmoid(margin / T), before (T = 1) and after the model's stored
temperature. The metrics themselves (ECE, Brier, reliability bins) are the training area's
``rewardkit.model.calibration``; this module only frames pairs for them.

A pair's label is always "chosen is better", so scoring only (p, 1) would reward a model that says 1.0
everywhere. Each pair is therefore counted in both orders, (p, 1) and (1 - p, 0): the usual symmetrisation
for pairwise calibration, which makes the reliability diagram symmetric about 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from rewardkit.model import calibration as cal


def symmetric_probabilities(margins: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(2n,) probabilities sigmoid(m/T) then 1 - that, and (2n,) labels 1 then 0."""
    p = expit(np.asarray(margins, float) / temperature)
    return np.concatenate([p, 1.0 - p]), np.concatenate([np.ones_like(p), np.zeros_like(p)])


def _one(margins: np.ndarray, temperature: float, n_bins: int) -> tuple[dict[str, Any], list[dict[str, float]]]:
    probs, labels = symmetric_probabilities(margins, temperature)
    rows = cal.reliability_bins(probs, labels, n_bins=n_bins)
    return {
        "temperature": temperature,
        "ece": float(cal.expected_calibration_error(probs, labels, n_bins=n_bins)),
        "brier": float(cal.brier_score(probs, labels)),
    }, rows


def calibration_report(
    margins: np.ndarray, temperature: float | None, *, n_bins: int = 10
) -> tuple[dict[str, Any], dict[str, Any]]:
    """({"raw", "stored_temperature" (None without one), "fitted_temperature"}, reliability bins per curve).

    ``fitted_temperature`` is the T that would be best on this very data (``cal.fit_temperature``): a
    reference for how far the stored T is from ideal here, not a number to deploy (it saw the test labels)."""
    raw, raw_bins = _one(margins, 1.0, n_bins)
    m = np.asarray(margins, float)
    fitted = (
        float(cal.fit_temperature(np.concatenate([m, -m]), np.concatenate([np.ones_like(m), np.zeros_like(m)])))
        if np.ptp(m) > 0
        else None
    )
    # at a search bound the fit did not find a minimum (margins anti-correlated with the labels, or separating
    # them perfectly): the number is a limit, not an estimate
    at_bound = fitted is not None and fitted in (cal.T_MIN, cal.T_MAX)
    report: dict[str, Any] = {
        "raw": raw,
        "stored_temperature": None,
        "fitted_temperature": fitted,
        "fitted_temperature_at_bound": at_bound,
    }
    curves: dict[str, Any] = {"T = 1 (raw)": raw_bins}
    if temperature is not None and temperature > 0:  # None: the card stores none (a stored 1.0 is still shown)
        report["stored_temperature"], curves[f"T = {temperature:.3g} (stored)"] = _one(margins, temperature, n_bins)
    return report, curves
