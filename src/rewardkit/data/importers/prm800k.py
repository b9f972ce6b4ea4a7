"""OpenAI's PRM800K (Lightman et al., 2023, "Let's Verify Step by Step"; https://github.com/openai/prm800k).

One record is one labelled solution to a MATH problem (the fields rewardkit reads; the rest is ignored)::

    {"labeler": "340d89bc-...", "generation": 9, "is_quality_control_question": false,
     "question": {"problem": "What is ...?", "ground_truth_answer": "40,\\!000", "pre_generated_answer": "320,000"},
     "label": {"steps": [{"completions": [{"text": "...", "rating": 0, "flagged": null}],
                          "human_completion": null, "chosen_completion": 0}, ...],
               "finish_reason": "found_error"}}

rewardkit takes the **chosen path**: at each step the completion ``chosen_completion`` names, or else the labeler's
``human_completion`` (rated good: the labelers wrote one only when every candidate was wrong, and it had to be
right). A step where neither is set ends the path; when one of its candidates was rated -1 (phase 2 stops at the
first error found), the first such candidate is the path's last step, so the first error is kept. Ratings map
``1`` -> good, ``0`` -> neutral, ``-1`` -> bad, a missing rating -> unlabelled. The alternatives not chosen are not
imported (they are other solutions, each ending in an unchosen step).

``outcome`` is True when ``finish_reason`` is ``solution`` (the labeler reached the correct answer), else unknown;
the labeler id is the annotator (kind human); ``finish_reason``, ``generation``, the answers and the quality-control
flag go to the metadata.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Annotator, RecordError, StepLabel, StepSolution

RATINGS: dict[int, StepLabel] = {1: "good", 0: "neutral", -1: "bad"}


def _rating(value: Any, name: str) -> StepLabel | None:
    if value is None:
        return None
    if isinstance(value, bool) or value not in RATINGS:
        raise RecordError(name, f"expected -1, 0, 1 or null, got {value!r}")
    return RATINGS[int(value)]


def _text(completion: Any, name: str) -> str:
    """The text of a completion object (or of a human completion given as plain text)."""
    if isinstance(completion, str):
        text: Any = completion
    elif isinstance(completion, dict):
        text, name = completion.get("text"), f"{name}.text"
    else:
        raise RecordError(name, f"expected an object with text and rating, got {type(completion).__name__}")
    if not isinstance(text, str) or not text.strip():
        raise RecordError(name, "expected non-empty text")
    return text


def chosen_path(steps: Any) -> tuple[list[str], list[StepLabel | None]]:
    """The texts and labels of the chosen path through ``label.steps`` (see the module docstring)."""
    if not isinstance(steps, list):
        raise RecordError("label.steps", f"expected a list, got {type(steps).__name__}")
    texts: list[str] = []
    labels: list[StepLabel | None] = []
    for i, step in enumerate(steps):
        name = f"label.steps[{i}]"
        if not isinstance(step, dict):
            raise RecordError(name, f"expected an object, got {type(step).__name__}")
        completions = step.get("completions") or []
        if not isinstance(completions, list):
            raise RecordError(f"{name}.completions", f"expected a list, got {type(completions).__name__}")
        chosen, human = step.get("chosen_completion"), step.get("human_completion")
        if chosen is not None:
            if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen < len(completions):
                raise RecordError(
                    f"{name}.chosen_completion", f"expected an index below {len(completions)}, got {chosen!r}"
                )
            completion = completions[chosen]
            if not isinstance(completion, dict):
                raise RecordError(f"{name}.completions[{chosen}]", "expected an object with text and rating")
            texts.append(_text(completion, f"{name}.completions[{chosen}]"))
            labels.append(_rating(completion.get("rating"), f"{name}.completions[{chosen}].rating"))
            continue
        if human is not None:
            texts.append(_text(human, f"{name}.human_completion"))
            labels.append("good")
            continue
        for j, completion in enumerate(completions):
            if isinstance(completion, dict) and completion.get("rating") == -1:
                texts.append(_text(completion, f"{name}.completions[{j}]"))
                labels.append("bad")
                break
        break
    if not texts:
        raise RecordError("label.steps", "no step on the chosen path (no chosen, human or -1-rated completion)")
    return texts, labels


def parse(record: dict[str, Any], options: ImportOptions) -> StepSolution:
    question = fields.required(record, "question")
    if not isinstance(question, dict):
        raise RecordError("question", f"expected an object with a problem, got {type(question).__name__}")
    problem = question.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise RecordError("question.problem", "expected non-empty text")
    label = fields.required(record, "label")
    if not isinstance(label, dict):
        raise RecordError("label", f"expected an object with steps, got {type(label).__name__}")
    texts, labels = chosen_path(label.get("steps"))
    finish = label.get("finish_reason")
    labeler = record.get("labeler")
    metadata = {
        "finish_reason": finish,
        "generation": record.get("generation"),
        "ground_truth_answer": question.get("ground_truth_answer"),
        "pre_generated_answer": question.get("pre_generated_answer"),
        "is_quality_control_question": record.get("is_quality_control_question"),
    }
    return StepSolution(
        prompt=problem,
        steps=tuple(texts),
        labels=tuple(labels),
        annotator=Annotator(
            options.annotator_id or (labeler if isinstance(labeler, str) and labeler else "prm800k-labelers"),
            options.annotator_kind or "human",  # type: ignore[arg-type]
        ),
        source=options.source,
        outcome=True if finish == "solution" else None,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )
