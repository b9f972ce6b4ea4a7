"""Query functions for the score log: served scores (a sampled fraction, in full) and per-minute aggregates
(every served score). Written by ``feedback/score_log.py`` from the service, read by ``monitor/`` and by the
feedback write path (a ``score_id`` cited instead of texts).

Plain functions over a Session, keyword-only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from rewardkit.store.queries import aware
from rewardkit.store.tables import ScoreAggregateRow, ScoreReferenceRow, ServedScoreRow

_CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def add_served_scores(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert served-score records (dicts with the ``served_scores`` columns); returns how many."""
    if rows:
        session.execute(insert(ServedScoreRow), list(rows))
    return len(rows)


def add_score_aggregates(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Append partial per-minute sums (dicts with the ``score_aggregates`` columns but ``id``)."""
    if rows:
        session.execute(insert(ScoreAggregateRow), list(rows))
    return len(rows)


def get_served_scores(session: Session, ids: Sequence[str]) -> dict[str, ServedScoreRow]:
    """The logged scores among ``ids`` (a score not sampled into the log, or never served, is absent)."""
    found: dict[str, ServedScoreRow] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        found.update((r.id, r) for r in session.scalars(select(ServedScoreRow).where(ServedScoreRow.id.in_(chunk))))
    return found


def iter_score_aggregates(
    session: Session, *, since: datetime, until: datetime | None = None, batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Aggregate rows (plain dicts of the columns, ``minute`` UTC-aware) with ``since <= minute < until``, in
    insertion order, streamed batch by batch."""
    table = ScoreAggregateRow.__table__
    last_id = 0
    while True:
        stmt = select(table).where(table.c.minute >= since, table.c.id > last_id)
        if until is not None:
            stmt = stmt.where(table.c.minute < until)
        rows = [dict(r) for r in session.execute(stmt.order_by(table.c.id).limit(batch_size)).mappings()]
        if not rows:
            return
        for row in rows:
            row["minute"] = aware(row["minute"])
            yield row
        last_id = rows[-1]["id"]


def iter_served_scores(
    session: Session, *, since: datetime, until: datetime | None = None, batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Logged served scores (plain dicts, ``created_at`` UTC-aware) with ``since <= created_at < until``, oldest
    first, streamed batch by batch."""
    table = ServedScoreRow.__table__
    last: tuple[datetime, str] | None = None
    while True:
        stmt = select(table).where(table.c.created_at >= since)
        if until is not None:
            stmt = stmt.where(table.c.created_at < until)
        if last is not None:
            stmt = stmt.where(
                (table.c.created_at > last[0]) | ((table.c.created_at == last[0]) & (table.c.id > last[1]))
            )
        page = session.execute(stmt.order_by(table.c.created_at, table.c.id).limit(batch_size)).mappings()
        rows = [dict(r) for r in page]
        if not rows:
            return
        last = (rows[-1]["created_at"], rows[-1]["id"])
        for row in rows:
            row["created_at"] = aware(row["created_at"])
            yield row


def put_score_reference(session: Session, *, model_version: str, reference: dict[str, Any]) -> None:
    """Record a model version's reference distribution once (the first writer wins: a version's weights, and so
    its reference, never change). ``reference``: edges, proportions, reward_mean, reward_std, source."""
    if session.get(ScoreReferenceRow, model_version) is None:
        session.add(ScoreReferenceRow(model_version=model_version, created_at=datetime.now(UTC), **reference))


def get_score_references(session: Session) -> dict[str, dict[str, Any]]:
    """Every recorded reference by model version, as plain dicts of the columns."""
    table = ScoreReferenceRow.__table__
    return {r["model_version"]: dict(r) for r in session.execute(select(table)).mappings()}
