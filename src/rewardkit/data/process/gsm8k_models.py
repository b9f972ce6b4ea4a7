"""The shared GSM8K model solutions as step solutions with outcome labels.

``../shared/data/gsm8k/model_solutions.jsonl.gz`` holds 655 test problems, each with ``question``,
``ground_truth`` (ending ``A: FINAL``) and one solution from each of four GPT-3 models (``MODELS``), each
``{"is_correct": bool, "solution": "..."}`` with one step a line and ``A: FINAL`` last.

``read_model_solutions`` yields one ``StepSolution`` per model solution: the steps are the solution's non-blank
lines, ``outcome`` is ``is_correct``, ``model_name`` the model, and the labels come from the outcome: every step
``good`` when the answer is right, every step ``bad`` when it is wrong. That is **outcome supervision** as in
Uesato et al. (2022), "Solving math word problems with process- and outcome-based feedback": their outcome-supervised
value model is trained to predict, at every step, whether the final answer will be right, so a wrong solution's
every step carries the negative label, even steps that are fine on their own. The metadata holds ``problem_id``
(``gsm8k_steps.problem_id``: split train and evaluation problems apart with it), ``final_answer`` (the text after
``A:``, for majority voting; "" when a solution has no ``A:`` line, 4 of the 2,620), ``ground_truth_answer`` and
``supervision: "outcome"``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardkit.data.process.gsm8k_steps import problem_id
from rewardkit.records import Annotator, RecordError, StepSolution

MODELS: tuple[str, ...] = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
SOURCE = "gsm8k-model-solutions"
ANNOTATOR = Annotator("gsm8k-is-correct", "rule")


def final_answer(steps: list[str]) -> str:
    """The text after ``A:`` on the last line, or "" when the solution does not end in one."""
    last = steps[-1] if steps else ""
    return last.removeprefix("A:").strip() if last.startswith("A:") else ""


def solutions_of(record: dict[str, Any]) -> list[StepSolution]:
    """The four model solutions of one problem (a record of the file), labelled by their outcome."""
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RecordError("question", "expected non-empty text")
    truth = [line for line in str(record.get("ground_truth", "")).split("\n") if line.strip()]
    out = []
    for model in MODELS:
        entry = record.get(model)
        if not isinstance(entry, dict) or not isinstance(entry.get("is_correct"), bool):
            raise RecordError(model, "expected an object with is_correct (true/false) and solution")
        solution = entry.get("solution")
        if not isinstance(solution, str):
            raise RecordError(f"{model}.solution", "expected text")
        steps = [line.strip() for line in solution.split("\n") if line.strip()]
        if not steps:
            raise RecordError(f"{model}.solution", "is empty")
        correct = entry["is_correct"]
        out.append(
            StepSolution(
                prompt=question,
                steps=tuple(steps),
                labels=("good" if correct else "bad",) * len(steps),
                annotator=ANNOTATOR,
                source=SOURCE,
                outcome=correct,
                model_name=model,
                metadata={
                    "problem_id": problem_id(question),
                    "final_answer": final_answer(steps),
                    "ground_truth_answer": final_answer(truth),
                    "supervision": "outcome",
                },
            )
        )
    return out


def read_model_solutions(path: Path, *, limit: int | None = None) -> Iterator[StepSolution]:
    """Every model solution of the file, problem by problem in file order (``limit``: the first N problems).
    A malformed record raises ``ValueError`` naming its line and field."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if limit is not None and number > limit:
                return
            if not line.strip():
                continue
            try:
                yield from solutions_of(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            except RecordError as exc:
                raise ValueError(f"{path}, line {number}: {exc}") from None
