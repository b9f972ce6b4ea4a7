"""KL-shaped per-token rewards for PPO: the sequence reward at the last response token, ``-beta * KL_t`` at
every response token (the convention of TRL's PPOTrainer and OpenRLHF's ``compute_reward``).

    rewards_t = -beta * KL_t                 for every response token t
    rewards_T += score                       T: the last response token

with the per-token estimate ``KL_t`` of KL(pi || pi_ref) from the sampled token's log-probs under the policy
(``logprobs``) and the reference (``ref_logprobs``), ``log_ratio = logprobs - ref_logprobs``:

- ``k1``: ``log_ratio`` (unbiased, can be negative; TRL's default ``kl_estimator="k1"``)
- ``k2``: ``log_ratio ** 2 / 2`` (biased, never negative)
- ``k3``: ``exp(-log_ratio) - 1 + log_ratio`` (unbiased and never negative; Schulman's "Approximating KL
  divergence", ``r = pi_ref / pi``, ``(r - 1) - log r``; OpenRLHF's ``k3``, TRL's ``"k3"``)

OpenRLHF clamps the estimate to [-10, 10]; ``clamp=10.0`` does the same, the default leaves it (as TRL does).
Pure numpy, no model: the service and the TRL adapter call it on log-probs the trainer sends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KL_ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")


def kl_estimate(
    logprobs: np.ndarray, ref_logprobs: np.ndarray, estimator: str = "k1", clamp: float | None = None
) -> np.ndarray:
    """Per-token KL estimates, the shape of ``logprobs`` (any shape; the two arrays must match)."""
    logprobs, ref_logprobs = np.asarray(logprobs, dtype=np.float64), np.asarray(ref_logprobs, dtype=np.float64)
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(f"logprobs {logprobs.shape} and ref_logprobs {ref_logprobs.shape} differ in shape")
    if not (np.isfinite(logprobs).all() and np.isfinite(ref_logprobs).all()):
        raise ValueError("logprobs and ref_logprobs must be finite numbers")
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        kl = log_ratio
    elif estimator == "k2":
        kl = log_ratio**2 / 2.0
    elif estimator == "k3":
        kl = np.expm1(-log_ratio) + log_ratio  # expm1: exact near 0, where most tokens are
    else:
        raise ValueError(f"KL estimator must be one of {', '.join(KL_ESTIMATORS)}, got {estimator!r}")
    return np.clip(kl, -clamp, clamp) if clamp is not None else kl


def shaped_rewards(
    score: float,
    logprobs: Sequence[float],
    ref_logprobs: Sequence[float],
    beta: float,
    estimator: str = "k1",
    clamp: float | None = None,
) -> np.ndarray:
    """(T,) per-token rewards of one response of T tokens: ``-beta * KL_t``, plus ``score`` at the last token.

    The ragged form (one response, lists as a JSON request carries them)."""
    if beta < 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    if not np.isfinite(score):
        raise ValueError(f"score must be a finite number, got {score!r}")
    kl = kl_estimate(
        np.asarray(logprobs, dtype=np.float64), np.asarray(ref_logprobs, dtype=np.float64), estimator, clamp
    )
    if kl.ndim != 1 or kl.size == 0:
        raise ValueError(f"logprobs must be a non-empty list of numbers, one per response token; got shape {kl.shape}")
    rewards = -beta * kl
    rewards[-1] += score
    return rewards


def shaped_rewards_batch(
    scores: np.ndarray,
    logprobs: np.ndarray,
    ref_logprobs: np.ndarray,
    mask: np.ndarray,
    beta: float,
    estimator: str = "k1",
    clamp: float | None = None,
) -> np.ndarray:
    """(B, T) per-token rewards of B padded responses: ``mask`` (B, T) is 1 on response tokens (left- or
    right-padded), 0 elsewhere, where the reward is 0. ``scores`` (B,) lands on each row's last masked token.
    A row without a response token gets no score (it has nowhere to go) and raises."""
    scores = np.asarray(scores, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if beta < 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    logprobs, ref_logprobs = np.asarray(logprobs, dtype=np.float64), np.asarray(ref_logprobs, dtype=np.float64)
    if logprobs.ndim != 2 or mask.shape != logprobs.shape or scores.shape != (logprobs.shape[0],):
        raise ValueError(
            f"expected scores (B,), logprobs and mask (B, T); got {scores.shape}, {logprobs.shape}, {mask.shape}"
        )
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(f"row {int(empty[0])} has no response token in mask")
    # padded positions may hold anything (a trainer's fill value, -inf): they are not read, and reward 0
    kl = kl_estimate(np.where(mask, logprobs, 0.0), np.where(mask, ref_logprobs, 0.0), estimator, clamp)
    rewards = np.where(mask, -beta * kl, 0.0)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)  # (B,) the rightmost response token
    rewards[np.arange(len(scores)), last] += scores
    return rewards


def shaped_rewards_ragged(
    scores: Sequence[float],
    logprobs: Sequence[Sequence[float]],
    ref_logprobs: Sequence[Sequence[float]],
    beta: float,
    estimator: str = "k1",
    clamp: float | None = None,
) -> list[list[float]]:
    """Per-token rewards of several responses of different lengths, as JSON lists (the service's and the TRL
    adapter's form). A mistake names the response: ``ValueError("response 2: ...")``."""
    if not (len(scores) == len(logprobs) == len(ref_logprobs)):
        raise ValueError(
            f"expected one score, logprobs and ref_logprobs list per response; got {len(scores)}, "
            f"{len(logprobs)} and {len(ref_logprobs)}"
        )
    out = []
    for i, (score, lp, ref) in enumerate(zip(scores, logprobs, ref_logprobs)):
        try:
            out.append(shaped_rewards(score, lp, ref, beta, estimator, clamp).tolist())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"response {i}: {exc}") from None
    return out
