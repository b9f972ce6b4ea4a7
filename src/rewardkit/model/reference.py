"""A model version's reference score distribution: the bins every served score is counted in, and the share of
scores each bin held on the reference set. Drift (PSI, KS) is measured against it.

    ref = fit_reference(validation_scores)          # at training time: into the model card as ``reference``
    ref = normal_reference(mean, std)               # an older card without one: equal-mass bins of a normal
    counts = bin_counts(scores, ref["edges"])       # the service's per-minute histogram

A reference is a plain dict (what the card stores as JSON and ``score_references`` holds)::

    edges        B - 1 increasing bin edges, raw score units
    proportions  B shares, summing to 1: below edges[0], between consecutive edges, at or above edges[-1]
    reward_mean  mean of the reference scores
    reward_std   their standard deviation
    source       "card" (fitted on scores at training time) | "normal" (assumed from mean/std only)

Binning convention (``np.searchsorted(edges, x, side="right")``): bin 0 holds x < edges[0], bin i holds
edges[i-1] <= x < edges[i], bin B-1 holds x >= edges[-1]. A score on an edge goes to the bin above it.
(evaluate/drift.py bins samples the other way round on ties, ``side="left"``; it only matters for a score
exactly on an edge.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

DEFAULT_BINS = 20
"""Equal-mass bins: each holds 5% of the reference scores, so p05 and p95 fall on an edge."""

SOURCES = ("card", "normal")


def bin_counts(scores: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """(len(edges) + 1,) int counts of ``scores`` per bin (the module's convention: edges[i-1] <= x < edges[i])."""
    edges = np.asarray(edges, float)
    index = np.searchsorted(edges, np.asarray(scores, float).ravel(), side="right")
    return np.bincount(index, minlength=edges.size + 1)


def fit_reference(scores: np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """The reference fitted on ``scores`` (the validation scores at training time): edges at the scores'
    quantiles 1/bins, ..., (bins-1)/bins, and the share of the scores in each bin (about 1/bins each; less even
    where many scores tie, as edges that coincide are merged)."""
    scores = np.asarray(scores, float).ravel()
    if bins < 2:
        raise ValueError(f"reference: bins must be at least 2, got {bins}")
    if scores.size < bins or not np.all(np.isfinite(scores)):
        raise ValueError(f"reference: expected at least {bins} finite scores, got {scores.size} (or a NaN/inf)")
    edges = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    proportions = bin_counts(scores, edges) / scores.size
    return {
        "edges": edges.tolist(),
        "proportions": proportions.tolist(),
        "reward_mean": float(scores.mean()),
        "reward_std": float(scores.std(ddof=1)) if scores.size > 1 else 0.0,
        "source": "card",
    }


def normal_reference(reward_mean: float, reward_std: float, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """The fallback for a model whose card has no fitted reference: a normal with the card's mean and std, cut
    into ``bins`` equal-mass bins (edges at mean + std * z, z the standard normal's quantiles k/bins), so each
    proportion is exactly 1/bins. Drift against it measures the departure from that normal, not from the
    training distribution: the caller warns."""
    if not (np.isfinite(reward_mean) and np.isfinite(reward_std) and reward_std > 0):
        raise ValueError(f"reference: need a finite mean and a std > 0, got {reward_mean}, {reward_std}")
    if bins < 2:
        raise ValueError(f"reference: bins must be at least 2, got {bins}")
    z = stats.norm.ppf(np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return {
        "edges": (reward_mean + reward_std * z).tolist(),
        "proportions": [1.0 / bins] * bins,
        "reward_mean": float(reward_mean),
        "reward_std": float(reward_std),
        "source": "normal",
    }


def check_reference(reference: Any, where: str = "reference") -> dict[str, Any]:
    """``reference`` if it is a well-formed reference dict, else ValueError naming the field (for a model card
    or a store row written by hand)."""
    if not isinstance(reference, dict):
        raise ValueError(f"{where}: expected an object with edges and proportions, got {type(reference).__name__}")
    try:
        edges = np.asarray(reference["edges"], float)
        proportions = np.asarray(reference["proportions"], float)
    except KeyError as exc:
        raise ValueError(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{where}: edges and proportions must be lists of numbers") from None
    if edges.ndim != 1 or edges.size < 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{where}.edges: expected a non-empty list of strictly increasing finite numbers")
    if proportions.shape != (edges.size + 1,):
        raise ValueError(
            f"{where}.proportions: expected {edges.size + 1} values (len(edges) + 1), got {proportions.size}"
        )
    if np.any(proportions < 0) or not np.isclose(proportions.sum(), 1.0, atol=1e-6):
        raise ValueError(f"{where}.proportions: expected non-negative shares summing to 1, got {proportions.sum():.6g}")
    source = reference.get("source", "card")
    if source not in SOURCES:
        raise ValueError(f"{where}.source: expected one of {SOURCES}, got {source!r}")
    return {
        "edges": edges.tolist(),
        "proportions": proportions.tolist(),
        "reward_mean": reference.get("reward_mean"),
        "reward_std": reference.get("reward_std"),
        "source": source,
    }


def reference_for_card(
    reference: Any, reward_mean: float, reward_std: float, bins: int = DEFAULT_BINS
) -> tuple[dict[str, Any], str | None]:
    """The reference a served model version uses: its card's fitted ``reference`` when there is one, else the
    normal fallback from the card's reward_mean/std, with the warning the caller logs (None when fitted)."""
    if reference is not None:
        return check_reference(reference, "rewardkit.json reference"), None
    warning = (
        "the model card has no fitted reference histogram (trained before monitoring existed): drift is measured "
        f"against a normal with the card's mean {reward_mean:.4g} and std {reward_std:.4g}, which real reward "
        "distributions rarely are; retrain or re-save the card with a reference for drift you can trust"
    )
    return normal_reference(reward_mean, reward_std, bins), warning


def usable_references(stored: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The well-formed references among ``stored`` (model version -> reference, as ``get_score_references``
    returns them), and one warning per one left out: a row written by hand or by a buggy writer must cost its
    model version its drift figures, not the whole report."""
    good, warnings = {}, []
    for model_version, reference in stored.items():
        try:
            good[model_version] = check_reference(dict(reference), f"score_references[{model_version!r}]")
        except ValueError as exc:
            warnings.append(f"{exc}; drift for this model version is not computed")
    return good, warnings
