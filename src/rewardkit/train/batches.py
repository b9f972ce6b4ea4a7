"""Pairs as tensors and the order they are trained in: encoding once, length-grouped batches, length balance.

``PairTensors``: N pairs encoded once (rows 0..N-1 chosen, N..2N-1 rejected), so one ``collate`` builds one
forward pass over both sides of a batch. ``length_grouped_batches``: batches of similar length in random order
(little padding). Length balance (``TrainConfig.length_balance``) in one of two ways: ``length_balanced_order``
repeats the chosen-is-shorter pairs within an epoch, ``length_balance_weights`` weights each pair's loss so the
same share is met in one pass.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.model.formatting import Encoded, encode
from rewardkit.model.length_control import log_length
from rewardkit.records import PreferencePair
from rewardkit.robust.augment import is_augmented
from rewardkit.train.distributed import rank_share


@dataclass
class PairTensors:
    """N pairs encoded once: rows 0..N-1 are chosen, N..2N-1 rejected, so one collate call builds one
    forward pass over both (rows i and N+i). ``margin``/``tie``/``target`` [N] feed the losses."""

    encoded: Encoded
    margin: torch.Tensor
    tie: torch.Tensor
    attribute: torch.Tensor  # [N] the head a pair is judged on, -1: the weighted aggregate
    log_length: torch.Tensor  # [2N] log(1 + characters) of each row's whole response (length_control.py)
    target: torch.Tensor  # [N] P(chosen better): the pair's soft label, else 0.5 for a tie and 1 for a win

    @property
    def n(self) -> int:
        return len(self.encoded) // 2

    def pair_lengths(self) -> list[int]:
        lengths = self.encoded.lengths
        return [max(lengths[i], lengths[i + self.n]) for i in range(self.n)]

    def both_sides(self, rows: list[int]) -> list[int]:
        """Row indices of the chosen (i) then the rejected (N + i) side of the given pairs."""
        return rows + [r + self.n for r in rows]

    def length_feature(self, rows: list[int] | None = None) -> torch.Tensor:
        """[len(rows)] (all pairs when None) log(1 + chars chosen) - log(1 + chars rejected): the
        length-controlled model's feature (``length_control.length_feature``) of the given pairs."""
        feature = self.log_length[: self.n] - self.log_length[self.n :]
        return feature if rows is None else feature[rows]


def attribute_index(pairs: list[PreferencePair], attributes: list[str]) -> list[int]:
    """Each pair's head: the index of its attribute in ``attributes``, or -1 (the aggregate) for a pair with
    no attribute, "overall", or when the model has a single head. An attribute the model has no head for is
    a ValueError naming it."""
    if len(attributes) == 1:
        return [-1] * len(pairs)
    out = []
    for p in pairs:
        if p.attribute in (None, "", "overall"):
            out.append(-1)
        elif p.attribute in attributes:
            out.append(attributes.index(p.attribute))
        else:
            raise ValueError(
                f"pair {p.id}: attribute {p.attribute!r} has no head (--attributes {','.join(attributes)})"
            )
    return out


def encode_pairs(
    tokenizer: Any,
    pairs: list[PreferencePair],
    max_length: int,
    margin_scale: float,
    attributes: list[str] | None = None,
) -> PairTensors:
    prompts = [p.prompt for p in pairs]
    encoded = encode(tokenizer, prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs], max_length)
    margin = [p.margin if p.margin is not None else (p.strength or 0.0) * margin_scale for p in pairs]
    heads = attribute_index(pairs, attributes or ["reward"])
    lengths = torch.from_numpy(log_length([len(p.chosen) for p in pairs] + [len(p.rejected) for p in pairs])).float()
    return PairTensors(
        encoded,
        torch.tensor(margin, dtype=torch.float32),
        torch.tensor([p.tie for p in pairs]),
        torch.tensor(heads, dtype=torch.long),
        lengths,
        torch.tensor([pair_target(p) for p in pairs], dtype=torch.float32),
    )


def pair_target(pair: PreferencePair) -> float:
    """P(chosen better) that ``--loss soft`` trains towards: the pair's soft label, else 0.5 (tie) or 1."""
    if pair.target is not None:
        return pair.target
    return 0.5 if pair.tie else 1.0


def length_balanced_order(
    chosen_shorter: Sequence[bool], chosen_longer: Sequence[bool], share: float, seed: int
) -> list[int]:
    """One epoch's pair indices: every pair once, plus repeats of the chosen-is-shorter pairs so that they make
    up ``share`` of the pairs whose two responses differ in length (no change when share is 0 or already met).

    Whole repeats first, then a seeded random draw for the fraction, so the count is exact and reproducible."""
    n = len(chosen_shorter)
    order = list(range(n))
    short = [i for i in order if chosen_shorter[i]]
    n_long = sum(1 for flag in chosen_longer if flag)
    if share <= 0 or not short or len(short) >= share * (len(short) + n_long):
        return order
    wanted = round(share * n_long / (1 - share))  # m / (m + n_long) = share
    extra = wanted - len(short)
    whole, rest = divmod(extra, len(short))
    return order + short * whole + random.Random(seed).sample(short, rest)


