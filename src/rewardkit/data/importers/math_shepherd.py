"""Math-Shepherd (Wang et al., 2024; ``peiyi9979/Math-Shepherd``): steps labelled by rollouts, no human involved.

One record is one solution, the question and its steps in one text::

    {"input": "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 ки\nStep 2: The answer is: 5 ки",
     "label": "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 +\nStep 2: The answer is: 5 +",
     "task": "GSM8K"}

Every step of ``input`` ends in the tag ``ки``; ``label`` is the same text with ``+`` (good) or ``-`` (bad) in place
of each tag. The question is the text before the first ``Step 1:`` (or ``step 1:``), as TRL's own conversion splits
it; each step keeps its ``Step k:`` prefix, stripped of surrounding whitespace. A label text that differs from the
input anywhere but at the tags is an error naming the step where they part. ``task`` goes to the metadata.
Math-Shepherd labels a step ``+`` when some rollout from it reaches the right answer, so steps after the first
``-`` are usually ``-`` too: they are kept as labelled.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Annotator, RecordError, StepLabel, StepSolution

TAG = "ки"


def split_tagged(text: str, labelled: str) -> tuple[list[str], list[StepLabel]]:
    """The pieces of ``text`` between tags (the last piece, after the final tag, dropped when blank) and the label
    ``labelled`` has at each tag."""
    pieces = text.split(TAG)
    if len(pieces) < 2:
        raise RecordError("input", f"has no step tag {TAG!r}")
    labels: list[StepLabel] = []
    pos = 0
    for i, piece in enumerate(pieces[:-1]):
        if labelled[pos : pos + len(piece)] != piece:
            raise RecordError("label", f"differs from input before the tag of step {i + 1}")
        pos += len(piece)
        mark = labelled[pos : pos + 1]
        if mark not in ("+", "-"):
            raise RecordError("label", f"expected + or - at the tag of step {i + 1}, got {mark!r}")
        labels.append("good" if mark == "+" else "bad")
        pos += 1
    if labelled[pos:] != pieces[-1]:
        raise RecordError("label", "differs from input after the last tag")
    if pieces[-1].strip():
        raise RecordError("input", f"has text after the last step tag {TAG!r}: every step must end in the tag")
    return pieces[:-1], labels


def parse(record: dict[str, Any], options: ImportOptions) -> StepSolution:
    text, labelled = fields.text(record, "input"), fields.text(record, "label")
    pieces, labels = split_tagged(text, labelled)
    first = pieces[0]
    marker = next((m for m in ("Step 1:", "step 1:") if m in first), None)
    if marker is None:
        raise RecordError("input", "expected the question followed by 'Step 1:' before the first tag")
    question, step_one = first.split(marker, 1)
    if not question.strip():
        raise RecordError("input", "has no question before 'Step 1:'")
    steps = [marker + step_one, *pieces[1:]]
    for i, step in enumerate(steps):
        if not step.strip():
            raise RecordError("input", f"step {i + 1} is empty")
    task = fields.optional_text(record, "task")
    return StepSolution(
        prompt=question.strip(),
        steps=tuple(s.strip() for s in steps),
        labels=tuple(labels),
        annotator=Annotator(options.annotator_id or "math-shepherd-rollouts", options.annotator_kind or "rule"),  # type: ignore[arg-type]
        source=options.source,
        metadata={"task": task} if task else {},
    )
