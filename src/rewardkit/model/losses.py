"""Reward-model losses: small pure torch functions, one formula each (see docs/losses.md).

Shapes: B pairs (or lists), A attributes, k responses per list. Every loss returns a 0-d tensor (the
mean over the batch) so the loop can add them. Written in the style of OpenRLHF ``models/loss.py``
(PairWiseLoss / LogExpLoss): ``-logsigmoid(d)`` rather than ``-log(sigmoid(d))``, which underflows to
``inf`` for d < -100 in float32.

``LOSSES`` at the bottom is the one registry (``--loss`` name -> ``Loss``) the training loop reads once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F


def pair_mean(per_pair: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """mean(weight * per_pair) over the batch; plain mean without weights.

    Not normalised by sum(weight): with weights whose mean over the training set is 1 (importance weights,
    ``train.batches.length_balance_weights``), this batch mean is an unbiased estimate of the reweighted objective."""
    return per_pair.mean() if weight is None else (per_pair * weight.to(per_pair.dtype)).mean()


def bradley_terry_loss(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """-mean(log sigmoid(r_c - r_r)); r_chosen, r_rejected: [B]; optional per-pair ``weight`` [B].

    The Bradley-Terry model says P(chosen > rejected) = sigmoid(r_c - r_r); this is its mean NLL."""
    return pair_mean(-F.logsigmoid(r_chosen - r_rejected), weight)


def margin_from_strength(strength: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Margin [B] from preference strength [B] in [0, 1]: ``scale * strength``; NaN (unknown) -> 0.

    Llama 2 (Touvron et al. 2023, sec. 3.2.2) used margins {0, 1/3, 2/3, 1} for "negligibly / slightly /
    better / significantly better", i.e. a linear map of an ordinal strength onto [0, 1]; with the default
    scale this is that map. An unknown strength gets margin 0, which is plain Bradley-Terry. A source's own
    score gap (TRL's ``margin`` column) is used as is, without this function."""
    if scale < 0:
        raise ValueError(f"margin scale must be >= 0, got {scale}")
    if strength.numel() and ((strength < 0) | (strength > 1)).any():
        raise ValueError("preference strength must lie in [0, 1]")
    return torch.nan_to_num(strength, nan=0.0) * scale


