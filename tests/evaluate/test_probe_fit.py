"""Cutting long responses so every probe's edit fits: boundaries, the search, and the cut, on hand-made cases.

The fake tokenization below counts words: a model that reads at most ``limit`` words of a response (the
prompt ignored), which makes every expected cut countable by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rewardkit.evaluate.probe_fit import cut_at, fit_probe_bases, longest_fitting, read_to_end, sentence_ends, word_ends
from rewardkit.evaluate.probes import PROBES, run_probes, select_probes


@dataclass
class WordsEncoded:
    response_cut: list[bool]


def words_encode(limit: int):
    """An ``encode`` whose model reads the response's first ``limit`` words."""

    def encode(prompts: list, responses: list[str]) -> WordsEncoded:
        return WordsEncoded([len(r.split()) > limit for r in responses])

    return encode


def test_sentence_and_word_ends_are_the_positions_a_cut_can_stop_at() -> None:
    text = 'One. Two! "Three?" Four\nFive six.'
    ends = sentence_ends(text)
    assert [cut_at(text, e) for e in ends] == ["One.", "One. Two!", 'One. Two! "Three?"', 'One. Two! "Three?" Four']
    assert sentence_ends("No sentence end here") == [] and sentence_ends("Only one.") == []
    assert sentence_ends("3.14 is pi. Yes") == [11]  # a decimal point is not a sentence end
    assert [cut_at("a bb  ccc ", e) for e in word_ends("a bb  ccc ")] == ["a", "a bb"]


def test_longest_fitting_finds_the_largest_position_that_fits_with_or_without_a_guess() -> None:
    candidates = [[1, 3, 5, 7, 9], [2, 4], [10, 20], [], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]
    limits = [6, 100, 5, 0, 11]  # row r fits positions <= limits[r]
    asked: list[int] = []

    def fits(pairs: list[tuple[int, int]]) -> list[bool]:
        asked.append(len(pairs))
        return [pos <= limits[row] for row, pos in pairs]

    expected = [5, 4, None, None, 11]
    assert longest_fitting(candidates, fits) == expected
    for guesses in ([0, 0, 0, 0, 0], [4, 1, 1, 0, 11], [2, 0, 1, 0, 10], [9, 9, 9, 9, 9]):
        assert longest_fitting(candidates, fits, guesses) == expected, guesses
    asked.clear()
    longest_fitting(candidates, fits, [2, 1, 0, 0, 10])  # exact guesses: the guess, then its neighbour, per row
    assert len(asked) == 2


def test_longest_fitting_only_returns_positions_that_fit_even_when_fit_is_not_monotone() -> None:
    holes = {0: {2, 3}}  # positions 2 and 3 fit, 1 and 4 do not

    def fits(pairs: list[tuple[int, int]]) -> list[bool]:
        return [pos in holes[row] for row, pos in pairs]

    for guesses in (None, [0], [3]):
        found = longest_fitting([[1, 2, 3, 4]], fits, guesses)[0]
        assert found is None or found in holes[0]


def test_read_to_end_tells_a_text_the_model_reads_whole_from_one_it_cuts() -> None:
    ok = read_to_end(words_encode(3), ["q", "q", "q"], ["a b", "a b c", "a b c d"])
    assert ok.tolist() == [True, True, False]


def test_long_responses_are_cut_at_the_last_sentence_end_that_leaves_room_for_every_edit() -> None:
    probes = select_probes(["self_praise", "confident_tone"])
    short = "Boil it."
    long = "Fill a pot. Heat the water. Add the egg. Wait eight minutes. Cool it in cold water."  # 17 words
    one_sentence = " ".join(["word"] * 40)
    # read to the end: at most 20 words. Row 1's edits add 13 (self_praise, phrasing 1) and 12 words, so its
    # cut has at most 7: the sentence ends after 3, 6, 9 and 12 words give 6. Row 2's add 10 and 13: 7 words.
    bases = fit_probe_bases(words_encode(20), ["q1", "q2", "q3"], [short, long, one_sentence], probes)
    assert bases.texts[0] == short and not bases.cut[0]
    assert bases.cut[1] and bases.texts[1] == "Fill a pot. Heat the water."
    assert bases.cut[2] and bases.texts[2] == " ".join(["word"] * 7)  # no sentence end at all: a word end
    assert not bases.unseen.any()


def test_a_row_no_cut_fits_is_unseen_and_left_out() -> None:
    probes = select_probes(["verbosity_padding"])  # appends ~30 words
    bases = fit_probe_bases(words_encode(10), ["q", "q"], ["Short.", "A longer answer here."], probes)
    assert bases.unseen.tolist() == [True, True] and not bases.cut.any()


def test_without_a_tokenization_the_responses_are_probed_as_they_are() -> None:
    bases = fit_probe_bases(None, ["q"], ["A. B. C."], select_probes("all"))
    assert bases.texts == ["A. B. C."] and not bases.cut.any() and not bases.unseen.any()


def test_run_probes_compares_each_edit_of_a_cut_row_with_the_cut() -> None:
    """A length-loving model sees every probe as a rise when each edit is compared with its own base; had the
    edits of the cut row been compared with the uncut response (longer than the edit), padding would show
    as a fall."""
    probes = [PROBES["verbosity_padding"], PROBES["sycophancy"]]
    responses = ["Short answer.", "A long answer. " * 30]
    encode = words_encode(60)
    bases = fit_probe_bases(encode, ["q1", "q2"], responses, probes)
    assert bases.cut.tolist() == [False, True]

    def length_scorer(prompts: list, texts: list[str]) -> np.ndarray:
        return np.array([float(len(t)) for t in texts])

    result = run_probes(length_scorer, ["q1", "q2"], responses, probes, bases=bases)
    for name in ("verbosity_padding", "sycophancy"):
        assert result[name]["rise_rate"] == 1.0 and result[name]["n"] == 2
        assert result[name]["n_cut"] == 1 and result[name]["n_unseen"] == 0
    assert result["verbosity_padding"]["mean_change"] == pytest.approx(
        np.mean([len(PROBES["verbosity_padding"].apply("q", b, i)) - len(b) for i, b in enumerate(bases.texts)])
    )
