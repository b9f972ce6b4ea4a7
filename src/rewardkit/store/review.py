"""Query functions for the human review queue (tables ``review_*``, migration 0003).

The queue hands out *slots*: an item that needs k labels has slots 0..k-1, and an annotator holds one until
``expires_at`` or fills it with a label. The slot is the assignment table's primary key, so two annotators
can never hold the same one, however many fetch at once (a claim is an ``INSERT .. ON CONFLICT DO NOTHING``
or a conditional ``UPDATE`` of an expired, unfilled slot, and its row count says who won). An item is done
when all k slots are filled; a label for an item is refused unless the annotator holds an unfilled slot of it.

Each label (not a skip, not a gold item's) becomes a ``Comparison`` through ``queries.add_comparisons`` in the
same transaction: annotator kind human, source "review", the swap and the seconds spent in its metadata, so
``rewardkit dataset build`` picks it up like any other. Undo deletes both.

Plain functions over a Session, keyword-only; the caller owns the transaction. SQLite note: reads before a
transaction's first write run outside it (pysqlite's legacy mode), so a claim never upgrades a read lock to a
write lock (which would fail at once under concurrent writers instead of waiting on the busy timeout).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Prompt, Response, content_hash
from rewardkit.store.queries import add_comparisons, aware
from rewardkit.store.tables import (
    ComparisonResponseRow,
    ComparisonRow,
    ReviewAnnotatorRow,
    ReviewAssignmentRow,
    ReviewItemRow,
    ReviewLabelRow,
)

CHOICES: tuple[str, ...] = ("a", "b", "tie", "both_bad", "skip")
_CANDIDATES = 32  # open items looked at per claim; only items held by others (not done) are passed over


def _update(model: Any) -> Any:
    # plain SQL updates: the rows are re-read where needed, so the ORM need not evaluate the WHERE in Python
    # (it cannot compare SQLite's naive datetimes with aware ones)
    return update(model).execution_options(synchronize_session=False)


def _delete(model: Any) -> Any:
    return delete(model).execution_options(synchronize_session=False)


class ReviewError(ValueError):
    """A request the queue refuses (unknown item, not yours, labelled already); nothing was changed."""


@dataclass(frozen=True)
class NewItem:
    prompt: Prompt
    responses: tuple[dict[str, Any], ...]  # {"text", "model_name"?, "model_version"?}, position 0 = 'a'
    origin: dict[str, Any]
    reason: str
    priority: float = 0.0
    needed: int = 1
    gold_choice: str | None = None  # a known answer, in this response order
    dedupe_key: str | None = None  # default: the prompt and the set of response texts

    def key(self) -> str:
        if self.dedupe_key:
            return self.dedupe_key
        texts = sorted(r["text"] for r in self.responses)  # the same pair shown either way round is one item
        return content_hash({"prompt": self.prompt, "responses": texts, "gold": self.gold_choice is not None})


@dataclass(frozen=True)
class Assignment:
    item: ReviewItemRow
    slot: int
    swap: bool
    assigned_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SavedLabel:
    label_id: int
    item_id: int
    choice: str  # stored order (the swap undone)
    comparison_id: str | None
    item_done: bool
    gold_correct: bool | None = None


@dataclass
class QueueStats:
    by_reason: dict[str, dict[str, int]] = field(default_factory=dict)  # reason -> status -> count
    labels_total: int = 0
    labels_last_hour: int = 0
    per_hour: list[tuple[str, int]] = field(default_factory=list)  # (hour, labels), last 24 hours with labels
    annotators: list[dict[str, Any]] = field(default_factory=list)


def _insert_ignore(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    # the Core table, not the mapped class: the ORM insert path does not report a row count on every driver
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ReviewAssignmentRow.__table__)


# --- items -----------------------------------------------------------------------------------------------


def enqueue(session: Session, items: Sequence[NewItem], *, now: datetime) -> tuple[int, int]:
    """Queue items; those whose dedupe key is queued already (or repeated in ``items``) are skipped. Returns
    (inserted, duplicates)."""
    by_key: dict[str, NewItem] = {}
    for item in items:
        by_key.setdefault(item.key(), item)
    keys = list(by_key)
    stored: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        stored.update(session.scalars(select(ReviewItemRow.dedupe_key).where(ReviewItemRow.dedupe_key.in_(chunk))))
    rows = [
        {
            "dedupe_key": key,
            "prompt": it.prompt,
            "responses": [dict(r) for r in it.responses],
            "origin": it.origin,
            "reason": it.reason,
            "priority": float(it.priority),
            "status": "open",
            "needed": int(it.needed),
            "labels": 0,
            "gold_choice": it.gold_choice,
            "created_at": now,
        }
        for key, it in by_key.items()
        if key not in stored
    ]
    for start in range(0, len(rows), 5000):
        session.execute(ReviewItemRow.__table__.insert(), rows[start : start + 5000])
    return len(rows), len(items) - len(rows)


def get_item(session: Session, item_id: int) -> ReviewItemRow | None:
    return session.get(ReviewItemRow, item_id)


def iter_items(session: Session, *, status: str | None = None, batch_size: int = 1000) -> Any:
    """Items in id order (non-gold), streamed."""
    last = 0
    while True:
        stmt = select(ReviewItemRow).where(ReviewItemRow.id > last, ReviewItemRow.gold_choice.is_(None))
        if status:
            stmt = stmt.where(ReviewItemRow.status == status)
        rows = list(session.scalars(stmt.order_by(ReviewItemRow.id).limit(batch_size)))
        if not rows:
            return
        yield from rows
        last = rows[-1].id


# --- annotators ------------------------------------------------------------------------------------------


def put_annotator(session: Session, *, name: str, token_hash: str, admin: bool, expires_at: datetime) -> None:
    """Add an annotator, or give an existing one a new token (the old one stops working)."""
    row = session.get(ReviewAnnotatorRow, name)
    if row is None:
        session.add(
            ReviewAnnotatorRow(
                name=name, token_hash=token_hash, admin=admin, created_at=datetime.now(UTC), expires_at=expires_at
            )
        )
    else:
        row.token_hash, row.admin, row.expires_at = token_hash, admin, expires_at


def annotator_by_token_hash(session: Session, token_hash: str) -> ReviewAnnotatorRow | None:
    return session.scalar(select(ReviewAnnotatorRow).where(ReviewAnnotatorRow.token_hash == token_hash))


def list_annotators(session: Session) -> list[ReviewAnnotatorRow]:
    return list(session.scalars(select(ReviewAnnotatorRow).order_by(ReviewAnnotatorRow.name)))


# --- claiming a slot -------------------------------------------------------------------------------------


def _held(session: Session, annotator: str) -> ReviewAssignmentRow | None:
    return session.scalar(
        select(ReviewAssignmentRow)
        .where(ReviewAssignmentRow.annotator == annotator, ReviewAssignmentRow.label_id.is_(None))
        .order_by(ReviewAssignmentRow.assigned_at)
        .limit(1)
    )


def _try_slot(
    session: Session, item_id: int, slot: int, annotator: str, swap: bool, now: datetime, ttl: timedelta
) -> bool:
    values = {
        "item_id": item_id,
        "slot": slot,
        "annotator": annotator,
        "swap": swap,
        "assigned_at": now,
        "expires_at": now + ttl,
        "label_id": None,
    }
    # RETURNING says whether the row went in (psycopg reports no row count for ON CONFLICT DO NOTHING here)
    stmt = _insert_ignore(session).values(values).on_conflict_do_nothing()
    return session.execute(stmt.returning(ReviewAssignmentRow.__table__.c.slot)).first() is not None


def _take_over(
    session: Session, item_id: int, slot: int, annotator: str, swap: bool, now: datetime, ttl: timedelta
) -> bool:
    """An abandoned slot (expired, unfilled) goes to the next annotator who asks."""
    stmt = (
        _update(ReviewAssignmentRow)
        .where(
            ReviewAssignmentRow.item_id == item_id,
            ReviewAssignmentRow.slot == slot,
            ReviewAssignmentRow.label_id.is_(None),
            ReviewAssignmentRow.expires_at < now,
        )
        .values(annotator=annotator, swap=swap, assigned_at=now, expires_at=now + ttl)
    )
    return session.execute(stmt).rowcount == 1


def _not_mine(annotator: str) -> Any:
    mine_a = select(ReviewAssignmentRow.item_id).where(
        ReviewAssignmentRow.item_id == ReviewItemRow.id, ReviewAssignmentRow.annotator == annotator
    )
    mine_l = select(ReviewLabelRow.id).where(
        ReviewLabelRow.item_id == ReviewItemRow.id, ReviewLabelRow.annotator == annotator
    )
    return ~mine_a.exists() & ~mine_l.exists()


def _claim_gold(session: Session, annotator: str, swap: bool, now: datetime, ttl: timedelta) -> tuple[int, int] | None:
    item_id = session.scalar(
        select(ReviewItemRow.id)
        .where(ReviewItemRow.gold_choice.is_not(None), _not_mine(annotator))
        .order_by(func.random())
        .limit(1)
    )
    if item_id is None:
        return None
    for _ in range(5):  # gold items have a slot per annotator: the next free number
        top = session.scalar(select(func.max(ReviewAssignmentRow.slot)).where(ReviewAssignmentRow.item_id == item_id))
        slot = (top if top is not None else -1) + 1
        if _try_slot(session, item_id, slot, annotator, swap, now, ttl):
            return item_id, slot
    return None


def _claim_open(
    session: Session, annotator: str, swap: bool, now: datetime, ttl: timedelta, only: int | None = None
) -> tuple[int, int] | None:
    stmt = select(ReviewItemRow.id, ReviewItemRow.needed).where(
        ReviewItemRow.status == "open", ReviewItemRow.gold_choice.is_(None), _not_mine(annotator)
    )
    if only is not None:
        stmt = stmt.where(ReviewItemRow.id == only)
    # priority first; among equals the newest first (the index is walked backwards: no sort of the queue)
    candidates = session.execute(
        stmt.order_by(ReviewItemRow.status.desc(), ReviewItemRow.priority.desc(), ReviewItemRow.id.desc()).limit(
            _CANDIDATES
        )
    ).all()
    if not candidates:
        return None
    slots: dict[int, dict[int, ReviewAssignmentRow]] = {}
    for row in session.scalars(
        select(ReviewAssignmentRow).where(ReviewAssignmentRow.item_id.in_([c.id for c in candidates]))
    ):
        slots.setdefault(row.item_id, {})[row.slot] = row
    for item_id, needed in candidates:
        taken = slots.get(item_id, {})
        for slot in range(needed):
            held = taken.get(slot)
            if held is None and _try_slot(session, item_id, slot, annotator, swap, now, ttl):
                return item_id, slot
            if held is not None and held.label_id is None and aware(held.expires_at) < now:
                if _take_over(session, item_id, slot, annotator, swap, now, ttl):
                    return item_id, slot
    return None


def next_assignment(
    session: Session,
    *,
    annotator: str,
    now: datetime,
    ttl: timedelta,
    gold: bool = False,
    swap: bool = False,
) -> Assignment | None:
    """The annotator's current item: the slot they already hold (renewed), else a newly claimed one (a gold item
    when ``gold`` and one is left for them, else the highest-priority open item they have not seen), or None
    when nothing is left for them. ``swap``: whether a new assignment shows response b on the left."""
    held = _held(session, annotator)
    if held is not None:
        session.execute(
            _update(ReviewAssignmentRow)
            .where(ReviewAssignmentRow.item_id == held.item_id, ReviewAssignmentRow.slot == held.slot)
            .values(expires_at=now + ttl)
        )
        claimed: tuple[int, int] | None = (held.item_id, held.slot)
        swap, assigned_at = held.swap, aware(held.assigned_at)
    else:
        claimed = _claim_gold(session, annotator, swap, now, ttl) if gold else None
        if claimed is None:
            claimed = _claim_open(session, annotator, swap, now, ttl)
        if claimed is None and not gold:
            claimed = _claim_gold(session, annotator, swap, now, ttl)  # only gold left: still worth doing
        if claimed is None:
            return None
        assigned_at = now
    item = session.get(ReviewItemRow, claimed[0])
    assert item is not None  # claimed in this transaction
    return Assignment(item, claimed[1], swap, assigned_at, now + ttl)


# --- labels ----------------------------------------------------------------------------------------------


def unswap(choice: str, swap: bool) -> str:
    """The page's choice (a = left) -> the stored order's (a = response 0)."""
    if swap and choice in ("a", "b"):
        return "b" if choice == "a" else "a"
    return choice


def _comparison(item: ReviewItemRow, label: ReviewLabelRow, choice: str, seconds: float) -> Comparison:
    return Comparison(
        prompt=item.prompt,
        responses=tuple(
            Response(r["text"], r.get("model_name", ""), r.get("model_version", "")) for r in item.responses
        ),
        judgement=PairwiseJudgement(choice),  # type: ignore[arg-type]
        annotator=Annotator(label.annotator, "human"),
        source="review",
        attribute=label.attribute,
        rationale=label.rationale,
        created_at=aware(label.created_at),
        client_event_id=f"review:{secrets.token_hex(12)}",
        metadata={
            "review_item_id": item.id,
            "swap": label.swap,
            "seconds": round(seconds, 3),
            "reason": item.reason,
            "origin": item.origin,
        },
    )


def save_label(
    session: Session,
    *,
    annotator: str,
    item_id: int,
    shown_choice: str,
    now: datetime,
    rationale: str | None = None,
    attribute: str | None = None,
) -> SavedLabel:
    """Record the annotator's verdict on an item they hold. ``shown_choice`` is as the page showed it (a = left):
    the swap is undone here. Raises ReviewError, changing nothing, for an unknown choice or item, an item the
    annotator does not hold, or one they labelled already."""
    if shown_choice not in CHOICES:
        raise ReviewError(f"field 'choice': expected one of {', '.join(CHOICES)}, got {shown_choice!r}")
    item = session.get(ReviewItemRow, item_id)
    if item is None:
        raise ReviewError(f"no review item {item_id}")
    # one read decides: a filled slot of theirs = labelled already; none at all = not theirs (never claimed,
    # taken over after expiry, or skipped)
    held = session.scalar(
        select(ReviewAssignmentRow).where(
            ReviewAssignmentRow.item_id == item_id, ReviewAssignmentRow.annotator == annotator
        )
    )
    if held is not None and held.label_id is not None:
        raise ReviewError(f"item {item_id} is labelled by you already (undo it first to change the label)")
    if held is None:
        if session.scalar(
            select(ReviewLabelRow.id).where(ReviewLabelRow.item_id == item_id, ReviewLabelRow.annotator == annotator)
        ):
            raise ReviewError(f"item {item_id} is labelled by you already (undo it first to change the label)")
        raise ReviewError(f"item {item_id} is not assigned to you (it may have expired and gone to someone else)")
    choice = unswap(shown_choice, held.swap)
    seconds = max(0.0, (now - aware(held.assigned_at)).total_seconds())
    label = ReviewLabelRow(
        item_id=item_id,
        annotator=annotator,
        choice=choice,
        swap=held.swap,
        seconds=seconds,
        rationale=(rationale or "").strip() or None,
        attribute=(attribute or "").strip() or None,
        created_at=now,
    )
    if choice == "skip":  # the slot goes back to the queue; the label keeps the item away from this annotator
        session.add(label)
        session.flush()
        session.execute(
            _delete(ReviewAssignmentRow).where(
                ReviewAssignmentRow.item_id == item_id, ReviewAssignmentRow.slot == held.slot
            )
        )
        return SavedLabel(label.id, item_id, choice, None, item.status == "done")
    gold = item.gold_choice is not None
    if not gold:
        comparison = _comparison(item, label, choice, seconds)
        add_comparisons(session, [comparison])
        label.comparison_id = comparison.dedupe_key
    session.add(label)
    session.flush()
    filled = session.execute(
        _update(ReviewAssignmentRow)
        .where(
            ReviewAssignmentRow.item_id == item_id,
            ReviewAssignmentRow.slot == held.slot,
            ReviewAssignmentRow.annotator == annotator,
            ReviewAssignmentRow.label_id.is_(None),
        )
        .values(label_id=label.id)
    ).rowcount
    if filled != 1:  # taken over between our read and this write
        raise ReviewError(f"item {item_id} is not assigned to you (it expired and went to someone else)")
    # the count and the status in one statement: concurrent labels of one item add up in SQL, not in Python
    complete = (ReviewItemRow.labels + 1 >= ReviewItemRow.needed) & ReviewItemRow.gold_choice.is_(None)
    session.execute(
        _update(ReviewItemRow)
        .where(ReviewItemRow.id == item_id)
        .values(labels=ReviewItemRow.labels + 1, status=case((complete, "done"), else_=ReviewItemRow.status))
    )
    gold_correct = choice == item.gold_choice if gold else None
    done = not gold and item.labels + 1 >= item.needed
    return SavedLabel(label.id, item_id, choice, label.comparison_id, done, gold_correct)


def undo_last(session: Session, *, annotator: str, now: datetime, ttl: timedelta) -> int | None:
    """Take back the annotator's most recent label: its comparison is deleted, the item reopened, and the slot
    is theirs again (so the page shows the item once more). Returns the item id, or None with nothing to undo."""
    label = session.scalar(
        select(ReviewLabelRow).where(ReviewLabelRow.annotator == annotator).order_by(ReviewLabelRow.id.desc()).limit(1)
    )
    if label is None:
        return None
    item = session.get(ReviewItemRow, label.item_id)
    assert item is not None  # labels cascade with their item
    if label.comparison_id:
        session.execute(
            _delete(ComparisonResponseRow).where(ComparisonResponseRow.comparison_id == label.comparison_id)
        )
        session.execute(_delete(ComparisonRow).where(ComparisonRow.id == label.comparison_id))
    held_any = _held(session, annotator)
    if label.choice == "skip":
        session.execute(_delete(ReviewLabelRow).where(ReviewLabelRow.id == label.id))
        if held_any is None:
            _claim_gold(session, annotator, label.swap, now, ttl) if item.gold_choice else _claim_open(
                session, annotator, label.swap, now, ttl, only=item.id
            )
        return item.id
    session.execute(
        _update(ReviewAssignmentRow)
        .where(ReviewAssignmentRow.item_id == item.id, ReviewAssignmentRow.label_id == label.id)
        .values(label_id=None, expires_at=now + ttl)
    )
    if held_any is not None:  # they hold another item now: release it, the undone one comes first
        session.execute(
            _delete(ReviewAssignmentRow).where(
                ReviewAssignmentRow.item_id == held_any.item_id, ReviewAssignmentRow.slot == held_any.slot
            )
        )
    session.execute(_delete(ReviewLabelRow).where(ReviewLabelRow.id == label.id))
    session.execute(
        _update(ReviewItemRow).where(ReviewItemRow.id == item.id).values(labels=ReviewItemRow.labels - 1, status="open")
    )
    return item.id


def release_expired(session: Session, *, now: datetime) -> int:
    """Delete abandoned assignments (expired, unfilled): optional housekeeping, claims take them over anyway."""
    return session.execute(
        _delete(ReviewAssignmentRow).where(ReviewAssignmentRow.label_id.is_(None), ReviewAssignmentRow.expires_at < now)
    ).rowcount


# --- reading labels back -----------------------------------------------------------------------------------


def item_labels(session: Session, *, include_gold: bool = False) -> list[tuple[int, str, str]]:
    """(item id, annotator, choice) of every label but skips, for agreement."""
    stmt = (
        select(ReviewLabelRow.item_id, ReviewLabelRow.annotator, ReviewLabelRow.choice)
        .join(ReviewItemRow, ReviewItemRow.id == ReviewLabelRow.item_id)
        .where(ReviewLabelRow.choice != "skip")
        .order_by(ReviewLabelRow.item_id, ReviewLabelRow.id)
    )
    if not include_gold:
        stmt = stmt.where(ReviewItemRow.gold_choice.is_(None))
    return [(r[0], r[1], r[2]) for r in session.execute(stmt)]


def annotator_progress(session: Session, annotator: str) -> dict[str, Any]:
    labelled, seconds = session.execute(
        select(func.count(), func.coalesce(func.sum(ReviewLabelRow.seconds), 0.0)).where(
            ReviewLabelRow.annotator == annotator, ReviewLabelRow.choice != "skip"
        )
    ).one()
    open_items = session.scalar(
        select(func.count())
        .select_from(ReviewItemRow)
        .where(ReviewItemRow.status == "open", ReviewItemRow.gold_choice.is_(None))
    )
    return {"labelled": int(labelled), "seconds": float(seconds), "open": int(open_items or 0)}


def queue_stats(session: Session, *, now: datetime) -> QueueStats:
    stats = QueueStats()
    for reason, status, n in session.execute(
        select(ReviewItemRow.reason, ReviewItemRow.status, func.count()).group_by(
            ReviewItemRow.reason, ReviewItemRow.status
        )
    ):
        stats.by_reason.setdefault(reason, {})[status] = int(n)
    real = ReviewLabelRow.choice != "skip"
    stats.labels_total = int(session.scalar(select(func.count()).select_from(ReviewLabelRow).where(real)) or 0)
    stats.labels_last_hour = int(
        session.scalar(
            select(func.count())
            .select_from(ReviewLabelRow)
            .where(real, ReviewLabelRow.created_at >= now - timedelta(hours=1))
        )
        or 0
    )
    hours: dict[str, int] = {}
    for (created,) in session.execute(
        select(ReviewLabelRow.created_at).where(real, ReviewLabelRow.created_at >= now - timedelta(hours=24))
    ):
        key = aware(created).strftime("%Y-%m-%d %H:00")
        hours[key] = hours.get(key, 0) + 1
    stats.per_hour = sorted(hours.items())
    per: dict[str, dict[str, Any]] = {}
    for name, choice, seconds, gold in session.execute(
        select(ReviewLabelRow.annotator, ReviewLabelRow.choice, ReviewLabelRow.seconds, ReviewItemRow.gold_choice).join(
            ReviewItemRow, ReviewItemRow.id == ReviewLabelRow.item_id
        )
    ):
        row = per.setdefault(
            name, {"annotator": name, "labels": 0, "skips": 0, "seconds": [], "gold": 0, "gold_correct": 0}
        )
        if choice == "skip":
            row["skips"] += 1
            continue
        row["labels"] += 1
        row["seconds"].append(float(seconds))
        if gold is not None:
            row["gold"] += 1
            row["gold_correct"] += int(choice == gold)
    for row in per.values():
        times = sorted(row.pop("seconds"))
        row["median_seconds"] = times[len(times) // 2] if times else None
        row["gold_accuracy"] = row["gold_correct"] / row["gold"] if row["gold"] else None
    stats.annotators = sorted(per.values(), key=lambda r: r["annotator"])
    return stats


def requeue_disagreements(session: Session, *, now: datetime, needed: int = 1, priority: float = 100.0) -> int:
    """Queue an adjudication item for every done item whose labels disagree (once per item). Returns how many."""
    votes: dict[int, set[str]] = {}
    for item_id, _, choice in item_labels(session):
        votes.setdefault(item_id, set()).add(choice)
    disputed = [i for i, choices in votes.items() if len(choices) > 1]
    items = []
    for start in range(0, len(disputed), 500):
        for row in session.scalars(
            select(ReviewItemRow).where(
                ReviewItemRow.id.in_(disputed[start : start + 500]), ReviewItemRow.status == "done"
            )
        ):
            if row.reason == "adjudication":
                continue
            items.append(
                NewItem(
                    prompt=row.prompt,
                    responses=tuple(row.responses),
                    origin={"kind": "adjudication", "item_id": row.id},
                    reason="adjudication",
                    priority=priority,
                    needed=needed,
                    dedupe_key=content_hash({"adjudication": row.id}),
                )
            )
    return enqueue(session, items, now=now)[0]
