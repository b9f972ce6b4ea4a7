"""Compile stored step-labelled solutions into the examples of a ``steps`` dataset snapshot.

The steps, in order (counted in the manifest; the pair rules of ``compile.py`` where they apply):

1. **select** step solutions by filters (source, annotator kind, date range);
2. **dedupe and conflicts**: solutions with the same prompt, the same steps and the same model (after whitespace
   and case normalisation by default) are one example. Their labels are merged step by step: the labels given
   agree, or the majority of them wins; a step whose labels tie becomes unlabelled (``conflicts="majority"``), or
   the whole solution is dropped (``conflicts="drop"``). The model stays in the identity: two models writing the same
   steps are two candidates of a best-of-N set. Outcomes merge the same way (a disagreement leaves it unknown);
3. **split** by prompt with ``compile.split_of``: every solution of a problem lands in one of train / validation /
   test, so a PRM is never evaluated on a problem it was trained on.

Library use::

    from rewardkit.data.step_compile import StepCompileConfig, compile_steps
    with session_scope(open_store()) as s:
        result = compile_steps(s, StepCompileConfig(sources=("gsm8k-steps",)))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from rewardkit.data.compile import (
    SPLIT_NAMES,
    CompileError,
    check_annotator_kinds,
    check_fractions,
    normalize_prompt,
    normalize_text,
    split_of,
)
from rewardkit.records import Prompt, StepLabel, canonical_json, content_hash

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from rewardkit.store.steps import StoredStepSolution


@dataclass(frozen=True)
class StepCompileConfig:
    """Everything that decides a steps snapshot's content (equal configs over the same store: the same id)."""

    sources: tuple[str, ...] | None = None
    """Keep only step solutions from these source datasets (None: all)."""
    annotator_kinds: tuple[str, ...] | None = None
    """Keep only these annotator kinds (human, ai, implicit, rule; None: all)."""
    since: datetime | None = None
    """Keep solutions created at or after this time."""
    until: datetime | None = None
    """Keep solutions created before this time."""
    dedupe: Literal["exact", "normalized"] = "normalized"
    """``exact``: identical texts are the same solution; ``normalized``: also after collapsing whitespace and case."""
    conflicts: Literal["majority", "drop"] = "majority"
    """Labels of one step that disagree: the majority wins and a tie leaves the step unlabelled, or ``drop`` the
    solution."""
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Train / validation / test shares of prompts."""
    seed: int = 0
    """Salt of the split hash."""

    def __post_init__(self) -> None:
        if self.dedupe not in ("exact", "normalized"):
            raise CompileError(f"dedupe: expected exact or normalized, got {self.dedupe!r}")
        if self.conflicts not in ("majority", "drop"):
            raise CompileError(f"conflicts: expected majority or drop, got {self.conflicts!r}")
        check_fractions(self.fractions)
        check_annotator_kinds(self.annotator_kinds)

    def as_json(self) -> dict[str, Any]:
        """The config as JSON (what the manifest records and the snapshot id hashes); ``kind`` keeps a steps
        snapshot's id apart from any pairs snapshot's."""
        d: dict[str, Any] = {"kind": "steps", **asdict(self)}
        for key in ("since", "until"):
            d[key] = d[key].isoformat() if d[key] else None
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True)
class StepExample:
    """One example of a steps snapshot: what ``rewardkit train --objective prm`` and PRM evaluation read."""

    id: str
    prompt: Prompt
    steps: tuple[str, ...]
    labels: tuple[StepLabel | None, ...]
    outcome: bool | None = None
    source: str = ""
    annotator_kind: str = ""
    model_name: str = ""
    prompt_id: str = ""
    solution_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)  # the first merged solution's (problem_id, ...)

    @property
    def first_error(self) -> int | None:
        return next((i for i, label in enumerate(self.labels) if label == "bad"), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "steps": list(self.steps),
            "labels": list(self.labels),
            "outcome": self.outcome,
            "source": self.source,
            "annotator_kind": self.annotator_kind,
            "model_name": self.model_name,
            "prompt_id": self.prompt_id,
            "solution_ids": list(self.solution_ids),
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> StepExample:
        return cls(
            id=row["id"],
            prompt=row["prompt"],
            steps=tuple(row["steps"]),
            labels=tuple(row["labels"]),
            outcome=row.get("outcome"),
            source=row.get("source", ""),
            annotator_kind=row.get("annotator_kind", ""),
            model_name=row.get("model_name", ""),
            prompt_id=row.get("prompt_id", ""),
            solution_ids=tuple(row.get("solution_ids", ())),
            metadata=row.get("metadata") or {},
        )


@dataclass
class StepCompileCounts:
    solutions_selected: int = 0
    duplicates_exact: int = 0
    duplicates_normalized: int = 0
    conflicts_found: int = 0  # examples whose merged solutions disagreed on some step
    conflict_steps_unlabelled: int = 0  # steps left unlabelled by a tie between labels
    conflicts_dropped: int = 0  # examples dropped (conflicts="drop")
    solutions: int = 0  # examples written
    with_error: int = 0  # examples with a bad step
    labels: dict[str, int] = field(default_factory=lambda: {"good": 0, "bad": 0, "neutral": 0, "unlabelled": 0})
    per_split: dict[str, int] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)


@dataclass
class StepCompileResult:
    splits: dict[str, list[StepExample]]
    counts: StepCompileCounts


def merge_labels(votes: list[tuple[StepLabel | None, ...]]) -> tuple[tuple[StepLabel | None, ...], int, int]:
    """Step-by-step majority over the given labels (a None is no vote); a tie leaves the step unlabelled.
    Returns the labels, how many steps had disagreeing labels, and how many of those tied."""
    merged: list[StepLabel | None] = []
    disagreeing = tied = 0
    for column in zip(*votes, strict=True):
        ranked = Counter(label for label in column if label is not None).most_common()
        disagreeing += len(ranked) > 1
        tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        tied += tie
        merged.append(None if not ranked or tie else ranked[0][0])
    return tuple(merged), disagreeing, tied


def _key(stored: StoredStepSolution, mode: str) -> str:
    s = stored.solution
    if mode == "normalized":
        return canonical_json([normalize_prompt(s.prompt), [normalize_text(t) for t in s.steps], s.model_name])
    return canonical_json([s.prompt, list(s.steps), s.model_name])


def _example(
    group: list[StoredStepSolution], config: StepCompileConfig, counts: StepCompileCounts
) -> StepExample | None:
    first = group[0].solution
    labels, disagreeing, tied = merge_labels([g.solution.labels for g in group])
    if disagreeing:
        counts.conflicts_found += 1
        if config.conflicts == "drop":
            counts.conflicts_dropped += 1
            return None
        counts.conflict_steps_unlabelled += tied
    forms = Counter(canonical_json([g.solution.prompt, list(g.solution.steps)]) for g in group)
    counts.duplicates_exact += sum(n - 1 for n in forms.values())
    counts.duplicates_normalized += len(forms) - 1
    outcomes = {g.solution.outcome for g in group if g.solution.outcome is not None}
    return StepExample(
        id=content_hash(
            {"prompt": first.prompt, "steps": list(first.steps), "labels": list(labels), "model": first.model_name}
        ),
        prompt=first.prompt,
        steps=first.steps,
        labels=labels,
        outcome=outcomes.pop() if len(outcomes) == 1 else None,
        source=first.source,
        annotator_kind=first.annotator.kind,
        model_name=first.model_name,
        prompt_id=group[0].prompt_id,
        solution_ids=tuple(sorted(g.id for g in group)),
        metadata=first.metadata,
    )


def compile_step_solutions(stored: Iterable[StoredStepSolution], config: StepCompileConfig) -> StepCompileResult:
    """Dedupe, merge and split already selected solutions (pure: no store)."""
    counts = StepCompileCounts()
    groups: dict[str, list[StoredStepSolution]] = {}
    for s in stored:
        counts.solutions_selected += 1
        groups.setdefault(_key(s, config.dedupe), []).append(s)
    splits: dict[str, list[StepExample]] = {name: [] for name in SPLIT_NAMES}
    for group in groups.values():
        example = _example(group, config, counts)
        if example is None:
            continue
        splits[split_of(example.prompt, config.seed, config.fractions)].append(example)
        counts.with_error += example.first_error is not None
        for label in example.labels:
            counts.labels["unlabelled" if label is None else label] += 1
    for rows in splits.values():
        rows.sort(key=lambda e: e.id)  # the content order, independent of store iteration order
    every = [e for rows in splits.values() for e in rows]
    counts.solutions = len(every)
    counts.per_split = {name: len(rows) for name, rows in splits.items()}
    counts.per_source = dict(sorted(Counter(e.source for e in every).items()))
    return StepCompileResult(splits, counts)


def step_filter(config: StepCompileConfig) -> Any:
    from rewardkit.store.steps import StepFilter

    return StepFilter(config.sources, config.annotator_kinds, config.since, config.until)


def compile_steps(
    session: Session, config: StepCompileConfig, *, on_solution: Callable[[], None] | None = None
) -> StepCompileResult:
    """Select, dedupe, merge and split: the content of a steps snapshot. ``on_solution`` is called once per
    solution read (a progress bar's advance)."""
    from rewardkit.store.steps import iter_step_solutions

    def selected() -> Iterable[StoredStepSolution]:
        for s in iter_step_solutions(session, step_filter(config)):
            if on_solution is not None:
                on_solution()
            yield s

    return compile_step_solutions(selected(), config)
