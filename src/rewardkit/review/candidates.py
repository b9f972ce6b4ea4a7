"""Candidate pairs for the review queue and the one function that ranks them by a strategy.

A ``Candidate`` is one prompt, two or more responses, where they came from (``origin``: a logged score, a
snapshot pair, a file row) and whatever the model said about them (scores, calibrated P(a > b), ensemble
stds). ``choose`` applies a strategy from ``strategies.py`` and returns the picked indices with the priority
the queue stores.

Prompt embeddings for ``diversity`` are hashed bags of words and word pairs (a fixed 256-dim random
projection of token counts, L2-normalised): no model to load, deterministic, and good enough to separate
topics; clusters of a neural embedding would be finer but cost a model load per enqueue.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.records import Prompt, prompt_text
from rewardkit.review.strategies import (
    STRATEGIES,
    disagreement_priority,
    diversity_pick,
    margin_priority,
    random_pick,
    top,
    uncertainty_priority,
)

EMBED_DIM = 256
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Candidate:
    prompt: Prompt
    responses: tuple[str, ...]
    origin: dict[str, Any] = field(default_factory=dict)  # {"kind": "log" | "snapshot" | "file", ...}
    score_a: float | None = None
    score_b: float | None = None
    p_a: float | None = None  # calibrated P(a better than b)
    std_a: float | None = None  # ensemble std of each response's score
    std_b: float | None = None
    member_margins: tuple[float, ...] | None = None  # each ensemble member's s_a - s_b
    response_meta: tuple[dict[str, Any], ...] = ()  # model name/version per response, when known


class StrategyError(ValueError):
    """The candidates lack what a strategy needs (e.g. no scores for 'margin')."""


def _bucket(token: str) -> tuple[int, float]:
    h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return h % EMBED_DIM, 1.0 if (h >> 63) & 1 else -1.0


def embed_prompts(prompts: Sequence[Prompt]) -> np.ndarray:
    """(n,) prompts -> (n, EMBED_DIM) hashed bag-of-words-and-bigrams vectors, L2-normalised."""
    out = np.zeros((len(prompts), EMBED_DIM), dtype=np.float64)
    for i, prompt in enumerate(prompts):
        words = _WORD.findall(prompt_text(prompt).lower())
        for token in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            j, sign = _bucket(token)
            out[i, j] += sign
        norm = np.linalg.norm(out[i])
        if norm > 0:
            out[i] /= norm
    return out


def _need(candidates: Sequence[Candidate], attr: str, strategy: str) -> np.ndarray:
    values = [getattr(c, attr) for c in candidates]
    missing = sum(v is None for v in values)
    if missing:
        raise StrategyError(
            f"strategy '{strategy}' needs '{attr}' on every candidate; {missing} of {len(values)} lack it "
            "(score the pairs first: rewardkit score FILE --model M writes score_a, score_b, p_a_better; "
            "or use --strategy random or diversity)"
        )
    return np.asarray(values, dtype=np.float64)


def priorities(candidates: Sequence[Candidate], strategy: str) -> np.ndarray:
    """(n,) priority of each candidate under a scoring strategy (higher = label sooner)."""
    if strategy == "uncertainty":
        return uncertainty_priority(_need(candidates, "p_a", strategy))
    if strategy == "margin":
        return margin_priority(_need(candidates, "score_a", strategy), _need(candidates, "score_b", strategy))
    if strategy == "disagreement":
        if all(c.member_margins is not None for c in candidates):
            return disagreement_priority(member_margins=[c.member_margins for c in candidates])
        return disagreement_priority(
            std_a=_need(candidates, "std_a", strategy), std_b=_need(candidates, "std_b", strategy)
        )
    raise StrategyError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def choose(candidates: Sequence[Candidate], strategy: str, budget: int, *, seed: int = 0) -> list[tuple[int, float]]:
    """The ``budget`` candidates a strategy picks, as (index, priority), the most valuable first. ``diversity``
    and ``random`` have no per-item value: their priority is 1.0 for the first pick down to ~0 for the last,
    so the queue serves them in the order picked."""
    n = len(candidates)
    if strategy not in STRATEGIES:
        raise StrategyError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if budget < 0:
        raise StrategyError(f"budget must be >= 0, got {budget}")
    if n == 0 or budget == 0:
        return []
    if strategy in ("random", "diversity"):
        if strategy == "random":
            picked = random_pick(n, budget, seed=seed)
        else:
            picked = diversity_pick(embed_prompts([c.prompt for c in candidates]), budget, seed=seed)
        k = len(picked)
        return [(int(i), 1.0 - r / k) for r, i in enumerate(picked)]
    prio = priorities(candidates, strategy)
    return [(int(i), float(prio[i])) for i in top(prio, budget)]
