"""Rewards of a batch: pairs (chosen and rejected in one forward pass) or lists (every response of a few
prompts in one forward pass), and of the whole validation set.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.model.formatting import collate
from rewardkit.train.batches import PairTensors
from rewardkit.train.lists import ListTensors
from rewardkit.train.objective import judged_rewards


@dataclass(frozen=True)
class PairRewards:
    """Rewards of pairs: chosen rows i and rejected rows N+i in ONE forward pass, [2B, L] -> logits [2B, A] ->
    the reward each row is judged on (``objective.judged_rewards``) -> r_chosen [B], r_rejected [B]."""

    pad_id: int
    device: torch.device
    bf16: bool
    head_weights: torch.Tensor  # [A] the aggregate's weights over the heads

    def __call__(self, net: Any, data: PairTensors, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in collate(data.encoded, data.both_sides(rows), self.pad_id).items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext():
            logits = net(**batch)
        heads = data.attribute[rows].to(self.device)
        rewards = judged_rewards(logits, torch.cat([heads, heads]), self.head_weights.to(self.device))
        return rewards[: len(rows)], rewards[len(rows) :]

    def of_lists(
        self, net: Any, data: ListTensors, lists: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every response of the given lists in ONE forward pass -> (scores [B, k] best first, 0 on padding;
        mask [B, k]; ratings [B, k], NaN where unrated). Rewards are the served aggregate (one head)."""
        rows, index, mask = data.layout(lists)
        batch = {k: v.to(self.device) for k, v in collate(data.encoded, rows, self.pad_id).items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext():
            logits = net(**batch)
        heads = torch.full((len(rows),), -1, dtype=torch.long, device=self.device)
        rewards = judged_rewards(logits, heads, self.head_weights.to(self.device)).float()  # [R]
        mask = mask.to(self.device)
        scores = rewards[index.to(self.device)].masked_fill(~mask, 0.0)
        return scores, mask, data.ratings[torch.tensor(rows)][index].masked_fill(~mask.cpu(), float("nan"))


@torch.no_grad()
def validate(
    forward: Any, rewards: PairRewards, data: PairTensors, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """r_chosen, r_rejected [N] of every validation pair in its own order, computed in length-sorted batches
    of 4 x batch_size (little padding), in eval mode."""
    model = forward.model
    was_training = model.training
    model.eval()
    rc, rr = torch.zeros(data.n), torch.zeros(data.n)
    order = sorted(range(data.n), key=data.pair_lengths().__getitem__)
    for start in range(0, len(order), batch_size * 4):
        rows = order[start : start + batch_size * 4]
        rc[rows], rr[rows] = (r.float().cpu() for r in rewards(forward, data, rows))
    model.train(was_training)
    return rc, rr
