"""Augmented pairs: how many of each kind, built from which pairs, marked, deterministic."""

from __future__ import annotations

from collections import Counter

from rewardkit.records import PreferencePair
from rewardkit.robust.augment import (
    augment_pairs,
    augment_summary,
    is_augmented,
    is_invariance,
    kind_counts,
    pair_roles,
)
from rewardkit.robust.profile import KindSpec, Profile
from rewardkit.robust.transforms import TRANSFORMS


def pairs(n: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            id=f"p{i}",
            prompt=[
                {"role": "user", "content": f"Earlier turn {i}"},
                {"role": "assistant", "content": "Ok."},
                {"role": "user", "content": f"Question number {i}?"},
            ],
            chosen=f"Good answer {i}.\n\n- point one\n- point two",
            rejected=f"Worse answer {i}. I think it is **fine**.",
            strength=0.8,
            margin=2.0,
            attribute="helpfulness",
            metadata={"subset": "x"},
        )
        for i in range(n)
    ]


def test_kind_counts_make_each_kind_its_share_of_the_epoch() -> None:
    profile = Profile("p", {"padding": KindSpec(1.0, 0.1), "echo": KindSpec(1.0, 0.3)}, invariance_share=0.1)
    # 600 / (1 - 0.4) = 1000 pairs in the epoch: 10% padding, 30% echo
    assert kind_counts(600, profile, invariance=False) == {"padding": 100, "echo": 300}
    # with invariance: 500 / (1 - 0.5) = 1000
    assert kind_counts(500, profile, invariance=True) == {"padding": 100, "echo": 300, "invariance": 100}


def test_augmented_pairs_are_the_original_beating_its_exploited_copy_and_are_marked() -> None:
    train = pairs(100)
    profile = Profile("p", {k: KindSpec(2.0 if k == "padding" else 1.0, 0.05) for k in TRANSFORMS})
    extra = augment_pairs(train, profile, seed=0)
    counts = augment_summary(extra)
    assert set(counts) == set(TRANSFORMS) and all(c >= 8 for c in counts.values())  # 0.05 * 100 / 0.45 = 11 each
    by_id = {p.id: p for p in train}
    sides = Counter()
    for p in extra:
        source = by_id[p.metadata["augmented_from"]]
        assert is_augmented(p) and not is_invariance(p) and not is_augmented(source)
        assert p.prompt == source.prompt and p.chosen in (source.chosen, source.rejected)
        sides[p.chosen == source.chosen] += 1
        assert p.rejected != p.chosen
        # no labels copied that would mean something else here
        assert (p.strength, p.margin, p.attribute, p.target, p.tie) == (None, None, None, None, False)
        kind = p.metadata["augmented"]
        if kind == "other_answer":
            assert p.rejected in {q.chosen for q in train if q.prompt != p.prompt}
        elif TRANSFORMS[kind].additive:
            assert p.chosen in p.rejected
        if kind == "echo":
            assert "Question number" in p.rejected and "Earlier turn" not in p.rejected  # the last user turn only
        assert p.metadata["augment_weight"] == (2.0 if kind == "padding" else 1.0)
    assert sides[True] > 20 and sides[False] > 20  # chosen and rejected both serve as the original
    assert augment_pairs(train, profile, seed=0) == extra  # deterministic
    assert augment_pairs(train, profile, seed=1) != extra
    assert len({p.id for p in extra}) == len(extra)


def test_invariance_pairs_and_pair_roles() -> None:
    train = pairs(40)
    extra = augment_pairs(train, Profile("none"), seed=0, invariance=True)
    assert extra and all(is_invariance(p) for p in extra)
    assert {p.metadata["augmented"] for p in extra} <= {
        "invariance:whitespace",
        "invariance:markdown_plain",
        "invariance:bullet_style",
    }
    assert augment_pairs(train, Profile("none"), seed=0, invariance=False) == []
    mixed = train[:2] + augment_pairs(train, Profile("p", {"padding": KindSpec(3.0, 0.2)}), 0)[:1] + extra[:1]
    weights, invariant = pair_roles(mixed)
    assert weights == [1.0, 1.0, 3.0, 1.0] and invariant == [False, False, False, True]


def test_no_pairs_no_augmentation() -> None:
    assert augment_pairs([], Profile("p", {"padding": KindSpec(1.0, 0.2)})) == []


def test_a_long_response_is_cut_at_a_sentence_end_so_the_whole_edit_fits() -> None:
    from rewardkit.robust.augment import cut_text, fit_edit, response_chars
    from rewardkit.robust.transforms import flattery, padding

    text = "First sentence here. Second one is longer and goes on. Third."
    assert cut_text(text, 30) == "First sentence here."
    assert cut_text(text, 60) == "First sentence here. Second one is longer and goes on."
    assert cut_text("one two three", 9) == "one two" and cut_text("nospace", 3) == ""
    long = " ".join(f"Sentence number {k} says something." for k in range(40))
    base, edit = fit_edit(padding, "q", long, 0, 400)
    assert len(edit) <= 400 and edit == padding("q", base, 0, "") and long.startswith(base) and base.endswith(".")
    base, edit = fit_edit(flattery, "q", long, 0, 400)  # a prefix edit: the cut keeps both sides' ends in view
    assert len(edit) <= 400 and edit.endswith(base)
    assert fit_edit(padding, "q", "Short.", 0, 400) == ("Short.", padding("q", "Short.", 0, ""))
    assert fit_edit(padding, "q", long, 0, None) == (long, padding("q", long, 0, ""))
    assert response_chars(256) == 576


def test_augment_pairs_fit_their_edits_and_other_answers_stay_whole() -> None:
    train = [
        PreferencePair(id=f"p{i}", prompt=f"q{i}", chosen="Good. " * 200, rejected=f"Bad {i}. " * 150)
        for i in range(30)
    ]
    extra = augment_pairs(
        train, Profile("p", {"padding": KindSpec(1, 0.2), "other_answer": KindSpec(1, 0.2)}), 0, max_chars=300
    )
    padded = [p for p in extra if p.metadata["augmented"] == "padding"]
    others = [p for p in extra if p.metadata["augmented"] == "other_answer"]
    assert padded and all(len(p.rejected) <= 300 and p.rejected.startswith(p.chosen) for p in padded)
    assert others and all(len(p.rejected) > 300 for p in others)
