"""An ensemble of reward models: the mean score, and the spread across members as uncertainty.

    ens = load_ensemble(folder)                          # rewardkit.model.loading; or Ensemble([rm0, rm1, rm2], card)
    ens.score(prompts, responses)                        # [N] the ensemble score s
    mean, std = ens.score_with_uncertainty(prompts, responses)           # s and the std over members
    mean, std = ens.score_with_uncertainty(prompts, responses, normalize=True)   # both in normalized units
    ens.prob_better(prompts, responses_a, responses_b)   # sigmoid((s_a - s_b) / T), T fitted on s
    ens.member_scores(prompts, responses)                # [M, N], row m = member m on its own scale

The scale. Bradley-Terry sees only differences r(a) - r(b), so each member's constant offset is not
identified at all and its scale only loosely (seed, steps, early stopping): two members that rank every
response the same can differ by +3 everywhere, and a std over their RAW rewards would be 1.5 on every row,
measuring the offset instead of disagreement. So member m's reward is first standardized with its own
reference statistics, z_m = (r_m - reward_mean_m) / reward_std_m (its card, fitted on the validation
responses), as Gao et al. (2022) recentre each reward model and Eisenstein et al. (2023) compare members
as z-scores. The ensemble score is s = mean_m z_m and its uncertainty std_m z_m (ddof 0), in one unit.
The ensemble's own card (top-level rewardkit.json, ``member_scale: "standardized"``) holds the temperature
and the reward mean/std fitted on s itself over the validation set (train/ensemble_card.py), because neither a
member's T
nor its statistics describe s: averaging shrinks the spread where members disagree.

Composition, not inheritance: a member is anything with ``.score(prompts, responses, **kw) -> [N]`` (normally
a ``RewardModel``) and optionally a ``.card`` with reward_mean/reward_std/temperature. Members differ by seed
(``member_seeds``) and/or by training on a bootstrap resample (``bootstrap_indices``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from rewardkit.model.calibration import p_better
from rewardkit.model.card import RewardCard
from rewardkit.records import Prompt

MEMBER_SCALE = "standardized"
"""``RewardCard.member_scale`` of an ensemble whose temperature and reward mean/std were fitted on s."""


class Scorer(Protocol):
    """What an ensemble member must offer."""

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], **kw: Any) -> np.ndarray: ...


def member_stats(members: Sequence[Any]) -> list[tuple[float, float]]:
    """(reward_mean, reward_std) of each member's card: the reference scale its rewards are standardized
    with; (0, 1) for a member without a card (its scores used as they are)."""
    stats = []
    for member in members:
        card = getattr(member, "card", None)
        stats.append((float(getattr(card, "reward_mean", 0.0)), float(getattr(card, "reward_std", 1.0))))
    return stats


def standardize(raw: np.ndarray, stats: Sequence[tuple[float, float]]) -> np.ndarray:
    """[M, N] raw member rewards -> [M, N] with row m as (raw_m - mean_m) / std_m, ``stats[m]`` = (mean_m, std_m)."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[0] != len(stats):
        raise ValueError(f"standardize: scores of shape {raw.shape} for {len(stats)} members")
    mean, std = (np.asarray([s[i] for s in stats], dtype=np.float64)[:, None] for i in (0, 1))
    return (raw - mean) / std


def fallback_card(card: RewardCard | None, members: Sequence[Any]) -> RewardCard:
    """The card of an ensemble whose temperature and statistics were never fitted on s (saved before they
    were, or assembled by hand): T = the mean over members of T_m / reward_std_m (member m's temperature
    on its standardized scale, exact for s when the members agree), mean 0 and std 1 (each z_m has mean 0
    and std 1 over the shared reference set, so s has mean 0 and a std of at most 1 there)."""
    cards = [getattr(m, "card", None) for m in members]
    ratios = [c.temperature / c.reward_std for c in cards if c is not None]
    base = card if card is not None else RewardCard(max_length=getattr(cards[0], "max_length", 512))
    return replace(base, temperature=float(np.mean(ratios)) if ratios else 1.0, reward_mean=0.0, reward_std=1.0)


