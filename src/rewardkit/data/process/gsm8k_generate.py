"""Generate step-labelled solutions from GSM8K's human solutions: correct ones, and corrupted ones whose first
error is known. Deterministic: the same file, seed and options give the same solutions, in file order.

For each problem of ``../shared/data/gsm8k/train.jsonl.gz`` (``limit``: the first N):

1. the answer is split into steps (``gsm8k_steps.split_solution``; the ``#### FINAL`` line becomes the step
   ``A: FINAL``) and every step is checked (``gsm8k_steps.check_solution``). A solution with a step that fails
   the check is **left out** and counted by reason (``untraced``: an operand the question and earlier steps do not
   give; ``wrong``: arithmetic that disagrees; ``unparsable``; ``final``: the answer is not written in a step), so
   every ``good`` label the generator writes is one the check confirmed;
2. a die seeded by ``seed`` and the problem's id decides whether to corrupt it (probability
   ``corrupt_fraction``), so a problem's fate does not depend on ``limit`` or on the other problems;
3. a clean solution is labelled good at every step, ``outcome=True``; a corrupted one (``corrupt.corrupt``) good
   before its first error and bad from there on, ``outcome=False``. A problem the die picked that has no usable
   corruption stays clean (counted as ``not_corruptible``).

Every solution's metadata holds ``problem_id``, ``corrupted``, ``final_answer`` and, when corrupted,
``first_error`` (the step index), ``original_result`` and ``wrong_result``.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.data.process.corrupt import corrupt
from rewardkit.data.process.gsm8k_steps import StepCheck, check_solution, final_step, problem_id, split_solution
from rewardkit.records import Annotator, StepLabel, StepSolution

SOURCE = "gsm8k-steps"
ANNOTATOR = Annotator("gsm8k-arithmetic-check", "rule")


@dataclass
class GenerateCounts:
    problems: int = 0
    clean: int = 0
    corrupted: int = 0
    not_corruptible: int = 0
    left_out: Counter[str] = field(default_factory=Counter)  # by reason: untraced, wrong, unparsable, final


def failure_reasons(checks: list[StepCheck | bool]) -> list[str]:
    """Why a checked solution is not clean (empty when it is)."""
    reasons = set()
    for check in checks[:-1]:
        assert isinstance(check, StepCheck)
        reasons.update(name for name in ("wrong", "untraced", "unparsable") if getattr(check, name))
    if not checks[-1]:
        reasons.add("final")
    return sorted(reasons)


def generate_steps(
    path: Path,
    *,
    seed: int = 0,
    corrupt_fraction: float = 0.5,
    limit: int | None = None,
    counts: GenerateCounts | None = None,
) -> Iterator[StepSolution]:
    """The step solutions of the module docstring, one per clean problem, in file order."""
    if not 0.0 <= corrupt_fraction <= 1.0:
        raise ValueError(f"corrupt_fraction: expected a share in [0, 1], got {corrupt_fraction}")
    counts = counts if counts is not None else GenerateCounts()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if limit is not None and counts.problems >= limit:
                return
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                question, answer = record["question"], record["answer"]
                if not isinstance(question, str) or not isinstance(answer, str) or not question.strip():
                    raise TypeError("question and answer must be text")
                steps, final = split_solution(answer)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}, line {number}: not a GSM8K record with question and answer ({exc})"
                ) from None
            counts.problems += 1
            reasons = failure_reasons(check_solution(question, steps, final))
            if reasons:
                counts.left_out.update(reasons)
                continue
            pid = problem_id(question)
            rng = random.Random(f"gsm8k-steps:{seed}:{pid}")
            wanted = rng.random() < corrupt_fraction
            found = corrupt(question, steps, final, rng) if wanted else None
            counts.not_corruptible += int(wanted and found is None)
            metadata: dict[str, object] = {"problem_id": pid, "corrupted": found is not None}
            if found is None:
                counts.clean += 1
                labels: list[StepLabel] = ["good"] * (len(steps) + 1)
                out_steps, out_final = steps, final
            else:
                counts.corrupted += 1
                k = found.first_error
                labels = ["good"] * k + ["bad"] * (len(steps) + 1 - k)
                out_steps, out_final = found.steps, found.final
                metadata.update(first_error=k, original_result=found.original, wrong_result=found.wrong)
            metadata["final_answer"] = out_final
            yield StepSolution(
                prompt=question,
                steps=(*out_steps, final_step(out_final)),
                labels=tuple(labels),
                annotator=ANNOTATOR,
                source=SOURCE,
                outcome=found is None,
                metadata=metadata,
            )
