"""Implicit feedback: each documented rule makes exactly the comparisons worked out by hand, with its
strength; events and conversions are idempotent; ``rewardkit import events`` / ``convert-events`` work."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.data.implicit import STRENGTH, comparisons_from_events, convert_stored_events
from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.run import ImportConfig, run_import
from rewardkit.records import FeedbackEvent, Response
from rewardkit.store.queries import iter_comparisons, table_counts

FIXTURES = Path(__file__).parent / "fixtures"


def _ev(
    kind: str, prompt: str, text: str, other: str | None = None, session: str | None = None, cid: str | None = None
) -> FeedbackEvent:
    return FeedbackEvent(
        kind, prompt, Response(text), Response(other) if other else None, session_id=session, client_event_id=cid
    )  # type: ignore[arg-type]


def _summary(events: list[FeedbackEvent]) -> set[tuple[str, str, str, float]]:
    """(rule, preferred text, other text, strength) of every comparison made."""
    out = set()
    for c in comparisons_from_events(events):
        assert c.annotator.kind == "implicit" and c.judgement.choice == "a"
        out.add((c.metadata["rule"], c.responses[0].text, c.responses[1].text, c.judgement.strength))
    return out


def test_thumbs_up_over_thumbs_down_on_the_same_prompt() -> None:
    events = [
        _ev("thumbs_up", "p", "good"),
        _ev("thumbs_down", "p", "bad"),
        _ev("thumbs_down", "p", "worse"),
        _ev("thumbs_down", "other prompt", "x"),
    ]
    assert _summary(events) == {("thumbs", "good", "bad", 0.8), ("thumbs", "good", "worse", 0.8)}


def test_a_lone_thumb_or_contradicting_thumbs_make_nothing() -> None:
    assert _summary([_ev("thumbs_up", "p", "good")]) == set()
    assert _summary([_ev("thumbs_up", "p", "same"), _ev("thumbs_down", "p", "same")]) == set()


def test_edit_prefers_the_edited_text() -> None:
    assert _summary([_ev("edit", "p", "teh cat", other="the cat")]) == {("edit", "the cat", "teh cat", 0.9)}


def test_regenerate_is_a_weak_preference_against_the_replaced_response() -> None:
    assert _summary([_ev("regenerate", "p", "old", other="new")]) == {("regenerate", "new", "old", 0.3)}


def test_copy_prefers_the_copied_response_over_its_session_siblings() -> None:
    events = [
        _ev("regenerate", "p", "first", other="second", session="s"),
        _ev("thumbs_down", "p", "third", session="s"),
        _ev("copy", "p", "second", session="s"),
        _ev("thumbs_up", "p", "elsewhere", session="t"),  # another session: not a sibling
    ]
    got = {row for row in _summary(events) if row[0] == "copy"}
    assert got == {("copy", "second", "first", 0.5), ("copy", "second", "third", 0.5)}
    assert _summary([_ev("copy", "p", "alone")]) == set()  # no session, no siblings


def test_strengths_are_ordered_as_documented() -> None:
    assert STRENGTH["edit"] > STRENGTH["thumbs"] > STRENGTH["copy"] > STRENGTH["regenerate"]


def test_import_events_then_convert_is_idempotent(store) -> None:  # noqa: ANN001
    first = run_import(store, ImportConfig("events", (FIXTURES / "events_good.jsonl",)))
    assert (first.counts.read, first.counts.imported) == (5, 5)
    again = run_import(store, ImportConfig("events", (FIXTURES / "events_good.jsonl",)))
    assert (again.counts.imported, again.counts.duplicates) == (0, 5)  # same client event ids
    counts = convert_stored_events(store)
    # thumbs: fact up vs fact down; edit; regenerate; copy: haiku over its session sibling "Roses are red."
    assert counts.by_rule == {"thumbs": 1, "edit": 1, "regenerate": 1, "copy": 1}
    assert (counts.events, counts.imported) == (5, 4)
    assert convert_stored_events(store).imported == 0
    with store() as s:
        stored = [c.comparison for c in iter_comparisons(s)]
        assert table_counts(s)["feedback_events"] == 5
    thumbs = next(c for c in stored if c.metadata["rule"] == "thumbs")
    assert thumbs.responses[0].text == "Octopuses have three hearts." and thumbs.responses[0].model_name == "m1"
    assert all(c.source == "implicit" and c.annotator.id.startswith("implicit:") for c in stored)


def test_bad_event_is_named_and_stores_nothing(store) -> None:  # noqa: ANN001
    with pytest.raises(
        ImportFailed,
        match=r"bad_events.jsonl, line 2: field 'other_response': is missing \(a regenerate event needs it\)",
    ):
        run_import(store, ImportConfig("events", (FIXTURES / "bad_events.jsonl",)))
    with store() as s:
        assert table_counts(s)["feedback_events"] == 0


def test_cli_import_events_and_convert(store, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import json

    from typer.testing import CliRunner

    from rewardkit.cli.main import app
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    get_settings.cache_clear()
    try:
        imported = CliRunner().invoke(app, ["import", "events", str(FIXTURES / "events_good.jsonl"), "--json"])
        converted = CliRunner().invoke(app, ["import", "convert-events", "--json"])
    finally:
        get_settings.cache_clear()
    assert json.loads(imported.stdout)["counts"]["imported"] == 5
    assert json.loads(converted.stdout)["imported"] == 4
