"""Counterfactual augmentation: training pairs in which a response beats its own exploited copy.

    extra = augment_pairs(train_pairs, load_profile("default"), seed=0, invariance=False)
    train_pairs = train_pairs + extra          # training only: never validation or test

For each kind of the profile, ``share * N_total`` pairs are drawn (with a seeded RNG per kind) from the
training pairs, where ``N_total = N / (1 - total share)``, so that the kind makes up ``share`` of the epoch.
From each drawn pair one response, the chosen or the rejected (RRM: even the worse answer beats its own padded
copy), becomes ``chosen``, and its transformation ``rejected``. ``other_answer`` takes the answer of another
prompt's pair. An edit longer than the model reads is made on the response cut at a sentence end so the whole
edit fits (``fit_edit``, as the probes do at evaluation). With ``invariance``, rewrite pairs (``rewrites.py``:
the same answer presented differently) are added the same way; the loop trains them with the invariance penalty,
not as preferences.

Every added pair is marked: ``metadata["augmented"]`` is its kind (``invariance:<rewrite>`` for rewrites),
``metadata["augment_weight"]`` its loss weight, ``metadata["augmented_from"]`` the id of the pair it came from.
Being built from the training pairs after the split, none reaches validation or test.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from rewardkit.records import PreferencePair, content_hash, prompt_text, user_request
from rewardkit.robust.profile import Profile
from rewardkit.robust.rewrites import REWRITES
from rewardkit.robust.transforms import TRANSFORMS, TransformFn, with_texts

AUGMENTED = "augmented"
INVARIANCE = "invariance:"


def is_augmented(pair: PreferencePair) -> bool:
    return bool(pair.metadata.get(AUGMENTED))


def is_invariance(pair: PreferencePair) -> bool:
    return str(pair.metadata.get(AUGMENTED, "")).startswith(INVARIANCE)


def kind_counts(n: int, profile: Profile, invariance: bool) -> dict[str, int]:
    """How many pairs each kind adds to ``n`` training pairs so that it makes up its share of the epoch:
    round(share * n / (1 - total share)). With invariance, "invariance" counts the rewrite pairs."""
    total = n / (1.0 - profile.total_share(invariance))
    counts = {kind: round(spec.share * total) for kind, spec in profile.kinds.items()}
    if invariance:
        counts["invariance"] = round(profile.invariance_share * total)
    return counts


def augment_pairs(
    pairs: Sequence[PreferencePair],
    profile: Profile,
    seed: int = 0,
    invariance: bool = False,
    max_chars: int | None = None,
) -> list[PreferencePair]:
    """The augmented pairs for ``pairs`` (module docstring); deterministic given (pairs, profile, seed). An edit
    that changes nothing (a rewrite with nothing to rewrite, another answer equal to this one) is skipped.
    ``max_chars``: what the model reads of a response (``response_chars``); an edit longer than that is made on
    the response cut to leave it room (``fit_edit``)."""
    pairs = list(pairs)
    if not pairs:
        return []
    out: list[PreferencePair] = []
    for kind, count in kind_counts(len(pairs), profile, invariance).items():
        rng = random.Random(f"{seed}:{kind}")
        picks = rng.sample(range(len(pairs)), count) if count <= len(pairs) else rng.choices(range(len(pairs)), k=count)
        if kind == "invariance":
            names = list(REWRITES)
            for j, idx in enumerate(picks):
                source = pairs[idx]
                original = source.chosen if rng.random() < 0.5 else source.rejected
                name = names[j % len(names)]
                rewritten = REWRITES[name](original, j)
                if rewritten != original:
                    out.append(marked(source, original, rewritten, INVARIANCE + name, 1.0))
            continue
        spec = profile.kinds[kind]
        fn: TransformFn = with_texts(spec.texts) if spec.texts else TRANSFORMS[kind].apply
        for j, idx in enumerate(picks):
            source = pairs[idx]
            original = source.chosen if rng.random() < 0.5 else source.rejected
            if kind == "other_answer":
                exploited = fn(user_request(source.prompt), original, j, other_prompt_answer(pairs, idx, rng))
            else:
                original, exploited = fit_edit(fn, user_request(source.prompt), original, j, max_chars)
            if exploited.strip() and exploited != original:
                out.append(marked(source, original, exploited, kind, spec.weight))
    return out


def response_chars(max_length: int) -> int:
    """The characters of a response a model of ``max_length`` tokens surely reads: a long prompt is cut down to a
    quarter of the budget first (``model/formatting.py``), and English runs ~3.5-4.5 characters a token
    (3 here, on the safe side: cutting a little more than needed costs less than an edit the model never reads)."""
    return int(max_length * 0.75 * 3)


def cut_text(text: str, room: int) -> str:
    """``text``'s longest prefix of at most ``room`` characters ending at a sentence end (else a word end);
    "" when not even a word fits."""
    head = text[:room]
    ends = [head.rfind(mark) + len(mark) - 1 for mark in (". ", "! ", "? ", "\n")]
    end = max(ends)
    if end <= 0:
        end = head.rfind(" ")
    return head[: end + 1].rstrip() if end > 0 else ""


def fit_edit(fn: TransformFn, request: str, original: str, i: int, max_chars: int | None) -> tuple[str, str]:
    """(base, edit): the response and its edit, or, where the edit is longer than ``max_chars`` (the model would
    cut it from the right, and an appended sentence would fall off, making the two sides one input), the
    response cut at a sentence end so the whole edit fits, and the edit of that cut: what the probes do at
    evaluation (``evaluate/probe_fit.py``). Unchanged when no cut leaves room."""
    edit = fn(request, original, i, "")
    if max_chars is None or len(edit) <= max_chars:
        return original, edit
    cut = cut_text(original, max_chars - (len(edit) - len(original)))
    return (cut, fn(request, cut, i, "")) if cut else (original, edit)


def other_prompt_answer(pairs: Sequence[PreferencePair], idx: int, rng: random.Random) -> str:
    """The chosen answer of a random pair with another prompt ("" when every pair shares the prompt)."""
    own = prompt_text(pairs[idx].prompt)
    for _ in range(20):  # a few draws find another prompt unless nearly every pair shares this one
        other = pairs[rng.randrange(len(pairs))]
        if prompt_text(other.prompt) != own:
            return other.chosen
    return ""


def marked(source: PreferencePair, chosen: str, rejected: str, kind: str, weight: float) -> PreferencePair:
    """A new pair on ``source``'s prompt, marked as augmented (no soft label, margin, tie or attribute: the
    original is simply better than its exploited copy, on the aggregate reward)."""
    return replace(
        source,
        id=content_hash([source.id, kind, chosen, rejected]),
        chosen=chosen,
        rejected=rejected,
        tie=False,
        strength=None,
        margin=None,
        target=None,
        attribute=None,
        comparison_ids=(),
        metadata={AUGMENTED: kind, "augment_weight": weight, "augmented_from": source.id},
    )


def pair_roles(pairs: Sequence[PreferencePair]) -> tuple[list[float], list[bool]]:
    """(loss weight, is an invariance pair) per pair: an augmented pair's weight, 1 for a training pair. The
    loop multiplies the weights into the preference loss and trains the invariance pairs with the penalty."""
    weights = [float(p.metadata.get("augment_weight", 1.0)) if is_augmented(p) else 1.0 for p in pairs]
    return weights, [is_invariance(p) for p in pairs]


def augment_summary(pairs: Sequence[PreferencePair]) -> dict[str, int]:
    """Augmented pairs per kind (for the run's metrics and the model card)."""
    counts: dict[str, int] = {}
    for p in pairs:
        if is_augmented(p):
            kind = str(p.metadata[AUGMENTED])
            counts[kind] = counts.get(kind, 0) + 1
    return counts
