"""The one thing evaluation needs from a model: a scoring callable.

``ScoreFn(prompts, responses) -> (n,) float array`` scores n (prompt, response) rows. Tests pass a
deterministic fake; ``load_model_for_eval`` adapts a saved reward model through the batch scorer of
``rewardkit.scoring.scorer``. ``TimedScoreFn`` counts the time and the rows spent inside scoring so a run can report
the share of its time that scoring took; ``CachedScoreFn`` scores each distinct (prompt, response) once and
lets a run score all its rows in one call.

A ScoreFn may also have ``with_features(prompts, responses) -> (scores, {name: (n,) array})``: per-row
input statistics computed in the same forward pass (the batch scorer gives ``embedding_norm``, the norm of
the vector its head reads). The drift check uses them; a plain ScoreFn simply has none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.model.card import RewardCard
from rewardkit.records import Prompt
from rewardkit.scoring.scorer import load_scorer

ScoreFn = Callable[[list[Prompt], list[str]], np.ndarray]


def call_with_features(
    fn: ScoreFn, prompts: list[Prompt], responses: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n,) scores and {name: (n,) array} of ``fn`` on n rows (no features for a plain ScoreFn); a scorer that
    returns the wrong number of scores or feature values is an error naming what it got."""
    inner = getattr(fn, "with_features", None)
    raw, features = inner(prompts, responses) if inner else (fn(prompts, responses), {})
    scores = np.asarray(raw, dtype=float).reshape(-1)
    if scores.shape[0] != len(responses):
        raise ValueError(f"the scorer returned {scores.shape[0]} scores for {len(responses)} responses")
    columns = {name: np.asarray(values, dtype=float).reshape(-1) for name, values in features.items()}
    for name, column in columns.items():
        if column.shape[0] != len(responses):
            raise ValueError(f"the scorer returned {column.shape[0]} values of {name!r} for {len(responses)} responses")
    return scores, columns


