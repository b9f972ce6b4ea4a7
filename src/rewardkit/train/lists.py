"""Lists for the listwise and ratings losses: each prompt's responses, best first, rebuilt from its pairs.

A snapshot (and a pair file) holds pairs; ``--loss plackett-luce`` and ``--loss regression`` train on lists of
k responses per prompt. Rather than a second snapshot format, the loader rebuilds the lists from the pairs:

- a prompt's responses are the distinct texts of its pairs (grouped by ``prompt_id``, else by the prompt);
- their order is the Copeland order of its pairs (wins minus losses, a tie counting neither; first seen
  first among equals). For the pairs of one ranking (``--ranking-rule all``, the default, or ``adjacent``) this
  is exactly the ranking; for pairs that disagree it is the usual round-robin estimate of one;
- a response's rating, for ``regression``, is the one its pairs carry (``metadata["ratings"]``: [chosen,
  rejected], written by compile for pairs from ratings judgements).

Validation and calibration keep using the pairs themselves, so every loss is measured the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.model.formatting import Encoded, encode
from rewardkit.records import PreferencePair, Prompt, canonical_json


@dataclass(frozen=True)
class ResponseList:
    """One prompt's responses, best first, with each one's rating (None: unrated)."""

    prompt: Prompt
    responses: list[str]
    ratings: list[float | None]


def response_lists(pairs: list[PreferencePair]) -> list[ResponseList]:
    """The lists of the pairs' prompts (those with at least 2 distinct responses), in first-seen order."""
    groups: dict[str, list[PreferencePair]] = {}
    for p in pairs:
        groups.setdefault(p.prompt_id or canonical_json(p.prompt), []).append(p)
    out = []
    for group in groups.values():
        score: dict[str, int] = {}  # response text -> wins - losses (insertion order: first seen)
        rating: dict[str, float] = {}
        for p in group:
            score.setdefault(p.chosen, 0)
            score.setdefault(p.rejected, 0)
            if not p.tie:
                score[p.chosen] += 1
                score[p.rejected] -= 1
            given = p.metadata.get("ratings") if isinstance(p.metadata, dict) else None
            if isinstance(given, list) and len(given) == 2:
                for text, value in zip((p.chosen, p.rejected), given):
                    if isinstance(value, int | float):
                        rating[text] = float(value)
        if len(score) < 2:
            continue
        order = sorted(score, key=lambda text: -score[text])  # stable: first seen first among equals
        out.append(ResponseList(group[0].prompt, order, [rating.get(text) for text in order]))
    return out


@dataclass
class ListTensors:
    """L lists encoded once: list l's responses are rows ``items[l]`` of ``encoded`` (best first);
    ``ratings`` [rows] each row's rating (NaN: unrated)."""

    encoded: Encoded
    items: list[list[int]]
    ratings: torch.Tensor

    @property
    def n(self) -> int:
        return len(self.items)

    def list_lengths(self) -> list[int]:
        """Each list's longest row, in tokens (for length-grouped batches)."""
        return [max(len(self.encoded.input_ids[r]) for r in rows) for rows in self.items]

    def layout(self, lists: list[int]) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(rows to run, in order; index [B, k] into those rows, best first; mask [B, k], False on padding)
        for the lists ``lists``, k their longest list."""
        k = max(len(self.items[i]) for i in lists)
        rows: list[int] = []
        index = torch.zeros(len(lists), k, dtype=torch.long)
        mask = torch.zeros(len(lists), k, dtype=torch.bool)
        for b, i in enumerate(lists):
            members = self.items[i]
            index[b, : len(members)] = torch.arange(len(rows), len(rows) + len(members))
            mask[b, : len(members)] = True
            rows += members
        return rows, index, mask


def encode_lists(tokenizer: Any, lists: list[ResponseList], max_length: int) -> ListTensors:
    prompts = [rl.prompt for rl in lists for _ in rl.responses]
    responses = [text for rl in lists for text in rl.responses]
    items, start = [], 0
    for rl in lists:
        items.append(list(range(start, start + len(rl.responses))))
        start += len(rl.responses)
    ratings = [math.nan if r is None else r for rl in lists for r in rl.ratings]
    return ListTensors(encode(tokenizer, prompts, responses, max_length), items, torch.tensor(ratings))


def rating_stats(data: ListTensors) -> tuple[float, float]:
    """(mean, std) of the training ratings, the scale regression puts them on (0, 1 when there are none)."""
    rated = data.ratings[~torch.isnan(data.ratings)]
    if len(rated) < 2:
        return 0.0, 1.0
    std = float(rated.std())
    return float(rated.mean()), std if std > 0 else 1.0
