"""TRL's stepwise-supervision format (https://huggingface.co/docs/trl/dataset_formats#stepwise-supervision).

One record is one solution::

    {"prompt": "Which is larger, 9.8 or 9.11?",
     "completions": ["Compare the tenths: 8 > 1.", "So 9.8 is larger."],
     "labels": [true, true]}

``prompt`` is text or a list of chat messages; ``completions`` the steps in order; ``labels`` one per step: ``true``
(good), ``false`` (bad), or ``null`` (unlabelled, which TRL itself cannot hold; rewardkit's exports never write it).
The optional keys rewardkit's own exports add are read back: ``outcome`` (bool), ``model_name`` (text); any other
key is kept in the solution's metadata (``problem_id``, ``first_error``...), so an export imports without loss.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Annotator, RecordError, StepLabel, StepSolution

_KNOWN = ("prompt", "completions", "labels", "outcome", "model_name")


def steps(value: Any, name: str) -> tuple[str, ...]:
    """A non-empty list of non-empty step texts."""
    if not isinstance(value, list) or not value:
        raise RecordError(name, f"expected a non-empty list of step texts, got {type(value).__name__}")
    for i, step in enumerate(value):
        if not isinstance(step, str):
            raise RecordError(f"{name}[{i}]", f"expected text, got {type(step).__name__}")
        if not step.strip():
            raise RecordError(f"{name}[{i}]", "is empty")
    return tuple(value)


def bool_label(value: Any, name: str) -> StepLabel | None:
    """true -> good, false -> bad, null -> unlabelled (0 and 1 are read as false and true: CSV and Parquet cells)."""
    if value is None:
        return None
    if isinstance(value, bool) or value in (0, 1):
        return "good" if value else "bad"
    raise RecordError(name, f"expected true, false or null, got {value!r}")


def optional_bool(record: dict[str, Any], name: str) -> bool | None:
    value = record.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise RecordError(name, f"expected true, false or null, got {value!r}")


def parse(record: dict[str, Any], options: ImportOptions) -> StepSolution:
    prompt = fields.prompt(fields.required(record, "prompt"), "prompt")
    completions = steps(fields.required(record, "completions"), "completions")
    raw_labels = fields.required(record, "labels")
    if not isinstance(raw_labels, list):
        raise RecordError("labels", f"expected a list of true/false, got {type(raw_labels).__name__}")
    if len(raw_labels) != len(completions):
        raise RecordError("labels", f"expected one label per completion ({len(completions)}), got {len(raw_labels)}")
    return StepSolution(
        prompt=prompt,
        steps=completions,
        labels=tuple(bool_label(v, f"labels[{i}]") for i, v in enumerate(raw_labels)),
        annotator=Annotator(options.annotator_id or options.source, options.annotator_kind or "human"),  # type: ignore[arg-type]
        source=options.source,
        outcome=optional_bool(record, "outcome"),
        model_name=fields.optional_text(record, "model_name"),
        metadata={k: v for k, v in record.items() if k not in _KNOWN and v is not None},
    )
