"""The store, on SQLite and (in CI) on a real PostgreSQL server: every test here runs on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from rewardkit.records import (
    Annotator,
    Comparison,
    FeedbackEvent,
    PairwiseJudgement,
    RankingJudgement,
    RatingsJudgement,
    Response,
)
from rewardkit.store import queries as q
from rewardkit.store import session_scope

HUMAN = Annotator("worker-1", "human")
JUDGE = Annotator("gpt-4-judge", "ai")


def pair(prompt: str, a: str, b: str, choice: str = "a", **kw) -> Comparison:
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement(choice),
        **{"annotator": HUMAN, "source": "unit", **kw},
    )


def test_add_is_idempotent_by_content(store) -> None:
    batch = [pair("p1", "x", "y"), pair("p2", "x", "y"), pair("p1", "x", "y")]  # the third repeats the first
    with session_scope(store) as s:
        assert q.add_comparisons(s, batch) == q.AddResult(inserted=2, duplicates=1)
    with session_scope(store) as s:
        assert q.add_comparisons(s, batch) == q.AddResult(inserted=0, duplicates=3)
        counts = q.table_counts(s)
    assert counts["comparisons"] == 2
    assert counts["prompts"] == 2
    assert counts["responses"] == 4  # responses are per prompt: the same text under two prompts is two rows
    assert counts["comparison_responses"] == 4


def test_client_event_id_makes_a_resend_store_nothing(store) -> None:
    first = pair("p", "x", "y", client_event_id="evt-1")
    resent = pair("p", "x", "y", "b", client_event_id="evt-1")  # same id, even with another verdict
    with session_scope(store) as s:
        assert q.add_comparisons(s, [first]).inserted == 1
        assert q.add_comparisons(s, [resent]) == q.AddResult(inserted=0, duplicates=1)
        [stored] = list(q.iter_comparisons(s))
    assert stored.comparison.judgement == PairwiseJudgement("a")


def test_round_trip_of_every_judgement_kind_and_context(store) -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    responses = (
        Response("r0", model_name="m", model_version="1", sampling={"temperature": 0.7}, metadata={"k": 1}),
        Response("r1"),
        Response("r2"),
    )
    comparisons = [
        Comparison(
            chat, responses[:2], PairwiseJudgement("tie", strength=0.0, margin=None), JUDGE, "s", created_at=created
        ),
        Comparison("rank me", responses, RankingJudgement((2, 0, 1)), HUMAN, "s", rationale="r2 is best"),
        Comparison(
            "rate me",
            responses,
            RatingsJudgement({"helpfulness": (5.0, 3.0, None), "overall": (4.0, 2.0, 1.0)}),
            JUDGE,
            "s",
            attribute="helpfulness",
        ),
    ]
    with session_scope(store) as s:
        q.add_comparisons(s, comparisons)
    with session_scope(store) as s:
        stored = {
            c.comparison.prompt if isinstance(c.comparison.prompt, str) else "chat": c.comparison
            for c in q.iter_comparisons(s)
        }
    assert stored["chat"] == comparisons[0]
    assert stored["chat"].created_at == created
    assert stored["rank me"].judgement == RankingJudgement((2, 0, 1))
    assert stored["rank me"].responses[0].sampling == {"temperature": 0.7}
    assert stored["rank me"].rationale == "r2 is best"
    assert stored["rate me"].judgement == comparisons[2].judgement


def test_filters(store) -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    batch = [
        pair("a", "x", "y", source="hh"),
        pair("b", "x", "y", source="alpaca", annotator=JUDGE),
        pair("c", "x", "y", source="hh", attribute="harmlessness", created_at=old),
    ]
    with session_scope(store) as s:
        q.add_comparisons(s, batch)
        n = lambda **kw: q.count_comparisons(s, q.ComparisonFilter(**kw))  # noqa: E731
        assert n() == 3
        assert n(sources=("hh",)) == 2
        assert n(annotator_kinds=("ai",)) == 1
        assert n(attributes=("harmlessness",)) == 1
        assert n(attributes=(None,)) == 2
        assert n(since=old + timedelta(days=1)) == 2
        assert n(until=old + timedelta(days=1)) == 1
        prompts = {
            c.comparison.prompt for c in q.iter_comparisons(s, q.ComparisonFilter(sources=("hh",)), batch_size=1)
        }
    assert prompts == {"a", "c"}


def test_streaming_reads_every_row_once_across_batches(store) -> None:
    with session_scope(store) as s:
        q.add_comparisons(s, [pair(f"p{i}", "x", "y") for i in range(25)])
        ids = [c.id for c in q.iter_comparisons(s, batch_size=7)]
    assert len(ids) == len(set(ids)) == 25


def test_failed_transaction_stores_nothing(store) -> None:
    with pytest.raises(RuntimeError):
        with session_scope(store) as s:
            q.add_comparisons(s, [pair("p", "x", "y")])
            raise RuntimeError("the importer found a bad record")
    with session_scope(store) as s:
        assert q.table_counts(s)["comparisons"] == 0


def test_feedback_events_are_idempotent(store) -> None:
    events = [
        FeedbackEvent("thumbs_up", "p", Response("good"), client_event_id="e1"),
        FeedbackEvent("regenerate", "p", Response("bad"), other_response=Response("new"), client_event_id="e2"),
    ]
    with session_scope(store) as s:
        assert q.add_feedback_events(s, events).inserted == 2
        assert q.add_feedback_events(s, events) == q.AddResult(inserted=0, duplicates=2)
        stored = sorted(q.iter_feedback_events(s), key=lambda e: e.client_event_id or "")
    assert [e.kind for e in stored] == ["thumbs_up", "regenerate"]
    assert stored[1].other_response == Response("new")


def test_import_audit_and_snapshot_registry(store) -> None:
    with session_scope(store) as s:
        import_id = q.start_import(s, format="trl", paths=["a.jsonl"])
        q.add_comparisons(s, [pair("p", "x", "y")], import_id=import_id)
        q.finish_import(s, import_id, status="done", counts={"imported": 1})
        q.record_snapshot(s, id="abc123", parent_id=None, path="/tmp/abc123", manifest={"counts": {"train": 1}})
        q.record_snapshot(s, id="abc123", parent_id=None, path="/tmp/abc123", manifest={"counts": {"train": 1}})
    with session_scope(store) as s:
        [imp] = q.list_imports(s)
        assert (imp.status, imp.counts, imp.paths) == ("done", {"imported": 1}, ["a.jsonl"])
        assert [r.id for r in q.list_snapshots(s)] == ["abc123"]
        assert q.get_snapshot(s, "abc").manifest == {"counts": {"train": 1}}
        assert q.get_snapshot(s, "zzz") is None


def test_migrations_match_the_tables(store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from rewardkit.store.tables import Base

    with store.kw["bind"].connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_is_configured_for_durability(tmp_path) -> None:
    from rewardkit.store import open_store

    factory = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with factory() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert s.execute(text("PRAGMA busy_timeout")).scalar() > 0
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
