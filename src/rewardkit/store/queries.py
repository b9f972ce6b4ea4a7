"""Plain query functions over a Session: the only way the rest of rewardkit reads or writes the store.

Writes are batched and idempotent. Every row's key is a content hash (see ``tables.py``), so a batch is
inserted with "insert, ignore if present" statements; a comparison or event whose key (its client event id,
or its content) is already stored counts as a duplicate and stores nothing new. Functions never commit:
the caller owns the transaction, so an importer decides what is atomic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rewardkit.records import (
    Annotator,
    Comparison,
    FeedbackEvent,
    PairwiseJudgement,
    Prompt,
    Response,
    canonical_json,
    judgement_from_payload,
    judgement_kind,
    judgement_payload,
    prompt_text,
    utcnow,
)
from rewardkit.store.tables import (
    AnnotatorRow,
    Base,
    ComparisonResponseRow,
    ComparisonRow,
    FeedbackEventRow,
    ImportRow,
    PromptRow,
    ResponseRow,
    ScoreAggregateRow,
    ServedScoreRow,
    SnapshotRow,
    StepSolutionRow,
)

# Keep IN (...) lists well under SQLite's and PostgreSQL's parameter limits.
_CHUNK = 500


@dataclass(frozen=True)
class AddResult:
    inserted: int
    duplicates: int


def _digest(*parts: str) -> str:
    # NUL cannot occur inside the parts' meaning (it is not valid in text people write), so joining on it
    # is unambiguous; hashing the raw strings is several times cheaper than hashing canonical JSON.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def prompt_id(prompt: Prompt) -> str:
    return _digest("text", prompt) if isinstance(prompt, str) else _digest("chat", canonical_json(prompt))


def response_id(prompt_key: str, response: Response) -> str:
    return _digest(prompt_key, response.text, response.model_name, response.model_version)


def insert_ignore(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on either dialect, straight to the driver's executemany; returns how
    many rows this statement stored (the drivers sum executemany's row counts; a row skipped as present
    counts 0), which is what a caller reports as inserted: a check made before the insert can be overtaken
    by a concurrent writer storing the same keys.

    Ingestion spends most of its time here, and SQLAlchemy's per-row parameter handling (a dict walk and a
    bind processor call per value) cost as much as SQLite's own insert work; so the statement is compiled
    once per table and dialect, and each column's bind processor (JSON, DateTime) is applied here."""
    if not rows:
        return 0
    # In key order, so two transactions storing overlapping batches take their row locks in the same order
    # (PostgreSQL otherwise can deadlock two concurrent imports of the same rows given in other orders).
    rows = sorted(rows, key=itemgetter(*(c.key for c in model.__table__.primary_key.columns)))
    connection = session.connection()
    sql, keys, processors = _compiled_insert(model, connection.dialect)
    # Column-wise: pull every row's values in C (itemgetter), convert only the columns that need it.
    columns = list(zip(*map(itemgetter(*keys), rows))) if len(keys) > 1 else [[row[keys[0]] for row in rows]]
    for i, process in enumerate(processors):
        if process is not None:
            columns[i] = list(map(process, columns[i]))
    params = list(zip(*columns))
    if connection.dialect.paramstyle in ("qmark", "numeric", "format"):
        result = connection.exec_driver_sql(sql, params)
    else:  # named / pyformat (psycopg): the driver wants mappings
        result = connection.exec_driver_sql(sql, [dict(zip(keys, values, strict=True)) for values in params])
    return int(result.rowcount)


_INSERTS: dict[tuple[str, str], tuple[str, list[str], list[Any]]] = {}


def _json_dumps(value: Any) -> str:
    # Most JSON cells are empty dicts (sampling, metadata): skip the encoder for them.
    return "{}" if value == {} else json.dumps(value, ensure_ascii=False)


def _compiled_insert(model: type[Base], dialect: Any) -> tuple[str, list[str], list[Any]]:
    key = (model.__tablename__, dialect.name)
    if key not in _INSERTS:
        table: Table = model.__table__  # type: ignore[assignment]
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        columns = list(table.columns)
        stmt = insert(table).values({c.key: bindparam(c.key) for c in columns}).on_conflict_do_nothing()
        compiled = stmt.compile(dialect=dialect)
        keys = list(compiled.positiontup) if compiled.positional else [c.key for c in columns]  # type: ignore[arg-type]
        by_key = {c.key: c for c in columns}
        processors = [
            _json_dumps
            if isinstance(by_key[k].type, JSON)
            else by_key[k].type.dialect_impl(dialect).bind_processor(dialect)
            for k in keys
        ]
        _INSERTS[key] = (str(compiled), keys, processors)
    return _INSERTS[key]


