"""Query functions for the model registry and the continuous-training loop: model versions, aliases and their
append-only history, golden snapshots, loop runs and leases. Read and written by ``registry/`` and ``loop/``.

Plain functions over a Session, keyword-only; the caller owns the transaction. Two writers that race are told
apart by conditional UPDATEs (``rowcount``) and unique keys, never by locks, so the same code holds on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rewardkit.store.tables import (
    AliasMoveRow,
    GoldenSnapshotRow,
    LeaseRow,
    LoopRunRow,
    ModelAliasRow,
    ModelVersionRow,
)


class AliasConflict(RuntimeError):
    """An alias moved (or was created) by someone else between reading it and moving it."""


# --- versions ---------------------------------------------------------------------------------------------


def next_version_number(session: Session, *, name: str) -> int:
    return (session.scalar(select(func.max(ModelVersionRow.version)).where(ModelVersionRow.name == name)) or 0) + 1


def add_model_version(session: Session, **columns: Any) -> ModelVersionRow:
    """Insert a version row (flushed: a racing insert of the same (name, version) raises IntegrityError here)."""
    row = ModelVersionRow(**columns)
    session.add(row)
    session.flush()
    return row


def get_model_version(session: Session, *, name: str, version: int) -> ModelVersionRow | None:
    return session.scalar(
        select(ModelVersionRow).where(ModelVersionRow.name == name, ModelVersionRow.version == version)
    )


def find_model_version_by_sha(session: Session, *, name: str, sha256: str) -> ModelVersionRow | None:
    stmt = select(ModelVersionRow).where(ModelVersionRow.name == name, ModelVersionRow.sha256 == sha256)
    return session.scalar(stmt.order_by(ModelVersionRow.version).limit(1))


def list_model_versions(session: Session, *, name: str | None = None) -> list[ModelVersionRow]:
    stmt = select(ModelVersionRow)
    if name is not None:
        stmt = stmt.where(ModelVersionRow.name == name)
    return list(session.scalars(stmt.order_by(ModelVersionRow.name, ModelVersionRow.version)))


def set_eval_summary(session: Session, *, name: str, version: int, summary: dict[str, Any]) -> None:
    session.execute(
        update(ModelVersionRow)
        .where(ModelVersionRow.name == name, ModelVersionRow.version == version)
        .values(eval_summary=summary)
    )


# --- aliases ----------------------------------------------------------------------------------------------


def get_alias(session: Session, *, name: str, alias: str) -> ModelAliasRow | None:
    return session.get(ModelAliasRow, (name, alias))


def alias_version(session: Session, *, name: str, alias: str) -> int | None:
    """The version an alias points to (one indexed read: what every replica polls)."""
    return session.scalar(select(ModelAliasRow.version).where(ModelAliasRow.name == name, ModelAliasRow.alias == alias))


def list_aliases(session: Session, *, name: str | None = None) -> list[ModelAliasRow]:
    stmt = select(ModelAliasRow)
    if name is not None:
        stmt = stmt.where(ModelAliasRow.name == name)
    return list(session.scalars(stmt.order_by(ModelAliasRow.name, ModelAliasRow.alias)))


def move_alias(
    session: Session,
    *,
    name: str,
    alias: str,
    to_version: int,
    expected_from: int | None,
    kind: str,
    who: str,
    why: str = "",
    forced: bool = False,
    verdict: dict[str, Any] | None = None,
    reports: dict[str, Any] | None = None,
) -> AliasMoveRow:
    """Point ``name@alias`` at ``to_version`` if it still points at ``expected_from`` (None: the alias does not
    exist yet), and append the move to the history. Raises AliasConflict when another move came first."""
    now = datetime.now(UTC)
    if expected_from is None:
        try:
            with session.begin_nested():
                session.add(ModelAliasRow(name=name, alias=alias, version=to_version, moves=1, updated_at=now))
        except IntegrityError:
            raise AliasConflict(_conflict(session, name, alias, expected_from)) from None
    else:
        done = session.execute(
            update(ModelAliasRow)
            .where(ModelAliasRow.name == name, ModelAliasRow.alias == alias, ModelAliasRow.version == expected_from)
            .values(version=to_version, moves=ModelAliasRow.moves + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:
            raise AliasConflict(_conflict(session, name, alias, expected_from))
    move = AliasMoveRow(
        name=name,
        alias=alias,
        from_version=expected_from,
        to_version=to_version,
        kind=kind,
        forced=forced,
        who=who,
        why=why,
        at=now,
        verdict=verdict,
        reports=reports,
    )
    session.add(move)
    session.flush()
    return move


def _conflict(session: Session, name: str, alias: str, expected: int | None) -> str:
    now = alias_version(session, name=name, alias=alias)
    seen = f"v{expected}" if expected is not None else "unset"
    return (
        f"alias {name}@{alias} changed while this move was prepared (it was {seen}, it is now "
        f"{'v' + str(now) if now is not None else 'unset'}); nothing changed: read it again and retry"
    )


def alias_history(session: Session, *, name: str, alias: str | None = None, limit: int = 100) -> list[AliasMoveRow]:
    """The newest ``limit`` moves of ``name`` (one alias or all), newest first."""
    stmt = select(AliasMoveRow).where(AliasMoveRow.name == name)
    if alias is not None:
        stmt = stmt.where(AliasMoveRow.alias == alias)
    return list(session.scalars(stmt.order_by(AliasMoveRow.id.desc()).limit(limit)))


# --- golden snapshots ---------------------------------------------------------------------------------------


def mark_golden(session: Session, *, snapshot_id: str, by: str, note: str = "") -> None:
    if session.get(GoldenSnapshotRow, snapshot_id) is None:
        session.add(GoldenSnapshotRow(snapshot_id=snapshot_id, marked_at=datetime.now(UTC), marked_by=by, note=note))


def list_golden(session: Session) -> list[GoldenSnapshotRow]:
    return list(session.scalars(select(GoldenSnapshotRow).order_by(GoldenSnapshotRow.marked_at)))


def is_golden(session: Session, *, snapshot_id: str) -> bool:
    return session.get(GoldenSnapshotRow, snapshot_id) is not None


# --- loop runs ----------------------------------------------------------------------------------------------


def open_loop_run(session: Session, *, name: str, final_states: tuple[str, ...]) -> LoopRunRow | None:
    """The oldest run of ``name`` that has not reached a final state."""
    stmt = select(LoopRunRow).where(LoopRunRow.name == name, LoopRunRow.state.not_in(final_states))
    return session.scalar(stmt.order_by(LoopRunRow.id).limit(1))


def add_loop_run(session: Session, *, name: str, state: str, trigger: dict[str, Any]) -> LoopRunRow:
    now = datetime.now(UTC)
    row = LoopRunRow(name=name, state=state, trigger=trigger, attempts=0, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def update_loop_run(session: Session, *, run_id: int, **values: Any) -> None:
    session.execute(
        update(LoopRunRow)
        .where(LoopRunRow.id == run_id)
        .values(updated_at=datetime.now(UTC), **values)
        .execution_options(synchronize_session=False)
    )


def get_loop_run(session: Session, *, run_id: int) -> LoopRunRow | None:
    return session.get(LoopRunRow, run_id)


def list_loop_runs(session: Session, *, name: str | None = None, limit: int = 50) -> list[LoopRunRow]:
    stmt = select(LoopRunRow)
    if name is not None:
        stmt = stmt.where(LoopRunRow.name == name)
    return list(session.scalars(stmt.order_by(LoopRunRow.id.desc()).limit(limit)))


# --- leases -------------------------------------------------------------------------------------------------


def try_acquire_lease(session: Session, *, name: str, holder: str, now: datetime, expires_at: datetime) -> bool:
    """Take ``name`` if it is free, expired, or already ours; True when we hold it now. One conditional UPDATE
    (or the first INSERT): of two racing takers exactly one matches."""
    taken = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, (LeaseRow.expires_at < now) | (LeaseRow.holder == holder))
        .values(holder=holder, acquired_at=now, expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:
        return True
    if session.get(LeaseRow, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(LeaseRow(name=name, holder=holder, acquired_at=now, expires_at=expires_at))
    except IntegrityError:  # another taker inserted it first
        return False
    return True


def renew_lease(session: Session, *, name: str, holder: str, expires_at: datetime) -> bool:
    """Extend our lease; False when it is no longer ours (it expired and was taken over)."""
    done = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder)
        .values(expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def release_lease(session: Session, *, name: str, holder: str, now: datetime) -> None:
    session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def get_lease(session: Session, *, name: str) -> LeaseRow | None:
    return session.get(LeaseRow, name)
