"""Loading a saved reward model: one model folder (or HF id) as a ``RewardModel``, an ensemble folder as an
``Ensemble`` of them. The one place that knows both, so neither module imports the other.

    rm = load_reward_model("runs/rm1")       # a RewardModel, or an Ensemble when rewardkit.json lists members
    ens = load_ensemble("runs/ens")          # an ensemble folder only
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from rewardkit.model.backbone import resolve_backbone
from rewardkit.model.card import RewardCard, read_card
from rewardkit.model.ensemble import MEMBER_SCALE, Ensemble
from rewardkit.model.reward_model import RewardModel, load_single

log = logging.getLogger(__name__)


def load_reward_model(
    path_or_hf_id: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> RewardModel | Ensemble:
    """A ``RewardModel`` from a folder or HF id (an ``Ensemble`` when its rewardkit.json lists members, with its
    own card: the calibration fitted on the ensemble's score)."""
    path = str(path_or_hf_id) if Path(path_or_hf_id).exists() else resolve_backbone(str(path_or_hf_id))
    card = read_card(path) if Path(path).is_dir() else RewardCard()
    if card.is_ensemble:
        return load_ensemble(path, device=device, dtype=dtype)
    return load_single(path, card, device=device, dtype=dtype)


def load_ensemble(folder: str | Path, device: Any = None, dtype: torch.dtype | None = None) -> Ensemble:
    """The ensemble saved in ``folder``: its members (each a ``load_reward_model`` folder) and its own card.
    A card saved before ensembles had their own calibration (no ``member_scale``) loads with
    ``fallback_card`` and a warning."""
    card = read_card(folder)
    if not card.is_ensemble:
        raise ValueError(f"{folder}: its rewardkit.json lists no members: not an ensemble")
    members = [load_reward_model(Path(folder) / name, device=device, dtype=dtype) for name in card.members]
    ensemble = Ensemble(members, card)
    if card.member_scale != MEMBER_SCALE:
        log.warning(
            "%s: an ensemble saved before rewardkit fitted ensembles' own calibration: scoring with T = %.4f "
            "(the members' T / reward_std, averaged) and normalized = the ensemble score as it is; retrain to "
            "fit both on the ensemble score",
            folder,
            ensemble.card.temperature,
        )
    return ensemble
