from __future__ import annotations

import torch

from rewardkit.robust.invariance import invariance_penalty


def test_invariance_penalty_by_hand() -> None:
    r_a, r_b = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 5.0])
    mask = torch.tensor([True, True, False])
    # 0.5 * (1 + 4 + 0) / 3: the masked-out row counts in the mean but adds nothing
    assert torch.isclose(invariance_penalty(r_a, r_b, mask, 0.5), torch.tensor(5 / 6))
    assert invariance_penalty(r_a, r_a, mask, 1.0) == 0
    assert invariance_penalty(torch.zeros(0), torch.zeros(0), torch.zeros(0, dtype=torch.bool), 1.0) == 0


def test_invariance_penalty_pulls_the_two_scores_together() -> None:
    r_a = torch.tensor([3.0], requires_grad=True)
    r_b = torch.tensor([1.0], requires_grad=True)
    invariance_penalty(r_a, r_b, torch.tensor([True]), 1.0).backward()
    assert r_a.grad.item() == 4.0 and r_b.grad.item() == -4.0  # d/da (a - b)^2 = 2 (a - b)
