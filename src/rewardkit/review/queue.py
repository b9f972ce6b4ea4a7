"""From picked candidates to queued items, and gold items from a file of known answers.

The page judges pairs, so an item with more than two responses is queued as pairs: response 0 against each
of the others (k - 1 items, each deduplicated on its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.records import Prompt
from rewardkit.review.candidates import Candidate, choose
from rewardkit.review.sources import SourceError, candidate_from_row
from rewardkit.store.review import NewItem, enqueue


def pair_items(
    prompt: Prompt,
    responses: Sequence[dict[str, Any]],
    *,
    origin: dict[str, Any],
    reason: str,
    priority: float,
    needed: int,
) -> list[NewItem]:
    if len(responses) < 2:
        raise ValueError(f"an item needs at least 2 responses, got {len(responses)}")
    return [
        NewItem(prompt, (responses[0], other), origin=origin, reason=reason, priority=priority, needed=needed)
        for other in responses[1:]
    ]


def items_from_candidates(
    candidates: Sequence[Candidate], picked: Sequence[tuple[int, float]], *, reason: str, needed: int
) -> list[NewItem]:
    items: list[NewItem] = []
    for index, priority in picked:
        c = candidates[index]
        meta = c.response_meta or tuple({} for _ in c.responses)
        responses = [{"text": text, **m} for text, m in zip(c.responses, meta, strict=False)]
        items += pair_items(c.prompt, responses, origin=c.origin, reason=reason, priority=priority, needed=needed)
    return items


def enqueue_candidates(
    session: Session,
    candidates: Sequence[Candidate],
    *,
    strategy: str,
    budget: int,
    needed: int,
    now: datetime,
    seed: int = 0,
) -> dict[str, int]:
    """Pick ``budget`` candidates by ``strategy`` and queue them (reason = the strategy). Returns counts."""
    picked = choose(candidates, strategy, budget, seed=seed)
    inserted, duplicates = enqueue(
        session, items_from_candidates(candidates, picked, reason=strategy, needed=needed), now=now
    )
    return {"candidates": len(candidates), "picked": len(picked), "queued": inserted, "duplicates": duplicates}


def gold_items(path: Path) -> list[NewItem]:
    """Gold items from a file of pairs whose answer is known: ``prompt`` + ``chosen``/``rejected`` (chosen is
    the right answer), or ``response_a``/``response_b`` + ``label`` (a | b | tie | both_bad)."""
    from rewardkit.data.importers.errors import ImportFailed
    from rewardkit.data.importers.reader import check_readable, iter_records
    from rewardkit.records import RecordError

    items = []
    try:
        check_readable(path)
        for i, (location, row) in enumerate(iter_records(path)):
            where = str(location)
            if isinstance(row, RecordError):
                raise SourceError(f"{where}: {row}")
            c = candidate_from_row(row, where, {"kind": "gold", "path": str(path), "row": i})
            answer = "a" if "chosen" in row else row.get("label")
            if answer not in ("a", "b", "tie", "both_bad"):
                raise SourceError(f"{where}: field 'label': expected a, b, tie or both_bad, got {answer!r}")
            responses = tuple({"text": t} for t in c.responses)
            items.append(NewItem(c.prompt, responses, origin=c.origin, reason="gold", gold_choice=answer))
    except ImportFailed as exc:
        raise SourceError(str(exc)) from None
    return items