def existing_ids(session: Session, column: Any, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        found.update(session.scalars(select(column).where(column.in_(ids[start : start + _CHUNK]))))
    return found


def _prompt_and_response_rows(
    prompt: Prompt,
    responses: Iterable[Response],
    now: datetime,
    prompts: dict[str, dict[str, Any]],
    resp: dict[str, dict[str, Any]],
) -> tuple[str, list[str]]:
    pid = prompt_id(prompt)
    prompts.setdefault(pid, {"id": pid, "content": prompt, "text": prompt_text(prompt), "created_at": now})
    rids = []
    for r in responses:
        rid = response_id(pid, r)
        rids.append(rid)
        resp.setdefault(
            rid,
            {
                "id": rid,
                "prompt_id": pid,
                "text": r.text,
                "model_name": r.model_name,
                "model_version": r.model_version,
                "sampling": r.sampling,
                "created_at": r.created_at,
                "metadata": r.metadata,
            },
        )
    return pid, rids


def add_comparisons(session: Session, comparisons: Sequence[Comparison], *, import_id: int | None = None) -> AddResult:
    """Store a batch of comparisons; those already stored (same key) are skipped and counted."""
    by_key: dict[str, Comparison] = {}
    for c in comparisons:
        by_key.setdefault(c.dedupe_key, c)
    keys = list(by_key)
    stored = existing_ids(session, ComparisonRow.id, keys)
    new_keys = [k for k in keys if k not in stored]
    now = utcnow()
    prompts: dict[str, dict[str, Any]] = {}
    responses: dict[str, dict[str, Any]] = {}
    annotators: dict[str, dict[str, Any]] = {}
    comparison_rows, link_rows = [], []
    for key in new_keys:
        c = by_key[key]
        pid, rids = _prompt_and_response_rows(c.prompt, c.responses, now, prompts, responses)
        annotators.setdefault(c.annotator.id, {"id": c.annotator.id, "kind": c.annotator.kind})
        j = c.judgement
        pairwise = isinstance(j, PairwiseJudgement)
        comparison_rows.append(
            {
                "id": key,
                "prompt_id": pid,
                "kind": judgement_kind(j),
                "judgement": judgement_payload(j),
                "choice": j.choice if pairwise else None,
                "strength": j.strength if pairwise else None,
                "margin": j.margin if pairwise else None,
                "annotator_id": c.annotator.id,
                "annotator_kind": c.annotator.kind,
                "attribute": c.attribute,
                "rubric": c.rubric,
                "rationale": c.rationale,
                "source": c.source,
                "created_at": c.created_at or now,
                "client_event_id": c.client_event_id,
                "import_id": import_id,
                "metadata": c.metadata,
            }
        )
        link_rows.extend({"comparison_id": key, "position": i, "response_id": rid} for i, rid in enumerate(rids))
    # Parents first: foreign keys are enforced on both dialects.
    insert_ignore(session, PromptRow, list(prompts.values()))
    insert_ignore(session, ResponseRow, list(responses.values()))
    insert_ignore(session, AnnotatorRow, list(annotators.values()))
    inserted = insert_ignore(session, ComparisonRow, comparison_rows)  # a concurrent import may have won some
    insert_ignore(session, ComparisonResponseRow, link_rows)
    return AddResult(inserted=inserted, duplicates=len(comparisons) - inserted)


def add_feedback_events(session: Session, events: Sequence[FeedbackEvent]) -> AddResult:
    """Store implicit feedback events; an event whose client event id (or content) is stored is skipped."""
    by_key: dict[str, FeedbackEvent] = {}
    for e in events:
        by_key.setdefault(e.dedupe_key, e)
    keys = list(by_key)
    stored = existing_ids(session, FeedbackEventRow.id, keys)
    new_keys = [k for k in keys if k not in stored]
    now = utcnow()
    prompts: dict[str, dict[str, Any]] = {}
    responses: dict[str, dict[str, Any]] = {}
    rows = []
    for key in new_keys:
        e = by_key[key]
        others = [e.other_response] if e.other_response else []
        pid, rids = _prompt_and_response_rows(e.prompt, [e.response, *others], now, prompts, responses)
        rows.append(
            {
                "id": key,
                "client_event_id": e.client_event_id,
                "kind": e.kind,
                "prompt_id": pid,
                "response_id": rids[0],
                "other_response_id": rids[1] if others else None,
                "user_id": e.user_id,
                "session_id": e.session_id,
                "created_at": e.created_at or now,
                "metadata": e.metadata,
            }
        )
    insert_ignore(session, PromptRow, list(prompts.values()))
    insert_ignore(session, ResponseRow, list(responses.values()))
    inserted = insert_ignore(session, FeedbackEventRow, rows)
    return AddResult(inserted=inserted, duplicates=len(events) - inserted)


@dataclass(frozen=True)
class ComparisonFilter:
    """Which comparisons to read. ``None`` means no constraint; ``attributes`` may contain None (overall)."""

    sources: tuple[str, ...] | None = None
    annotator_kinds: tuple[str, ...] | None = None
    attributes: tuple[str | None, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


def where_selected(
    stmt: Any,
    table: Any,
    *,
    sources: tuple[str, ...] | None,
    annotator_kinds: tuple[str, ...] | None,
    since: datetime | None,
    until: datetime | None,
) -> Any:
    """``stmt`` narrowed to rows of ``table`` (comparisons, step solutions) from these sources and annotator kinds,
    created in [since, until); None: no constraint."""
    if sources is not None:
        stmt = stmt.where(table.source.in_(sources))
    if annotator_kinds is not None:
        stmt = stmt.where(table.annotator_kind.in_(annotator_kinds))
    if since is not None:
        stmt = stmt.where(table.created_at >= since)
    if until is not None:
        stmt = stmt.where(table.created_at < until)
    return stmt


def _filtered(stmt: Any, flt: ComparisonFilter) -> Any:
    stmt = where_selected(
        stmt,
        ComparisonRow,
        sources=flt.sources,
        annotator_kinds=flt.annotator_kinds,
        since=flt.since,
        until=flt.until,
    )
    if flt.attributes is not None:
        named = [a for a in flt.attributes if a is not None]
        cond = ComparisonRow.attribute.in_(named)
        if None in flt.attributes:
            cond = cond | ComparisonRow.attribute.is_(None)
        stmt = stmt.where(cond)
    return stmt


def count_comparisons(session: Session, flt: ComparisonFilter = ComparisonFilter()) -> int:
    return session.scalar(_filtered(select(func.count()).select_from(ComparisonRow), flt)) or 0


@dataclass(frozen=True)
class StoredComparison:
    id: str
    prompt_id: str
    comparison: Comparison


def iter_comparisons(
    session: Session, flt: ComparisonFilter = ComparisonFilter(), *, batch_size: int = 1000
) -> Iterator[StoredComparison]:
    """Stream comparisons in a stable order (by id) with their prompt and responses, batch by batch, so
    memory stays flat however large the store is."""
    last_id = ""
    while True:
        rows = list(
            session.scalars(
                _filtered(select(ComparisonRow), flt)
                .where(ComparisonRow.id > last_id)
                .order_by(ComparisonRow.id)
                .limit(batch_size)
            )
        )
        if not rows:
            return
        last_id = rows[-1].id
        ids = [r.id for r in rows]
        prompts = {
            p.id: p for p in session.scalars(select(PromptRow).where(PromptRow.id.in_({r.prompt_id for r in rows})))
        }
        links: dict[str, list[tuple[int, ResponseRow]]] = {}
        for link, resp in session.execute(
            select(ComparisonResponseRow, ResponseRow)
            .join(ResponseRow, ResponseRow.id == ComparisonResponseRow.response_id)
            .where(ComparisonResponseRow.comparison_id.in_(ids))
        ):
            links.setdefault(link.comparison_id, []).append((link.position, resp))
        for row in rows:
            ordered = [r for _, r in sorted(links[row.id], key=lambda x: x[0])]
            yield StoredComparison(row.id, row.prompt_id, _to_comparison(row, prompts[row.prompt_id], ordered))


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _to_comparison(row: ComparisonRow, prompt: PromptRow, responses: list[ResponseRow]) -> Comparison:
    return Comparison(
        prompt=prompt.content,
        responses=tuple(
            Response(r.text, r.model_name, r.model_version, r.sampling or {}, aware(r.created_at), r.meta or {})
            for r in responses
        ),
        judgement=judgement_from_payload(row.judgement),
        annotator=Annotator(row.annotator_id, row.annotator_kind),  # type: ignore[arg-type]
        source=row.source,
        attribute=row.attribute,
        rubric=row.rubric,
        rationale=row.rationale,
        created_at=aware(row.created_at),
        client_event_id=row.client_event_id,
        metadata=row.meta or {},
    )


def iter_feedback_events(session: Session, *, batch_size: int = 1000) -> Iterator[FeedbackEvent]:
    last_id = ""
    while True:
        rows = list(
            session.scalars(
                select(FeedbackEventRow)
                .where(FeedbackEventRow.id > last_id)
                .order_by(FeedbackEventRow.id)
                .limit(batch_size)
            )
        )
        if not rows:
            return
        last_id = rows[-1].id
        prompt_ids = {r.prompt_id for r in rows}
        response_ids = {r.response_id for r in rows} | {r.other_response_id for r in rows if r.other_response_id}
        prompts = {p.id: p.content for p in session.scalars(select(PromptRow).where(PromptRow.id.in_(prompt_ids)))}
        responses = {r.id: r for r in session.scalars(select(ResponseRow).where(ResponseRow.id.in_(response_ids)))}

        def as_response(rid: str) -> Response:
            r = responses[rid]
            return Response(r.text, r.model_name, r.model_version, r.sampling or {}, aware(r.created_at), r.meta or {})

        for row in rows:
            yield FeedbackEvent(
                kind=row.kind,  # type: ignore[arg-type]
                prompt=prompts[row.prompt_id],
                response=as_response(row.response_id),
                other_response=as_response(row.other_response_id) if row.other_response_id else None,
                user_id=row.user_id,
                session_id=row.session_id,
                created_at=aware(row.created_at),
                client_event_id=row.client_event_id,
                metadata=row.meta or {},
            )


# --- import audit trail -----------------------------------------------------------------------------


def start_import(session: Session, *, format: str, paths: Sequence[str], process: dict[str, Any] | None = None) -> int:
    """A ``running`` audit row; ``process`` identifies the importing process (see data/importers/audit.py)."""
    row = ImportRow(format=format, paths=list(paths), started_at=utcnow(), status="running", counts={}, process=process)
    session.add(row)
    session.flush()
    return row.id


def finish_import(session: Session, import_id: int, *, status: str, counts: dict[str, Any]) -> None:
    row = session.get(ImportRow, import_id)
    if row is None:
        raise LookupError(f"no import {import_id}")
    row.status, row.counts, row.finished_at = status, counts, utcnow()


def list_imports(session: Session, *, statuses: Sequence[str] | None = None) -> list[ImportRow]:
    stmt = select(ImportRow).order_by(ImportRow.id)
    if statuses is not None:
        stmt = stmt.where(ImportRow.status.in_(statuses))
    return list(session.scalars(stmt))


def set_import_status(session: Session, import_ids: Sequence[int], status: str) -> None:
    for row in session.scalars(select(ImportRow).where(ImportRow.id.in_(import_ids))):
        row.status = status


def comparisons_of_import(session: Session, import_id: int) -> int:
    """How many stored comparisons an import stored (the part a killed import committed)."""
    return (
        session.scalar(select(func.count()).select_from(ComparisonRow).where(ComparisonRow.import_id == import_id)) or 0
    )


# --- snapshots registry -----------------------------------------------------------------------------


def record_snapshot(session: Session, *, id: str, parent_id: str | None, path: str, manifest: dict[str, Any]) -> None:
    """Register a built snapshot (idempotent: the same content has the same id)."""
    if session.get(SnapshotRow, id) is None:
        session.add(SnapshotRow(id=id, parent_id=parent_id, path=path, manifest=manifest, created_at=utcnow()))


def list_snapshots(session: Session) -> list[SnapshotRow]:
    return list(session.scalars(select(SnapshotRow).order_by(SnapshotRow.created_at)))


def get_snapshot(session: Session, snapshot_id: str) -> SnapshotRow | None:
    """By id or unique id prefix."""
    rows = list(session.scalars(select(SnapshotRow).where(SnapshotRow.id.startswith(snapshot_id)).limit(2)))
    return rows[0] if len(rows) == 1 else None


def table_counts(session: Session) -> dict[str, int]:
    return {
        t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0
        for t in (
            PromptRow,
            ResponseRow,
            AnnotatorRow,
            ComparisonRow,
            ComparisonResponseRow,
            FeedbackEventRow,
            ImportRow,
            SnapshotRow,
            ServedScoreRow,
            ScoreAggregateRow,
            StepSolutionRow,
        )
    }
