"""Length-controlled Bradley-Terry: a fixed length term beside the reward, left out at scoring time.

A judge that favours longer answers (AlpacaEval's GPT-4: the longer answer wins ~90% of its pairs) teaches a
plain Bradley-Terry reward model to pay for length: it scores the length of an answer, not its quality. The
length-controlled model explains each preference by the reward *plus* a length term::

    P(chosen > rejected) = sigmoid(r_c - r_r + beta * (log(1 + chars_c) - log(1 + chars_r)))

``beta`` is fitted first, on the training pairs alone (a one-feature logistic regression,
``fit_length_coefficient``), and then held fixed while the reward model trains; scores are ``r`` alone. What
length explains, the length term takes, so the gradient no longer pushes the reward towards length; the
reward learns the rest. This is the product-of-experts debiasing of Clark et al. (2019, "Don't Take the Easy
Way Out": a bias-only model fitted first, added to the main model's logits in training, dropped at test
time), with the length term of length-controlled AlpacaEval (Dubois et al. 2024) as the bias-only model.
Characters of the full response, not tokens after truncation: the judge saw the whole answer; log because
going from 100 to 200 characters matters more than from 2,000 to 2,100.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def log_length(chars: Sequence[int]) -> np.ndarray:
    """log(1 + characters) per response, [N]: the length the feature and ``pearson`` logging use."""
    return np.log1p(np.asarray(chars, dtype=np.float64))


def length_feature(chosen_chars: Sequence[int], rejected_chars: Sequence[int]) -> np.ndarray:
    """log(1 + chars_chosen) - log(1 + chars_rejected) per pair, [N]; > 0 where the chosen one is longer."""
    return log_length(chosen_chars) - log_length(rejected_chars)


def pearson(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Pearson correlation of two [N] tensors, 0-d; 0 when either is constant (no division by zero).

    Training logs it between the reward and log length: how much the reward follows length."""
    x, y = x.double(), y.double()
    xc, yc = x - x.mean(), y - y.mean()
    return (xc * yc).sum() / (xc.norm() * yc.norm()).clamp(min=eps)


def fit_length_coefficient(
    feature: Sequence[float], targets: Sequence[float] | None = None, l2: float = 1e-4, iterations: int = 100
) -> float:
    """beta minimising mean(BCE(sigmoid(beta * x), y)) + l2 / 2 * beta^2, by Newton's method.

    feature x: ``length_feature`` per pair. targets y: P(chosen better), 1 for a decided pair (default), 0.5
    for a tie. No intercept: swapping a pair's sides flips x and y together, so the model is symmetric.
    The small ``l2`` keeps beta finite when length alone separates the data (every chosen one longer)."""
    x = np.asarray(feature, dtype=np.float64)
    y = np.ones_like(x) if targets is None else np.asarray(targets, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"feature ({x.size}) and targets ({y.size}) differ in length")
    if x.size == 0 or not np.any(x):
        return 0.0
    beta = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-beta * x))
        grad = np.mean((p - y) * x) + l2 * beta
        hess = np.mean(p * (1 - p) * x * x) + l2
        step = grad / hess
        beta -= step
        if abs(step) < 1e-10:
            break
    return float(beta)
