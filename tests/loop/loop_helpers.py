"""Data helpers of the loop tests (a named module: every test folder has its own conftest.py)."""

from __future__ import annotations

import random
from pathlib import Path

from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response

TOPICS = ["cats", "tea", "rain", "trains", "music", "bread", "maps", "stars", "boats", "clocks"]


def comparisons(n: int, *, source: str, start: int = 0, flipped: bool = False, kind: str = "human") -> list[Comparison]:
    """``n`` comparisons on distinct prompts ``start..start+n``: 'excellent' beats 'terrible' (or the reverse)."""
    rng = random.Random(start)
    out = []
    for i in range(start, start + n):
        filler = " ".join(rng.choices(["really", "quite", "very", "so"], k=rng.randint(0, 4)))
        good, bad = f"{filler} excellent answer", f"{filler} terrible answer"
        a, b = (good, bad) if i % 2 == 0 else (bad, good)
        winner = "a" if (a == good) != flipped else "b"
        out.append(
            Comparison(
                prompt=f"question {i}: tell me about {TOPICS[i % len(TOPICS)]}",
                responses=(Response(a), Response(b)),
                judgement=PairwiseJudgement(winner),
                annotator=Annotator(f"{source}-annotator", kind),
                source=source,
            )
        )
    return out


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    return path
