"""Distribution shift between a reference batch (the training data) and a new batch.

For each feature (reward score, response length, prompt length, embedding norm where given):

- **PSI** (population stability index) over 10 bins cut at the reference's deciles:
  ``PSI = sum_b (p_new - p_ref) * ln(p_new / p_ref)`` with empty bins floored at 1e-4.
  Thresholds (the usual credit-scoring convention): < 0.10 stable, 0.10-0.25 moderate shift,
  > 0.25 significant shift. A small sample alone crosses them: with 10 bins, 33 rows have 3.3 a bin on
  average, and two samples of one distribution gave PSI 2.55 in the demo. So a verdict above "stable" also
  needs the PSI to exceed its **noise level**: the 99th percentile of the PSI between random splits of the
  pooled rows into the same two sizes (200 seeded permutations; ``psi_noise``). Below it the verdict is
  "within noise": the data cannot tell a shift from sampling.
- **KS** two-sample test (scipy): the largest gap between the two CDFs; flagged when p < 0.01.
- **OOD inputs**: a new row is flagged out of distribution when any feature lies outside the reference's
  [0.5%, 99.5%] quantile range widened by 10% of that range on each side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

PSI_MODERATE = 0.10
PSI_SIGNIFICANT = 0.25
KS_ALPHA = 0.01
NOISE_QUANTILE = 0.99
NOISE_DRAWS = 200
OOD_QUANTILES = (0.005, 0.995)
OOD_MARGIN = 0.10
_FLOOR = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (both 1-D), bins at the reference's
    quantiles (duplicate edges from repeated values are merged)."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if reference.size == 0 or current.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    # bin index by searchsorted: (-inf, e0], (e0, e1], ..., (e_last, inf)
    p_ref = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=edges.size + 1) / reference.size
    p_new = np.bincount(np.searchsorted(edges, current, side="left"), minlength=edges.size + 1) / current.size
    p_ref, p_new = np.maximum(p_ref, _FLOOR), np.maximum(p_new, _FLOOR)
    return float(np.sum((p_new - p_ref) * np.log(p_new / p_ref)))


def psi_noise(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    draws: int = NOISE_DRAWS,
    quantile: float = NOISE_QUANTILE,
    seed: int = 0,
) -> float:
    """The PSI that samples of these sizes reach with no shift at all: the ``quantile`` of PSI over ``draws``
    random splits of the pooled rows into a reference and a current of the same sizes (seeded, so a report is
    reproducible). nan when either side is empty."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if reference.size == 0 or current.size == 0:
        return float("nan")
    pooled, rng = np.concatenate([reference, current]), np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        order = rng.permutation(pooled.size)
        values.append(psi(pooled[order[: reference.size]], pooled[order[reference.size :]]))
    return float(np.quantile(values, quantile))


def psi_verdict(value: float, noise: float | None = None) -> str:
    """stable | moderate | significant by the thresholds; "within noise" when the PSI crosses a threshold but
    not ``noise`` (``psi_noise``: what samples of these sizes reach with no shift); unknown for nan."""
    if not np.isfinite(value):
        return "unknown"
    if value < PSI_MODERATE:
        return "stable"
    if noise is not None and np.isfinite(noise) and value <= noise:
        return "within noise"
    return "significant" if value > PSI_SIGNIFICANT else "moderate"


def ks_test(reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    result = stats.ks_2samp(np.asarray(reference, float), np.asarray(current, float))
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue)}


def ood_mask(reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n_current,) bool: the row lies outside the widened reference range on any shared feature."""
    n = len(next(iter(current.values()))) if current else 0
    flags = np.zeros(n, dtype=bool)
    for name, ref in reference.items():
        if name not in current or len(ref) == 0:
            continue
        lo, hi = np.quantile(np.asarray(ref, float), OOD_QUANTILES)
        pad = OOD_MARGIN * (hi - lo)
        cur = np.asarray(current[name], float)
        flags |= (cur < lo - pad) | (cur > hi + pad)
    return flags


def drift_report(reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """PSI, KS and verdicts per feature present in both, and the OOD rows of ``current``."""
    features: dict[str, Any] = {}
    for name in reference:
        if name not in current:
            continue
        value = psi(reference[name], current[name])
        noise = psi_noise(reference[name], current[name]) if value >= PSI_MODERATE else None
        ks = ks_test(reference[name], current[name])
        features[name] = {
            "psi": value,
            "psi_noise": noise,
            "psi_verdict": psi_verdict(value, noise),
            "ks_statistic": ks["statistic"],
            "ks_p_value": ks["p_value"],
            "ks_shift": bool(ks["p_value"] < KS_ALPHA),
        }
    mask = ood_mask(reference, current)
    return {
        "features": features,
        "ood_rate": float(mask.mean()) if mask.size else 0.0,
        "ood_rows": np.flatnonzero(mask).tolist()[:100],
        "n_reference": int(len(next(iter(reference.values())))) if reference else 0,
        "n_current": int(mask.size),
        "thresholds": {
            "psi_moderate": PSI_MODERATE,
            "psi_significant": PSI_SIGNIFICANT,
            "psi_noise_quantile": NOISE_QUANTILE,
            "ks_alpha": KS_ALPHA,
        },
    }
