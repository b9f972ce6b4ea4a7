"""The feedback write path on a real store (SQLite, and PostgreSQL in CI): items checked by the importers' parser,
idempotent on client_event_id, per-item results, conflicts, score ids cited instead of texts."""

from __future__ import annotations

import pytest

from rewardkit.data.importers.feedback import parse
from rewardkit.data.importers.options import ImportOptions
from rewardkit.feedback.batch import prepare, summary_status
from rewardkit.feedback.write import log_feedback
from rewardkit.records import Comparison, FeedbackEvent, RankingJudgement
from rewardkit.store import queries as q
from rewardkit.store import session_scope
from rewardkit.store.score_log import add_served_scores

PREF = {"prompt": "What is 2+2?", "responses": ["4", "5"], "choice": "a", "client_event_id": "ui-1"}
EVENT = {"type": "event", "kind": "thumbs_up", "prompt": "Hi", "response": "Hello!", "client_event_id": "ui-2"}


def test_parse_lays_the_context_into_the_records() -> None:
    item = {
        **PREF,
        "context": {
            "model_name": "m",
            "model_version": "v3",
            "sampling": {"temperature": 0.7},
            "request_id": "r1",
            "user_id": "u1",
            "created_at": "2026-12-01T10:00:00Z",
        },
    }
    c = parse(item, ImportOptions("feedback-api"))
    assert isinstance(c, Comparison)
    assert [r.model_version for r in c.responses] == ["v3", "v3"]
    assert c.responses[0].sampling == {"temperature": 0.7}
    assert c.metadata["context"] == {"request_id": "r1", "user_id": "u1"}
    assert c.created_at is not None and c.created_at.hour == 10
    e = parse({**EVENT, "context": {"user_id": "u9", "session_id": "s9", "model_version": "v3"}}, ImportOptions("x"))
    assert isinstance(e, FeedbackEvent) and (e.user_id, e.session_id) == ("u9", "s9")
    assert e.response.model_version == "v3"
    ranked = parse({"prompt": "p", "responses": ["a", "b", "c"], "ranking": [2, 0, 1]}, ImportOptions("x"))
    assert ranked.judgement == RankingJudgement((2, 0, 1))


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"prompt": "p", "responses": ["a"], "choice": "a"}, "responses"),
        ({"prompt": "p", "responses": ["a", "b"], "choice": "maybe"}, "judgement.choice"),
        ({"prompt": "p", "responses": ["a", "b", "c"], "choice": "a"}, "choice"),
        ({"prompt": "p", "responses": ["a", "b"], "choice": "a", "ranking": [0, 1]}, "choice"),
        ({"prompt": "p", "responses": ["a", "b"], "ranking": [0, 0]}, "judgement.order"),
        ({"responses": ["a", "b"], "choice": "a"}, "prompt"),
        ({"prompt": "p", "responses": ["a", "b"], "choice": "a", "context": {"colour": 1}}, "context.colour"),
        ({"prompt": "p", "responses": ["a", "b"], "choice": "a", "client_event_id": "x" * 201}, "client_event_id"),
        ({"type": "event", "kind": "smile", "prompt": "p", "response": "r"}, "kind"),
        ({"prompt": "p", "responses": ["a", "b"]}, "type"),
        ({"type": "preference", "prompt": "p", "responses": ["a", {"txt": "b"}], "choice": "a"}, "responses[1].text"),
    ],
)
def test_a_bad_item_names_its_field(item: dict, field: str) -> None:
    prepared = prepare([PREF, item])
    assert [r.status for r in prepared.results] == ["stored", "rejected"]
    bad = prepared.results[1]
    assert bad.field == field and bad.code == 422 and bad.error.startswith(f"item 1: field '{field}'")


