"""Label Studio and Argilla: export the queue, import completed annotations back as comparisons."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rewardkit.review.interop import (
    InteropError,
    argilla_records,
    import_argilla,
    import_labelstudio,
    labelstudio_tasks,
)
from rewardkit.store import session_scope
from rewardkit.store.review import NewItem, enqueue, iter_items


def queued(store) -> list:
    with session_scope(store) as s:
        enqueue(
            s,
            [NewItem("What is 2+2?", ({"text": "4"}, {"text": "5"}), {"kind": "file"}, "random")],
            now=datetime.now(UTC),
        )
    with store() as s:
        return list(iter_items(s))


def test_labelstudio_round_trip(store, tmp_path) -> None:
    [task] = labelstudio_tasks(queued(store))
    assert task["data"]["answer1"] == "4" and task["data"]["answer2"] == "5" and task["data"]["rk_item_id"] == 1
    # what Label Studio's JSON export holds once two people labelled the task (one cancelled)
    task["annotations"] = [
        {"completed_by": 7, "lead_time": 3.5, "result": [{"type": "pairwise", "value": {"selected": "left"}}]},
        {
            "completed_by": {"id": 8, "email": "b@x.org"},
            "result": [{"type": "pairwise", "value": {"selected": "right"}}],
        },
        {"completed_by": 9, "was_cancelled": True, "result": []},
    ]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([task]))
    a, b = import_labelstudio(path)
    assert (a.judgement.choice, a.annotator.id, a.annotator.kind, a.source) == ("a", "labelstudio:7", "human", "review")
    assert (b.judgement.choice, b.annotator.id) == ("b", "labelstudio:b@x.org")
    assert a.metadata == {"tool": "labelstudio", "review_item_id": 1, "seconds": 3.5}
    task["annotations"] = [{"completed_by": 1, "result": [{"type": "pairwise", "value": {"selected": "up"}}]}]
    path.write_text(json.dumps([task]))
    with pytest.raises(InteropError, match="task 0: field 'value.selected': expected left or right, got 'up'"):
        import_labelstudio(path)


def test_argilla_round_trip_v2_and_v1(store, tmp_path) -> None:
    [record] = argilla_records(queued(store))
    assert record["fields"] == {"prompt": "What is 2+2?", "response_a": "4", "response_b": "5"}
    v2 = dict(record, responses={"preference": [{"value": "a", "user_id": "u1"}, {"value": "tie", "user_id": "u2"}]})
    submitted = {"user_id": "u3", "values": {"preference": {"value": "b"}}, "status": "submitted"}
    draft = {"user_id": "u4", "values": {"preference": {"value": "a"}}, "status": "draft"}
    v1 = dict(record, responses=[submitted, draft])
    path = tmp_path / "argilla.jsonl"
    path.write_text(json.dumps(v2) + "\n" + json.dumps(v1) + "\n")
    got = [(c.annotator.id, c.judgement.choice) for c in import_argilla(path)]
    assert got == [("argilla:u1", "a"), ("argilla:u2", "tie"), ("argilla:u3", "b")]  # the draft is not a label
    path.write_text("{not json")
    with pytest.raises(InteropError, match="not JSON"):
        import_argilla(path)
