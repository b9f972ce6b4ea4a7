"""``rewardkit data stats`` on a real store: the agreement of AI labels with the human labels of the same pairs,
in text and --json, worked out by hand below."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
from rewardkit.store import open_store, session_scope
from rewardkit.store.queries import add_comparisons


def label(prompt: str, a: str, b: str, choice: str, who: str, kind: str, **kw: str) -> Comparison:
    source = "ai-feedback" if kind == "ai" else "hh"
    judgement = PairwiseJudgement(choice)  # type: ignore[arg-type]
    return Comparison(prompt, (Response(a), Response(b)), judgement, Annotator(who, kind), source, **kw)  # type: ignore[arg-type]


def add(*comparisons: Comparison) -> None:
    from rewardkit.settings import get_settings

    factory = open_store(get_settings().resolved_database_url)
    with session_scope(factory) as session:
        add_comparisons(session, list(comparisons))
    factory.kw["bind"].dispose()


def stats(*args: str) -> CliRunner:
    res = CliRunner().invoke(app, ["data", "stats", *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_ai_labels_against_human_labels(home) -> None:
    add(
        label("p1", "x", "y", "a", "alice", "human"),
        label("p1", "y", "x", "b", "gpt-judge", "ai"),  # shown the other way round, the same winner x: agrees
        label("p1", "x", "y", "a", "small-judge", "ai"),  # agrees
        label("p2", "u", "v", "a", "alice", "human"),
        label("p2", "u", "v", "b", "gpt-judge", "ai"),  # disagrees
        label("p2", "u", "v", "b", "bob", "human"),  # bob x gpt-judge: agrees
        label("p3", "s", "t", "a", "bob", "human"),
        label("p3", "s", "t", "tie", "gpt-judge", "ai"),  # a tie: counted apart
        label("p4", "m", "n", "a", "bob", "human"),  # no AI label: not a shared pair
        label("p5", "m", "n", "b", "gpt-judge", "ai", attribute="safety"),  # no human label
    )
    # shared pairs p1, p2, p3. Compared (both chose): p1 alice x {gpt, small} = 2 agree; p2 {alice, bob} x gpt =
    # 1 agree of 2; p3 a tie. So 3 of 4 agree; gpt-judge 2 of 3, small-judge 1 of 1
    result = json.loads(stats("--json").stdout)["ai_human_agreement"]
    assert result == {
        "pairs": 3,
        "compared": 4,
        "agree": 3,
        "agreement": 0.75,
        "ai_ties": 1,
        "human_ties": 0,
        "by_judge": {
            "gpt-judge": {"compared": 3, "agree": 2, "agreement": pytest.approx(2 / 3)},
            "small-judge": {"compared": 1, "agree": 1, "agreement": 1.0},
        },
    }
    text = stats().stdout
    assert "AI vs human labels on 3 pairs with both: agree 0.750 (3 of 4 where both chose; ties left out: AI 1" in text
    assert "judge gpt-judge: agree 0.667 (2 of 3)" in text and "judge small-judge: agree 1.000 (1 of 1)" in text

    # a source filter narrows the counts above, not the agreement (AI labels have their own source)
    assert json.loads(stats("--source", "hh", "--json").stdout)["ai_human_agreement"]["compared"] == 4
    # an attribute filter applies to both sides: only p5 is about safety, and no human labelled it
    only_safety = json.loads(stats("--attribute", "safety", "--json").stdout)
    assert only_safety["ai_human_agreement"]["pairs"] == 0 and only_safety["ai_human_agreement"]["agreement"] is None
    assert "AI vs human labels: no pair has both" in stats("--attribute", "safety").stdout


def test_a_store_without_ai_labels_says_nothing_of_them(home) -> None:
    add(label("p1", "x", "y", "a", "alice", "human"), label("p1", "x", "y", "b", "bob", "human"))
    res = stats()
    assert "AI vs human" not in res.stdout and "2 comparisons" in res.stdout
    assert json.loads(stats("--json").stdout)["ai_human_agreement"]["pairs"] == 0
