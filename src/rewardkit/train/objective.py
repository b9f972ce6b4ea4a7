"""The training objective, chosen once per run: which loss, on which rewards, with which extra terms.

``Objective.of(config, ...)`` reads the loss name once (``TrainConfig.loss``); the loop then calls
``objective(r_chosen, r_rejected, data, rows, weight)`` for a training batch and for the whole validation set
alike. Rewards are judged per pair (``judged_rewards``): a multi-attribute pair on its attribute's head, any
other on the weighted aggregate that is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardkit.model import losses
from rewardkit.model.losses import aggregate_attributes
from rewardkit.records import PreferencePair
from rewardkit.train.batches import PairTensors
from rewardkit.train.config import TrainConfig


def judged_rewards(logits: torch.Tensor, heads: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B, A] head outputs -> [B] the reward each row is judged on: its attribute's head, or (head -1) the
    weighted aggregate ``logits @ weights`` that users are served. BT on these scores is the multi-attribute
    loss (``losses.multi_attribute_loss``) with one labelled cell per pair, plus BT on the aggregate."""
    aggregate = aggregate_attributes(logits, weights)
    own = logits.gather(1, heads.clamp(min=0).unsqueeze(1)).squeeze(1)
    return torch.where(heads >= 0, own, aggregate)


def unused_labels(pairs: list[PreferencePair], loss: str) -> list[str]:
    """What the chosen loss leaves out of the data, one line each: margins under plain Bradley-Terry (TRL's
    RewardTrainer subtracts a ``margin`` column whenever there is one) and ties trained as wins."""
    lines = []
    margins = sum(p.margin is not None for p in pairs)
    if margins and loss == "bt":
        lines.append(
            f"{margins} of {len(pairs)} training pairs carry a margin, which --loss bt ignores "
            "(TRL's RewardTrainer uses it); --loss margin trains with it"
        )
    ties = sum(p.tie for p in pairs)
    if ties and loss != "tie":
        lines.append(
            f"{ties} of {len(pairs)} training pairs are ties, trained by --loss {loss} as wins for the "
            "'chosen' side; --loss tie models them"
        )
    return lines


@dataclass(frozen=True)
class Objective:
    """The loss of a run. ``length_coef``: beta of length-controlled BT (0: off), fitted on the training pairs
    before the model trains; ``center_coef``: the centering term's weight (0: off)."""

    loss: str
    length_coef: float = 0.0
    center_coef: float = 0.0

    @classmethod
    def of(cls, config: TrainConfig, length_coef: float = 0.0) -> Objective:
        return cls(config.loss, length_coef, config.center_coef)

    def __call__(
        self,
        rewards_c: torch.Tensor,
        rewards_r: torch.Tensor,
        data: PairTensors,
        rows: list[int],
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """0-d loss of the pairs ``rows`` of ``data`` given their rewards [B] each (``weight``: [B] or None)."""
        on = rewards_c.device
        margin, tie = data.margin[rows].to(on), data.tie[rows].to(on)
        weight = None if weight is None else weight.to(on)
        # length control: the preference is explained by r_c - r_r + beta * length feature (0 when off)
        judged_c = rewards_c + self.length_coef * data.length_feature(rows).to(on) if self.length_coef else rewards_c
        if self.loss == "tie":
            loss = losses.tie_aware_loss(judged_c, rewards_r, tie, weight)
        elif self.loss == "margin":
            loss = losses.margin_bradley_terry_loss(judged_c, rewards_r, margin, weight)
        else:
            loss = losses.bradley_terry_loss(judged_c, rewards_r, weight)
        if self.center_coef:
            loss = loss + losses.centering_loss(rewards_c, rewards_r, self.center_coef)
        return loss
