"""Reward models: backbone + scalar head, input formatting, losses, calibration, ensembles.

The public entry points: ``load_reward_model`` (a folder or HF id -> RewardModel or Ensemble), ``load_ensemble``,
``RewardModel.score``, ``formatting.encode`` (the one input format of training and scoring),
``DEFAULT_BACKBONE``.

They load on first use (PEP 562): importing a torch-free module of this package (``model.reference``,
``model.card``) must not import torch, so ``rewardkit monitor`` and the feedback path start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DEFAULT_BACKBONE": "rewardkit.model.backbone",
    "default_backbone_path": "rewardkit.model.backbone",
    "load_backbone": "rewardkit.model.backbone",
    "RewardCard": "rewardkit.model.card",
    "read_card": "rewardkit.model.card",
    "Encoded": "rewardkit.model.formatting",
    "collate": "rewardkit.model.formatting",
    "encode": "rewardkit.model.formatting",
    "RewardModel": "rewardkit.model.reward_model",
    "load_ensemble": "rewardkit.model.loading",
    "load_reward_model": "rewardkit.model.loading",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rewardkit.model' has no attribute {name!r}")


__all__ = sorted(_LAZY)
