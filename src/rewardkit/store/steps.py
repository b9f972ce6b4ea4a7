"""Step-labelled solutions in the store: write a batch idempotently, read them back, count them.

The same contract as comparisons (``queries.py``): a row's key is ``StepSolution.dedupe_key`` (the client's
event id when given, else the content), a batch is one "insert, ignore if present" per table, and nothing
commits here: the caller's transaction decides what is atomic, so an importer stores a chunk whole or not at all.

Library use::

    from rewardkit.store import open_store, session_scope
    from rewardkit.store.steps import StepFilter, add_step_solutions, iter_step_solutions
    with session_scope(open_store()) as s:
        add_step_solutions(s, solutions)
        for stored in iter_step_solutions(s, StepFilter(sources=("prm800k",))):
            stored.solution.first_error
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rewardkit.records import Annotator, StepSolution, utcnow
from rewardkit.store.queries import AddResult, aware, existing_ids, insert_ignore, prompt_id, where_selected
from rewardkit.store.tables import AnnotatorRow, StepSolutionRow


def _row(key: str, s: StepSolution, now: datetime, import_id: int | None) -> dict[str, Any]:
    return {
        "id": key,
        "prompt_id": prompt_id(s.prompt),
        "prompt": s.prompt,
        "steps": list(s.steps),
        "labels": list(s.labels),
        "n_steps": len(s.steps),
        "first_error": s.first_error,
        "outcome": s.outcome,
        "annotator_id": s.annotator.id,
        "annotator_kind": s.annotator.kind,
        "source": s.source,
        "model_name": s.model_name,
        "created_at": s.created_at or now,
        "client_event_id": s.client_event_id,
        "import_id": import_id,
        "metadata": s.metadata,
    }


def add_step_solutions(
    session: Session, solutions: Sequence[StepSolution], *, import_id: int | None = None
) -> AddResult:
    """Store a batch of step-labelled solutions; those already stored (same key) are skipped and counted."""
    by_key: dict[str, StepSolution] = {}
    for s in solutions:
        by_key.setdefault(s.dedupe_key, s)
    stored = existing_ids(session, StepSolutionRow.id, list(by_key))
    now = utcnow()
    rows = [_row(key, s, now, import_id) for key, s in by_key.items() if key not in stored]
    annotators = {s.annotator.id: {"id": s.annotator.id, "kind": s.annotator.kind} for s in by_key.values()}
    insert_ignore(session, AnnotatorRow, list(annotators.values()))  # the parent first: foreign keys are enforced
    inserted = insert_ignore(session, StepSolutionRow, rows)  # a concurrent import may have won some
    return AddResult(inserted=inserted, duplicates=len(solutions) - inserted)


@dataclass(frozen=True)
class StepFilter:
    """Which step solutions to read; ``None`` means no constraint."""

    sources: tuple[str, ...] | None = None
    annotator_kinds: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(stmt: Any, flt: StepFilter) -> Any:
    return where_selected(
        stmt,
        StepSolutionRow,
        sources=flt.sources,
        annotator_kinds=flt.annotator_kinds,
        since=flt.since,
        until=flt.until,
    )


def count_step_solutions(session: Session, flt: StepFilter = StepFilter()) -> int:
    return session.scalar(_filtered(select(func.count()).select_from(StepSolutionRow), flt)) or 0


def step_solutions_of_import(session: Session, import_id: int) -> int:
    """How many step solutions an import stored (the part a killed import committed)."""
    stmt = select(func.count()).select_from(StepSolutionRow).where(StepSolutionRow.import_id == import_id)
    return session.scalar(stmt) or 0


@dataclass(frozen=True)
class StoredStepSolution:
    id: str
    prompt_id: str
    solution: StepSolution


def _to_solution(row: StepSolutionRow) -> StepSolution:
    return StepSolution(
        prompt=row.prompt,
        steps=tuple(row.steps),
        labels=tuple(row.labels),
        annotator=Annotator(row.annotator_id, row.annotator_kind),  # type: ignore[arg-type]
        source=row.source,
        outcome=row.outcome,
        model_name=row.model_name,
        created_at=aware(row.created_at),
        client_event_id=row.client_event_id,
        metadata=row.meta or {},
    )


def iter_step_solutions(
    session: Session, flt: StepFilter = StepFilter(), *, batch_size: int = 1000
) -> Iterator[StoredStepSolution]:
    """Stream step solutions in a stable order (by id), batch by batch, so memory stays flat."""
    last_id = ""
    while True:
        stmt = _filtered(select(StepSolutionRow), flt).where(StepSolutionRow.id > last_id)
        rows = list(session.scalars(stmt.order_by(StepSolutionRow.id).limit(batch_size)))
        if not rows:
            return
        last_id = rows[-1].id
        for row in rows:
            yield StoredStepSolution(row.id, row.prompt_id, _to_solution(row))
