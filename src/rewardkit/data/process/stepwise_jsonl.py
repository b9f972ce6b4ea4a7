"""Step solutions as TRL stepwise-supervision rows (``prompt``, ``completions``, ``labels`` as booleans), the
format ``rewardkit train --objective prm``, TRL's PRMTrainer and ``rewardkit import trl-stepwise`` read.

TRL's labels are booleans, so two of rewardkit's labels need a rule:

- **neutral** (PRM800K's 0: a step that is fine but makes no progress) becomes ``neutral_as`` (default ``true``:
  the step contains no error, which is what a PRM's step score estimates and how OpenR trains on PRM800K; TRL's own
  PRM800K script writes ``false``; pass ``neutral_as=False`` for that);
- **unlabelled** (None) cannot be written: a row stops before the first unlabelled step (its completions and labels
  are the labelled prefix). A solution whose first step is unlabelled gives no row (counted as skipped).

Extra keys beside the three TRL reads, for splitting and evaluation (TRL ignores them): ``outcome`` (true, false or
null), ``first_error`` (index of the first bad step, or null), ``model_name`` (when known) and every key of the
solution's metadata (``problem_id``, ``final_answer``, ``corrupted``...).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.atomic import atomic_file
from rewardkit.records import StepSolution

if TYPE_CHECKING:
    from rewardkit.data.step_compile import StepExample


def stepwise_row(solution: StepSolution | StepExample, *, neutral_as: bool = True) -> dict[str, Any] | None:
    """One TRL stepwise row (see the module docstring) of a solution or a snapshot's example, or None when its
    first step is unlabelled."""
    n = next((i for i, label in enumerate(solution.labels) if label is None), len(solution.labels))
    if n == 0:
        return None
    labels = [neutral_as if label == "neutral" else label == "good" for label in solution.labels[:n]]
    row: dict[str, Any] = {
        "prompt": solution.prompt,
        "completions": list(solution.steps[:n]),
        "labels": labels,
        "outcome": solution.outcome,
        "first_error": solution.first_error,
    }
    if solution.model_name:
        row["model_name"] = solution.model_name
    row.update({k: v for k, v in solution.metadata.items() if k not in row})
    return row


@dataclass(frozen=True)
class WriteCounts:
    rows: int
    skipped: int  # solutions whose first step is unlabelled


def write_stepwise_jsonl(path: Path, solutions: Iterable[StepSolution], *, neutral_as: bool = True) -> WriteCounts:
    """Write the rows to ``path`` atomically (a temporary file renamed into place: never half a file)."""
    rows = skipped = 0
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for solution in solutions:
            row = stepwise_row(solution, neutral_as=neutral_as)
            if row is None:
                skipped += 1
                continue
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += 1
    return WriteCounts(rows, skipped)
