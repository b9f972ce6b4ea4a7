"""``data stats`` numbers on hand-built data, each worked out by hand in the comments."""

from __future__ import annotations

import json

import pytest

from rewardkit.data.compile import CompileConfig, pairs_from_comparison
from rewardkit.data.stats import agreement, distribution, label_stats, store_stats
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, RatingsJudgement, Response
from rewardkit.store import session_scope
from rewardkit.store.queries import ComparisonFilter, add_comparisons


def pairwise(
    prompt: str, a: str, b: str, choice: str = "a", who: str = "h1", kind: str = "human", source: str = "unit", **kw
) -> Comparison:
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement(choice),
        annotator=Annotator(who, kind),
        source=source,
        **kw,
    )  # type: ignore[arg-type]


def labels(*comparisons: Comparison):
    return [
        lab for i, c in enumerate(comparisons) for lab in pairs_from_comparison(c, f"c{i}", f"p{i}", CompileConfig())
    ]


def test_distribution_by_hand() -> None:
    d = distribution([float(v) for v in range(10, 0, -1)])
    assert d is not None
    assert (d.mean, d.median, d.p90) == (5.5, 5.5, 9.0)  # nearest rank: ceil(0.9 * 10) = 9th value
    assert distribution([4.0]).p90 == 4.0  # type: ignore[union-attr]
    assert distribution([]) is None


def test_agreement_by_hand() -> None:
    # pair P: three labels x, x, y (x wins twice); pair Q: two labels, both x; pair R: labelled once (ignored)
    group_labels = labels(
        pairwise("P", "x", "y", "a", "h1"),
        pairwise("P", "x", "y", "a", "h2"),
        pairwise("P", "y", "x", "a", "h3"),
        pairwise("Q", "x", "y", "a", "h1"),
        pairwise("Q", "x", "y", "a", "h2"),
        pairwise("R", "x", "y", "a"),
    )
    from rewardkit.data.compile import group_labels as group

    a = agreement(group(group_labels, "normalized").values())
    assert (a.pairs_labelled_more_than_once, a.labels_on_those_pairs) == (2, 5)
    assert a.share_all_agree == 0.5  # Q agrees, P does not
    # label pairs: P has 3 (1 agreeing: the two x), Q has 1 (agreeing) -> 2 / 4
    assert a.pairwise_agreement == 0.5
    # pooled verdicts: 'first' (x) 4 of 5, 'second' 1 of 5 -> chance 0.8^2 + 0.2^2 = 0.68
    assert a.kappa == pytest.approx((0.5 - 0.68) / (1 - 0.68))


def test_lengths_and_tie_rate_by_hand() -> None:
    s = label_stats(
        labels(
            pairwise("p1", "long chosen answer", "short", "a"),  # chosen 18 chars / 3 words, rejected 5 / 1
            pairwise("p2", "tiny", "a bit longer", "a"),  # chosen 4 / 1, rejected 12 / 3
            pairwise("p3", "same", "size", "b"),  # chosen 'size' 4 / 1, rejected 'same' 4 / 1
            pairwise("p4", "x", "y", "tie"),
        )
    )
    assert (s["labels"], s["ties"], s["tie_rate"]) == (4, 1, 0.25)
    lengths = s["lengths"]
    assert lengths["chosen_chars"] == {"mean": pytest.approx(26 / 3), "median": 4.0, "p90": 18.0}
    assert lengths["rejected_chars"] == {"mean": pytest.approx(21 / 3), "median": 5.0, "p90": 12.0}
    assert lengths["chosen_words"]["mean"] == pytest.approx(5 / 3)
    assert lengths["share_chosen_longer"] == pytest.approx(1 / 3) and lengths["share_same_length"] == pytest.approx(
        1 / 3
    )
    assert s["agreement"]["pairs_labelled_more_than_once"] == 0


def test_store_stats_counts(store) -> None:
    ratings = Comparison(
        prompt="rate",
        responses=(Response("r0"), Response("r1"), Response("r2")),
        judgement=RatingsJudgement({"overall": (5.0, 1.0, 5.0)}),  # pairs (0,1), (2,1) and the tie (0,2)
        annotator=Annotator("uf", "ai"),
        source="ultrafeedback",
    )
    with session_scope(store) as s:
        add_comparisons(
            s,
            [
                pairwise("q1", "good", "bad", "a", "h1"),
                pairwise("q1", "good", "bad", "b", "h2"),  # disagrees with h1
                pairwise("q2", "fine", "meh", "tie", "judge", "ai", source="alpaca"),
                pairwise("q3", "kind", "rude", "a", "h1", attribute="harmlessness"),
                ratings,
            ],
        )
    with session_scope(store) as s:
        result = store_stats(s)
        only_alpaca = store_stats(s, ComparisonFilter(sources=("alpaca",)))
    assert result["comparisons"] == 5
    assert result["by_source"] == {"alpaca": 1, "ultrafeedback": 1, "unit": 3}
    assert result["by_annotator_kind"] == {"ai": 2, "human": 3}
    assert result["by_attribute"] == {"harmlessness": 1, "overall": 4}
    assert result["by_judgement"] == {"pairwise": 4, "ratings": 1}
    assert result["labels_by_origin"] == {"pairwise": 4, "ratings": 3}
    assert (result["labels"], result["ties"]) == (7, 2)
    assert result["agreement"]["pairs_labelled_more_than_once"] == 1 and result["agreement"]["share_all_agree"] == 0.0
    assert json.dumps(result)  # the --json output is plain JSON
    assert only_alpaca["comparisons"] == 1 and only_alpaca["tie_rate"] == 1.0
