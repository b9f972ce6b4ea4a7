"""Calibration metrics, temperature fitting and reward normalization (pure numpy).

The probabilities here are P("chosen / a is better") and the labels 1 when it was (0 when not, 0.5 for a
tie where soft labels are allowed). Binary reliability, not the multi-class "max confidence" form: a bin
compares the mean predicted P with the observed fraction of positives.

    ece = expected_calibration_error(p, y)            # equal-width bins on [0, 1]
    T = fit_temperature(r_a - r_b, y)                 # P = sigmoid(d / T) minimises NLL
    mean, std = reward_stats(reference_rewards); normalize(r, mean, std)
    cal = calibrate(r_chosen, r_rejected, decided, reference_size)   # all a model card stores, at once
    threshold, balanced = fit_step_threshold(step_probs, good)        # a process reward model's error line
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.model.reference import DEFAULT_BINS, fit_reference


def as_array(values: Any) -> np.ndarray:
    """float64 1-D numpy view of a list, numpy array or torch tensor (detached, on CPU, any float dtype)."""
    if hasattr(values, "detach"):  # torch.Tensor: bf16 has no numpy dtype, so go through float32
        values = values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, y = as_array(probs), as_array(labels)
    if p.shape != y.shape:
        raise ValueError(f"probs ({p.size}) and labels ({y.size}) differ in length")
    if p.size == 0:
        raise ValueError("calibration needs at least one prediction")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("probs must be probabilities in [0, 1]")
    if np.isnan(y).any() or (y < 0).any() or (y > 1).any():
        raise ValueError("labels must lie in [0, 1] (1 = chosen better, 0 = not)")
    return p, y


def bin_index(probs: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Equal-width bin of each probability: bin b holds [b/n, (b+1)/n), the last bin also holds 1.0."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    return np.minimum((as_array(probs) * n_bins).astype(np.int64), n_bins - 1)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """The non-empty bins of a reliability diagram, low to high: each a dict with ``lo``, ``hi`` (edges),
    ``confidence`` (mean predicted P), ``accuracy`` (mean label: observed fraction of positives) and
    ``count``. Empty bins are left out (they have no mean, and NaN does not survive JSON)."""
    p, y = _check(probs, labels)
    idx = bin_index(p, n_bins)
    rows = []
    for b in range(n_bins):
        members = idx == b
        if members.any():
            rows.append(
                {
                    "lo": b / n_bins,
                    "hi": (b + 1) / n_bins,
                    "confidence": float(p[members].mean()),
                    "accuracy": float(y[members].mean()),
                    "count": int(members.sum()),
                }
            )
    return rows


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE = sum over bins of (count_b / N) * |accuracy_b - confidence_b| (Naeini et al. 2015; Guo et al.
    2017), equal-width bins as in ``bin_index``. 0 is perfectly calibrated; at most 1."""
    n = as_array(probs).size
    return float(
        sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(probs, labels, n_bins))
    )


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error mean((p - y)^2) of the probabilities; 0.25 for a constant 0.5."""
    p, y = _check(probs, labels)
    return float(np.mean((p - y) ** 2))


def p_better(score_a: float | np.ndarray, score_b: float | np.ndarray, temperature: float) -> Any:
    """Calibrated P(a better than b) = sigmoid((a - b) / T)."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(score_a) - np.asarray(score_b)) / temperature))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + e^-x)


def temperature_nll(score_diffs: np.ndarray, labels: np.ndarray, temperature: float, offset: Any = 0.0) -> float:
    """Mean NLL of labels under P = sigmoid(d / T + o): mean(softplus(z) - y z), z = d / T + o (``offset`` o:
    a fixed term per pair, 0 by default)."""
    z, y = as_array(score_diffs) / temperature + np.asarray(offset, dtype=np.float64), as_array(labels)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


T_MIN, T_MAX = 1e-2, 1e2
"""fit_temperature's search range: a result equal to either bound is a limit, not an estimate."""

BOUND_NOTES = {
    "lower": "the lower bound of the search: the validation NLL was still falling at T = 0.01 (the pairs are "
    "perfectly or almost perfectly separated, or the score differences are tiny), so the best T is smaller "
    "still; T is a limit, not an estimate, and P(a better than b) is not calibrated",
    "upper": "the upper bound of the search: on validation the scores are unrelated or anti-correlated to the "
    "labels, so P(a better than b) comes out near 0.5 for every pair",
}
"""What a fitted temperature at a bound means, for the model card and the training log."""


