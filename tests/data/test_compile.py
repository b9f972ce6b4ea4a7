"""Compilation rules, checked against pairs worked out by hand: conversion, ties, dedupe, conflicts, splits,
balancing. Tests that read the store use the ``store`` fixture (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rewardkit.data.compile import (
    CompileConfig,
    CompileError,
    compile_labels,
    compile_pairs,
    length_balance_keep,
    normalize_text,
    pairs_from_comparison,
    rating_pairs,
    split_of,
)
from rewardkit.records import (
    Annotator,
    Comparison,
    PairwiseJudgement,
    PreferencePair,
    RankingJudgement,
    RatingsJudgement,
    Response,
)
from rewardkit.store import session_scope
from rewardkit.store.queries import add_comparisons

HUMAN = Annotator("h1", "human")


def pairwise(
    prompt, a: str, b: str, choice: str = "a", annotator: Annotator = HUMAN, source: str = "unit", **kw
) -> Comparison:
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement(choice),
        annotator=annotator,
        source=source,
        **kw,
    )


def k_way(judgement, texts=("r0", "r1", "r2", "r3"), prompt: str = "p") -> Comparison:
    return Comparison(
        prompt=prompt, responses=tuple(Response(t) for t in texts), judgement=judgement, annotator=HUMAN, source="unit"
    )


def preferences(c: Comparison, config: CompileConfig = CompileConfig()) -> list[tuple[str, str] | tuple[str, str, str]]:
    """(chosen, rejected) per label, ('tie', x, y) for ties."""
    out = []
    for lab in pairs_from_comparison(c, "cid", "pid", config):
        if lab.verdict == "tie":
            out.append(("tie", lab.x, lab.y))
        else:
            out.append((lab.x, lab.y) if lab.verdict == "x" else (lab.y, lab.x))
    return out


def labels_of(*comparisons: Comparison, config: CompileConfig = CompileConfig()):
    return [lab for i, c in enumerate(comparisons) for lab in pairs_from_comparison(c, f"c{i}", f"p{i}", config)]


# --- conversion -----------------------------------------------------------------------------------------


def test_pairwise_choices() -> None:
    assert preferences(pairwise("p", "x", "y", "a")) == [("x", "y")]
    assert preferences(pairwise("p", "x", "y", "b")) == [("y", "x")]
    assert preferences(pairwise("p", "x", "y", "tie")) == [("tie", "x", "y")]
    [both_bad] = pairs_from_comparison(pairwise("p", "x", "y", "both_bad"), "c", "p", CompileConfig())
    assert both_bad.verdict == "tie" and both_bad.both_bad  # no preference


def test_ranking_rules_by_hand() -> None:
    ranked = k_way(RankingJudgement((2, 0, 3, 1)))  # best first: r2 > r0 > r3 > r1
    assert preferences(ranked, CompileConfig(ranking_rule="all")) == [
        ("r2", "r0"),
        ("r2", "r3"),
        ("r2", "r1"),
        ("r0", "r3"),
        ("r0", "r1"),
        ("r3", "r1"),
    ]
    assert preferences(ranked, CompileConfig(ranking_rule="best_vs_rest")) == [("r2", "r0"), ("r2", "r3"), ("r2", "r1")]
    assert preferences(ranked, CompileConfig(ranking_rule="adjacent")) == [("r2", "r0"), ("r0", "r3"), ("r3", "r1")]


def test_rating_pairs_by_hand() -> None:
    # gaps: (0,1)=2 pair, (0,2)=0.5 too close, (0,3) unrated, (1,2)=1.5 pair with 2 better, (1,4)=0 tie
    ratings = [5.0, 3.0, 4.5, None, 3.0]
    assert rating_pairs(ratings, threshold=1.0, scale=4.0) == [
        (0, 1, 0.5, 2.0),
        (0, 4, 0.5, 2.0),
        (2, 1, 0.375, 1.5),
        (1, 4, None, 0.0),
        (2, 4, 0.375, 1.5),
    ]  # in (i, j) order; the better response first
    assert rating_pairs([5.0, 1.0], threshold=1.0, scale=None) == [(0, 1, None, 4.0)]
    assert rating_pairs([5.0, 1.0], threshold=1.0, scale=2.0)[0][2] == 1.0  # strength clipped to 1


def test_ratings_use_overall_else_the_mean_of_attributes() -> None:
    with_overall = k_way(RatingsJudgement({"overall": (1.0, 4.0), "honesty": (5.0, 1.0)}), texts=("r0", "r1"))
    assert preferences(with_overall) == [("r1", "r0")]
    # no overall: means are (4 + 2) / 2 = 3 and (2 + 2) / 2 = 2, gap 1 >= threshold 1
    attrs = k_way(RatingsJudgement({"helpfulness": (4.0, 2.0), "honesty": (2.0, 2.0)}), texts=("r0", "r1"))
    assert preferences(attrs) == [("r0", "r1")]
    [lab] = pairs_from_comparison(attrs, "c", "p", CompileConfig())
    assert lab.margin == 1.0 and lab.origin == "ratings"
    assert preferences(attrs, CompileConfig(rating_attribute="honesty")) == [("tie", "r0", "r1")]


# --- ties, dedupe, conflicts ---------------------------------------------------------------------------


def test_ties_dropped_by_default_and_kept_on_request() -> None:
    labels = labels_of(
        pairwise("p1", "x", "y", "tie"), pairwise("p2", "x", "y", "both_bad"), pairwise("p3", "x", "y", "a")
    )
    dropped = compile_labels(labels, CompileConfig())
    assert (dropped.counts.ties_found, dropped.counts.ties_dropped, dropped.counts.ties_kept, dropped.counts.pairs) == (
        2,
        2,
        0,
        1,
    )
    kept = compile_labels(labels, CompileConfig(keep_ties=True))
    assert (kept.counts.ties_dropped, kept.counts.ties_kept, kept.counts.pairs) == (0, 2, 3)
    tie_pairs = [p for rows in kept.splits.values() for p in rows if p.tie]
    assert len(tie_pairs) == 2 and any(p.metadata.get("both_bad") for p in tie_pairs)


def test_normalize_text() -> None:
    assert normalize_text("  Hello\n\tWORLD  ") == "hello world"


def test_dedupe_exact_and_normalised_counted(store) -> None:
    with session_scope(store) as s:
        add_comparisons(
            s,
            [
                pairwise("Capital of France?", "Paris.", "Rome.", annotator=Annotator("h1", "human")),
                # the same verdict with the responses in the other order: an exact duplicate
                pairwise("Capital of France?", "Rome.", "Paris.", "b", annotator=Annotator("h2", "human")),
                # equal after whitespace and case normalisation only
                pairwise("capital of  France?", "PARIS. ", "rome.", annotator=Annotator("h3", "human")),
                pairwise("Capital of France?", "Paris.", "Rome.", annotator=Annotator("h4", "human")),  # exact again
                pairwise("Another prompt", "Paris.", "Rome."),
            ],
        )
    with session_scope(store) as s:
        normalised = compile_pairs(s, CompileConfig())
        exact = compile_pairs(s, CompileConfig(dedupe="exact"))
    assert (normalised.counts.duplicates_exact, normalised.counts.duplicates_normalized, normalised.counts.pairs) == (
        2,
        1,
        2,
    )
    assert (exact.counts.duplicates_exact, exact.counts.duplicates_normalized, exact.counts.pairs) == (2, 0, 3)
    merged = next(p for rows in normalised.splits.values() for p in rows if p.prompt == "Capital of France?")
    assert (merged.chosen, merged.rejected) == ("Paris.", "Rome.")
    assert len(merged.comparison_ids) == 4 and merged.metadata["labels"] == 4


def test_responses_equal_only_after_normalisation_stay_apart() -> None:
    # "GARDEN" vs "garden" answering "write it in capitals": case-folding must not merge the two responses
    labels = labels_of(
        pairwise("caps", "GARDEN", "garden", "a"),
        pairwise("caps", "GARDEN", "garden", "a", annotator=Annotator("h2", "human")),
    )
    result = compile_labels(labels, CompileConfig())
    assert result.counts.conflicts_found == 0 and result.counts.pairs == 1 and result.counts.duplicates_exact == 1


def test_conflicts_resolved_by_majority_or_dropped() -> None:
    a1, a2, a3 = (Annotator(f"h{i}", "human") for i in range(3))
    majority = labels_of(
        pairwise("p", "x", "y", "a", a1), pairwise("p", "x", "y", "a", a2), pairwise("p", "x", "y", "b", a3)
    )
    even = labels_of(pairwise("q", "x", "y", "a", a1), pairwise("q", "y", "x", "a", a2))  # the second prefers y

    resolved = compile_labels(majority + even, CompileConfig(conflicts="majority"))
    c = resolved.counts
    assert (c.conflicts_found, c.conflicts_resolved, c.conflicts_dropped, c.pairs) == (2, 1, 1, 1)
    [kept] = [p for rows in resolved.splits.values() for p in rows]
    assert (kept.prompt, kept.chosen, kept.rejected) == ("p", "x", "y")
    assert kept.metadata["agreeing_labels"] == 2 and kept.metadata["labels"] == 3
    report = {r["prompt"]: r for r in resolved.conflicts}
    assert report["p"]["votes"] == {"x": 2, "y": 1} and report["p"]["outcome"] == "majority"
    assert report["q"]["outcome"] == "dropped"

    dropped = compile_labels(majority + even, CompileConfig(conflicts="drop"))
    assert (dropped.counts.conflicts_found, dropped.counts.conflicts_dropped, dropped.counts.pairs) == (2, 2, 0)


def test_same_pair_under_different_attributes_is_not_a_conflict() -> None:
    labels = labels_of(
        pairwise("p", "x", "y", "a", attribute="helpfulness"), pairwise("p", "x", "y", "b", attribute="harmlessness")
    )
    result = compile_labels(labels, CompileConfig())
    assert result.counts.conflicts_found == 0 and result.counts.pairs == 2


# --- splits and balancing ----------------------------------------------------------------------------------


def test_split_by_prompt_is_deterministic_and_follows_fractions() -> None:
    prompts = [f"prompt number {i}" for i in range(2000)]
    splits = [split_of(p, 0, (0.8, 0.1, 0.1)) for p in prompts]
    assert splits == [split_of(p, 0, (0.8, 0.1, 0.1)) for p in prompts]
    share = {name: splits.count(name) / len(splits) for name in ("train", "validation", "test")}
    assert (
        abs(share["train"] - 0.8) < 0.04 and abs(share["validation"] - 0.1) < 0.03 and abs(share["test"] - 0.1) < 0.03
    )
    assert splits != [split_of(p, 1, (0.8, 0.1, 0.1)) for p in prompts]  # the seed salts the hash
    assert split_of("Hello  World", 0, (0.5, 0.25, 0.25)) == split_of("hello world", 0, (0.5, 0.25, 0.25))


def test_no_prompt_in_two_splits() -> None:
    comparisons = [pairwise(f"prompt {i % 60}", f"good {i}", f"bad {i}") for i in range(300)]
    result = compile_labels(labels_of(*comparisons), CompileConfig(fractions=(0.6, 0.2, 0.2)))
    seen: dict[str, str] = {}
    for name, rows in result.splits.items():
        for p in rows:
            assert seen.setdefault(p.prompt, name) == name
    assert set(seen.values()) == {"train", "validation", "test"}
    assert sum(result.counts.per_split.values()) == 300


def test_balance_sources_downsamples_to_the_smallest_and_caps() -> None:
    comparisons = [pairwise(f"a{i}", "x", "y", source="big") for i in range(10)] + [
        pairwise(f"b{i}", "x", "y", source="small") for i in range(4)
    ]
    balanced = compile_labels(labels_of(*comparisons), CompileConfig(balance_sources=True))
    assert balanced.counts.per_source == {"big": 4, "small": 4} and balanced.counts.balanced_away == 6
    capped = compile_labels(labels_of(*comparisons), CompileConfig(max_per_source=3))
    assert capped.counts.per_source == {"big": 3, "small": 3}
    both = compile_labels(labels_of(*comparisons), CompileConfig(balance_sources=True, max_per_source=2))
    assert both.counts.per_source == {"big": 2, "small": 2}


def test_balance_positions_puts_chosen_first_in_exactly_half() -> None:
    comparisons = [pairwise(f"p{i}", "good", "bad", "a") for i in range(11)]  # every source label says 'a'
    plain = compile_labels(labels_of(*comparisons), CompileConfig())
    assert all(p.metadata["chosen_position"] == "a" for rows in plain.splits.values() for p in rows)
    balanced = compile_labels(labels_of(*comparisons), CompileConfig(balance_positions=True))
    positions = [p.metadata["chosen_position"] for rows in balanced.splits.values() for p in rows]
    assert sorted(positions).count("a") == 6 and positions.count("b") == 5  # ceil(11 / 2) in position a


def test_length_balance_keep_by_hand() -> None:
    # 10 shorter-wins, 90 longer-wins: a 0.5 share keeps 10 longer (10 / 20), 0.25 keeps 30 (10 / 40)
    assert length_balance_keep(10, 90, 0.5) == 10
    assert length_balance_keep(10, 90, 0.25) == 30
    assert length_balance_keep(10, 90, 0.2) == 40  # 10 / 50: exact ratios lose nothing to rounding
    assert length_balance_keep(10, 5, 0.5) == 5  # the share holds already: keep everything
    assert length_balance_keep(0, 7, 0.5) == 0
    assert length_balance_keep(3, 7, 0.0) == 7  # off


def test_length_balance_thins_chosen_longer_pairs_in_train_only() -> None:
    # 4 prompts x (1 shorter-wins + 3 longer-wins pairs) + 1 equal-length pair each; all in train, then a
    # second config that also puts prompts in test to see test keep its natural mix
    comparisons = []
    for i in range(4):
        comparisons.append(pairwise(f"p{i}", "short", "much longer answer", "a"))
        comparisons += [pairwise(f"p{i}", "a long good answer " * (k + 1), "meh", "a") for k in range(3)]
        comparisons.append(pairwise(f"p{i}", "same", "size", "a"))
    labels = labels_of(*comparisons)
    plain = compile_labels(labels, CompileConfig(fractions=(1.0, 0.0, 0.0)))
    result = compile_labels(labels, CompileConfig(fractions=(1.0, 0.0, 0.0), length_balance=0.5))
    kept = result.splits["train"]
    shorter = sum(len(p.chosen) < len(p.rejected) for p in kept)
    longer = sum(len(p.chosen) > len(p.rejected) for p in kept)
    assert (shorter, longer) == (4, 4) and sum(len(p.chosen) == len(p.rejected) for p in kept) == 4
    assert result.counts.length_balanced_away == 8 and result.counts.pairs == 12 == len(plain.splits["train"]) - 8
    assert {p.id for p in kept} <= {p.id for p in plain.splits["train"]}
    assert [
        p.id
        for p in compile_labels(labels, CompileConfig(fractions=(1.0, 0.0, 0.0), length_balance=0.5)).splits["train"]
    ] == [p.id for p in kept]
    held_out = compile_labels(labels, CompileConfig(fractions=(0.0, 0.0, 1.0), length_balance=0.5))
    assert (
        len(held_out.splits["test"]) == 20 and held_out.counts.length_balanced_away == 0
    )  # test keeps its natural mix


def test_config_validation_names_the_option() -> None:
    with pytest.raises(CompileError, match="fractions"):
        CompileConfig(fractions=(0.5, 0.5, 0.5))
    with pytest.raises(CompileError, match="ranking_rule"):
        CompileConfig(ranking_rule="best")  # type: ignore[arg-type]
    with pytest.raises(CompileError, match="annotator_kinds"):
        CompileConfig(annotator_kinds=("robot",))
    with pytest.raises(CompileError, match="rating_threshold"):
        CompileConfig(rating_threshold=0)
    with pytest.raises(CompileError, match="length_balance"):
        CompileConfig(length_balance=1.0)


def test_filters_select_by_source_kind_attribute_and_date(store) -> None:
    old, new = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    with session_scope(store) as s:
        add_comparisons(
            s,
            [
                pairwise("p1", "x", "y", source="hh", created_at=old),
                pairwise("p2", "x", "y", source="hh", annotator=Annotator("judge", "ai"), created_at=new),
                pairwise("p3", "x", "y", source="alpaca", attribute="helpfulness", created_at=new),
                k_way(RankingJudgement((0, 1, 2)), texts=("a", "b", "c"), prompt="p4"),
            ],
        )
    with session_scope(store) as s:

        def prompts(**kw) -> set[str]:
            r = compile_pairs(s, CompileConfig(**kw))
            return {p.prompt for rows in r.splits.values() for p in rows}

        assert prompts(sources=("hh",)) == {"p1", "p2"}
        assert prompts(annotator_kinds=("ai",)) == {"p2"}
        assert prompts(attributes=("helpfulness",)) == {"p3"}
        assert prompts(attributes=(None,)) == {"p1", "p2", "p4"}
        assert prompts(since=datetime(2025, 1, 1, tzinfo=UTC), sources=("hh", "alpaca")) == {"p2", "p3"}
        assert prompts(until=datetime(2025, 1, 1, tzinfo=UTC)) == {"p1"}
        everything = compile_pairs(s, CompileConfig())
    assert everything.counts.comparisons_selected == 4
    assert everything.counts.labels_by_origin == {"pairwise": 3, "ranking": 3, "ratings": 0}


def test_source_caps_cap_only_the_named_sources_and_combine_with_the_other_limits() -> None:
    comparisons = [pairwise(f"a{i}", "x", "y", source="big") for i in range(10)] + [
        pairwise(f"b{i}", "x", "y", source="small") for i in range(4)
    ]
    capped = compile_labels(labels_of(*comparisons), CompileConfig(source_caps=(("big", 6),)))
    assert capped.counts.per_source == {"big": 6, "small": 4} and capped.counts.balanced_away == 4
    assert capped.counts.per_source_before_balancing == {"big": 10, "small": 4}
    # with max_per_source the smaller limit holds; balance_sources balances to the smallest source after the caps
    both = compile_labels(labels_of(*comparisons), CompileConfig(source_caps=(("big", 6),), max_per_source=5))
    assert both.counts.per_source == {"big": 5, "small": 4}
    balanced = compile_labels(labels_of(*comparisons), CompileConfig(source_caps=(("big", 3),), balance_sources=True))
    assert balanced.counts.per_source == {"big": 3, "small": 3}
    # the pairs a cap keeps are the ones max_per_source keeps at the same number
    same = compile_labels(labels_of(*comparisons), CompileConfig(max_per_source=6))
    kept = {p.id for rows in capped.splits.values() for p in rows if p.source == "big"}
    assert kept == {p.id for rows in same.splits.values() for p in rows if p.source == "big"}


def test_source_weights_weigh_the_train_split_only() -> None:
    comparisons = [pairwise(f"a{i}", "x", "y", source="hh") for i in range(30)] + [
        pairwise(f"b{i}", "x", "y", source="other") for i in range(30)
    ]
    result = compile_labels(labels_of(*comparisons), CompileConfig(source_weights=(("hh", 2.5),)))
    train = result.splits["train"]
    assert {p.weight for p in train if p.source == "hh"} == {2.5}
    assert {p.weight for p in train if p.source == "other"} == {1.0}
    assert all(p.weight == 1.0 for split in ("validation", "test") for p in result.splits[split])
    # the weight is written only where it is not 1, so unweighted snapshots keep their rows (and ids)
    hh = next(p for p in train if p.source == "hh")
    assert hh.to_json()["weight"] == 2.5 and PreferencePair.from_json(hh.to_json()) == hh
    assert "weight" not in next(p for p in train if p.source == "other").to_json()
    assert "source_weights" not in CompileConfig().as_json() and "source_caps" not in CompileConfig().as_json()


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(source_caps=(("alpacaevl", 5),)), "source_caps alpacaevl: no such source in the selected comparisons"),
        (dict(source_weights=(("nope", 2.0),)), "source_weights nope: no such source in the selected comparisons"),
    ],
)
def test_a_cap_or_weight_for_a_source_not_selected_is_an_error_naming_it(config, message) -> None:
    labels = labels_of(pairwise("a", "x", "y", source="hh"), pairwise("b", "x", "y", "tie", source="tied-only"))
    with pytest.raises(CompileError, match=message + r" \(their sources: hh, tied-only\)"):
        compile_labels(labels, CompileConfig(**config))
    # a source whose labels are all ties is still a source of the selection: capping it is no typo
    compile_labels(labels, CompileConfig(source_caps=(("tied-only", 1),)))


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(source_caps=(("hh", 0),)), "source_caps hh: expected a whole number >= 1, got 0"),
        (dict(source_weights=(("hh", -1.0),)), "source_weights hh: expected a positive number, got -1.0"),
        (dict(source_weights=(("hh", float("nan")),)), "source_weights hh: expected a positive number, got nan"),
        (dict(source_caps=(("hh", 2), ("hh", 3))), "source_caps hh: given more than once"),
    ],
)
def test_bad_caps_and_weights_are_errors_naming_the_source(config, message) -> None:
    with pytest.raises(CompileError, match=message):
        CompileConfig(**config)
