"""Where AI labels go: the store (the default) and/or a JSONL file; and which labels are there already, so a
run resumes where the last one stopped.

The store writes each batch in its own transaction (``add_comparisons``; a key already stored stores nothing).
The JSONL file is appended one whole batch per write and flushed to disk; a last line cut off by a crash is
removed before a resumed run appends, so the file never holds half a record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.records import Comparison, PairwiseJudgement
from rewardkit.store.engine import session_scope
from rewardkit.store.queries import ComparisonFilter, add_comparisons, iter_comparisons


def labelled_in_store(session: Session, source: str) -> set[str]:
    """The keys (client event ids) of the AI comparisons of ``source`` already stored."""
    flt = ComparisonFilter(sources=(source,), annotator_kinds=("ai",))
    return {s.comparison.client_event_id for s in iter_comparisons(session, flt) if s.comparison.client_event_id}


class StoreSink:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory, self.inserted = factory, 0

    def __call__(self, comparisons: list[Comparison]) -> None:
        with session_scope(self.factory) as session:
            self.inserted += add_comparisons(session, comparisons).inserted


def comparison_line(c: Comparison) -> dict[str, Any]:
    j = c.judgement
    choice = j.choice if isinstance(j, PairwiseJudgement) else None
    line: dict[str, Any] = {
        "key": c.client_event_id,
        "prompt": c.prompt,
        "response_a": c.responses[0].text,
        "response_b": c.responses[1].text,
        "choice": choice,
        "strength": j.strength if isinstance(j, PairwiseJudgement) else None,
        "annotator": {"id": c.annotator.id, "kind": c.annotator.kind},
        "attribute": c.attribute,
        "rubric": c.rubric,
        "rationale": c.rationale,
        "source": c.source,
        "metadata": c.metadata,
    }
    if choice in ("a", "b"):  # TRL's preference format too, so the file trains as it is
        winner = 0 if choice == "a" else 1
        line["chosen"], line["rejected"] = c.responses[winner].text, c.responses[1 - winner].text
    return line


class JsonlSink:
    def __init__(self, path: Path) -> None:
        self.path, self.written = path, 0

    def labelled(self) -> set[str]:
        """Keys already in the file; a cut-off last line is removed first (see the module docstring)."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
            data = data[: data.rfind(b"\n") + 1]
        keys = set()
        for line in data.decode("utf-8").splitlines():
            try:
                key = json.loads(line).get("key")
            except (ValueError, AttributeError):
                continue
            if isinstance(key, str):
                keys.add(key)
        return keys

    def __call__(self, comparisons: list[Comparison]) -> None:
        text = "".join(json.dumps(comparison_line(c), ensure_ascii=False) + "\n" for c in comparisons)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.written += len(comparisons)