def margin_bradley_terry_loss(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """-mean(log sigmoid(r_c - r_r - m)); all [B] (Llama 2 style); optional per-pair ``weight`` [B].

    The chosen reward must beat the rejected one by at least ``margin`` before the loss flattens, so
    strongly preferred pairs are pushed further apart than marginal ones. margin 0 is Bradley-Terry."""
    return pair_mean(-F.logsigmoid(r_chosen - r_rejected - margin), weight)


def soft_preference_loss(
    r_a: torch.Tensor, r_b: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy against a soft label: -mean(y log s(d) + (1 - y) log s(-d)), d = r_a - r_b; all [B].

    ``target`` y = P(a better than b): 1 for "a preferred", 0 for "b preferred", 0.5 for a tie. This is
    the tie model rewardkit uses (label smoothing of ties, see docs/losses.md for why not Rao-Kupper or
    Davidson): a tie asks for d = 0, a win for d -> +inf, on the same scale as Bradley-Terry."""
    per_pair = F.binary_cross_entropy_with_logits(r_a - r_b, target.to(r_a.dtype), reduction="none")
    return pair_mean(per_pair, weight)


def tie_aware_loss(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, tie: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Bradley-Terry for decided pairs, label smoothing for ties; r_chosen, r_rejected: [B], tie: [B] bool.

    Per pair: -log s(d) when decided, -(0.5 log s(d) + 0.5 log s(-d)) when tied (d = r_c - r_r). A tie
    term is minimised at d = 0 (value log 2) and is symmetric in the two responses, so which one the
    data calls "chosen" does not matter. Mean over the batch."""
    target = torch.where(tie.to(torch.bool), 0.5, 1.0).to(r_chosen.dtype)
    return soft_preference_loss(r_chosen, r_rejected, target, weight)


def plackett_luce_loss(
    scores: torch.Tensor, order: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Plackett-Luce NLL of k-wise rankings, mean over the B lists.

    scores: [B, k]. order: [B, k] long, item indices best first (None: ``scores`` already in rank order).
    mask: [B, k] bool, True for real items, in rank order (padding for lists shorter than k; None: all real).

    P(ranking) = prod_i exp(s_i) / sum_{j >= i} exp(s_j) over the real positions i (best first), so the
    loss per list is sum_i [logsumexp_{j >= i} s_j - s_i]. For k = 2 it is -log sigmoid(s_1 - s_2),
    Bradley-Terry. A list with fewer than 2 real items contributes 0."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, k], got shape {tuple(scores.shape)}")
    if order is not None:
        scores = scores.gather(1, order)
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    if mask.shape != scores.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} must match scores {tuple(scores.shape)}")
    masked = scores.masked_fill(~mask, float("-inf"))  # padded items never enter a denominator
    # logsumexp over the suffix j >= i: flip, cumulative logsumexp, flip back.  [B, k]
    suffix_lse = masked.flip(1).logcumsumexp(1).flip(1)
    per_position = torch.where(mask, suffix_lse - scores, torch.zeros_like(scores))
    return per_position.sum(1).mean()


def regression_loss(
    predicted: torch.Tensor,
    ratings: torch.Tensor,
    mask: torch.Tensor | None = None,
    rating_mean: float = 0.0,
    rating_std: float = 1.0,
) -> torch.Tensor:
    """Masked MSE between predicted rewards [B] and normalized ratings (y - mean) / std, [B].

    Missing ratings are NaN or False in ``mask``; they contribute nothing. Pass the dataset's rating
    mean/std (not the batch's: a batch of 8 gives noisy statistics) to put e.g. 1-10 scores on the
    reward scale. Returns 0 when nothing in the batch is rated."""
    if rating_std <= 0:
        raise ValueError(f"rating_std must be > 0, got {rating_std}")
    valid = ~torch.isnan(ratings)
    if mask is not None:
        valid = valid & mask
    target = (torch.nan_to_num(ratings) - rating_mean) / rating_std
    squared = (predicted - target.to(predicted.dtype)) ** 2
    return torch.where(valid, squared, torch.zeros_like(squared)).sum() / valid.sum().clamp(min=1)


def step_bce_loss(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """-mean(y log sigmoid(l) + (1 - y) log sigmoid(-l)) over the labelled steps of a batch: logits [K] at the
    step tokens, targets [K] in {0, 1} (1: the step is sound); optional per-step ``weight`` [K].

    A process reward model's per-step binary classification (TRL's PRMTrainer: cross-entropy at the separator
    tokens, -100 elsewhere); averaged over the steps, not the solutions, as TRL's token-level loss is."""
    return pair_mean(F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none"), weight)


def centering_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, coef: float = 0.01) -> torch.Tensor:
    """Auxiliary ``coef * mean((r_c + r_r)^2)``, [B] each (Eisenstein et al. 2023, "Helping or Herding?").

    Bradley-Terry only sees differences, so rewards can drift by a constant; this pulls the pair's sum,
    and so the mean reward, towards 0. Add it to a pairwise loss; it is not a preference loss itself."""
    return coef * ((r_chosen + r_rejected) ** 2).mean()


def aggregate_attributes(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B, A] per-attribute rewards, [A] weights -> [B] weighted sum (the score users see)."""
    if scores.shape[-1] != weights.shape[0]:
        raise ValueError(f"{scores.shape[-1]} attributes but {weights.shape[0]} weights")
    return scores @ weights.to(scores.dtype)


def multi_attribute_loss(
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    attribute_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-attribute pairwise cross-entropy, averaged over the labelled (pair, attribute) cells.

    r_a, r_b: [B, A] rewards per attribute. target: [B, A] P(a better than b) on that attribute (1, 0, or
    0.5 for a tie), so a pair may prefer a on helpfulness and b on harmlessness. mask: [B, A] bool, False
    where the pair carries no label for that attribute (None: all labelled). attribute_weights: [A] loss
    weight per attribute (None: 1 each). Loss = sum(w_a * ce) / sum(w_a) over the labelled cells; 0 when
    nothing is labelled."""
    if r_a.shape != r_b.shape or r_a.shape != target.shape or r_a.dim() != 2:
        raise ValueError(
            f"r_a, r_b and target must share a [B, A] shape, got {tuple(r_a.shape)}, "
            f"{tuple(r_b.shape)}, {tuple(target.shape)}"
        )
    if mask is None:
        mask = torch.ones_like(r_a, dtype=torch.bool)
    weights = (
        torch.ones(r_a.shape[1], dtype=r_a.dtype, device=r_a.device)
        if attribute_weights is None
        else attribute_weights.to(r_a.dtype)
    )
    cell_weight = mask.to(r_a.dtype) * weights  # [B, A]; unlabelled cells weigh 0
    ce = F.binary_cross_entropy_with_logits(r_a - r_b, torch.nan_to_num(target).to(r_a.dtype), reduction="none")
    return (ce * cell_weight).sum() / cell_weight.sum().clamp(min=1e-12)


@dataclass(frozen=True)
class Loss:
    """A registry entry: the loss function and what it is fed.

    ``data``: "pairs" -> ``fn(r_chosen [B], r_rejected [B], *label, weight)`` with ``label`` the pair field named
    by ``label`` (margin [B], tie [B] or target [B], or none); "lists" -> ``fn(scores [B, k] best first,
    mask=[B, k])``; "ratings" -> ``fn(predicted [R], ratings [R], rating_mean=, rating_std=)``;
    "steps" -> ``fn(step logits [K], targets [K])`` (a process reward model's labelled steps)."""

    fn: Callable[..., torch.Tensor]
    data: Literal["pairs", "lists", "ratings", "steps"] = "pairs"
    label: Literal["margin", "tie", "target"] | None = None


# The one registry, keyed by the names `rewardkit train --loss` accepts (a test keeps TrainConfig.loss's
# choices and these keys the same set); the training loop reads it once. Aux terms (centering) and helpers
# (margin_from_strength, aggregate_attributes) are not objectives and stay out. Multi-attribute training
# (--attributes) uses the pairwise entry chosen here on each pair's own head (multi_attribute_loss with one
# labelled cell per pair; tests/model/test_losses.py checks the two agree).
LOSSES: dict[str, Loss] = {
    "bt": Loss(bradley_terry_loss),
    "margin": Loss(margin_bradley_terry_loss, label="margin"),
    "tie": Loss(tie_aware_loss, label="tie"),
    "soft": Loss(soft_preference_loss, label="target"),
    "plackett-luce": Loss(plackett_luce_loss, data="lists"),
    "regression": Loss(regression_loss, data="ratings"),
    # the process reward model's (--objective prm): fn(logits [K], targets [K]) over a batch's labelled steps
    "step-bce": Loss(step_bce_loss, data="steps"),
}

# Auxiliary terms, added on top of an objective (e.g. TrainConfig.center_coef).
AUX_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "centering": centering_loss,
}
