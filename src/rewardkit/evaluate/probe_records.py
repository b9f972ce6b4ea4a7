"""What the reward-hacking probes share: a probe (a named edit of a response), the request it is shown, and the
bases each probed row's edits are compared with (``probe_fit`` fits them, ``probes`` runs against them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rewardkit.records import user_request

__all__ = ["Probe", "ProbeBases", "user_request"]  # user_request lives in records (robust training reads it too)


@dataclass(frozen=True)
class Probe:
    name: str
    apply: Callable[[str, str, int], str]

    @property
    def description(self) -> str:
        return (self.apply.__doc__ or "").strip()


@dataclass(frozen=True)
class ProbeBases:
    """What each probed row's edits are compared with: the response, or a cut of it."""

    texts: list[str]
    """(n,) the response, or its cut where ``cut`` is True."""
    cut: np.ndarray
    """(n,) bool: the response was too long for the model to read it with every edit, so it was cut."""
    unseen: np.ndarray
    """(n,) bool: no cut leaves room for every edit; the probes leave the row out."""
