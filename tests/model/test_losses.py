"""Each loss against numbers worked out by hand (style of torchtune's test_dpo_loss.py).

Constants used below: s = sigmoid,
  -log s(1)  = log(1 + e^-1) = 0.3132617
  -log s(-1) = log(1 + e)    = 1.3132617
  -log s(0)  = log 2         = 0.6931472
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from rewardkit.model import losses
from rewardkit.model.losses import (
    AUX_LOSSES,
    LOSSES,
    aggregate_attributes,
    bradley_terry_loss,
    centering_loss,
    margin_bradley_terry_loss,
    margin_from_strength,
    multi_attribute_loss,
    plackett_luce_loss,
    regression_loss,
    soft_preference_loss,
    tie_aware_loss,
)

NLL_POS1 = 0.3132617  # -log s(1)
NLL_NEG1 = 1.3132617  # -log s(-1)
LOG2 = 0.6931472


def t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float32)


def test_bradley_terry_hand_values():
    # d = [1 - 0, 0 - 1] = [1, -1]: mean(0.3132617, 1.3132617) = 0.8132617
    assert bradley_terry_loss(t(1.0, 0.0), t(0.0, 1.0)).item() == pytest.approx(0.8132617, abs=1e-6)


def test_bradley_terry_gradient_and_stability():
    # dL/dr_c = -(1 - s(d)) / B; at d = 0 with B = 2: -(0.5) / 2 = -0.25 each
    r_c = t(0.0, 0.0).requires_grad_()
    bradley_terry_loss(r_c, t(0.0, 0.0)).backward()
    assert r_c.grad.tolist() == pytest.approx([-0.25, -0.25])
    # d = -200: -logsigmoid(-200) = 200 + log(1 + e^-200) = 200, finite (-log(sigmoid) would give inf)
    assert bradley_terry_loss(t(-200.0), t(0.0)).item() == pytest.approx(200.0)


def test_margin_bradley_terry_hand_values():
    # d - m = (2 - 0.5) - 0.5 = 1 -> 0.3132617; margin 0 equals plain BT
    assert margin_bradley_terry_loss(t(2.0), t(0.5), t(0.5)).item() == pytest.approx(NLL_POS1, abs=1e-6)
    assert margin_bradley_terry_loss(t(1.0, 0.0), t(0.0, 1.0), t(0.0, 0.0)).item() == pytest.approx(0.8132617, abs=1e-6)
    # a margin makes the same pair cost more: d = 1, m = 2 -> -log s(-1) = 1.3132617
    assert margin_bradley_terry_loss(t(1.0), t(0.0), t(2.0)).item() == pytest.approx(NLL_NEG1, abs=1e-6)


def test_per_pair_weights_scale_each_pairs_term():
    # per-pair BT terms: -log s(1) = 0.31326, -log s(0) = log 2 = 0.69315; weights 2 and 0 -> (0.62652 + 0) / 2
    rc, rr, w = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 0.0])
    assert bradley_terry_loss(rc, rr, w).item() == pytest.approx(0.31326, abs=1e-5)
    assert bradley_terry_loss(rc, rr, torch.ones(2)).item() == pytest.approx(bradley_terry_loss(rc, rr).item())
    # margin 1 on the first pair: its term becomes log 2, weighted by 2 -> (1.38629 + 0) / 2
    assert margin_bradley_terry_loss(rc, rr, torch.tensor([1.0, 0.0]), w).item() == pytest.approx(0.69315, abs=1e-5)
    # a tied second pair with weight 0 contributes nothing; the decided first pair as in BT
    assert tie_aware_loss(rc, rr, torch.tensor([False, True]), w).item() == pytest.approx(0.31326, abs=1e-5)


def test_margin_from_strength():
    # linear map, unknown (NaN) -> 0 so such pairs fall back to plain BT
    assert margin_from_strength(t(0.0, 0.5, 1.0, float("nan")), scale=2.0).tolist() == [0.0, 1.0, 2.0, 0.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        margin_from_strength(t(1.5))
    with pytest.raises(ValueError, match="scale"):
        margin_from_strength(t(0.5), scale=-1.0)


def test_tie_aware_loss_hand_values():
    ties = torch.tensor([True])
    # a tie at d = 1: 0.5 * 0.3132617 + 0.5 * 1.3132617 = 0.8132617; at d = 0: log 2 (its minimum)
    assert tie_aware_loss(t(1.0), t(0.0), ties).item() == pytest.approx(0.8132617, abs=1e-6)
    assert tie_aware_loss(t(0.0), t(0.0), ties).item() == pytest.approx(LOG2, abs=1e-6)
    assert tie_aware_loss(t(0.0), t(1.0), ties).item() == pytest.approx(0.8132617, abs=1e-6)  # symmetric
    # batch [decided d = 1, tie d = 1]: mean(0.3132617, 0.8132617) = 0.5632617
    got = tie_aware_loss(t(1.0, 1.0), t(0.0, 0.0), torch.tensor([False, True]))
    assert got.item() == pytest.approx(0.5632617, abs=1e-6)
    # no ties: exactly Bradley-Terry
    no_ties = tie_aware_loss(t(1.0, 0.0), t(0.0, 1.0), torch.tensor([False, False]))
    assert no_ties.item() == pytest.approx(bradley_terry_loss(t(1.0, 0.0), t(0.0, 1.0)).item(), abs=1e-7)
    # gradient of a tie at d = 0 vanishes: equal rewards satisfy it
    r_a = t(0.3).requires_grad_()
    tie_aware_loss(r_a, t(0.3), ties).backward()
    assert r_a.grad.item() == pytest.approx(0.0, abs=1e-7)


def test_soft_preference_mixes_wins_and_ties():
    # target 1 is BT; target 0 is BT with a and b swapped; a batch [win d=1, tie d=1]:
    # mean(0.3132617, 0.8132617) = 0.5632617
    assert soft_preference_loss(t(1.0), t(0.0), t(1.0)).item() == pytest.approx(NLL_POS1, abs=1e-6)
    assert soft_preference_loss(t(1.0), t(0.0), t(0.0)).item() == pytest.approx(NLL_NEG1, abs=1e-6)
    assert soft_preference_loss(t(1.0, 1.0), t(0.0, 0.0), t(1.0, 0.5)).item() == pytest.approx(0.5632617, abs=1e-6)


def test_plackett_luce_hand_values():
    # ranking [2, 1, 0] best first:
    #   pos 1: log(e^2 + e + 1) - 2 = log(11.1073) - 2 = 0.4076060
    #   pos 2: log(e + 1) - 1 = 0.3132617;  pos 3: log(e^0) - 0 = 0
    #   total 0.7208677
    assert plackett_luce_loss(t(2.0, 1.0, 0.0)[None]).item() == pytest.approx(0.7208677, abs=1e-6)
    # the same items given unordered plus an order (indices best first)
    order = torch.tensor([[1, 2, 0]])
    assert plackett_luce_loss(t(0.0, 2.0, 1.0)[None], order=order).item() == pytest.approx(0.7208677, abs=1e-6)


def test_plackett_luce_padding_mask():
    # list 1 has only 2 real items [2, 1]: log(e^2 + e) - 2 = log(1 + e^-1) = 0.3132617; the padded
    # item (value 0, would change the first denominator) is ignored. list 2 is full: 0.7208677.
    scores = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    expected = (0.3132617 + 0.7208677) / 2
    assert plackett_luce_loss(scores, mask=mask).item() == pytest.approx(expected, abs=1e-6)
    # a list with a single real item contributes 0
    assert plackett_luce_loss(torch.tensor([[5.0, 0.0]]), mask=torch.tensor([[True, False]])).item() == 0.0
    # gradients stay finite through the -inf padding: list [2, 1 | pad] in a batch of 2 with a 1-item list,
    # dL/ds_0 = (softmax(2, 1)_0 - 1) / 2 = (0.7310586 - 1) / 2 = -0.1344707; padded and lone items get 0
    s = torch.tensor([[2.0, 1.0, 0.0], [5.0, 0.0, 0.0]], requires_grad=True)
    plackett_luce_loss(s, mask=torch.tensor([[True, True, False], [True, False, False]])).backward()
    assert s.grad.flatten().tolist() == pytest.approx([-0.1344707, 0.1344707, 0.0, 0.0, 0.0, 0.0], abs=1e-6)


def test_plackett_luce_k2_is_bradley_terry():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(16, 2, generator=g)
    assert plackett_luce_loss(scores).item() == pytest.approx(
        bradley_terry_loss(scores[:, 0], scores[:, 1]).item(), abs=1e-6
    )


def test_plackett_luce_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, k\]"):
        plackett_luce_loss(t(1.0, 2.0))
    with pytest.raises(ValueError, match="mask shape"):
        plackett_luce_loss(torch.zeros(2, 3), mask=torch.ones(2, 2, dtype=torch.bool))


def test_regression_hand_values():
    # ratings [3, NaN, 5], mean 4, std 2 -> targets [-0.5, -, 0.5]; predicted [1, 2, 0]
    # squared errors (1.5^2, 0.5^2) = (2.25, 0.25); mean over the 2 rated = 1.25
    pred, ratings = t(1.0, 2.0, 0.0), t(3.0, float("nan"), 5.0)
    assert regression_loss(pred, ratings, rating_mean=4.0, rating_std=2.0).item() == pytest.approx(1.25)
    # masking the first leaves 0.25; masking everything gives 0 (not NaN)
    mask = torch.tensor([False, True, True])
    assert regression_loss(pred, ratings, mask, 4.0, 2.0).item() == pytest.approx(0.25)
    assert regression_loss(pred, ratings, torch.zeros(3, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="rating_std"):
        regression_loss(pred, ratings, rating_std=0.0)


def test_centering_hand_values():
    # sums [1 + 1, 2 - 2] = [2, 0]; mean of squares 2; times 0.1 = 0.2
    assert centering_loss(t(1.0, 2.0), t(1.0, -2.0), coef=0.1).item() == pytest.approx(0.2)
    # adding a constant c to all rewards leaves BT unchanged but raises the centering term
    r_c, r_r = t(1.0, 2.0), t(0.0, 0.5)
    assert bradley_terry_loss(r_c + 3, r_r + 3).item() == pytest.approx(bradley_terry_loss(r_c, r_r).item())
    assert centering_loss(r_c + 3, r_r + 3).item() > centering_loss(r_c, r_r).item()


def test_aggregate_attributes():
    # [1, 2] . [0.5, 0.25] = 1.0; [4, -4] . [0.5, 0.25] = 1.0
    assert aggregate_attributes(torch.tensor([[1.0, 2.0], [4.0, -4.0]]), t(0.5, 0.25)).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="attributes"):
        aggregate_attributes(torch.zeros(2, 3), t(1.0, 1.0))


def test_multi_attribute_hand_values():
    # cells (pair, attribute): (0,0) d=1 y=1 -> 0.3132617; (0,1) unlabelled; (1,0) d=0 y=0 -> log 2;
    # (1,1) d=-1 y=1 -> 1.3132617. mean over 3 labelled = 2.3196706 / 3 = 0.7732235
    r_a = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    r_b = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    mask = torch.tensor([[True, False], [True, True]])
    assert multi_attribute_loss(r_a, r_b, target, mask).item() == pytest.approx(0.7732235, abs=1e-6)
    # attribute weights [2, 1]: (2*0.3132617 + 2*0.6931472 + 1.3132617) / 5 = 0.6652159
    weighted = multi_attribute_loss(r_a, r_b, target, mask, attribute_weights=t(2.0, 1.0))
    assert weighted.item() == pytest.approx(0.6652159, abs=1e-6)
    # the unlabelled cell gets no gradient
    r_a.requires_grad_()
    multi_attribute_loss(r_a, r_b, target, mask).backward()
    assert r_a.grad[0, 1].item() == 0.0 and r_a.grad[0, 0].item() != 0.0
    # nothing labelled: 0, not NaN
    assert multi_attribute_loss(r_a, r_b, target, torch.zeros(2, 2, dtype=torch.bool)).item() == 0.0


def test_multi_attribute_single_attribute_is_bradley_terry():
    r_c, r_r = t(1.0, 0.0), t(0.0, 1.0)
    got = multi_attribute_loss(r_c[:, None], r_r[:, None], torch.ones(2, 1))
    assert got.item() == pytest.approx(bradley_terry_loss(r_c, r_r).item(), abs=1e-6)
    with pytest.raises(ValueError, match=r"\[B, A\]"):
        multi_attribute_loss(r_c, r_r, torch.ones(2))


def test_registry_lists_every_loss_function():
    # every public *_loss function in losses.py is registered exactly once (objective or auxiliary), except
    # multi_attribute_loss: --attributes trains the chosen pairwise entry on each pair's own head, which is it
    defined = {
        name
        for name, fn in inspect.getmembers(losses, inspect.isfunction)
        if name.endswith("_loss") and fn.__module__ == losses.__name__
    } - {"multi_attribute_loss"}
    registered = [entry.fn.__name__ for entry in LOSSES.values()] + [fn.__name__ for fn in AUX_LOSSES.values()]
    assert sorted(registered) == sorted(defined)
    assert not set(LOSSES) & set(AUX_LOSSES)
    assert math.isfinite(LOSSES["bt"].fn(t(1.0), t(0.0)).item())


def test_the_registry_keys_are_the_names_train_accepts():
    from typing import get_args

    from rewardkit.train.config import LossName

    assert set(get_args(LossName)) == set(LOSSES)


def test_per_head_pairwise_training_is_the_multi_attribute_loss():
    """What --attributes trains (the chosen pairwise loss on each pair's judged head, train/objective.py) equals
    multi_attribute_loss with one labelled cell per pair: the registry's loss path for multi-attribute data."""
    from rewardkit.train.objective import judged_rewards

    logits_c = torch.tensor([[1.0, -0.5], [0.2, 0.3], [2.0, 0.0]])  # [B=3, A=2]
    logits_r = torch.tensor([[0.0, 0.5], [0.4, -1.0], [1.0, 1.0]])
    heads = torch.tensor([0, 1, -1])  # pair 2 has no attribute: judged on the aggregate
    weights = torch.tensor([0.7, 0.3])
    per_head = LOSSES["tie"].fn(
        judged_rewards(logits_c, heads, weights), judged_rewards(logits_r, heads, weights), torch.tensor([0, 1, 0])
    )
    # the same as cells: columns (head 0, head 1, aggregate), one labelled cell per pair, target 0.5 for the tie
    cols_c = torch.cat([logits_c, (logits_c @ weights)[:, None]], 1)
    cols_r = torch.cat([logits_r, (logits_r @ weights)[:, None]], 1)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True
    target = torch.tensor([[1.0] * 3, [0.5] * 3, [1.0] * 3])
    assert torch.allclose(per_head, multi_attribute_loss(cols_c, cols_r, target, mask))