def length_balance_weights(chosen_shorter: Sequence[bool], chosen_longer: Sequence[bool], share: float) -> list[float]:
    """Per-pair loss weights that give the chosen-is-shorter pairs ``share`` of the total weight of the pairs
    whose responses differ in length, the same total as before (so the mean weight stays 1); every other
    pair weighs 1. No change when share is 0, already met, or one side is empty.

    The same objective as ``length_balanced_order`` at no extra compute: an epoch stays one pass over the
    data, so a fixed time budget covers more distinct pairs."""
    n_short = sum(1 for flag in chosen_shorter if flag)
    n_long = sum(1 for flag in chosen_longer if flag)
    if share <= 0 or not n_short or n_short >= share * (n_short + n_long):  # n_long == 0 counts as met
        return [1.0] * len(chosen_shorter)
    total = n_short + n_long
    w_short, w_long = share * total / n_short, (1 - share) * total / n_long
    return [w_short if s else w_long if lg else 1.0 for s, lg in zip(chosen_shorter, chosen_longer)]


def source_loss_weights(pairs: Sequence[PreferencePair]) -> list[float] | None:
    """The pairs' own weights (``PreferencePair.weight``: a snapshot's ``--source-weight``) rescaled to mean 1,
    so the ratios between sources are as given and the step size stays what ``lr`` says; None when every
    weight is equal (nothing to weigh)."""
    weights = [p.weight for p in pairs]
    if not weights or all(w == weights[0] for w in weights):
        return None
    scale = len(weights) / sum(weights)
    return [w * scale for w in weights]


def combined_pair_weights(
    length: Sequence[float] | None,
    augment: Sequence[float],
    invariant: Sequence[bool],
    source: Sequence[float] | None,
) -> tuple[list[float], bool]:
    """Each pair's loss weight, the product of what weighs it: length balance's weight (``length``, when the
    balance is by weight; None when by repeats or off), the augmented pair's weight (1 for a training pair),
    the snapshot's source weight (None: none given); 0 for an invariance pair, which trains the invariance
    penalty, not a preference. The flag says whether anything weighs the pairs at all (else the loss runs
    unweighted, as a plain mean)."""
    weights = [0.0 if inv else float(a) for a, inv in zip(augment, invariant, strict=True)]
    for factor in (length, source):
        if factor is not None:
            weights = [w * f for w, f in zip(weights, factor, strict=True)]
    weighted = length is not None or source is not None or any(a != 1 for a in augment) or any(invariant)
    return weights, weighted


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int, chunk_batches: int = 32, order: list[int] | None = None
) -> list[list[int]]:
    """Batches of similar length, in random order: shuffle, sort within chunks of ``chunk_batches`` batches,
    cut into batches, shuffle the batches. Most pairs are short, so this cuts padding a lot while keeping
    the order random. ``order``: the epoch's pair indices (default: each pair once)."""
    rng = random.Random(seed)
    order = list(range(len(lengths))) if order is None else list(order)
    rng.shuffle(order)
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def cut_keys(split: str) -> tuple[str, str, str]:
    """The metric names ``cut_counts`` gives a split."""
    return f"truncated_{split}", f"prompt_cut_{split}", f"response_cut_{split}"


def cut_counts(data: PairTensors, split: str) -> dict[str, int]:
    """Pairs of a split cut to fit max_length (either response's row), by what was cut: only the prompt (from
    the left), or a response itself (from the right, as it alone did not fit): ``truncated_<split>`` is their
    sum. Counted per pair, as the card reports pairs."""
    n, enc = data.n, data.encoded
    cut = [enc.truncated[i] or enc.truncated[i + n] for i in range(n)]
    response = [enc.response_cut[i] or enc.response_cut[i + n] for i in range(n)]
    return dict(zip(cut_keys(split), (sum(cut), sum(c and not r for c, r in zip(cut, response)), sum(response))))


@dataclass(frozen=True)
class EpochPlan:
    """Which pairs each rank trains on in each epoch: a function of (seed, epoch) alone, so every rank builds the
    same order and a resumed run continues it exactly. ``repeat_share``: length balance by repeats (0: none);
    balance by weight is ``length_balance_weights`` and leaves the order alone."""

    lengths: list[int]  # [N] each pair's longer side, in tokens
    chosen_shorter: list[bool]  # [N]
    chosen_longer: list[bool]  # [N]
    repeat_share: float
    batch_size: int
    seed: int
    rank: int = 0
    world: int = 1

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches (pair indices) of ``epoch``: the same count every epoch; which pairs get the
        drawn extra copy of length balance changes with the epoch."""
        order = length_balanced_order(self.chosen_shorter, self.chosen_longer, self.repeat_share, self.seed + epoch)
        batches = length_grouped_batches(self.lengths, self.batch_size, self.seed + epoch, order=order)
        return rank_share(batches, self.rank, self.world)


def length_sides(pairs: list[PreferencePair]) -> tuple[list[bool], list[bool]]:
    """(chosen is shorter, chosen is longer) per pair, in characters; a tie is neither, nor is a pair robust
    training added (its exploited copy is longer by construction: length balance is about the judge's pairs)."""
    counted = [not p.tie and not is_augmented(p) for p in pairs]
    return (
        [len(p.chosen) < len(p.rejected) and c for p, c in zip(pairs, counted)],
        [len(p.chosen) > len(p.rejected) and c for p, c in zip(pairs, counted)],
    )