@dataclass
class TimedScoreFn:
    """Wraps a ScoreFn; ``seconds`` and ``rows`` add up every call."""

    fn: ScoreFn
    seconds: float = 0.0
    rows: int = 0

    def __call__(self, prompts: list[Prompt], responses: list[str]) -> np.ndarray:
        return self.with_features(prompts, responses)[0]

    def with_features(self, prompts: list[Prompt], responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        start = time.perf_counter()
        try:
            return call_with_features(self.fn, list(prompts), list(responses))
        finally:
            self.seconds += time.perf_counter() - start
            self.rows += len(responses)


def prompt_key(prompt: Prompt) -> str:
    """A prompt as a hashable key: a chat prompt (list of messages) keys by its JSON, so two prompts are
    the same only if every turn is."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def row_key(prompt: Prompt, response: str) -> tuple[str, str]:
    """The identity of a scored row: the same (prompt, response) always gets the same score."""
    return (prompt_key(prompt), response)


@dataclass
class CachedScoreFn:
    """A ScoreFn that scores each distinct (prompt, response) once: repeated rows inside a call and rows
    scored by an earlier call come from the cache. ``prefetch`` scores every row an evaluation will need in
    ONE call of ``fn``, so the batch scorer sorts and packs all of them together (best batching)."""

    fn: ScoreFn
    cache: dict[tuple[str, str], float] = field(default_factory=dict)
    feature_cache: dict[str, dict[tuple[str, str], float]] = field(default_factory=dict)

    def prefetch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> None:
        self._fill(prompts, responses, [row_key(p, r) for p, r in zip(prompts, responses, strict=True)])

    def __call__(self, prompts: list[Prompt], responses: list[str]) -> np.ndarray:
        keys = [row_key(p, r) for p, r in zip(prompts, responses, strict=True)]
        self._fill(prompts, responses, keys)
        return np.asarray([self.cache[k] for k in keys], dtype=float)

    def features(self, prompts: list[Prompt], responses: list[str]) -> dict[str, np.ndarray]:
        """The per-row input statistics ``fn`` gave along with the scores (scoring rows not seen yet)."""
        keys = [row_key(p, r) for p, r in zip(prompts, responses, strict=True)]
        self._fill(prompts, responses, keys)
        return {
            name: np.asarray([values[k] for k in keys], dtype=float)
            for name, values in self.feature_cache.items()
            if all(k in values for k in keys)
        }

    def _fill(self, prompts: Sequence[Prompt], responses: Sequence[str], keys: list[tuple[str, str]]) -> None:
        """Score, in one call of ``fn``, the first row of every key not cached yet."""
        todo: dict[tuple[str, str], int] = {}
        for i, key in enumerate(keys):
            if key not in self.cache and key not in todo:
                todo[key] = i
        if not todo:
            return
        rows = list(todo.values())
        scores, features = call_with_features(self.fn, [prompts[i] for i in rows], [responses[i] for i in rows])
        self.cache.update(zip(todo, scores.tolist()))
        for name, column in features.items():
            self.feature_cache.setdefault(name, {}).update(zip(todo, column.tolist()))


def score_pairs(
    score_fn: ScoreFn, prompts: Sequence[Prompt], chosen: Sequence[str], rejected: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Score chosen and rejected in one call (one sort by length covers both): two (n,) arrays."""
    n = len(prompts)
    scores = np.asarray(score_fn(list(prompts) * 2, list(chosen) + list(rejected)), dtype=float).reshape(-1)
    return scores[:n], scores[n:]


@dataclass
class BatchScoreFn:
    """A ScoreFn over ``rewardkit.scoring.scorer.BatchScorer`` that also gives each row's embedding norm, and the
    scorer's tokenization (``encode``) so an evaluation can tell which edits the model can see."""

    scorer: Any

    def encode(self, prompts: list[Prompt], responses: list[str]) -> Any:
        return self.scorer.encode(prompts, responses)

    def __call__(self, prompts: list[Prompt], responses: list[str]) -> np.ndarray:
        return self.with_features(prompts, responses)[0]

    def with_features(self, prompts: list[Prompt], responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        result = self.scorer.score(prompts, responses)
        features = (
            {} if result.embedding_norm is None else {"embedding_norm": np.asarray(result.embedding_norm, dtype=float)}
        )
        return np.asarray(result.raw, dtype=float), features


@dataclass
class LoadedModel:
    """A reward model ready for evaluation: its scorer and what its card says (temperature, name)."""

    score_fn: ScoreFn
    temperature: float | None
    name: str
    card: RewardCard = field(default_factory=RewardCard)
    dtype: str = "float32"
    """What the scorer computes in (float32, bfloat16, qint8): a report says it, since int8 moves scores."""
    precision: str = "fp32"
    """The same as ``BatchScorer.precision`` names it: fp32, bf16 or int8."""


def load_model_for_eval(
    path: str | Path, *, max_length: int | None = None, dtype: str = "auto", device: str = "auto"
) -> LoadedModel:
    """Load a saved reward model (a rewardkit model folder, an ensemble folder or any HF
    sequence-classification model) into the token-budget batch scorer (``rewardkit.scoring.scorer.load_scorer``)
    and return its raw-score ScoreFn and stored temperature. ``max_length``: the token limit per row (None: the
    one the model was trained with, else the scorer's default); ``dtype`` and ``device`` as the scorer takes
    them (auto: the precision decided once for this machine and model; the GPU when torch sees one)."""
    scorer = load_scorer(str(path), max_length=max_length, dtype=dtype, device=device)
    return LoadedModel(
        score_fn=BatchScoreFn(scorer),
        temperature=scorer.card.temperature,
        name=str(path),
        card=scorer.card,
        dtype=str(scorer.dtype).replace("torch.", ""),
        precision=scorer.precision,
    )
