"""What the store holds, before anyone trains on it: ``rewardkit data stats``.

- counts of comparisons by source, annotator kind, attribute and judgement kind;
- the tie rate: the share of labels (pairs after converting rankings and ratings, see ``data/compile.py``)
  that state no preference (tie or both-bad);
- lengths of chosen vs rejected responses over the non-tie labels, in characters and words (mean, median,
  p90), and the share of labels whose chosen response is the longer one: the first look at length bias
  (a reward model can score well on such data by preferring length alone);
- agreement where the same pair (same prompt, responses and attribute, after normalisation) was labelled
  more than once: the share of such pairs whose labels all agree, and the pairwise agreement over every
  two labels of a pair with its chance-corrected kappa.

Kappa here is Fleiss-style: the chance agreement is the sum of squared pooled shares of the three verdicts
(first response better, second better, tie; "first" is the lexically smaller normalised text, so the order
a source happened to present the responses in does not matter).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rewardkit.data.compile import (
    TIE,
    CompileConfig,
    Label,
    group_labels,
    pair_key,
    pairs_from_comparison,
    verdict_key,
    winner_text,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from rewardkit.store.queries import ComparisonFilter


@dataclass(frozen=True)
class Distribution:
    mean: float
    median: float
    p90: float


def distribution(values: list[float]) -> Distribution | None:
    """Mean, median and 90th percentile (nearest rank: the smallest value with >= 90% of values at or
    below it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-9 * len(ordered) // 10))  # ceil(0.9 n)
    return Distribution(
        mean=statistics.fmean(ordered), median=float(statistics.median(ordered)), p90=float(ordered[rank - 1])
    )


@dataclass(frozen=True)
class Agreement:
    pairs_labelled_more_than_once: int
    labels_on_those_pairs: int
    share_all_agree: float | None
    pairwise_agreement: float | None
    kappa: float | None


def agreement(groups: Iterable[list[Label]]) -> Agreement:
    """Agreement over the groups (labels of one pair) that hold two or more labels."""
    multi = [g for g in groups if len(g) >= 2]
    if not multi:
        return Agreement(0, 0, None, None, None)
    all_agree = 0
    agreeing_pairs = total_pairs = 0
    pooled: Counter[str] = Counter()
    for group in multi:
        first = min(pair_key(group[0], "normalized")[1:3])
        verdicts = []
        for lab in group:
            win = verdict_key(lab, "normalized")
            verdicts.append("tie" if win == TIE else ("first" if win == first else "second"))
        pooled.update(verdicts)
        counts = Counter(verdicts)
        all_agree += len(counts) == 1
        n = len(verdicts)
        total_pairs += n * (n - 1) // 2
        agreeing_pairs += sum(c * (c - 1) // 2 for c in counts.values())
    observed = agreeing_pairs / total_pairs
    labels = sum(pooled.values())
    chance = sum((c / labels) ** 2 for c in pooled.values())
    kappa = (observed - chance) / (1 - chance) if chance < 1 else None
    return Agreement(len(multi), labels, all_agree / len(multi), observed, kappa)


def _words(text: str) -> int:
    return len(text.split())


def label_stats(labels: list[Label]) -> dict[str, Any]:
    """Tie rate, length distributions and agreement over labels (pure: no store)."""
    ties = sum(lab.verdict == "tie" for lab in labels)
    decided = [(w, lab.y if w == lab.x else lab.x) for lab in labels if (w := winner_text(lab)) is not None]
    chosen_chars = [float(len(c)) for c, _ in decided]
    rejected_chars = [float(len(r)) for _, r in decided]
    lengths = {
        "chosen_chars": distribution(chosen_chars),
        "rejected_chars": distribution(rejected_chars),
        "chosen_words": distribution([float(_words(c)) for c, _ in decided]),
        "rejected_words": distribution([float(_words(r)) for _, r in decided]),
        "share_chosen_longer": sum(len(c) > len(r) for c, r in decided) / len(decided) if decided else None,
        "share_same_length": sum(len(c) == len(r) for c, r in decided) / len(decided) if decided else None,
    }
    return {
        "labels": len(labels),
        "labels_by_origin": dict(sorted(Counter(lab.origin for lab in labels).items())),
        "ties": ties,
        "tie_rate": ties / len(labels) if labels else None,
        "lengths": {k: asdict(v) if isinstance(v, Distribution) else v for k, v in lengths.items()},
        "agreement": asdict(agreement(group_labels(labels, "normalized").values())),
    }


def store_stats(
    session: Session,
    flt: ComparisonFilter | None = None,
    config: CompileConfig | None = None,
    *,
    on_comparison: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The numbers ``rewardkit data stats`` prints, over the comparisons ``flt`` selects (ranking and
    rating conversion follows ``config``, default ``CompileConfig()``); ``on_comparison`` is called once
    per comparison read."""
    from rewardkit.store.queries import ComparisonFilter, iter_comparisons

    config = config or CompileConfig()
    by_source: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_attribute: Counter[str] = Counter()
    by_judgement: Counter[str] = Counter()
    labels: list[Label] = []
    for stored in iter_comparisons(session, flt or ComparisonFilter()):
        c = stored.comparison
        by_source[c.source] += 1
        by_kind[c.annotator.kind] += 1
        by_attribute[c.attribute or "overall"] += 1
        by_judgement[type(c.judgement).__name__.removesuffix("Judgement").lower()] += 1
        labels.extend(pairs_from_comparison(c, stored.id, stored.prompt_id, config))
        if on_comparison is not None:
            on_comparison()
    return {
        "comparisons": sum(by_source.values()),
        "by_source": dict(sorted(by_source.items())),
        "by_annotator_kind": dict(sorted(by_kind.items())),
        "by_attribute": dict(sorted(by_attribute.items())),
        "by_judgement": dict(sorted(by_judgement.items())),
        **label_stats(labels),
    }
