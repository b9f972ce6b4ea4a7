"""Reward models: backbone + scalar head, input formatting, losses, calibration, ensembles.

The public entry points: ``load_reward_model`` (a folder or HF id -> RewardModel or Ensemble), ``load_ensemble``,
``RewardModel.score``, ``formatting.encode`` (the one input format of training and scoring),
``DEFAULT_BACKBONE``.
"""

from rewardkit.model.backbone import DEFAULT_BACKBONE, default_backbone_path, load_backbone
from rewardkit.model.card import RewardCard, read_card
from rewardkit.model.formatting import Encoded, collate, encode
from rewardkit.model.loading import load_ensemble, load_reward_model
from rewardkit.model.reward_model import RewardModel

__all__ = [
    "DEFAULT_BACKBONE",
    "Encoded",
    "RewardCard",
    "RewardModel",
    "collate",
    "default_backbone_path",
    "encode",
    "load_backbone",
    "load_ensemble",
    "load_reward_model",
    "read_card",
]
