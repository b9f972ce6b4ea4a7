"""How often AI labels agree with the human labels of the same pairs, for ``rewardkit data stats``.

A pair is the same pair when it has the same prompt and the same two responses (the store's prompt and
response ids, whatever order they were shown in); choices are compared by WHICH response won. Every human
label of a pair is compared with every AI label of it (a pair labelled by two people and one judge counts
twice). ``agreement`` is over comparisons where both chose a response; ties (and both_bad) are counted apart.

A filter (``rewardkit data stats --since/--until/--attribute``) selects the labels of both sides by time and
attribute; its sources and annotator kinds are not applied: AI labels carry their own source (``ai-feedback``),
so a source filter would leave one side empty, and the kinds are what this compares.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.records import PairwiseJudgement
from rewardkit.store.queries import ComparisonFilter, iter_comparisons, response_id


def _winners(
    session: Session, kind: str, flt: ComparisonFilter
) -> dict[tuple[str, frozenset[str]], list[tuple[str, str | None]]]:
    """(prompt id, {two response ids}) -> [(annotator id, the winning response id or None for no preference)]."""
    out: dict[tuple[str, frozenset[str]], list[tuple[str, str | None]]] = defaultdict(list)
    for stored in iter_comparisons(session, replace(flt, sources=None, annotator_kinds=(kind,))):
        c = stored.comparison
        if not isinstance(c.judgement, PairwiseJudgement) or len(c.responses) != 2:
            continue
        ids = [response_id(stored.prompt_id, r) for r in c.responses]
        winner = {"a": ids[0], "b": ids[1]}.get(c.judgement.choice)
        out[(stored.prompt_id, frozenset(ids))].append((c.annotator.id, winner))
    return out


def ai_human_agreement(session: Session, flt: ComparisonFilter | None = None) -> dict[str, Any]:
    """{"pairs": pairs with both, "compared": label pairs where both chose, "agree", "agreement" (None when
    nothing compared), "ai_ties", "human_ties", "by_judge": {judge: {"compared", "agree", "agreement"}}}.
    ``flt``: its time and attribute limits (module docstring). A store without AI labels is not read further."""
    flt = flt or ComparisonFilter()
    ai = _winners(session, "ai", flt)
    human = _winners(session, "human", flt) if ai else {}
    shared = set(human) & set(ai)
    compared = agree = ai_ties = human_ties = 0
    by_judge: dict[str, dict[str, Any]] = defaultdict(lambda: {"compared": 0, "agree": 0})
    for pair in shared:
        for _, human_winner in human[pair]:
            for judge, ai_winner in ai[pair]:
                if human_winner is None or ai_winner is None:
                    ai_ties += ai_winner is None
                    human_ties += human_winner is None
                    continue
                compared += 1
                agree += human_winner == ai_winner
                by_judge[judge]["compared"] += 1
                by_judge[judge]["agree"] += human_winner == ai_winner
    for stats in by_judge.values():
        stats["agreement"] = stats["agree"] / stats["compared"]
    return {
        "pairs": len(shared),
        "compared": compared,
        "agree": agree,
        "agreement": agree / compared if compared else None,
        "ai_ties": ai_ties,
        "human_ties": human_ties,
        "by_judge": dict(sorted(by_judge.items())),
    }
