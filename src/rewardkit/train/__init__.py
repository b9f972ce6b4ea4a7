"""Training a reward model: the loop (``loop.py``) and the pieces it reads top to bottom.

    from rewardkit.train import TrainConfig, train
    result = train(TrainConfig(data="SNAPSHOT", out="runs/rm1"))      # -> TrainResult(out, metrics)

Modules, one concept each: ``config`` (TrainConfig, torch-free: the CLI is generated from it), ``loop`` (train
one model or an ensemble), ``batches`` (pairs as tensors, length-grouped batches, length balance), ``lists``
(each prompt's responses rebuilt from its pairs, for listwise and ratings losses), ``objective`` (the loss chosen
once from ``model.losses.LOSSES``), ``rewards`` (a batch's forward pass), ``distributed`` (DDP helpers),
``freeze`` (frozen blocks, LoRA, dropout), ``bf16`` (the precision decision and its reason), ``checkpoint``
(atomic resumable checkpoints), ``steps`` (a process reward model's step-labelled solutions, their reader and
forward pass), ``finish`` (best weights, calibration, the model folder), ``ensemble_card`` (an
ensemble's calibration and card). The data comes from
``data/training_data.py``. ``python -m rewardkit train`` is ``rewardkit train`` (``rewardkit/__main__.py``).

Importing this package imports no torch: ``train``, ``TrainResult`` load the loop on first use.
"""

from __future__ import annotations

from typing import Any

from rewardkit.train.config import ConfigError, LossName, TrainConfig

__all__ = ["ConfigError", "LossName", "TrainConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from rewardkit.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'rewardkit.train' has no attribute {name!r}")
