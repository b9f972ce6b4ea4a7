"""Making every probe's edit visible to the model: cut a long response so the edit fits inside max_length.

A probe compares the score of an edited response with the score of the response. That says something about
the model only if the model reads the whole edit. It does not when the response already fills the token
limit: the response is cut from the right (``model/formatting.py``), so an appended sentence falls off the
end (the input is token for token the original's) and a prepended one pushes the response's last tokens
out (the comparison mixes "added flattery" with "lost the ending"). At max_length 256 this is most of a
long-answer dataset: 492 of 600 AlpacaEval chosen responses. Leaving those rows out measured the probes on
the short answers only.

So for such a row the probes run on a **cut** of the response instead: its longest prefix ending at a
sentence end (at a word boundary when no sentence end leaves room) for which the model reads every probe's
edit to its last token, and each edit is compared with that cut. The question stays the same - does adding
this text raise the score of this answer? - asked of as much of the answer as the model can read together
with the edit. One cut per row, shared by every probe, so the probes are compared on the same text. A row
where not even the first word leaves room (a tiny max_length) stays unseen and is left out of the figures.

"The model reads a text to its end" is asked of the scorer's own tokenization (``encode``), which says per row
whether it had to cut the response (``Encoded.response_cut``), for every template (encoder, decoder, chat).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.probe_records import Probe, ProbeBases, user_request
from rewardkit.records import Prompt

Encode = Callable[[list[Prompt], list[str]], Any]
"""The scorer's tokenization: (prompts, responses) -> an ``Encoded`` (``response_cut[i]``: row i's response was cut)."""

_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*(?=\s)")


def sentence_ends(text: str) -> list[int]:
    """Character positions (sorted, each < len(text)) where ``text[:pos]`` ends a sentence: after . ! ? or
    an ellipsis (with any closing quotes or brackets) followed by whitespace, or before a line break."""
    ends = {m.end() for m in _SENTENCE_END.finditer(text)} | {m.start() for m in re.finditer("\n", text)}
    return sorted(e for e in ends if e < len(text.rstrip()) and text[:e].strip())


def cut_at(text: str, position: int) -> str:
    """The cut of ``text`` at ``position``, trailing whitespace dropped."""
    return text[:position].rstrip()


def word_ends(text: str) -> list[int]:
    """Character positions (sorted, each < len(text)) where ``text[:pos]`` ends a word: before whitespace."""
    return [m.start() for m in re.finditer(r"(?<=\S)\s", text) if m.start() < len(text.rstrip())]


def longest_fitting(
    candidates: Sequence[Sequence[int]],
    fits: Callable[[list[tuple[int, int]]], Sequence[bool]],
    guesses: Sequence[int] | None = None,
) -> list[int | None]:
    """For each row r, the largest position in ``candidates[r]`` (sorted ascending) that ``fits``, or None.

    ``fits([(row, position), ...]) -> [bool, ...]`` is asked for many rows at once (one tokenizer call per
    round, not per row). It assumes a longer cut fits no better than a shorter one, and only ever returns a
    position ``fits`` said yes to. ``guesses[r]`` (an index into ``candidates[r]``) is asked first and the
    search gallops away from it (1, 2, 4... candidates) until the answer changes, then bisects: with a good
    guess that is two or three rounds instead of a bisection's log2(len) over the whole list."""
    n_rows = len(candidates)
    lo = [-1] * n_rows  # the largest index known to fit (-1: none yet)
    hi = [len(c) for c in candidates]  # the smallest index known not to fit (len: none yet)
    ask = (
        [min(max(g, 0), len(c) - 1) for g, c in zip(guesses, candidates)]
        if guesses is not None
        else [(len(c) - 1) // 2 for c in candidates]
    )
    step = [1] * n_rows
    while True:
        active = [r for r in range(n_rows) if hi[r] - lo[r] > 1]
        if not active:
            return [candidates[r][lo[r]] if lo[r] >= 0 else None for r in range(n_rows)]
        answers = fits([(r, candidates[r][ask[r]]) for r in active])
        for r, ok in zip(active, answers):
            if ok:
                lo[r] = ask[r]
            else:
                hi[r] = ask[r]
            if ok and hi[r] == len(candidates[r]):  # no failure above yet: gallop up
                ask[r] = min(lo[r] + step[r], hi[r] - 1)
            elif not ok and lo[r] == -1:  # no success below yet: gallop down
                ask[r] = max(hi[r] - step[r], 0)
            else:
                ask[r] = (lo[r] + hi[r]) // 2
            step[r] *= 2


def _added_chars(probes: Sequence[Probe], request: str, text: str, i: int) -> int:
    return max(len(probe.apply(request, text, i)) - len(text) for probe in probes)


def _guess(candidates: Sequence[int], limit: int, added: int) -> int:
    """Index of the largest candidate at most ``limit - added`` (0 when none is)."""
    return max(0, bisect.bisect_right(candidates, limit - added) - 1)


def read_to_end(encode: Encode, prompts: Sequence[Prompt], texts: Sequence[str]) -> np.ndarray:
    """(n,) bool: does the model input of (prompts[i], texts[i]) include the text's last token? (The
    tokenization says whether it cut the response: ``Encoded.response_cut``.)"""
    if not len(texts):
        return np.zeros(0, dtype=bool)
    return ~np.asarray(encode(list(prompts), list(texts)).response_cut, dtype=bool)


def fit_probe_bases(
    encode: Encode | None, prompts: Sequence[Prompt], responses: Sequence[str], probes: Sequence[Probe]
) -> ProbeBases:
    """The text each row's probes edit (see the module docstring). ``encode`` None (a scorer whose
    tokenization is unknown): every response as it is."""
    n = len(responses)
    texts = list(responses)
    cut, unseen = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if encode is None or not probes or not n:
        return ProbeBases(texts, cut, unseen)
    requests = [user_request(p) for p in prompts]

    # Two predicates on (row, text) lists, each one tokenizer call. Tokenizing is the whole cost (AlpacaEval's
    # answers run to thousands of characters), so the cheap one (the text alone: 1 tokenization per try)
    # narrows every search before the dear one (each probe's edit: 1 per probe per try) runs.
    def text_read(asked: list[tuple[int, str]]) -> np.ndarray:
        return read_to_end(encode, [prompts[r] for r, _ in asked], [text for _, text in asked])

    def edits_read(asked: list[tuple[int, str]]) -> np.ndarray:
        rows = [r for r, _ in asked]
        edits = [probe.apply(requests[r], text, r) for probe in probes for r, text in asked]
        return (
            read_to_end(encode, [prompts[r] for r in rows] * len(probes), edits)
            .reshape(len(probes), len(rows))
            .all(axis=0)
        )

    def longest(
        rows: list[int],
        candidates: list[list[int]],
        predicate: Callable[[list[tuple[int, str]]], np.ndarray],
        guesses: list[int] | None = None,
    ) -> list[int | None]:
        return longest_fitting(
            candidates, lambda asked: predicate([(rows[i], cut_at(texts[rows[i]], pos)) for i, pos in asked]), guesses
        )

    whole = text_read(list(enumerate(texts)))
    short = [r for r in range(n) if whole[r]]
    long_rows = sorted(
        [r for r in range(n) if not whole[r]]
        + [r for r, ok in zip(short, edits_read([(r, texts[r]) for r in short])) if not ok]
    )
    found: dict[int, int] = {}
    for boundaries in (sentence_ends, word_ends):  # a sentence end when one leaves room, else a word end
        todo = [r for r in long_rows if r not in found]
        candidates = [boundaries(texts[r]) for r in todo]
        # a cut the model cannot read to its end even alone leaves no room for an edit: search below the longest it can
        limits = longest(todo, candidates, text_read)
        candidates = [[c for c in cs if limit is not None and c <= limit] for cs, limit in zip(candidates, limits)]
        # first guess: the limit moved back by the most characters any probe adds to that cut (prose for prose)
        guesses = [
            _guess(cs, limit, _added_chars(probes, requests[r], cut_at(texts[r], limit), r))
            if cs and limit is not None
            else 0
            for r, cs, limit in zip(todo, candidates, limits)
        ]
        found.update(
            {r: pos for r, pos in zip(todo, longest(todo, candidates, edits_read, guesses)) if pos is not None}
        )
    for r in long_rows:
        if r in found:
            texts[r], cut[r] = cut_at(texts[r], found[r]), True
        else:
            unseen[r] = True
    return ProbeBases(texts, cut, unseen)
