"""Compile stored comparisons into the preference pairs of a dataset snapshot.

The steps, in order (each rule is documented in ``docs/datasets.md`` and counted in the manifest):

1. **select** comparisons by filters (source, annotator kind, attribute, date range);
2. **convert** every judgement into labelled pairs (``pairs_from_comparison``): a pairwise choice gives one
   pair, a ranking gives pairs by ``ranking_rule``, ratings give a pair for every two responses whose ratings
   differ by at least ``rating_threshold``;
3. **ties**: a tie or a both-bad verdict (no preference) is kept as ``tie=True`` or dropped;
4. **dedupe and conflicts**: labels of the same pair (same prompt, same two responses, same attribute; after
   whitespace/case normalisation by default) are merged; labels that disagree are a conflict, resolved by
   majority or dropped;
5. **balance** (optional): downsample every source to the smallest one (or a cap); assign the display
   position so the chosen response is ``a`` in exactly half of the pairs;
6. **split** by prompt: a hash of the normalised prompt and the seed puts all of a prompt's pairs in one of
   train / validation / test;
7. **length balance** (optional, train split only): downsample the pairs whose chosen response is the longer
   one until chosen-is-shorter pairs make up a given share of the unequal-length pairs.

Library use::

    from rewardkit.data.compile import CompileConfig, compile_pairs
    with session_scope(open_store()) as s:
        result = compile_pairs(s, CompileConfig(sources=("hh-rlhf",)))
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from rewardkit.records import (
    ANNOTATOR_KINDS,
    Comparison,
    PairwiseJudgement,
    PreferencePair,
    Prompt,
    RankingJudgement,
    RatingsJudgement,
    canonical_json,
    content_hash,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RankingRule = Literal["all", "best_vs_rest", "adjacent"]
DedupeMode = Literal["exact", "normalized"]
ConflictPolicy = Literal["majority", "drop"]
SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")


class CompileError(ValueError):
    """A compile option is invalid (the message names the option)."""


def check_fractions(fractions: tuple[float, ...]) -> None:
    """Train / validation / test shares: three, non-negative, summing to 1."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise CompileError(f"fractions: expected three non-negative shares summing to 1, got {list(fractions)}")


def check_annotator_kinds(kinds: tuple[str, ...] | None) -> None:
    for kind in kinds or ():
        if kind not in ANNOTATOR_KINDS:
            raise CompileError(f"annotator_kinds: expected any of {', '.join(ANNOTATOR_KINDS)}, got {kind!r}")