def fit_temperature(
    score_diffs: np.ndarray,
    labels: np.ndarray,
    t_min: float = T_MIN,
    t_max: float = T_MAX,
    iters: int = 100,
    offset: Any = 0.0,
) -> float:
    """T in [t_min, t_max] minimising the NLL of sigmoid(d / T) (score_diffs d = r_a - r_b, labels y).

    With beta = 1 / T the NLL is a 1-D logistic regression without intercept, convex in beta, so its
    derivative g(beta) = mean((sigmoid(beta d) - y) d) is increasing and the minimiser is its root.
    Bisection on log beta finds it: deterministic, no learning rate, and it cannot diverge. If the root
    is outside the range (the scores are anti-correlated with the labels, or separate them perfectly)
    the nearest bound is returned. ``offset``: a fixed term o per pair, P = sigmoid(d / T + o) (length-controlled
    BT's beta * length feature); the derivative stays increasing in beta, so the same bisection holds."""
    d, y = as_array(score_diffs), as_array(labels)
    o = np.broadcast_to(np.asarray(offset, dtype=np.float64), d.shape)
    if d.shape != y.shape or d.size == 0:
        raise ValueError(f"score_diffs ({d.size}) and labels ({y.size}) must be non-empty and equal in length")
    if not 0 < t_min < t_max:
        raise ValueError(f"need 0 < t_min < t_max, got {t_min}, {t_max}")
    if not np.isfinite(d).all() or (y < 0).any() or (y > 1).any():
        raise ValueError("score_diffs must be finite and labels in [0, 1]")

    def grad(log_beta: float) -> float:
        return float(np.mean((_sigmoid(np.exp(log_beta) * d + o) - y) * d))

    lo, hi = np.log(1.0 / t_max), np.log(1.0 / t_min)
    if grad(lo) >= 0:  # NLL already rising at the smallest beta: the flattest allowed T
        return t_max
    if grad(hi) <= 0:  # still falling at the largest beta: the sharpest allowed T
        return t_min
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if grad(mid) < 0:
            lo = mid
        else:
            hi = mid
    return float(1.0 / np.exp(0.5 * (lo + hi)))


def calibrated_nll(score_diffs: Any, offsets: Any = None) -> float:
    """The validation loss after calibration: mean NLL of sigmoid(d / T) at the temperature ``calibrate`` fits
    (both orientations of each decided pair, so it equals mean(softplus(-d / T))). ``score_diffs`` [N]:
    r_chosen - r_rejected of the decided pairs. NaN without pairs. ``offsets`` [N]: a fixed term of each pair's
    preference, sigmoid(d / T + o) (length-controlled training's beta * length feature: the reward is meant not
    to explain what length does, so it is judged beside the length term, as it was trained).

    Unlike the raw loss it does not grow when the rewards only spread out (a model growing confident scales
    every d up; T scales them back), so it tracks how well the pairs are ordered and separated: what the
    served, calibrated P(a better than b) will be worth. One pair fits no T (as in ``calibrate``): T = 1."""
    d = as_array(score_diffs)
    if d.size == 0:
        return float("nan")
    o = np.zeros_like(d) if offsets is None else as_array(offsets)
    both, both_o = np.concatenate([d, -d]), np.concatenate([o, -o])
    labels = np.concatenate([np.ones_like(d), np.zeros_like(d)])
    temperature = fit_temperature(both, labels, offset=both_o) if d.size >= 2 else 1.0
    return temperature_nll(both, labels, temperature, both_o)


def temperature_at_bound(temperature: float, t_min: float = T_MIN, t_max: float = T_MAX) -> str | None:
    """'lower' or 'upper' when a fitted T is a bound of ``fit_temperature``'s search (a limit, not an
    estimate: ``BOUND_NOTES``), else None."""
    if temperature <= t_min:
        return "lower"
    if temperature >= t_max:
        return "upper"
    return None


def reward_stats(rewards: np.ndarray) -> tuple[float, float]:
    """(mean, std) of rewards on a reference set, std with ddof = 0. A constant set gets std 1, so
    normalizing only shifts it instead of dividing by zero."""
    r = as_array(rewards)
    if r.size == 0 or not np.isfinite(r).all():
        raise ValueError("reward statistics need a non-empty set of finite rewards")
    std = float(r.std())
    return float(r.mean()), std if std > 0 else 1.0