class Ensemble:
    """M reward models scored together. ``members`` is the tuple of scorers, in order; ``card`` the ensemble's
    own card (temperature and normalization of s), ``fallback_card`` when not given or never fitted."""

    def __init__(self, members: Sequence[Scorer], card: RewardCard | None = None) -> None:
        if not members:
            raise ValueError("an Ensemble needs at least one member")
        for i, member in enumerate(members):
            if not callable(getattr(member, "score", None)):
                raise ValueError(f"ensemble member {i} ({type(member).__name__}) has no .score(prompts, responses)")
        self.members: tuple[Scorer, ...] = tuple(members)
        self.card: RewardCard = (
            card if card is not None and card.member_scale == MEMBER_SCALE else fallback_card(card, self.members)
        )

    def __len__(self) -> int:
        return len(self.members)

    def member_scores(self, prompts: Sequence[Prompt], responses: Sequence[str], **kw: Any) -> np.ndarray:
        """[M, N] float64: row m is member m's ``score(prompts, responses, **kw)`` standardized with its card's
        reward mean/std (``standardize``)."""
        if "normalize" in kw:  # members' own normalize=True would be standardized a second time here
            raise TypeError("member_scores takes no 'normalize': each member is standardized with its own statistics")
        rows = []
        for i, member in enumerate(self.members):
            scores = np.asarray(member.score(prompts, responses, **kw), dtype=np.float64)
            if scores.shape != (len(responses),):
                raise ValueError(f"ensemble member {i} returned shape {scores.shape}, expected ({len(responses)},)")
            rows.append(scores)
        return standardize(np.stack(rows), member_stats(self.members))

    def score(
        self, prompts: Sequence[Prompt], responses: Sequence[str], normalize: bool = False, **kw: Any
    ) -> np.ndarray:
        """[N] the ensemble score s (mean over members); ``normalize``: (s - mean) / std from the ensemble card.
        Other keyword arguments (e.g. ``batch_size``) go to every member."""
        return self.score_with_uncertainty(prompts, responses, normalize=normalize, **kw)[0]

    def score_with_uncertainty(
        self, prompts: Sequence[Prompt], responses: Sequence[str], normalize: bool = False, **kw: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """([N] s, [N] std over members), the std the population std (ddof = 0): the spread of these M members,
        0 for a single member rather than undefined. ``normalize``: both in normalized units, ((s - mean) / std,
        std_members / std)."""
        scores = self.member_scores(prompts, responses, **kw)
        mean, spread = scores.mean(axis=0), scores.std(axis=0, ddof=0)
        if normalize:
            return (mean - self.card.reward_mean) / self.card.reward_std, spread / self.card.reward_std
        return mean, spread

    def prob_better(
        self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str], **kw: Any
    ) -> np.ndarray:
        """Calibrated P(a better than b) = sigmoid((s_a - s_b) / T) with the ensemble card's T, [N]."""
        n = len(prompts)
        s = self.score(list(prompts) * 2, list(responses_a) + list(responses_b), **kw)
        return p_better(s[:n], s[n:], self.card.temperature)


def member_seeds(base_seed: int, n: int) -> list[int]:
    """Seeds of n members: base_seed + 1000 * i. Member 0 keeps the base seed, so a one-member ensemble
    is the single model trained with that seed; the spacing means two ensembles whose base seeds differ
    by less than 1000 share no member seed."""
    if n < 1:
        raise ValueError(f"an ensemble needs n >= 1 members, got {n}")
    return [base_seed + 1000 * i for i in range(n)]


def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """[n] int64 row indices drawn uniformly with replacement (a bootstrap resample of n rows), the same
    for the same (n, seed). On average about 63% of rows appear at least once (1 - 1/e)."""
    if n < 1:
        raise ValueError(f"a bootstrap resample needs n >= 1 rows, got {n}")
    return np.random.default_rng(seed).integers(0, n, size=n, dtype=np.int64)


def out_of_bag(n: int, indices: np.ndarray) -> np.ndarray:
    """Sorted row indices in [0, n) that a bootstrap resample left out: a free held-out set per member."""
    mask = np.ones(n, dtype=bool)
    mask[np.asarray(indices, dtype=np.int64)] = False
    return np.flatnonzero(mask)
