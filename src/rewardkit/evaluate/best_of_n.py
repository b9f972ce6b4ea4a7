"""Best-of-N: does picking the highest-reward response out of N give better responses?

Input: groups of responses to the same prompt, each with a ground-truth quality. With the AlpacaEval
annotations many generators answer the same instruction and the judge's preference against the reference
output (in [1, 2], above 1.5 = better than the reference) is the quality (``load_alpacaeval_groups``).

For each N the report gives, averaged over prompts (each prompt weighs the same), the **expected** quality
over every subset of N of the prompt's k responses (all equally likely) of (a) the reward model's pick
(highest score), (b) a random pick and (c) the oracle pick (best quality). The reward model's gain is
(a) - (b); (c) - (b) is the most any picker could gain. The expectations are exact, not drawn:

- Rank the k responses by score, ascending: rank j has j - 1 responses below it. It is the best of a random
  N-subset exactly when it is in the subset and the other N - 1 come from those j - 1, so
  ``P(rank j is picked) = C(j - 1, N - 1) / C(k, N)`` (0 for j < N; the top rank gets C(k-1, N-1)/C(k, N) = N/k).
  The reward pick's expected quality is the sum over ranks of that probability times the quality.
- **Ties in score** are broken uniformly at random: given that a subset's top score is shared, each tied
  response in it is equally likely to be picked, so a block of tied responses contributes its total
  probability times its *mean* quality.
- The oracle pick is the same sum with the responses ranked by quality (ties in quality change nothing).
- A random pick's expectation is the group's mean quality, for every N.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.evaluate.score_fns import ScoreFn


@dataclass(frozen=True)
class ResponseGroup:
    """Responses to one prompt with their ground-truth quality; ``generators`` names who wrote each."""

    prompt: str
    responses: tuple[str, ...]
    quality: tuple[float, ...]
    generators: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1024)
def pick_probabilities(k: int, n: int) -> np.ndarray:
    """(k,) P(the response of ascending rank j = 1..k is the best of a uniformly random n-subset):
    C(j - 1, n - 1) / C(k, n). Sums to 1. (Cached: most groups share a k; the array is read-only.)"""
    total = math.comb(k, n)
    out = np.asarray([math.comb(j - 1, n - 1) / total for j in range(1, k + 1)], dtype=float)
    out.flags.writeable = False
    return out


def expected_pick(key: np.ndarray, quality: np.ndarray, n: int) -> float:
    """Expected quality of the response with the highest ``key`` in a uniformly random n-subset of the k
    responses; responses tied in ``key`` share their block's mean quality (a random tie-break)."""
    key, quality = np.asarray(key, float), np.asarray(quality, float)
    order = np.argsort(key, kind="stable")
    key, quality = key[order], quality[order]
    # tied keys: replace each quality by its tie block's mean (blocks are runs of equal sorted keys)
    _, block, counts = np.unique(key, return_inverse=True, return_counts=True)
    block_mean = np.bincount(block, weights=quality) / counts
    return float(np.dot(pick_probabilities(key.size, n), block_mean[block]))


def group_picks(
    scores: Sequence[np.ndarray], quality: Sequence[np.ndarray], n: int
) -> tuple[list[float], list[float], list[float]]:
    """Per group with at least ``n`` responses: the expected quality of the reward pick, of a random pick and of
    the oracle pick at N = ``n`` (module docstring). Kept per group so that two reward models can be compared
    group by group (their picks are made among the same responses: a paired difference)."""
    picks, randoms, oracles = [], [], []
    for s, q in zip(scores, quality, strict=True):
        s, q = np.asarray(s, float), np.asarray(q, float)
        if s.size < n:
            continue
        picks.append(expected_pick(s, q, n))
        randoms.append(float(q.mean()))
        oracles.append(expected_pick(q, q, n))
    return picks, randoms, oracles


def best_of_n_curve(
    scores: Sequence[np.ndarray], quality: Sequence[np.ndarray], ns: Sequence[int]
) -> list[dict[str, float]]:
    """One row per N: the exact expected quality of the reward pick, random pick and oracle pick, averaged
    over groups (module docstring). ``scores[g]`` and ``quality[g]`` are (k_g,) arrays for group g; groups
    with fewer than N responses are left out of that N (``groups`` counts those kept)."""
    rows = []
    for n in ns:
        picks, randoms, oracles = group_picks(scores, quality, n)
        if not picks:
            continue
        reward, random_, oracle = float(np.mean(picks)), float(np.mean(randoms)), float(np.mean(oracles))
        rows.append(
            {
                "n": int(n),
                "reward_pick": reward,
                "random_pick": random_,
                "oracle_pick": oracle,
                "gain": reward - random_,
                "groups": len(picks),
            }
        )
    return rows


def load_alpacaeval_groups(path: Path, *, max_groups: int | None = None, min_responses: int = 2) -> list[ResponseGroup]:
    """Group AlpacaEval annotation rows by instruction: each rated generator's ``output_2`` with quality
    ``preference`` (the judge's weighted preference over the reference ``output_1``, 1 to 2; a draw, 0 in
    some alpaca_eval files, is 1.5). Groups are sorted by
    instruction so a cap keeps the same ones every run."""
    by_prompt: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                instruction, output, generator, pref = (
                    row["instruction"],
                    row["output_2"],
                    row["generator_2"],
                    row["preference"],
                )
            except KeyError as exc:
                raise ValueError(
                    f"{path}:{lineno}: missing field {exc.args[0]!r} (expected AlpacaEval annotations)"
                ) from exc
            if pref is None or not str(output).strip():
                continue
            # alpaca_eval writes a draw as 1.5 or as 0 (pairwise_to_winrate counts both as half a win)
            by_prompt[instruction][generator] = (output, 1.5 if float(pref) == 0 else float(pref))
    groups = []
    for instruction in sorted(by_prompt):
        items = sorted(by_prompt[instruction].items())
        texts = [t for _, (t, _) in items]
        if len(items) < min_responses or len(set(texts)) < 2:
            continue
        groups.append(
            ResponseGroup(instruction, tuple(texts), tuple(q for _, (_, q) in items), tuple(g for g, _ in items))
        )
        if max_groups is not None and len(groups) >= max_groups:
            break
    return groups


def score_groups(score_fn: ScoreFn, groups: Sequence[ResponseGroup]) -> list[np.ndarray]:
    """Score every response of every group in one call; (k_g,) arrays back."""
    prompts = [g.prompt for g in groups for _ in g.responses]
    responses = [r for g in groups for r in g.responses]
    flat = np.asarray(score_fn(prompts, responses), dtype=float)
    out, start = [], 0
    for g in groups:
        out.append(flat[start : start + len(g.responses)])
        start += len(g.responses)
    return out


def best_of_n_report(
    scores: Sequence[np.ndarray], groups: Sequence[ResponseGroup], ns: Sequence[int] = (1, 2, 4, 8, 16)
) -> dict[str, Any]:
    curve = best_of_n_curve(scores, [np.asarray(g.quality) for g in groups], ns)
    # N = 1 has zero gain by construction, so it is left out of the headline numbers
    real = [r for r in curve if r["n"] > 1]
    return {
        "curve": curve,
        "groups": len(groups),
        "max_gain": max((r["gain"] for r in real), default=float("nan")),
        "gain_at_largest_n": real[-1]["gain"] if real else float("nan"),
    }
