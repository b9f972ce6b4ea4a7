"""The training phrase bank and the evaluation probes' phrasings are held apart: no sentence, nor any run of five
words, is shared either way, so that a probe's rise rate falling after robust training shows generalization,
not sentences the model memorized."""

from __future__ import annotations

import re

from rewardkit.evaluate.probes import PROBES
from rewardkit.robust import phrases
from rewardkit.robust.transforms import TRANSFORMS

REQUEST = "How long should I boil an egg?"
MARKER = "Zqx marker answer."


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def sentences(text: str) -> set[str]:
    return {" ".join(words(s)) for s in re.split(r"(?<=[.!?:])\s+|\n+", text) if words(s)}


def ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[k : k + n]) for k in range(len(w) - n + 1)}


def added_text(apply, i: int) -> str:
    """What an edit adds around a marker answer (the probes' and the transforms' alike)."""
    return apply(REQUEST, MARKER, i).replace(MARKER, "\n").replace(REQUEST, "\n")


def probe_texts() -> list[str]:
    return [added_text(p.apply, i) for p in PROBES.values() for i in range(12)]


def training_texts() -> list[str]:
    banks = [s for bank in phrases.BANKS.values() for s in bank]
    edits = [added_text(lambda q, r, i, t=t: t.apply(q, r, i, ""), i) for t in TRANSFORMS.values() for i in range(12)]
    return banks + edits


def test_no_sentence_is_in_both_the_training_bank_and_the_probes() -> None:
    probe = set().union(*(sentences(t) for t in probe_texts()))
    train = set().union(*(sentences(t) for t in training_texts()))
    assert probe and train
    assert not probe & train, probe & train


def test_no_five_word_run_is_shared_either_way() -> None:
    probe = set().union(*(ngrams(t) for t in probe_texts()))
    train = set().union(*(ngrams(t) for t in training_texts()))
    assert len(probe) > 50 and len(train) > 100
    assert not probe & train, sorted(probe & train)[:5]


def test_the_check_would_catch_a_copied_probe_sentence() -> None:
    copied = [*training_texts(), "It is worth noting that there are many aspects to consider here."]
    probe = set().union(*(sentences(t) for t in probe_texts()))
    assert probe & set().union(*(sentences(t) for t in copied))
