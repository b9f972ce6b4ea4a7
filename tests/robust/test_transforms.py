"""Each exploit transformation on hand-written examples: what it changes, and what it must keep."""

from __future__ import annotations

import pytest

from rewardkit.robust import phrases
from rewardkit.robust.transforms import (
    TRANSFORMS,
    confidence,
    echo,
    filler,
    flattery,
    off_topic,
    other_answer,
    padding,
    repetition,
    scaffold,
    self_praise,
    strip_hedges,
    truncation,
    with_texts,
)

REQUEST = "How long should I boil an egg?"
ONE_PARAGRAPH = "Boil it for nine minutes. Then cool it in cold water."
TWO_PARAGRAPHS = "Boil it for nine minutes.\n\nThen cool it in cold water."


def test_padding_appends_three_filler_sentences_after_the_whole_answer() -> None:
    out = padding(REQUEST, ONE_PARAGRAPH, 0, "")
    assert out == ONE_PARAGRAPH + "\n\n" + " ".join(phrases.FILLER[:3])
    assert padding(REQUEST, ONE_PARAGRAPH, 1, "") == ONE_PARAGRAPH + "\n\n" + " ".join(phrases.FILLER[1:4])


def test_filler_goes_between_paragraphs_or_after_the_first_sentence_and_removing_it_gives_the_answer_back() -> None:
    sentence = phrases.FILLER[5]
    assert (
        filler(REQUEST, TWO_PARAGRAPHS, 0, "")
        == f"Boil it for nine minutes.\n\n{sentence}\n\nThen cool it in cold water."
    )
    assert filler(REQUEST, ONE_PARAGRAPH, 0, "") == f"Boil it for nine minutes. {sentence} Then cool it in cold water."
    assert filler(REQUEST, "Nine minutes", 0, "") == f"Nine minutes {sentence}"
    for text in (TWO_PARAGRAPHS, ONE_PARAGRAPH):
        out = filler(REQUEST, text, 3, "")
        added = phrases.FILLER[8]
        assert added in out and out.replace(f" {added}", "", 1).replace(f"\n\n{added}", "", 1) == text


def test_flattery_and_self_praise_add_one_sentence_on_their_side() -> None:
    assert flattery(REQUEST, ONE_PARAGRAPH, 2, "") == f"{phrases.FLATTERY[2]} {ONE_PARAGRAPH}"
    assert self_praise(REQUEST, ONE_PARAGRAPH, 7, "") == f"{ONE_PARAGRAPH}\n\n{phrases.SELF_PRAISE[1]}"  # 7 % 6


def test_repetition_repeats_a_paragraph_or_a_sentence_by_index() -> None:
    # i picks the unit (i-th paragraph or sentence, cycling) and the count: 1 + (i // 2) % 3 -> 1, 1, 2, 2, 3, 3, 1
    assert repetition(REQUEST, TWO_PARAGRAPHS, 1, "") == TWO_PARAGRAPHS + "\n\nThen cool it in cold water."
    assert repetition(REQUEST, ONE_PARAGRAPH, 0, "") == ONE_PARAGRAPH + " Boil it for nine minutes."
    assert repetition(REQUEST, ONE_PARAGRAPH, 3, "") == ONE_PARAGRAPH + " Then cool it in cold water." * 2
    assert repetition(REQUEST, TWO_PARAGRAPHS, 4, "") == TWO_PARAGRAPHS + "\n\nBoil it for nine minutes." * 3
    assert repetition(REQUEST, "Nine minutes", 5, "") == "Nine minutes" + " Nine minutes" * 3
    assert repetition(REQUEST, "Nine minutes", 6, "") == "Nine minutes Nine minutes"


def test_truncation_keeps_the_first_half_of_paragraphs_sentences_or_words() -> None:
    three = "First paragraph.\n\nSecond one.\n\nThird one."
    assert truncation(REQUEST, three, 0, "") == "First paragraph."  # 3 // 2 = 1 paragraph
    assert truncation(REQUEST, TWO_PARAGRAPHS, 7, "") == "Boil it for nine minutes."
    assert truncation(REQUEST, ONE_PARAGRAPH, 0, "") == "Boil it for nine minutes."
    assert truncation(REQUEST, "Boil it for nine minutes", 0, "") == "Boil it"  # 5 words -> 2
    assert truncation(REQUEST, "Yes.", 0, "") == "Yes."  # nothing to cut: unchanged, so augment makes no pair
    for text in (three, TWO_PARAGRAPHS, ONE_PARAGRAPH):
        assert len(truncation(REQUEST, text, 0, "")) < len(text) and text.startswith(truncation(REQUEST, text, 0, ""))


def test_confidence_strips_hedges_and_asserts_certainty_on_alternating_sides() -> None:
    hedged = "I think you should boil it for nine minutes. It is probably done then."
    assert strip_hedges(hedged) == "You should boil it for nine minutes. It is done then."
    assert (
        confidence(REQUEST, hedged, 0, "")
        == f"{phrases.CONFIDENCE[0]} You should boil it for nine minutes. It is done then."
    )
    assert confidence(REQUEST, ONE_PARAGRAPH, 1, "") == f"{ONE_PARAGRAPH} {phrases.CONFIDENCE[1]}"
    assert strip_hedges("Maybe it works. Perhaps it helps.") == "It works. It helps."  # sentence starts capitalized
    assert strip_hedges("The mighty river") == "The mighty river"  # whole words only


def test_echo_restates_the_request_collapsed_and_cut() -> None:
    assert (
        echo("How   long\nto boil?", ONE_PARAGRAPH, 0, "")
        == f'Regarding your question, "How long to boil?":\n\n{ONE_PARAGRAPH}'
    )
    long_request = "word " * 100
    out = echo(long_request, ONE_PARAGRAPH, 0, "")
    said = out.split('"')[1]
    assert len(said) == 200 and said.endswith("…") and out.endswith(ONE_PARAGRAPH)


def test_off_topic_scaffold_and_other_answer() -> None:
    assert off_topic(REQUEST, ONE_PARAGRAPH, 1, "") == f"{ONE_PARAGRAPH}\n\n{phrases.OFF_TOPIC[1]}"
    wrapped = scaffold(REQUEST, ONE_PARAGRAPH, 0, "")
    assert wrapped.startswith("## Overview") and f"## Details\n{ONE_PARAGRAPH}\n\n## Conclusion" in wrapped
    assert scaffold(REQUEST, "Use {response} literally", 1, "").count("{response}") == 1  # braces in text kept
    assert (
        other_answer(REQUEST, ONE_PARAGRAPH, 0, "Paris is the capital of France.") == "Paris is the capital of France."
    )


def test_appended_text_takes_the_profile_texts_when_given() -> None:
    assert TRANSFORMS["appended_text"].apply(REQUEST, "Nine.", 0, "") == f"Nine. {phrases.APPENDED[0]}"
    assert with_texts(["xyzzy", "plugh"])(REQUEST, "Nine.", 3, "") == "Nine. plugh"


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_changes_the_text_is_deterministic_and_additive_ones_keep_the_answer(name: str) -> None:
    t = TRANSFORMS[name]
    assert t.description, f"{name} has no docstring"
    for i in range(8):
        for text in (ONE_PARAGRAPH, TWO_PARAGRAPHS):
            out = t.apply(REQUEST, text, i, "Another prompt's answer.")
            assert out != text and out == t.apply(REQUEST, text, i, "Another prompt's answer.")
            if t.additive:
                assert text in out, (name, i)
