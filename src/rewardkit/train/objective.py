"""The training objective, chosen once per run: which loss, on which rewards, with which extra terms.

The loop reads the loss's registry entry once (``model.losses.LOSSES[config.loss]``) into an ``Objective``, then
calls ``objective(r_chosen, r_rejected, data, rows, weight)`` for a batch of pairs and for the whole
validation set alike, and ``objective.on_list_batch(scores, mask, ratings)`` for a batch of lists.
Rewards are judged per pair (``judged_rewards``): a multi-attribute pair on its attribute's head, any
other on the weighted aggregate that is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardkit.model import losses
from rewardkit.model.losses import Loss, aggregate_attributes
from rewardkit.records import PreferencePair
from rewardkit.train.batches import PairTensors


def judged_rewards(logits: torch.Tensor, heads: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B, A] head outputs -> [B] the reward each row is judged on: its attribute's head, or (head -1) the
    weighted aggregate ``logits @ weights`` that users are served. BT on these scores is the multi-attribute
    loss (``losses.multi_attribute_loss``) with one labelled cell per pair, plus BT on the aggregate."""
    aggregate = aggregate_attributes(logits, weights)
    own = logits.gather(1, heads.clamp(min=0).unsqueeze(1)).squeeze(1)
    return torch.where(heads >= 0, own, aggregate)


def unused_labels(pairs: list[PreferencePair], loss: str) -> list[str]:
    """What the chosen loss leaves out of the data, one line each: margins under plain Bradley-Terry (TRL's
    RewardTrainer subtracts a ``margin`` column whenever there is one), ties trained as wins, and soft labels
    (a pair's ``target``) trained as certain wins."""
    lines = []
    margins = sum(p.margin is not None for p in pairs)
    if margins and loss == "bt":
        lines.append(
            f"{margins} of {len(pairs)} training pairs carry a margin, which --loss bt ignores "
            "(TRL's RewardTrainer uses it); --loss margin trains with it"
        )
    ties = sum(p.tie for p in pairs)
    if ties and loss in ("bt", "margin"):
        lines.append(
            f"{ties} of {len(pairs)} training pairs are ties, trained by --loss {loss} as wins for the "
            "'chosen' side; --loss tie models them"
        )
    soft = sum(p.target is not None for p in pairs)
    if soft and loss in ("bt", "margin", "tie"):
        lines.append(
            f"{soft} of {len(pairs)} training pairs carry a soft label (a probability), which --loss {loss} "
            "trains as a certain win; --loss soft trains towards it"
        )
    return lines


@dataclass(frozen=True)
class Objective:
    """The loss of a run: its ``model.losses.LOSSES`` entry, read once. ``length_coef``: beta of length-controlled
    BT (0: off), fitted on the training pairs before the model trains; ``center_coef``: the centering term's
    weight (0: off); ``rating_mean``/``rating_std``: the scale regression puts the training ratings on."""

    loss: Loss
    length_coef: float = 0.0
    center_coef: float = 0.0
    rating_mean: float = 0.0
    rating_std: float = 1.0

    @property
    def on_lists(self) -> bool:
        """Does it train on lists (listwise or ratings) rather than pairs?"""
        return self.loss.data != "pairs"

    def __call__(
        self,
        rewards_c: torch.Tensor,
        rewards_r: torch.Tensor,
        data: PairTensors,
        rows: list[int],
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """0-d loss of the pairs ``rows`` of ``data`` given their rewards [B] each (``weight``: [B] or None).

        A list or ratings objective has no pairwise form of its own: on pairs (validation, early stopping) it is
        measured by the pairwise NLL against each pair's target, which is Plackett-Luce on a list of two."""
        on = rewards_c.device
        weight = None if weight is None else weight.to(on)
        # length control: the preference is explained by r_c - r_r + beta * length feature (0 when off)
        judged_c = rewards_c + self.length_coef * data.length_feature(rows).to(on) if self.length_coef else rewards_c
        if self.on_lists:
            loss = losses.soft_preference_loss(judged_c, rewards_r, data.target[rows].to(on), weight)
        else:
            labels = [] if self.loss.label is None else [getattr(data, self.loss.label)[rows].to(on)]
            loss = self.loss.fn(judged_c, rewards_r, *labels, weight)
        if self.center_coef:
            loss = loss + losses.centering_loss(rewards_c, rewards_r, self.center_coef)
        return loss

    def on_steps(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """0-d loss of a batch's labelled steps (a process reward model): logits [K] at the step tokens, targets
        [K]. A batch without a labelled step gives 0 with the graph kept (every rank must run backward)."""
        if not len(logits):
            return logits.sum()
        return self.loss.fn(logits, targets)

    def on_list_batch(self, scores: torch.Tensor, mask: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        """0-d loss of a batch of lists: ``scores`` [B, k] best first, ``mask`` [B, k] (False: padding),
        ``ratings`` [B, k] (NaN: unrated)."""
        if self.loss.data == "lists":
            return self.loss.fn(scores, mask=mask)
        return self.loss.fn(
            scores[mask], ratings.to(scores.device)[mask], rating_mean=self.rating_mean, rating_std=self.rating_std
        )