@dataclass(frozen=True)
class CompileConfig:
    """Everything that decides a snapshot's content. Two builds with equal configs over the same store
    give the same snapshot id."""

    sources: tuple[str, ...] | None = None
    """Keep only comparisons from these source datasets (None: all)."""
    annotator_kinds: tuple[str, ...] | None = None
    """Keep only these annotator kinds (human, ai, implicit, rule; None: all)."""
    attributes: tuple[str | None, ...] | None = None
    """Keep only these attributes; None inside the tuple selects overall preferences (None: all)."""
    since: datetime | None = None
    """Keep comparisons created at or after this time."""
    until: datetime | None = None
    """Keep comparisons created before this time."""
    ranking_rule: RankingRule = "all"
    """Ranking -> pairs: ``all`` (every better-worse pair, k(k-1)/2), ``best_vs_rest`` (the top response
    against each other, k-1) or ``adjacent`` (each response against the next one down, k-1)."""
    rating_attribute: str | None = None
    """Which rating to compare: None uses ``overall`` when rated, else the mean of the rated attributes."""
    rating_threshold: float = 1.0
    """Two rated responses make a pair when their ratings differ by at least this much (equal ratings are
    a tie; smaller non-zero gaps are skipped as too close to call)."""
    rating_scale: float | None = None
    """Width of the rating scale (4 for 1-5 ratings); when set, a rating pair's strength is gap / width."""
    keep_ties: bool = False
    """Keep ties and both-bad verdicts as ``tie=True`` pairs (dropped by default: they carry no preference)."""
    dedupe: DedupeMode = "normalized"
    """``exact``: identical texts are the same pair; ``normalized``: also texts equal after collapsing
    whitespace and case-folding."""
    conflicts: ConflictPolicy = "majority"
    """Labels of one pair that disagree: keep the majority verdict (a tie between verdicts drops the
    pair), or ``drop`` every conflicting pair."""
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Train / validation / test shares of prompts."""
    seed: int = 0
    """Salt of the split hash and of the balancing order."""
    balance_sources: bool = False
    """Downsample every source to the size of the smallest selected source."""
    max_per_source: int | None = None
    """Cap every source at this many pairs (applied with or without ``balance_sources``)."""
    source_caps: tuple[tuple[str, int], ...] = ()
    """(source, cap) pairs: cap only these sources at their own number of pairs (with ``max_per_source`` and
    ``balance_sources``: the smallest limit applies; ``balance_sources`` balances to the smallest source after
    these caps). Each must name a source of the selected comparisons."""
    source_weights: tuple[tuple[str, float], ...] = ()
    """(source, weight) pairs: the train split's pairs of these sources get this relative loss weight (``weight``
    of each pair; training rescales all weights to mean 1, so only their ratios matter). Validation and test stay
    unweighted, so their figures are what users meet. Each must name a source of the selected comparisons."""
    balance_positions: bool = False
    """Assign display positions so the chosen response is ``a`` in half the pairs (a/b exports)."""
    length_balance: float = 0.0
    """In the train split only, downsample the pairs whose chosen response is the longer one (in characters)
    until chosen-is-shorter pairs make up at least this share of the unequal-length pairs (0: off). Judges
    that favour length make "longer wins" a shortcut a model learns instead of quality; validation and test
    keep the natural mix, so their accuracy is what users will see."""

    def __post_init__(self) -> None:
        if self.ranking_rule not in ("all", "best_vs_rest", "adjacent"):
            raise CompileError(f"ranking_rule: expected all, best_vs_rest or adjacent, got {self.ranking_rule!r}")
        if self.dedupe not in ("exact", "normalized"):
            raise CompileError(f"dedupe: expected exact or normalized, got {self.dedupe!r}")
        if self.conflicts not in ("majority", "drop"):
            raise CompileError(f"conflicts: expected majority or drop, got {self.conflicts!r}")
        check_fractions(self.fractions)
        if self.rating_threshold <= 0:
            raise CompileError(f"rating_threshold: expected a positive number, got {self.rating_threshold}")
        if self.rating_scale is not None and self.rating_scale <= 0:
            raise CompileError(f"rating_scale: expected a positive number, got {self.rating_scale}")
        if not 0.0 <= self.length_balance < 1.0:
            raise CompileError(f"length_balance: expected a share in [0, 1), got {self.length_balance}")
        if self.max_per_source is not None and self.max_per_source < 1:
            raise CompileError(f"max_per_source: expected at least 1, got {self.max_per_source}")
        for option, items, valid, expected in (
            ("source_caps", self.source_caps, lambda v: isinstance(v, int) and v >= 1, "a whole number >= 1"),
            ("source_weights", self.source_weights, lambda v: math.isfinite(v) and v > 0, "a positive number"),
        ):
            names = [name for name, _ in items]
            for name, value in items:
                if not name:
                    raise CompileError(f"{option}: a source name is required, got {name!r}={value}")
                if not valid(value):
                    raise CompileError(f"{option} {name}: expected {expected}, got {value}")
                if names.count(name) > 1:
                    raise CompileError(f"{option} {name}: given more than once")
        check_annotator_kinds(self.annotator_kinds)

    def as_json(self) -> dict[str, Any]:
        """The config as JSON (what the manifest records and the snapshot id hashes)."""
        d = asdict(self)
        for key in ("since", "until"):
            d[key] = d[key].isoformat() if d[key] else None
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        # off: left out, so snapshots built before the option keep their ids
        for key in ("length_balance", "source_caps", "source_weights"):
            if not d[key]:
                del d[key]
        return d


# --- labels: one judged pair before dedupe ------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """One verdict on one pair of responses. ``x`` precedes ``y`` in the comparison's response order;
    ``verdict`` is ``x`` (x preferred), ``y`` or ``tie`` (tie and both-bad: no preference)."""

    prompt: Prompt
    prompt_id: str
    x: str
    y: str
    verdict: Literal["x", "y", "tie"]
    origin: str  # pairwise | ranking | ratings
    strength: float | None
    margin: float | None
    source: str
    annotator_kind: str
    attribute: str | None
    comparison_id: str
    both_bad: bool = False
    probability: float | None = None  # P(x better than y): a source's soft label (AlpacaEval), else None
    ratings: tuple[float | None, float | None] | None = None  # x's and y's ratings (origin "ratings")


def _ranking_pairs(order: tuple[int, ...], rule: RankingRule) -> list[tuple[int, int]]:
    """(better, worse) response indices of a ranking (``order`` lists indices best first)."""
    if rule == "all":
        return [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    if rule == "best_vs_rest":
        return [(order[0], worse) for worse in order[1:]]
    return [(order[i], order[i + 1]) for i in range(len(order) - 1)]


def _ratings_for(judgement: RatingsJudgement, attribute: str | None) -> list[float | None]:
    """The rating of each response under the documented rule (None where a response is unrated)."""
    ratings = judgement.ratings
    if attribute is not None:
        return list(ratings.get(attribute, (None,) * len(next(iter(ratings.values())))))
    if "overall" in ratings:
        return list(ratings["overall"])
    k = len(next(iter(ratings.values())))
    means: list[float | None] = []
    for i in range(k):
        rated = [v[i] for v in ratings.values() if v[i] is not None]
        means.append(sum(rated) / len(rated) if rated else None)
    return means


def rating_pairs(
    ratings: list[float | None], threshold: float, scale: float | None
) -> list[tuple[int, int, float | None, float]]:
    """(i, j, strength, gap) for every i < j both rated with gap = |r_i - r_j| >= threshold (i is the better
    one, so i may be > j), plus equal ratings as ties marked by gap 0. Gaps in (0, threshold) are skipped."""
    out = []
    for i in range(len(ratings)):
        for j in range(i + 1, len(ratings)):
            ri, rj = ratings[i], ratings[j]
            if ri is None or rj is None:
                continue
            gap = abs(ri - rj)
            if gap == 0:
                out.append((i, j, None, 0.0))
            elif gap >= threshold:
                strength = min(1.0, gap / scale) if scale else None
                out.append((i, j, strength, gap) if ri > rj else (j, i, strength, gap))
    return out


def pairs_from_comparison(c: Comparison, comparison_id: str, prompt_id: str, config: CompileConfig) -> list[Label]:
    """Every labelled pair a comparison yields under the config's conversion rules (ties included)."""
    texts = [r.text for r in c.responses]
    common = {
        "prompt": c.prompt,
        "prompt_id": prompt_id,
        "source": c.source,
        "annotator_kind": c.annotator.kind,
        "attribute": c.attribute,
        "comparison_id": comparison_id,
    }
    j = c.judgement

    def label(
        better: int,
        worse: int,
        verdict_tie: bool,
        origin: str,
        strength: float | None,
        margin: float | None,
        both_bad: bool = False,
        probability: float | None = None,
        rated: list[float | None] | None = None,
    ) -> Label:
        lo, hi = min(better, worse), max(better, worse)  # x/y keep the comparison's own order
        verdict = "tie" if verdict_tie else ("x" if better == lo else "y")
        return Label(
            x=texts[lo],
            y=texts[hi],
            verdict=verdict,
            origin=origin,
            strength=strength,
            margin=margin,
            both_bad=both_bad,
            probability=probability,
            ratings=None if rated is None else (rated[lo], rated[hi]),
            **common,
        )  # type: ignore[arg-type]

    if isinstance(j, PairwiseJudgement):
        if j.choice in ("tie", "both_bad"):
            return [label(0, 1, True, "pairwise", j.strength, j.margin, j.choice == "both_bad", j.probability)]
        better = 0 if j.choice == "a" else 1  # x is response 0 ('a'): the judgement's probability is P(x better)
        return [label(better, 1 - better, False, "pairwise", j.strength, j.margin, probability=j.probability)]
    if isinstance(j, RankingJudgement):
        return [label(b, w, False, "ranking", None, None) for b, w in _ranking_pairs(j.order, config.ranking_rule)]
    ratings = _ratings_for(j, config.rating_attribute)
    return [
        label(b, w, gap == 0, "ratings", s, gap, rated=ratings)
        for b, w, s, gap in rating_pairs(ratings, config.rating_threshold, config.rating_scale)
    ]


