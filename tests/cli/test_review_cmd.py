"""``rewardkit review``: annotators, enqueue from a file / the score log / a snapshot with each strategy, gold items,
export and import, and the labels reaching ``rewardkit dataset build``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.store import open_store, session_scope


def rk(*args: str, ok: bool = True):
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def store():
    from rewardkit.settings import get_settings

    return open_store(get_settings().resolved_database_url)


def queued() -> list[tuple[str, str, float]]:
    from rewardkit.store.tables import ReviewItemRow

    with store()() as s:
        return [(r.prompt, r.reason, r.priority) for r in s.scalars(select(ReviewItemRow).order_by(ReviewItemRow.id))]


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_annotator_add_prints_a_token_stored_hashed(home) -> None:
    from rewardkit.review.auth import hash_token
    from rewardkit.store.review import annotator_by_token_hash, list_annotators

    token = rk("review", "annotator", "add", "alice", "--admin").output.strip()
    assert len(token) >= 40
    with store()() as s:
        [row] = list_annotators(s)
        assert row.token_hash == hash_token(token) and token not in row.token_hash
        assert annotator_by_token_hash(s, hash_token(token)).name == "alice"
    assert "alice (admin)" in rk("review", "annotator", "list").output


def test_enqueue_from_a_scored_file_by_uncertainty(home) -> None:
    rows = [
        {
            "prompt": f"q{i}",
            "response_a": f"a{i}",
            "response_b": f"b{i}",
            "score_a": 0.0,
            "score_b": 0.0,
            "p_a_better": p,
        }
        for i, p in enumerate([0.9, 0.51, 0.2, 0.45, 0.7])
    ]
    path = home / "scored.jsonl"
    write_jsonl(path, rows)
    out = json.loads(
        rk("review", "enqueue", "--from", str(path), "--strategy", "uncertainty", "--budget", "2", "--json").output
    )
    assert out == {"candidates": 5, "picked": 2, "queued": 2, "duplicates": 0}
    assert [(p, r) for p, r, _ in queued()] == [("q1", "uncertainty"), ("q3", "uncertainty")]
    again = json.loads(
        rk("review", "enqueue", "--from", str(path), "--strategy", "uncertainty", "--budget", "2", "--json").output
    )
    assert again["queued"] == 0 and again["duplicates"] == 2


def test_enqueue_defaults_to_random_picks(home) -> None:
    """Random is the default strategy (docs/review.md: with a fine-tuned model uncertainty sampling did worse
    than random); it needs no scores, so plain pairs can be queued."""
    path = home / "plain.jsonl"
    write_jsonl(path, [{"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}"} for i in range(4)])
    out = json.loads(rk("review", "enqueue", "--from", str(path), "--budget", "2", "--json").output)
    assert out["queued"] == 2
    assert {r for _, r, _ in queued()} == {"random"}


def test_enqueue_errors_are_one_line(home) -> None:
    path = home / "plain.jsonl"
    write_jsonl(path, [{"prompt": "q", "chosen": "x", "rejected": "y"}])
    result = rk("review", "enqueue", "--from", str(path), "--strategy", "margin", "--budget", "1", ok=False)
    assert result.exit_code != 0 and "needs 'score_a'" in str(result.exception)
    write_jsonl(path, [{"prompt": "q", "response_a": "x", "response_b": "y", "score_a": "high"}])
    result = rk("review", "enqueue", "--from", str(path), "--strategy", "random", ok=False)
    assert "line 1: field 'score_a': expected a number, got 'high'" in str(result.exception)
    result = rk("review", "enqueue", "--from", "nowhere.jsonl", ok=False)
    assert "expected log, snapshot or an existing file" in str(result.exception)
    assert queued() == []


def test_enqueue_from_the_score_log_by_disagreement(home) -> None:
    from rewardkit.store.score_log import add_served_scores

    now = datetime.now(UTC)
    rows = []
    for i, (prompt, response, score, std) in enumerate(
        [("p", "r1", 1.0, 0.1), ("q", "s1", 0.0, 0.9), ("p", "r2", 1.2, 0.1), ("q", "s2", 0.1, 0.8)]
    ):
        rows.append(
            {
                "id": f"id{i}",
                "created_at": now - timedelta(minutes=10 - i),
                "model_version": "v1",
                "route": "/v1/score",
                "prompt": prompt,
                "response": response,
                "score": score,
                "normalized": None,
                "uncertainty": std,
                "latency_ms": 1.0,
                "request_id": None,
            }  # fmt: skip
        )
    with session_scope(store()) as s:
        add_served_scores(s, rows)
    rk("review", "enqueue", "--from", "log", "--strategy", "disagreement", "--budget", "1", "--k", "2")
    [(prompt, reason, priority)] = queued()
    # q's pair disagrees most: sqrt(0.9^2 + 0.8^2)
    assert (prompt, reason) == ("q", "disagreement") and priority == pytest.approx((0.81 + 0.64) ** 0.5)


def test_gold_export_import_and_dataset_build(home) -> None:
    from rewardkit.store.review import next_assignment, save_label

    gold = home / "gold.jsonl"
    write_jsonl(gold, [{"prompt": "2+2?", "chosen": "4", "rejected": "5"}])
    assert "added 1 gold items" in rk("review", "gold", str(gold)).output
    scored = home / "pairs.jsonl"
    write_jsonl(
        scored,
        [
            {"prompt": f"tell me about {t}", "response_a": f"{t} is great", "response_b": f"{t}?"}
            for t in ("cats", "dogs")
        ],
    )
    rk("review", "enqueue", "--from", str(scored), "--strategy", "diversity", "--budget", "2")
    # one label through the queue (what the page does)
    now = datetime.now(UTC)
    with session_scope(store()) as s:
        a = next_assignment(s, annotator="ann", now=now, ttl=timedelta(minutes=5))
        save_label(s, annotator="ann", item_id=a.item.id, shown_choice="a", now=now)
    # Label Studio out and back in
    out = home / "tasks.json"
    rk("review", "export", "--format", "labelstudio", "--out", str(out), "--status", "all")
    tasks = json.loads(out.read_text())
    assert len(tasks) == 2  # gold items are not exported
    [other] = [t for t in tasks if t["data"]["rk_item_id"] != a.item.id]
    other["annotations"] = [{"completed_by": 3, "result": [{"type": "pairwise", "value": {"selected": "right"}}]}]
    out.write_text(json.dumps(tasks))
    assert "imported 1 comparisons" in rk("review", "import", "--format", "labelstudio", str(out)).output
    assert (
        "imported 0 comparisons (1 already stored)"
        in rk("review", "import", "--format", "labelstudio", str(out)).output
    )
    bad = rk("review", "export", "--format", "csv", "--out", str(out), ok=False)
    assert "--format: expected labelstudio or argilla" in str(bad.exception)
    # both labels are comparisons from source 'review' that a snapshot picks up
    output = rk("dataset", "build", "--source", "review", "--fractions", "1,0,0", "--json").output
    built = json.loads(output[output.index("{") :])
    pairs = [json.loads(line) for line in (home / "snapshots" / built["id"] / "train.jsonl").open()]
    assert len(pairs) == 2, built["manifest"]
    assert {p["annotator_kind"] for p in pairs} == {"human"} and {p["source"] for p in pairs} == {"review"}
    # the snapshot's pairs are the queued items again: candidates, but nothing new to queue
    again = rk("review", "enqueue", "--from", "snapshot", "--snapshot", built["id"], "--strategy", "random", "--json")
    assert json.loads(again.output) == {"candidates": 2, "picked": 2, "queued": 0, "duplicates": 2}
    stats = json.loads(rk("review", "stats", "--json").output)
    assert stats["labels_total"] == 1 and stats["by_reason"]["diversity"] == {"open": 1, "done": 1}
