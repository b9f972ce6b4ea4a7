"""The invariance penalty: a response and a meaning-preserving rewrite of it (``rewrites.py``) should score the
same, so the reward ignores presentation (white space, markdown, bullet style).

    loss = preference_loss + invariance_penalty(r_original, r_rewrite, is_invariance_row, weight)
"""

from __future__ import annotations

import torch


def invariance_penalty(r_a: torch.Tensor, r_b: torch.Tensor, mask: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * mean over the batch of mask * (r_a - r_b)^2; r_a, r_b, mask: [B]. Averaged over the whole batch
    (not over the masked rows), as ``losses.pair_mean`` averages weighted pairs: a batch's penalty then grows with
    the rewrite pairs it holds, and its expectation is the profile's share times the per-pair penalty."""
    if r_a.numel() == 0:
        return r_a.sum()
    return weight * (mask.to(r_a.dtype) * (r_a - r_b) ** 2).mean()
