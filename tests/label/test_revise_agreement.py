"""Constitutional revisions stored as (revision over original) pairs with the principle as attribute; the
agreement of AI labels with human labels of the same pairs, on a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rewardkit.label.agreement import ai_human_agreement
from rewardkit.label.client import ChatClient
from rewardkit.label.constitution import load_constitution
from rewardkit.label.inputs import pairs_from_store
from rewardkit.label.outputs import StoreSink, labelled_in_store
from rewardkit.label.revise import Original, revise_responses
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
from rewardkit.store.engine import session_scope
from rewardkit.store.queries import ComparisonFilter, add_comparisons, iter_comparisons


def revise(url: str, constitution: Path, sink, items, **kw):
    async def go():
        client = ChatClient(url, "critic-1", concurrency=2)
        try:
            return await revise_responses(items, client, load_constitution(constitution), sink, **kw)
        finally:
            await client.close()

    return asyncio.run(go())


def test_revisions_are_stored_with_their_principle(judge, store, constitution_file: Path) -> None:
    items = [Original("How do I boil an egg?", Response("Boil it.", model_name="policy-v1"))]
    summary = revise(judge[0], constitution_file, StoreSink(store), items, source="cai")
    assert summary.labelled == 2 and summary.requests == 4  # two principles, critique + revision each
    with session_scope(store) as session:
        stored = sorted((s.comparison for s in iter_comparisons(session)), key=lambda c: c.attribute)
        done = labelled_in_store(session, "cai")
    assert [c.attribute for c in stored] == ["harmlessness", "helpfulness"]
    c = stored[0]
    assert c.responses[0].text == "REVISED: Boil it." and c.responses[1].text == "Boil it."
    assert c.responses[1].model_name == "policy-v1" and c.judgement.choice == "a"
    assert c.rationale == "The response could be more specific about the principle."
    assert c.annotator == Annotator("critic-1", "ai") and c.source == "cai"
    again = revise(judge[0], constitution_file, StoreSink(store), items, source="cai", done=done)
    assert again.skipped_done == 2 and again.requests == 0
    only = revise(judge[0], constitution_file, StoreSink(store), items, source="cai2", principles=["helpfulness"])
    assert only.labelled == 1


def _label(prompt: str, a: str, b: str, choice: str, who: str, kind: str) -> Comparison:
    return Comparison(prompt, (Response(a), Response(b)), PairwiseJudgement(choice), Annotator(who, kind), "src")  # type: ignore[arg-type]


def test_ai_human_agreement(store) -> None:
    with session_scope(store) as session:
        add_comparisons(
            session,
            [
                _label("p1", "x", "y", "a", "alice", "human"),
                _label("p1", "y", "x", "b", "judge", "ai"),  # shown the other way round, same winner x: agrees
                _label("p2", "u", "v", "a", "alice", "human"),
                _label("p2", "u", "v", "b", "judge", "ai"),  # disagrees
                _label("p3", "s", "t", "a", "bob", "human"),
                _label("p3", "s", "t", "tie", "judge", "ai"),  # a tie: counted apart
                _label("p4", "m", "n", "a", "bob", "human"),  # no AI label: not a shared pair
                _label("p5", "m", "n", "a", "judge", "ai"),
            ],
        )
    with session_scope(store) as session:
        result = ai_human_agreement(session)
        relabel = pairs_from_store(session, ComparisonFilter(annotator_kinds=("human",)))
    assert result == {
        "pairs": 3,
        "compared": 2,
        "agree": 1,
        "agreement": 0.5,
        "ai_ties": 1,
        "human_ties": 0,
        "by_judge": {"judge": {"compared": 2, "agree": 1, "agreement": 0.5}},
    }
    assert sorted((p.prompt, p.a.text, p.b.text) for p in relabel) == [
        ("p1", "x", "y"),
        ("p2", "u", "v"),
        ("p3", "s", "t"),
        ("p4", "m", "n"),
    ]