def test_texts_over_the_limit_are_413_items() -> None:
    prepared = prepare([PREF, {**PREF, "responses": ["4", "x" * 101], "client_event_id": "big"}], max_chars=100)
    assert prepared.results[1].code == 413 and prepared.results[1].field == "responses[1]"
    assert summary_status(prepared.results) == 207


def test_store_is_idempotent_and_answers_a_retry_as_the_first_time(store_url: str) -> None:
    first = log_feedback([PREF, EVENT], database_url=store_url)
    assert first.status == 200 and first.stored == 2
    again = log_feedback([PREF, EVENT], database_url=store_url)
    assert again.to_json() == first.to_json()
    from rewardkit.store import open_store

    with session_scope(open_store(store_url)) as s:
        counts = q.table_counts(s)
    assert (counts["comparisons"], counts["feedback_events"]) == (1, 1)


def test_partial_batches_and_all_or_nothing(store_url: str) -> None:
    bad = {"prompt": "p", "responses": ["a", "b"], "choice": "nope", "client_event_id": "ui-3"}
    result = log_feedback([PREF, bad], database_url=store_url, all_or_nothing=True)
    assert result.status == 422 and result.stored == 0 and "item 1" in result.error
    from rewardkit.store import open_store

    factory = open_store(store_url)
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 0
    result = log_feedback([PREF, bad], factory=factory)
    assert result.status == 207 and [r.status for r in result.results] == ["stored", "rejected"]
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 1


def test_one_client_id_with_two_contents_is_a_conflict_and_stores_nothing(store_url: str) -> None:
    other = {**PREF, "choice": "b"}
    result = log_feedback([PREF, EVENT, other], database_url=store_url)
    assert result.status == 409 and "items 0 and 2" in result.error and result.stored == 0
    assert [r.status for r in result.results] == ["rejected", "not_stored", "rejected"]
    from rewardkit.store import open_store

    with session_scope(open_store(store_url)) as s:
        assert q.table_counts(s)["comparisons"] == 0


def test_score_ids_stand_for_the_texts_served(store_url: str) -> None:
    from datetime import UTC, datetime

    from rewardkit.store import open_store

    factory = open_store(store_url)
    logged = [
        {
            "id": f"s{i}",
            "created_at": datetime.now(UTC),
            "model_version": "v1",
            "route": "/v1/score",
            "prompt": [{"role": "user", "content": "Hi"}],
            "response": text,
            "score": 0.1 * i,
        }
        for i, text in enumerate(["Hello!", "Go away."])
    ]
    with session_scope(factory) as s:
        add_served_scores(s, logged)
    items = [
        {"score_ids": ["s0", "s1"], "choice": "a", "client_event_id": "c1"},
        {"type": "event", "kind": "thumbs_down", "score_id": "s1", "client_event_id": "c2"},
        {"score_ids": ["s0", "nope"], "choice": "a"},
    ]
    result = log_feedback(items, factory=factory)
    assert [r.status for r in result.results] == ["stored", "stored", "rejected"]
    assert result.results[2].field == "score_ids[1]" and "no logged score 'nope'" in result.results[2].error
    with session_scope(factory) as s:
        (stored,) = [c.comparison for c in q.iter_comparisons(s)]
        (event,) = list(q.iter_feedback_events(s))
    assert stored.prompt == [{"role": "user", "content": "Hi"}]
    assert [r.text for r in stored.responses] == ["Hello!", "Go away."]
    assert stored.metadata["context"]["score_ids"] == ["s0", "s1"]
    assert event.response.text == "Go away."


def test_import_feedback_format_reads_the_same_items(tmp_path, store_url: str) -> None:
    import json

    from rewardkit.data.importers.run import ImportConfig, run_import
    from rewardkit.store import open_store

    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in [PREF, EVENT]))
    factory = open_store(store_url)
    result = run_import(factory, ImportConfig("feedback", (path,)))
    assert result.counts.imported == 2
    assert log_feedback([PREF, EVENT], factory=factory).status == 200  # already there: same answer, no new rows
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 1
