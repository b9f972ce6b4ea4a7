"""The labeling loop end to end against the real judge server and a real store: position swap, ties or drops
for disagreeing orders, unparseable answers kept out, budgets that stop cleanly, resuming without re-asking."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rewardkit.label.client import ChatClient
from rewardkit.label.constitution import load_constitution
from rewardkit.label.outputs import JsonlSink, StoreSink, labelled_in_store
from rewardkit.label.run import Budget, LabelConfig, Pair, RunSummary, combine, label_pairs
from rewardkit.label.verdict import Verdict
from rewardkit.records import Response
from rewardkit.store.engine import session_scope
from rewardkit.store.queries import ComparisonFilter, count_comparisons, iter_comparisons


def pairs() -> list[Pair]:
    rows = [
        ("Q1", "one two three", "one"),  # a has more words: a, in both orders
        ("Q2", "x", "x y z"),  # b
        ("Q3 [biased]", "one two", "one"),  # always "A": the orders disagree
        ("Q4 [malformed]", "a b", "a"),  # broken JSON: unparseable
        ("Q5 [refuse]", "a b", "a"),  # a refusal: unparseable
        ("Q6 [fallback]", "a b", "a b c"),  # [[B]] in text: b
        ("Q7 [fenced]", "same size", "other size"),  # equal length: an agreed tie, JSON in a fence
    ]
    return [Pair(p, Response(a, model_name="m1"), Response(b, model_name="m2")) for p, a, b in rows]


def run(url: str, constitution: Path, sink, items: list[Pair] | None = None, **kw) -> RunSummary:
    config = LabelConfig(**{k: kw.pop(k) for k in ("samples", "on_disagreement") if k in kw})
    concurrency = kw.pop("concurrency", 4)

    async def go() -> RunSummary:
        client = ChatClient(url, "judge-1", concurrency=concurrency, backoff_s=0.01, max_retries=kw.pop("retries", 2))
        try:
            return await label_pairs(items or pairs(), client, load_constitution(constitution), config, sink, **kw)
        finally:
            await client.close()

    return asyncio.run(go())


def test_labels_reach_the_store_and_a_rerun_asks_nothing_twice(judge, store, constitution_file: Path) -> None:
    url, state = judge
    summary = run(url, constitution_file, StoreSink(store))
    assert (summary.labelled, summary.ties, summary.unparseable, summary.dropped_disagreement) == (5, 2, 2, 0)
    assert summary.requests == 14 and summary.tokens_in > 0 and summary.stopped is None
    with session_scope(store) as session:
        stored = {s.comparison.prompt: s.comparison for s in iter_comparisons(session)}
        done = labelled_in_store(session, "ai-feedback")
    assert {p: c.judgement.choice for p, c in stored.items()} == {
        "Q1": "a",
        "Q2": "b",
        "Q3 [biased]": "tie",
        "Q6 [fallback]": "b",
        "Q7 [fenced]": "tie",
    }
    q1 = stored["Q1"]
    assert q1.annotator.id == "judge-1" and q1.annotator.kind == "ai" and q1.judgement.strength == 1.0
    assert "A has 3 words" in q1.rationale and q1.rubric.startswith("hh@")
    assert q1.metadata["judge"]["verdicts"] == ["A", "B"] and q1.metadata["judge"]["orders_agree"] is True
    assert stored["Q3 [biased]"].metadata["judge"]["orders_agree"] is False
    assert [r.model_name for r in q1.responses] == ["m1", "m2"]  # the pair's own order, not the shown one
    before = state.requests
    again = run(url, constitution_file, StoreSink(store), done=done)
    assert again.skipped_done == 5 and again.labelled == 0 and again.unparseable == 2
    assert state.requests - before == 4  # only the two unparseable pairs were asked again
    with session_scope(store) as session:
        assert count_comparisons(session) == 5


def test_disagreeing_orders_dropped_when_asked(judge, tmp_path: Path, constitution_file: Path) -> None:
    sink = JsonlSink(tmp_path / "labels.jsonl")
    summary = run(judge[0], constitution_file, sink, on_disagreement="drop")
    assert (summary.labelled, summary.ties, summary.dropped_disagreement) == (4, 1, 1)
    lines = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {x["prompt"] for x in lines} == {"Q1", "Q2", "Q6 [fallback]", "Q7 [fenced]"}
    q2 = next(x for x in lines if x["prompt"] == "Q2")
    assert (q2["chosen"], q2["rejected"], q2["annotator"]) == ("x y z", "x", {"id": "judge-1", "kind": "ai"})
    # a crash mid-write leaves half a line: resuming removes it and appends whole records only
    with (tmp_path / "labels.jsonl").open("a") as handle:
        handle.write('{"key": "half')
    done = sink.labelled()
    assert len(done) == 4 and (tmp_path / "labels.jsonl").read_text().endswith("}\n")


def test_self_consistency_samples(judge, tmp_path: Path, constitution_file: Path) -> None:
    summary = run(judge[0], constitution_file, JsonlSink(tmp_path / "x.jsonl"), items=pairs()[:2], samples=3)
    assert summary.labelled == 2 and summary.requests == 12
    line = json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    assert line["metadata"]["judge"]["samples"] == 3 and len(line["metadata"]["judge"]["verdicts"]) == 6


def v(choice: str | None) -> Verdict | None:
    return None if choice is None else Verdict(choice, "")


@pytest.mark.parametrize(
    ("forward", "swapped", "policy", "expected"),
    [
        (["A"], ["B"], "tie", ("a", 1.0)),  # shown A/B says A, shown B/A says B: both mean response a
        (["A"], ["A"], "tie", ("tie", None)),  # position bias
        (["A"], ["A"], "drop", ("dropped", None)),
        (["A", "A", "B"], ["B", "B", None], "tie", ("a", 0.8)),  # 4 of the 5 parsed votes name a
        (["tie"], ["tie"], "drop", ("tie", None)),
        ([None, None], ["B"], "tie", ("unparseable", None)),  # an order without a verdict: never guessed
        (["A", "B"], ["B"], "drop", ("dropped", None)),  # first order split: its majority is a tie
    ],
)
def test_combine_by_hand(forward, swapped, policy, expected) -> None:
    assert combine([v(x) for x in forward], [v(x) for x in swapped], policy) == expected


def test_token_budget_stops_cleanly(judge, store, constitution_file: Path) -> None:
    many = [Pair(f"Q{i}", Response("one two three"), Response("one")) for i in range(40)]
    summary = run(
        judge[0], constitution_file, StoreSink(store), items=many, concurrency=2, budget=Budget(max_tokens=600)
    )
    assert summary.stopped == "token budget of 600 spent"
    assert 0 < summary.labelled < 40 and summary.labelled + summary.not_reached == 40
    # at most one request per slot goes past the line: the budget is checked when a request is about to go
    assert summary.tokens_in + summary.tokens_out < 600 + 2 * 200
    with session_scope(store) as session:
        assert count_comparisons(session, ComparisonFilter(annotator_kinds=("ai",))) == summary.labelled


def test_cost_budget(judge, tmp_path: Path, constitution_file: Path) -> None:
    many = [Pair(f"C{i}", Response("one two three"), Response("one")) for i in range(20)]
    budget = Budget(max_cost=0.001, price_in=1.0, price_out=3.0)  # USD per 1M tokens
    summary = run(
        judge[0], constitution_file, JsonlSink(tmp_path / "c.jsonl"), items=many, concurrency=1, budget=budget
    )
    assert summary.stopped == "cost budget of $0.001 spent" and summary.cost >= 0.001 and 0 < summary.labelled < 20
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == summary.labelled


def test_judge_failure_mid_run_keeps_what_was_labelled(judge, store, constitution_file: Path) -> None:
    items = pairs()[:2] + [Pair("Q9 [garbage]", Response("a b"), Response("a"))] + pairs()[:2]
    summary = run(judge[0], constitution_file, StoreSink(store), items=items, concurrency=1)
    assert summary.stopped is not None and "did not answer as an OpenAI chat completion" in summary.stopped
    with session_scope(store) as session:
        assert count_comparisons(session) == summary.labelled
    assert summary.labelled + summary.not_reached + summary.unparseable == 5
