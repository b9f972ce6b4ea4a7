"""The review queue in the store (SQLite and PostgreSQL): dedup, slots, expiry, labels to comparisons, undo,
skip, gold, adjudication, and refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rewardkit.store import session_scope
from rewardkit.store.queries import ComparisonFilter, iter_comparisons
from rewardkit.store.review import (
    NewItem,
    ReviewError,
    enqueue,
    item_labels,
    next_assignment,
    queue_stats,
    requeue_disagreements,
    save_label,
    undo_last,
)
from rewardkit.store.tables import ComparisonRow, ReviewAssignmentRow, ReviewItemRow, ReviewLabelRow

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)


def item(prompt: str, a: str = "yes", b: str = "no", *, needed: int = 1, priority: float = 0.0, **kw) -> NewItem:
    return NewItem(prompt, ({"text": a}, {"text": b}), {"kind": "file"}, "random", priority, needed, **kw)


def fetch(store, who: str, now: datetime = T0, **kw):
    with session_scope(store) as s:
        return next_assignment(s, annotator=who, now=now, ttl=TTL, **kw)


def label(store, who: str, item_id: int, choice: str, now: datetime = T0 + timedelta(seconds=7), **kw):
    with session_scope(store) as s:
        return save_label(s, annotator=who, item_id=item_id, shown_choice=choice, now=now, **kw)


def counts(store) -> tuple[int, int, int]:
    with store() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) for t in (ReviewLabelRow, ComparisonRow, ReviewAssignmentRow)
        )


def test_identical_items_are_queued_once(store) -> None:
    with session_scope(store) as s:
        assert enqueue(s, [item("p"), item("p", "no", "yes"), item("q")], now=T0) == (2, 1)
        assert enqueue(s, [item("p")], now=T0) == (0, 1)
        assert enqueue(s, [item("p", gold_choice="a")], now=T0) == (1, 0)  # a gold copy is its own item


def test_highest_priority_first_and_k_slots_never_shared(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("low", priority=0.1, needed=2), item("high", priority=0.9, needed=2)], now=T0)
    x, y, z = fetch(store, "x"), fetch(store, "y"), fetch(store, "z")
    assert (x.item.prompt, y.item.prompt, z.item.prompt) == ("high", "high", "low")
    assert {x.slot, y.slot} == {0, 1}
    assert fetch(store, "x").item.id == x.item.id  # asking again returns what you hold
    w = fetch(store, "w")
    assert w.item.prompt == "low"  # 'high' has both slots held
    assert fetch(store, "v") is None  # every slot of every item is held


def test_abandoned_assignment_returns_to_the_queue(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p")], now=T0)
    held = fetch(store, "x")
    assert fetch(store, "y", now=T0 + TTL - timedelta(seconds=1)) is None
    later = T0 + TTL + timedelta(seconds=1)
    taken = fetch(store, "y", now=later)
    assert taken.item.id == held.item.id
    before = counts(store)
    with pytest.raises(ReviewError, match="not assigned to you"):
        label(store, "x", held.item.id, "a", now=later)
    assert counts(store) == before
    label(store, "y", held.item.id, "a", now=later)


def test_a_label_becomes_a_comparison_with_the_swap_undone(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p", "first", "second", needed=2)], now=T0)
    a = fetch(store, "x", swap=True)
    assert a.swap
    saved = label(store, "x", a.item.id, "a", rationale=" left reads better ", now=T0 + timedelta(seconds=12))
    assert saved.choice == "b"  # the page showed response b on the left
    [stored] = list(iter_comparisons(store(), ComparisonFilter(sources=("review",))))
    c = stored.comparison
    assert [r.text for r in c.responses] == ["first", "second"]
    assert c.judgement.choice == "b"
    assert (c.annotator.id, c.annotator.kind, c.rationale) == ("x", "human", "left reads better")
    assert c.metadata["swap"] is True and c.metadata["seconds"] == 12.0 and c.metadata["review_item_id"] == a.item.id


def test_item_leaves_the_queue_with_k_labels(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p", needed=2)], now=T0)
    for who in ("x", "y"):
        a = fetch(store, who)
        done = label(store, who, a.item.id, "b").item_done
    assert done
    assert fetch(store, "z") is None
    with store() as s:
        assert s.scalar(select(ReviewItemRow.status)) == "done"
        assert s.scalar(select(ReviewItemRow.labels)) == 2


def test_bad_labels_are_refused_and_change_nothing(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p"), item("q")], now=T0)
    a = fetch(store, "x")
    other = 3 - a.item.id  # the item x does not hold
    label(store, "x", a.item.id, "tie")
    before = counts(store)
    with pytest.raises(ReviewError, match="labelled by you already"):
        label(store, "x", a.item.id, "a")
    with pytest.raises(ReviewError, match="not assigned to you"):
        label(store, "x", other, "a")
    with pytest.raises(ReviewError, match="no review item 999"):
        label(store, "x", 999, "a")
    with pytest.raises(ReviewError, match="field 'choice'"):
        label(store, "x", a.item.id, "c")
    assert counts(store) == before


def test_undo_deletes_the_comparison_and_gives_the_item_back(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p", priority=1), item("q")], now=T0)
    a = fetch(store, "x")
    label(store, "x", a.item.id, "a")
    b = fetch(store, "x")
    assert b.item.id != a.item.id
    with session_scope(store) as s:
        assert undo_last(s, annotator="x", now=T0, ttl=TTL) == a.item.id
    assert counts(store)[:2] == (0, 0)
    again = fetch(store, "x")
    assert again.item.id == a.item.id and again.slot == a.slot
    with store() as s:
        assert s.get(ReviewItemRow, a.item.id).status == "open"
    label(store, "x", a.item.id, "b")
    with session_scope(store) as s:
        undo_last(s, annotator="x", now=T0, ttl=TTL)
        undo_last(s, annotator="x", now=T0, ttl=TTL)  # only one label existed: the second finds nothing
        assert undo_last(s, annotator="x", now=T0, ttl=TTL) is None


def test_skip_frees_the_slot_for_someone_else(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p")], now=T0)
    a = fetch(store, "x")
    saved = label(store, "x", a.item.id, "skip")
    assert saved.comparison_id is None
    assert fetch(store, "x") is None  # not shown to x again
    assert fetch(store, "y").item.id == a.item.id


def test_gold_items_score_annotators_and_make_no_comparison(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("g", "right", "wrong", gold_choice="a"), item("p")], now=T0)
    for who, shown in (("x", "a"), ("y", "b")):
        g = fetch(store, who, gold=True, swap=False)
        assert g.item.gold_choice == "a"
        assert label(store, who, g.item.id, shown).gold_correct is (shown == "a")
    assert counts(store)[1] == 0
    with store() as s:
        stats = queue_stats(s, now=T0 + timedelta(minutes=1))
        acc = {a["annotator"]: a["gold_accuracy"] for a in stats.annotators}
        assert acc == {"x": 1.0, "y": 0.0}
        assert item_labels(s) == []  # gold labels stay out of agreement


def test_disagreements_are_requeued_once(store) -> None:
    with session_scope(store) as s:
        enqueue(s, [item("p", needed=2), item("q", needed=2)], now=T0)
    for who, choices in (("x", {"p": "a", "q": "a"}), ("y", {"p": "b", "q": "a"})):
        for _ in range(2):
            a = fetch(store, who)
            label(store, who, a.item.id, choices[a.item.prompt])
    with session_scope(store) as s:
        assert requeue_disagreements(s, now=T0) == 1
        assert requeue_disagreements(s, now=T0) == 0
    adj = fetch(store, "z")
    assert (adj.item.prompt, adj.item.reason, adj.item.origin["kind"]) == ("p", "adjudication", "adjudication")
