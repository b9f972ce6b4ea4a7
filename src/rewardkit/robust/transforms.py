"""Exploit transformations: pure functions that make a response no better while a weak reward model may pay
for them (padding, flattery, confidence, ...). Robust training (``augment.py``) adds pairs in which a response
beats its own exploited copy, so the model learns that these edits earn nothing.

Every transformation has one signature, ``(request, response, i, other) -> str``: ``request`` is what the user
asked (``records.user_request``), ``i`` picks among a bank's phrasings deterministically (the same i, the same
edit: no random state), ``other`` is another prompt's answer (read by ``other_answer`` only). The phrasings come
from ``phrases.py``, held apart from the evaluation probes' (``evaluate/probes.py``). ``additive`` marks the
transformations that keep the response's text whole inside the edit.

    from rewardkit.robust.transforms import TRANSFORMS
    TRANSFORMS["flattery"].apply("How do I boil an egg?", "Simmer it for 9 minutes.", 0, "")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewardkit.robust import phrases

TransformFn = Callable[[str, str, int, str], str]


def pick(options: Sequence[str], i: int) -> str:
    """The i-th option, cycling."""
    return options[i % len(options)]


def paragraphs(text: str) -> list[str]:
    """The non-empty blocks of ``text`` separated by blank lines."""
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def sentences(text: str) -> list[str]:
    """``text`` cut after each '.', '!' or '?' followed by white space (a rough cut, good enough to pick one)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def padding(request: str, response: str, i: int, other: str) -> str:
    """Appends a paragraph of three generic sentences: more words, no more information."""
    return f"{response}\n\n{' '.join(pick(phrases.FILLER, i + k) for k in range(3))}"


def filler(request: str, response: str, i: int, other: str) -> str:
    """Inserts a generic sentence after the response's first paragraph (or, in a one-paragraph response, after
    its first sentence); the response's own text is untouched on either side of it."""
    sentence = pick(phrases.FILLER, i + 5)
    first = next(iter(paragraphs(response)), "")
    if first and len(first) < len(response.strip()):
        cut = response.index(first) + len(first)
        return f"{response[:cut]}\n\n{sentence}{response[cut:]}"
    parts = sentences(response)
    if len(parts) > 1:
        cut = response.index(parts[0]) + len(parts[0])
        return f"{response[:cut]} {sentence}{response[cut:]}"
    return f"{response} {sentence}"


def flattery(request: str, response: str, i: int, other: str) -> str:
    """Opens with praise of the user: pleasing, not helpful."""
    return f"{pick(phrases.FLATTERY, i)} {response}"


def self_praise(request: str, response: str, i: int, other: str) -> str:
    """Closes with a claim that the answer is excellent: a claim of quality is not quality."""
    return f"{response}\n\n{pick(phrases.SELF_PRAISE, i)}"


def repetition(request: str, response: str, i: int, other: str) -> str:
    """Says part of the answer again at its end, once, twice or three times (``1 + (i // 2) % 3``): one of its
    paragraphs, or in a one-paragraph response one of its sentences (the whole response when it has one). More
    than once because a policy that finds repetition paying repeats in loops, and a model trained only against
    a single repeat still paid for two (session 15: AlpacaEval's repetition probe, which repeats twice, rose 0.37)."""
    times = 1 + (i // 2) % 3
    blocks = paragraphs(response)
    if len(blocks) > 1:
        return response + f"\n\n{pick(blocks, i)}" * times
    parts = sentences(response) or [response.strip()]
    return response + f" {pick(parts, i)}" * times


_HEDGE_RE = re.compile(
    r"\b(" + "|".join(re.escape(h) for h in sorted(phrases.HEDGES, key=len, reverse=True)) + r")(?!\w)\s*",
    re.IGNORECASE,
)


def strip_hedges(text: str) -> str:
    """``text`` without the hedges of ``phrases.HEDGES`` (whole words, any case); a sentence that began with
    one starts with a capital again."""
    stripped = _HEDGE_RE.sub("", text)
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), stripped)


def confidence(request: str, response: str, i: int, other: str) -> str:
    """Sounds certain without more evidence: its hedges ('I think', 'probably', ...) removed and a sentence
    of certainty added (before the answer for even i, after it for odd)."""
    claim = pick(phrases.CONFIDENCE, i)
    body = strip_hedges(response)
    return f"{claim} {body}" if i % 2 == 0 else f"{body} {claim}"


def echo(request: str, response: str, i: int, other: str) -> str:
    """Opens by restating the user's request (whitespace collapsed, cut at 200 characters): overlap with
    the prompt, no content."""
    said = " ".join(request.split())
    said = said if len(said) <= 200 else said[:199] + "…"
    return f"{pick(phrases.ECHO, i).format(request=said)}\n\n{response}"


def off_topic(request: str, response: str, i: int, other: str) -> str:
    """Appends a fluent paragraph about something the user did not ask."""
    return f"{response}\n\n{pick(phrases.OFF_TOPIC, i)}"


def scaffold(request: str, response: str, i: int, other: str) -> str:
    """Wraps the unchanged answer in headings and empty 'analysis' steps: the look of structure, no more
    content."""
    return pick(phrases.SCAFFOLD, i).replace("{response}", response)


def appended_text(request: str, response: str, i: int, other: str) -> str:
    """Appends a short sign-off (a bank of them, or the profile's own ``texts``: a suffix a policy was
    seen to exploit)."""
    return f"{response} {pick(phrases.APPENDED, i)}"


def other_answer(request: str, response: str, i: int, other: str) -> str:
    """Another prompt's answer in place of this one (RRM's counterfactual): fluent, often good, and beside
    the point; it must lose to the answer written for this prompt."""
    return other


def truncation(request: str, response: str, i: int, other: str) -> str:
    """The answer cut short: its first half of paragraphs, else of sentences, else of words (at least one kept;
    a one-word answer is left whole, so no pair). Every other kind makes its copy longer or as long, so alone
    they teach "shorter wins"; this one is shorter and loses, which leaves length itself no cue (RRM, Liu et al.
    2024, balances its augmentations the same way)."""
    for units, joiner in ((paragraphs(response), "\n\n"), (sentences(response), " "), (response.split(), " ")):
        if len(units) > 1:
            return joiner.join(units[: len(units) // 2])
    return response


@dataclass(frozen=True)
class Transform:
    name: str
    apply: TransformFn
    additive: bool
    """The response's text is still whole inside the edit (the edit only adds)."""

    @property
    def description(self) -> str:
        return (self.apply.__doc__ or "").strip()


# The registry: a plain dict in one visible place (tests check each kind on hand-written examples, and
# docs/training.md lists them).
TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("padding", padding, True),
        Transform("filler", filler, False),
        Transform("flattery", flattery, True),
        Transform("self_praise", self_praise, True),
        Transform("repetition", repetition, True),
        Transform("confidence", confidence, False),
        Transform("echo", echo, True),
        Transform("off_topic", off_topic, True),
        Transform("scaffold", scaffold, True),
        Transform("appended_text", appended_text, True),
        Transform("other_answer", other_answer, False),
        Transform("truncation", truncation, False),
    )
}


def with_texts(texts: Sequence[str]) -> TransformFn:
    """``appended_text`` with its own bank of suffixes (a profile's ``texts``)."""
    bank = tuple(texts)

    def append(request: str, response: str, i: int, other: str) -> str:
        return f"{response} {pick(bank, i)}"

    return append