def normalize(scores: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(scores - mean) / std, same shape as ``scores``."""
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return (as_array(scores).reshape(np.shape(scores)) - mean) / std


def reference_pairs(n_pairs: int, size: int) -> np.ndarray:
    """Indices of the validation pairs whose responses, chosen AND rejected, form the normalization reference
    set of ``size`` responses: size // 2 pairs (at least 1; every pair when there are fewer), spread evenly
    over all n_pairs (pair i * n_pairs // k for i < k), so a file sorted by topic or source is not read from
    one end only. Both sides of each pair, because what gets scored is both: a reference of chosen
    responses alone sits higher than the responses a model is asked about."""
    if n_pairs < 0 or size < 1:
        raise ValueError(f"need n_pairs >= 0 and size >= 1, got {n_pairs}, {size}")
    k = max(1, size // 2)
    if k >= n_pairs:
        return np.arange(n_pairs, dtype=np.int64)
    return np.arange(k, dtype=np.int64) * n_pairs // k


@dataclass(frozen=True)
class Calibration:
    """What a model card stores about a score, fitted on validation (``calibrate``)."""

    temperature: float
    """T of P(a better than b) = sigmoid((s_a - s_b) / T); 1 when fewer than 2 decided pairs."""
    at_bound: str | None
    """'lower' / 'upper' when T is a bound of the search (``temperature_at_bound``), else None."""
    reward_mean: float
    reward_std: float
    """Mean and std (ddof 0) of the score over the reference set (``reference_pairs``, both sides)."""
    ece_before: float | None
    ece_after: float | None
    """ECE of sigmoid(d) and of sigmoid(d / T) on the decided pairs, both orientations; None without any."""
    ece_after_cross_fit: float | None = None
    """ECE after calibration on pairs the temperature was NOT fitted on (``cross_fitted_ece``): ``ece_after``
    measures T on its own fitting data and flatters it. None under 4 decided pairs."""
    reference: dict[str, Any] | None = None
    """The score's reference distribution over the same reference set (``model.reference.fit_reference``:
    equal-mass bins and their shares), what the service bins served scores on and monitoring measures drift
    against; None when the set is too small to fit its bins."""


REFERENCE_MIN_SCORES = 4 * DEFAULT_BINS
"""Under this many reference scores the bins of a reference distribution would hold a handful of scores each."""


def calibrate(chosen: Any, rejected: Any, decided: Any, reference_size: int) -> Calibration:
    """Fit temperature and normalization of one score from its validation values: ``chosen``/``rejected``
    [N] the score of each pair's two responses, ``decided`` [N] True where the pair is not a tie.

    P(a > b) is symmetric, so T is fitted on both orientations of each decided pair, (d, 1) and (-d, 0):
    the fitted curve passes through 0.5 at d = 0. Ties take part in the reference set only."""
    c, r = as_array(chosen), as_array(rejected)
    keep = as_array(decided) > 0.5
    if not c.shape == r.shape == keep.shape:
        raise ValueError(f"chosen ({c.size}), rejected ({r.size}) and decided ({keep.size}) differ in length")
    d = (c - r)[keep]
    both = np.concatenate([d, -d])
    labels = np.concatenate([np.ones_like(d), np.zeros_like(d)])
    temperature = fit_temperature(both, labels) if d.size >= 2 else 1.0
    rows = reference_pairs(c.size, reference_size)
    scores = np.concatenate([c[rows], r[rows]])
    mean, std = reward_stats(scores)
    return Calibration(
        temperature=float(temperature),
        at_bound=temperature_at_bound(temperature) if d.size >= 2 else None,
        reward_mean=mean,
        reward_std=std,
        ece_before=expected_calibration_error(_sigmoid(both), labels) if d.size else None,
        ece_after=expected_calibration_error(_sigmoid(both / temperature), labels) if d.size else None,
        ece_after_cross_fit=cross_fitted_ece(d),
        reference=fit_reference(scores) if scores.size >= REFERENCE_MIN_SCORES else None,
    )


def cross_fitted_ece(d: Any) -> float | None:
    """ECE of sigmoid(d / T) where each pair's T was fitted on the other pairs: 2 folds (even and odd
    positions), T fitted on one fold's pairs in both orientations and applied to the other's; the ECE is over
    all pairs, both orientations. ``d`` [N]: score differences of decided pairs. None under 4 pairs."""
    d = as_array(d)
    if d.size < 4:
        return None
    folds = [np.arange(0, d.size, 2), np.arange(1, d.size, 2)]
    probs, labels = [], []
    for fit_on, apply_to in (folds, folds[::-1]):
        both = np.concatenate([d[fit_on], -d[fit_on]])
        t = fit_temperature(both, np.concatenate([np.ones(fit_on.size), np.zeros(fit_on.size)]))
        probs += [_sigmoid(d[apply_to] / t), _sigmoid(-d[apply_to] / t)]
        labels += [np.ones(apply_to.size), np.zeros(apply_to.size)]
    return expected_calibration_error(np.concatenate(probs), np.concatenate(labels))


def fit_step_threshold(scores: Sequence[float], good: Sequence[bool]) -> tuple[float, float]:
    """(threshold, balanced accuracy): the threshold t maximizing the mean of the good steps' share scored >= t
    and the bad steps' share scored < t, t halfway between two neighbouring distinct scores (ties: the t nearest
    0.5). (0.5, nan) when either class is missing: nothing to separate."""
    p, y = np.asarray(scores, dtype=np.float64), np.asarray(good, dtype=bool)
    n_good, n_bad = int(y.sum()), int((~y).sum())
    if n_good == 0 or n_bad == 0:
        return 0.5, float("nan")
    values = np.unique(p)
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    order = np.sort(p[y]), np.sort(p[~y])
    good_kept = 1 - np.searchsorted(order[0], cuts, side="left") / n_good  # good steps >= t
    bad_caught = np.searchsorted(order[1], cuts, side="left") / n_bad  # bad steps < t
    balanced = (good_kept + bad_caught) / 2
    best = np.flatnonzero(balanced >= balanced.max() - 1e-12)
    pick = best[np.argmin(np.abs(cuts[best] - 0.5))]
    return float(np.clip(cuts[pick], 0.0, 1.0)), float(balanced[pick])