# --- normalisation, identity and verdict voting ------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def normalize_text(text: str) -> str:
    """Whitespace runs collapse to one space, the ends are stripped, case is folded. (Cached: every label
    is compared several times while grouping and voting; str.split is ~10x faster than a regex here.)"""
    return " ".join(text.split()).casefold()


def normalize_prompt(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return normalize_text(prompt)
    return canonical_json([{"role": m["role"], "content": normalize_text(m["content"])} for m in prompt])


def _response_norm(label: Label, mode: DedupeMode) -> Callable[[str], str]:
    """How a label's responses are compared: normalised, unless normalisation would make its two responses
    equal (``GARDEN`` vs ``garden`` answering "write it in capitals"): then only exact text tells them apart."""
    if mode == "normalized" and normalize_text(label.x) != normalize_text(label.y):
        return normalize_text
    return lambda t: t


def pair_key(label: Label, mode: DedupeMode) -> tuple[str, str, str, str | None]:
    """The identity of a pair: prompt, the two responses as an unordered set, and the attribute."""
    norm = _response_norm(label, mode)
    prompt = normalize_prompt(label.prompt) if mode == "normalized" else canonical_json(label.prompt)
    a, b = sorted((norm(label.x), norm(label.y)))
    return prompt, a, b, label.attribute


def winner_text(label: Label) -> str | None:
    return None if label.verdict == "tie" else (label.x if label.verdict == "x" else label.y)


TIE = "\x00tie"  # the verdict key of a tie: no response text can equal it


def verdict_key(label: Label, mode: DedupeMode) -> str:
    """The verdict as the preferred response's (normalised) text, so x/y order does not matter."""
    win = winner_text(label)
    return TIE if win is None else _response_norm(label, mode)(win)


def group_labels(labels: Iterable[Label], mode: DedupeMode) -> dict[tuple[str, str, str, str | None], list[Label]]:
    groups: dict[tuple[str, str, str, str | None], list[Label]] = {}
    for label in labels:
        groups.setdefault(pair_key(label, mode), []).append(label)
    return groups


# --- the compile result --------------------------------------------------------------------------------


@dataclass
class CompileCounts:
    comparisons_selected: int = 0
    labels: int = 0
    labels_by_origin: dict[str, int] = field(default_factory=lambda: {"pairwise": 0, "ranking": 0, "ratings": 0})
    ties_found: int = 0
    ties_kept: int = 0
    ties_dropped: int = 0
    duplicates_exact: int = 0
    duplicates_normalized: int = 0
    conflicts_found: int = 0
    conflicts_resolved: int = 0
    conflicts_dropped: int = 0
    conflict_labels_removed: int = 0
    balanced_away: int = 0
    length_balanced_away: int = 0
    pairs: int = 0
    per_split: dict[str, int] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    per_source_before_balancing: dict[str, int] = field(default_factory=dict)
    """Each source's pairs after dedupe and conflicts, before the caps and balancing (``per_source``: after)."""


@dataclass
class CompileResult:
    splits: dict[str, list[PreferencePair]]
    counts: CompileCounts
    conflicts: list[dict[str, Any]]  # one entry per conflicting pair: prompt, responses, votes, outcome


def _merge(
    group: list[Label], mode: DedupeMode, policy: ConflictPolicy, counts: CompileCounts, conflicts: list[dict[str, Any]]
) -> Label | None:
    """One label for a group of labels of the same pair, counting duplicates and conflicts."""
    votes = Counter(verdict_key(lab, mode) for lab in group)
    if len(votes) == 1:
        winner = next(iter(votes))
    else:
        counts.conflicts_found += 1
        ranked = votes.most_common()
        resolvable = policy == "majority" and ranked[0][1] > ranked[1][1]
        winner = ranked[0][0] if resolvable else None
        counts.conflicts_resolved += int(resolvable)
        counts.conflicts_dropped += int(not resolvable)
        first = group[0]
        conflicts.append(
            {
                "prompt": first.prompt,
                "responses": [first.x, first.y],
                "attribute": first.attribute,
                "votes": {("tie" if v == TIE else v): n for v, n in ranked},
                "outcome": "majority" if resolvable else "dropped",
                "comparison_ids": sorted({lab.comparison_id for lab in group}),
            }
        )
        if winner is None:
            counts.conflict_labels_removed += len(group)
            return None
    agreeing = [lab for lab in group if verdict_key(lab, mode) == winner]
    counts.conflict_labels_removed += len(group) - len(agreeing)
    # A repeat of a label already seen character for character is an exact duplicate; one that only matches
    # after normalisation is a normalised duplicate. The pair keeps the exact wording most labels used
    # (the earliest such label on a tie), so one oddly-cased copy does not replace the common form.
    forms: Counter[tuple[str, ...]] = Counter()
    first_of: dict[tuple[str, ...], Label] = {}
    for lab in agreeing:
        exact = (canonical_json(lab.prompt), *sorted((lab.x, lab.y)), winner_text(lab) or TIE)
        if exact in forms:
            counts.duplicates_exact += 1
        elif forms:
            counts.duplicates_normalized += 1
        forms[exact] += 1
        first_of.setdefault(exact, lab)
    return first_of[forms.most_common(1)[0][0]]


def _unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (the split and balancing dice)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(prompt: Prompt, seed: int, fractions: tuple[float, float, float]) -> str:
    """train / validation / test for a prompt: every pair of a prompt (after normalisation) lands together."""
    u = _unit_hash(seed, content_hash({"prompt": normalize_prompt(prompt)}))
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "validation"
    return "test"


def _to_pair(label: Label, group: list[Label], mode: DedupeMode) -> PreferencePair:
    winner = verdict_key(label, mode)
    supporting = [lab for lab in group if verdict_key(lab, mode) == winner]
    tie = label.verdict == "tie"
    chosen, rejected = (label.x, label.y) if label.verdict in ("x", "tie") else (label.y, label.x)
    metadata: dict[str, Any] = {
        "origin": label.origin,
        # where the chosen response sat in the source comparison: the a/b exports use this unless
        # position balancing reassigns it
        "chosen_position": "a" if label.verdict in ("x", "tie") else "b",
        "labels": len(group),
    }
    if label.both_bad:
        metadata["both_bad"] = True
    if label.ratings is not None:  # [chosen's, rejected's]: --loss regression trains on them (train/lists.py)
        metadata["ratings"] = list(label.ratings if label.verdict != "y" else label.ratings[::-1])
    if len(group) > len(supporting):
        metadata["agreeing_labels"] = len(supporting)
    return PreferencePair(
        id=content_hash(
            {"prompt": label.prompt, "chosen": chosen, "rejected": rejected, "tie": tie, "attribute": label.attribute}
        ),
        prompt=label.prompt,
        chosen=chosen,
        rejected=rejected,
        tie=tie,
        strength=label.strength,
        margin=label.margin,
        source=label.source,
        annotator_kind=label.annotator_kind,
        attribute=label.attribute,
        prompt_id=label.prompt_id,
        comparison_ids=tuple(sorted({lab.comparison_id for lab in supporting})),
        metadata=metadata,
        target=soft_target(label),
    )


def soft_target(label: Label) -> float | None:
    """P(chosen better) of the pair a label becomes: its soft label P(x better), turned round when y is chosen."""
    if label.probability is None:
        return None
    return 1.0 - label.probability if label.verdict == "y" else label.probability


def source_limits(sizes: dict[str, int], config: CompileConfig) -> dict[str, int]:
    """How many pairs each source keeps: its size, cut to its own cap (``source_caps``), to ``max_per_source``,
    and with ``balance_sources`` to the smallest source after those caps."""
    caps = dict(config.source_caps)
    limits = {
        name: min(n, caps.get(name, n), n if config.max_per_source is None else config.max_per_source)
        for name, n in sizes.items()
    }
    if config.balance_sources and limits:
        smallest = min(limits.values())
        limits = dict.fromkeys(limits, smallest)
    return limits


def check_source_names(config: CompileConfig, selected: set[str]) -> None:
    """A cap or weight for a source the selection does not hold is a typo, or a filter that left it out: an
    error naming it (silently capping nothing would hide it)."""
    for option, items in (("source_caps", config.source_caps), ("source_weights", config.source_weights)):
        for name, _ in items:
            if name not in selected:
                raise CompileError(
                    f"{option} {name}: no such source in the selected comparisons "
                    f"(their sources: {', '.join(sorted(selected)) or 'none'})"
                )


def _balance_sources(pairs: list[PreferencePair], config: CompileConfig, counts: CompileCounts) -> list[PreferencePair]:
    """Downsample each source to its ``source_limits``, keeping the pairs with the lowest hash."""
    by_source: dict[str, list[PreferencePair]] = {}
    for p in pairs:
        by_source.setdefault(p.source, []).append(p)
    counts.per_source_before_balancing = {name: len(group) for name, group in sorted(by_source.items())}
    limits = source_limits(counts.per_source_before_balancing, config)
    if all(limits[name] == len(group) for name, group in by_source.items()):
        return pairs
    kept_ids: set[str] = set()
    for name, group in by_source.items():
        group = sorted(group, key=lambda p: _unit_hash(config.seed, "balance", p.id))
        kept_ids.update(p.id for p in group[: limits[name]])
    kept = [p for p in pairs if p.id in kept_ids]
    counts.balanced_away = len(pairs) - len(kept)
    return kept


def _weigh_sources(pairs: list[PreferencePair], config: CompileConfig) -> list[PreferencePair]:
    """The train split's pairs with their source's ``source_weights`` entry as their loss weight."""
    weights = dict(config.source_weights)
    return [replace(p, weight=weights[p.source]) if p.source in weights else p for p in pairs]


def _balance_positions(pairs: list[PreferencePair], seed: int) -> list[PreferencePair]:
    """Chosen goes to 'a' for every other pair in hash order: exactly half (rounded up) of the pairs."""
    order = sorted(range(len(pairs)), key=lambda i: _unit_hash(seed, "position", pairs[i].id))
    out = list(pairs)
    for rank, i in enumerate(order):
        p = pairs[i]
        out[i] = PreferencePair(
            **{**p.__dict__, "metadata": {**p.metadata, "chosen_position": "a" if rank % 2 == 0 else "b"}}
        )
    return out


def length_balance_keep(chosen_shorter: int, chosen_longer: int, share: float) -> int:
    """How many chosen-is-longer pairs to keep so chosen-is-shorter ones are at least ``share`` of the two:
    the largest k with shorter / (shorter + k) >= share (all of them when that holds already)."""
    if share <= 0.0:
        return chosen_longer
    # shorter / (shorter + k) >= share  <=>  k <= shorter * (1 - share) / share; the epsilon keeps exact
    # ratios such as 0.5 from losing a pair to float rounding
    return min(chosen_longer, int(chosen_shorter * (1.0 - share) / share + 1e-9))


def _balance_length(pairs: list[PreferencePair], config: CompileConfig, counts: CompileCounts) -> list[PreferencePair]:
    """Keep the chosen-is-longer pairs with the lowest hash, as many as ``length_balance_keep`` allows."""
    longer = [p for p in pairs if not p.tie and len(p.chosen) > len(p.rejected)]
    shorter = sum(1 for p in pairs if not p.tie and len(p.chosen) < len(p.rejected))
    keep = length_balance_keep(shorter, len(longer), config.length_balance)
    if keep == len(longer):
        return pairs
    dropped = {p.id for p in sorted(longer, key=lambda p: _unit_hash(config.seed, "length", p.id))[keep:]}
    counts.length_balanced_away = len(dropped)
    return [p for p in pairs if p.id not in dropped]


def compile_labels(labels: Iterable[Label], config: CompileConfig, *, comparisons_selected: int = 0) -> CompileResult:
    """Ties, dedupe, conflicts, balancing and splitting over already converted labels (pure: no store)."""
    counts = CompileCounts(comparisons_selected=comparisons_selected)
    kept: list[Label] = []
    selected_sources: set[str] = set()  # ties included: what a cap or weight may name
    for lab in labels:
        counts.labels += 1
        selected_sources.add(lab.source)
        counts.labels_by_origin[lab.origin] += 1
        if lab.verdict == "tie":
            counts.ties_found += 1
            if not config.keep_ties:
                counts.ties_dropped += 1
                continue
        kept.append(lab)
    conflicts: list[dict[str, Any]] = []
    pairs = []
    for group in group_labels(kept, config.dedupe).values():
        merged = _merge(group, config.dedupe, config.conflicts, counts, conflicts)
        if merged is not None:
            pairs.append(_to_pair(merged, group, config.dedupe))
    check_source_names(config, selected_sources)
    pairs = _balance_sources(pairs, config, counts)
    if config.balance_positions:
        pairs = _balance_positions(pairs, config.seed)
    counts.ties_kept = sum(p.tie for p in pairs)
    splits: dict[str, list[PreferencePair]] = {name: [] for name in SPLIT_NAMES}
    for p in pairs:
        splits[split_of(p.prompt, config.seed, config.fractions)].append(p)
    if config.length_balance:
        splits["train"] = _balance_length(splits["train"], config, counts)
        pairs = [p for rows in splits.values() for p in rows]
    if config.source_weights:
        splits["train"] = _weigh_sources(splits["train"], config)
    for rows in splits.values():
        rows.sort(key=lambda p: p.id)  # the content order, independent of store iteration order
    counts.pairs = len(pairs)
    counts.per_split = {name: len(rows) for name, rows in splits.items()}
    counts.per_source = dict(sorted(Counter(p.source for p in pairs).items()))
    return CompileResult(splits=splits, counts=counts, conflicts=conflicts)


def comparison_filter(config: CompileConfig) -> Any:
    """The store filter of a config's selection fields."""
    from rewardkit.store.queries import ComparisonFilter

    return ComparisonFilter(config.sources, config.annotator_kinds, config.attributes, config.since, config.until)


def compile_pairs(
    session: Session, config: CompileConfig, *, on_comparison: Callable[[], None] | None = None
) -> CompileResult:
    """Select, convert, dedupe, resolve, balance and split: the content of a snapshot. ``on_comparison``
    is called once per comparison read (a progress bar's advance)."""
    from rewardkit.store.queries import iter_comparisons

    selected = 0
    labels: list[Label] = []
    for stored in iter_comparisons(session, comparison_filter(config)):
        selected += 1
        labels.extend(pairs_from_comparison(stored.comparison, stored.id, stored.prompt_id, config))
        if on_comparison is not None:
            on_comparison()
    return compile_labels(labels, config, comparisons_selected=selected)
