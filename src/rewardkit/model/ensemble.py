"""An ensemble of reward models: the mean score, and the spread across members as uncertainty.

    ens = Ensemble([rm0, rm1, rm2])                      # or load_reward_model(folder) for a saved one
    ens.score(prompts, responses)                        # [N] mean over members
    mean, std = ens.score_with_uncertainty(prompts, responses)
    ens.member_scores(prompts, responses)                # [M, N], row m = member m

Composition, not inheritance: a member is anything with ``.score(prompts, responses, **kw) -> [N]``
(normally a ``RewardModel``), and the Ensemble only combines their outputs. Members differ by seed
(``member_seeds``) and/or by training on a bootstrap resample (``bootstrap_indices``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from rewardkit.data.types import Prompt


class Scorer(Protocol):
    """What an ensemble member must offer."""

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], **kw: Any) -> np.ndarray: ...


class Ensemble:
    """M reward models scored together. ``members`` is the tuple of scorers, in order."""

    def __init__(self, members: Sequence[Scorer]) -> None:
        if not members:
            raise ValueError("an Ensemble needs at least one member")
        for i, member in enumerate(members):
            if not callable(getattr(member, "score", None)):
                raise ValueError(f"ensemble member {i} ({type(member).__name__}) has no .score(prompts, responses)")
        self.members: tuple[Scorer, ...] = tuple(members)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def card(self) -> Any:
        """The first member's card (members trained together share calibration and normalization), or
        None when members carry no card."""
        return getattr(self.members[0], "card", None)

    def member_scores(self, prompts: Sequence[Prompt], responses: Sequence[str], **kw: Any) -> np.ndarray:
        """[M, N] float64: row m is member m's ``score(prompts, responses, **kw)``."""
        rows = []
        for i, member in enumerate(self.members):
            scores = np.asarray(member.score(prompts, responses, **kw), dtype=np.float64)
            if scores.shape != (len(responses),):
                raise ValueError(f"ensemble member {i} returned shape {scores.shape}, expected ({len(responses)},)")
            rows.append(scores)
        return np.stack(rows)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], **kw: Any) -> np.ndarray:
        """[N] mean over members (keyword arguments, e.g. ``normalize=True``, go to every member)."""
        return self.member_scores(prompts, responses, **kw).mean(axis=0)

    def score_with_uncertainty(
        self, prompts: Sequence[Prompt], responses: Sequence[str], **kw: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """([N] mean, [N] std) over members. The std is the population std (ddof = 0): the spread of
        these M members, 0 for a single member rather than undefined."""
        scores = self.member_scores(prompts, responses, **kw)
        return scores.mean(axis=0), scores.std(axis=0, ddof=0)


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
