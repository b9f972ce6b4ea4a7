"""The rules that turn implicit feedback events into comparisons (annotator kind ``implicit``).

Implicit signals are weaker and noisier than a labeller's verdict, so every comparison a rule makes is a
pairwise choice with the preferred response as ``a`` (choice ``a``) and a documented ``strength`` in [0, 1]
that training can use as a weight and a snapshot can filter on:

=================  =========================================================================  ========
rule               comparison                                                                 strength
=================  =========================================================================  ========
``thumbs``         a thumbs-up response over a thumbs-down response to the same prompt          0.8
                   (every up/down pair of different texts; any user or session)
``edit``           the user's edited text over the model's original response                    0.9
``regenerate``     the new response over the one the user asked to replace (weak: the user      0.3
                   rejected the first, but nothing says they liked the second)
``copy``           the copied response over each sibling: another response to the same          0.5
                   prompt seen in the same session (through any event); no session, no siblings
=================  =========================================================================  ========

A thumbs-up alone, a thumbs-down alone or a copy with no sibling make no comparison (there is nothing to
compare with). Every comparison carries the rule in ``metadata["rule"]``, the events it came from in
``metadata["events"]`` and a deterministic ``client_event_id`` built from them, so converting the same
events twice stores nothing new. Annotator id: ``implicit:<rule>``; source: ``implicit`` (or as given).

Run it with ``rewardkit import convert-events``. Grouping by prompt holds one small entry per event in
memory (the texts are shared with the events), which is fine for feedback logs of millions of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.records import Annotator, Comparison, FeedbackEvent, PairwiseJudgement, Prompt, Response, content_hash
from rewardkit.store.engine import session_scope
from rewardkit.store.queries import add_comparisons, iter_feedback_events

STRENGTH: dict[str, float] = {"thumbs": 0.8, "edit": 0.9, "regenerate": 0.3, "copy": 0.5}
RATIONALE: dict[str, str] = {
    "thumbs": "thumbs-up response preferred over a thumbs-down response to the same prompt",
    "edit": "the user's edit preferred over the original response",
    "regenerate": "the regenerated response weakly preferred over the replaced one",
    "copy": "the copied response preferred over a sibling response in the same session",
}


def _comparison(
    rule: str, prompt: Prompt, better: Response, worse: Response, events: list[FeedbackEvent], source: str
) -> Comparison | None:
    if better.text.strip() == worse.text.strip():
        return None  # no preference between identical texts
    keys = sorted(e.dedupe_key for e in events)
    return Comparison(
        prompt=prompt,
        responses=(better, worse),
        judgement=PairwiseJudgement("a", strength=STRENGTH[rule]),
        annotator=Annotator(f"implicit:{rule}", "implicit"),
        source=source,
        rationale=RATIONALE[rule],
        created_at=max((e.created_at for e in events if e.created_at), default=None),
        client_event_id=f"implicit:{rule}:"
        + content_hash({"rule": rule, "events": keys, "better": better.text, "worse": worse.text}),
        metadata={"rule": rule, "events": keys},
    )


@dataclass
class _PromptGroup:
    prompt: Prompt
    ups: list[FeedbackEvent]
    downs: list[FeedbackEvent]
    copies: list[FeedbackEvent]
    seen: dict[str, dict[str, tuple[Response, FeedbackEvent]]]  # session -> text -> (response, event)


def comparisons_from_events(events: Iterable[FeedbackEvent], source: str = "implicit") -> Iterator[Comparison]:
    """Apply every rule of the module docstring to ``events`` (any order)."""
    groups: dict[str, _PromptGroup] = {}
    for e in events:
        if e.kind == "edit" and e.other_response is not None:
            c = _comparison("edit", e.prompt, e.other_response, e.response, [e], source)
        elif e.kind == "regenerate" and e.other_response is not None:
            c = _comparison("regenerate", e.prompt, e.other_response, e.response, [e], source)
        else:
            c = None
        if c is not None:
            yield c
        g = groups.setdefault(content_hash({"prompt": e.prompt}), _PromptGroup(e.prompt, [], [], [], {}))
        {"thumbs_up": g.ups, "thumbs_down": g.downs, "copy": g.copies}.get(e.kind, []).append(e)
        if e.session_id is not None:
            seen = g.seen.setdefault(e.session_id, {})
            for r in (e.response, e.other_response):
                if r is not None:
                    seen.setdefault(r.text, (r, e))
    for g in groups.values():
        for up in g.ups:
            for down in g.downs:
                c = _comparison("thumbs", g.prompt, up.response, down.response, [up, down], source)
                if c is not None:
                    yield c
        for copy in g.copies:
            if copy.session_id is None:
                continue
            for text, (sibling, event) in g.seen.get(copy.session_id, {}).items():
                if text != copy.response.text:
                    c = _comparison(
                        "copy", g.prompt, copy.response, sibling, [copy] if event is copy else [copy, event], source
                    )
                    if c is not None:
                        yield c


@dataclass(frozen=True)
class ConvertCounts:
    events: int
    comparisons: int
    imported: int
    duplicates: int
    by_rule: dict[str, int]


def convert_stored_events(
    factory: sessionmaker[Session], *, source: str = "implicit", batch_size: int = 1000
) -> ConvertCounts:
    """Turn every stored feedback event into comparisons by the rules and store them (idempotent)."""
    with factory() as session:
        events = list(iter_feedback_events(session))
    by_rule: dict[str, int] = {}
    imported = duplicates = made = 0
    batch: list[Comparison] = []

    def flush() -> None:
        nonlocal imported, duplicates
        with session_scope(factory) as session:
            added = add_comparisons(session, batch)
        imported, duplicates = imported + added.inserted, duplicates + added.duplicates
        batch.clear()

    for c in comparisons_from_events(events, source):
        made += 1
        by_rule[c.metadata["rule"]] = by_rule.get(c.metadata["rule"], 0) + 1
        batch.append(c)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return ConvertCounts(len(events), made, imported, duplicates, by_rule)
