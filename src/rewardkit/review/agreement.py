"""Agreement between annotators on the review queue's items: percent agreement, pairwise Cohen's kappa and
Krippendorff's alpha (nominal), from (item, annotator, label) triples.

- percent agreement: over items with 2+ labels, the share of agreeing label pairs within the item, averaged
  over items (each item counts once, however many labelled it);
- Cohen's kappa (``evaluate.agreement.cohen_kappa``) for each pair of annotators, over the items both labelled;
- Krippendorff's alpha, nominal: ``1 - D_o / D_e`` from the coincidence matrix o[c, k] = sum over items of
  (ordered pairs of labels c, k in the item) / (m_u - 1), with n_c = sum_k o[c, k], n = sum_c n_c:
  D_o = sum_{c != k} o[c, k] / n and D_e = sum_{c != k} n_c n_k / (n (n - 1)). Items with one label are not
  pairable and left out; any number of annotators per item, missing labels allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

from rewardkit.evaluate.agreement import cohen_kappa


def by_item(triples: Iterable[tuple[Any, str, str]]) -> dict[Any, dict[str, str]]:
    """(item, annotator, label) -> {item: {annotator: label}} (a later label by the same annotator wins)."""
    out: dict[Any, dict[str, str]] = {}
    for item, who, label in triples:
        out.setdefault(item, {})[who] = label
    return out


def percent_agreement(units: dict[Any, dict[str, str]]) -> float:
    """Mean over items with 2+ labels of the share of agreeing label pairs; nan with no such item."""
    shares = []
    for labels in units.values():
        values = list(labels.values())
        if len(values) < 2:
            continue
        pairs = list(combinations(values, 2))
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
    return sum(shares) / len(shares) if shares else float("nan")


def pairwise_kappa(units: dict[Any, dict[str, str]], *, min_items: int = 1) -> list[dict[str, Any]]:
    """Cohen's kappa for each pair of annotators over the items both labelled (pairs sharing fewer than
    ``min_items`` items are left out): [{"a", "b", "n", "kappa", "agreement"}], sorted by names."""
    names = sorted({who for labels in units.values() for who in labels})
    rows = []
    for a, b in combinations(names, 2):
        shared = [(labels[a], labels[b]) for labels in units.values() if a in labels and b in labels]
        if len(shared) < min_items:
            continue
        la, lb = [x for x, _ in shared], [y for _, y in shared]
        rows.append(
            {
                "a": a,
                "b": b,
                "n": len(shared),
                "kappa": cohen_kappa(la, lb),
                "agreement": sum(x == y for x, y in shared) / len(shared),
            }
        )
    return rows


def coincidences(units: dict[Any, dict[str, str]]) -> dict[tuple[str, str], float]:
    """Krippendorff's coincidence matrix (nominal) as {(c, k): o_ck}, over items with 2+ labels."""
    o: dict[tuple[str, str], float] = {}
    for labels in units.values():
        values = list(labels.values())
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    o[(c, k)] = o.get((c, k), 0.0) + 1.0 / (m - 1)
    return o


def krippendorff_alpha(units: dict[Any, dict[str, str]]) -> float:
    """Nominal Krippendorff's alpha; nan when fewer than 2 pairable labels or only one category was used
    (no disagreement is expected, so none can be measured)."""
    o = coincidences(units)
    totals: dict[str, float] = {}
    for (c, _), v in o.items():
        totals[c] = totals.get(c, 0.0) + v
    n = sum(totals.values())
    if n < 2:
        return float("nan")
    observed = sum(v for (c, k), v in o.items() if c != k) / n
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k) / (n * (n - 1))
    if expected == 0:
        return float("nan")
    return 1.0 - observed / expected


def summary(triples: Sequence[tuple[Any, str, str]]) -> dict[str, Any]:
    """Everything the admin page shows about agreement."""
    units = by_item(triples)
    overlapping = sum(1 for labels in units.values() if len(labels) >= 2)
    return {
        "items": len(units),
        "overlapping_items": overlapping,
        "percent_agreement": percent_agreement(units),
        "krippendorff_alpha": krippendorff_alpha(units),
        "pairwise_kappa": pairwise_kappa(units),
    }
