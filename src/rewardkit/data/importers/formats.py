"""The import formats by name: how to parse one record and how to store a batch of parsed records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.data.importers import (
    alpacaeval,
    events,
    feedback,
    hh_rlhf,
    math_shepherd,
    prm800k,
    trl,
    trl_stepwise,
    ultrafeedback,
)
from rewardkit.data.importers.errors import ImportFailed
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Comparison
from rewardkit.store.queries import AddResult, add_comparisons, add_feedback_events
from rewardkit.store.steps import add_step_solutions


@dataclass(frozen=True)
class Format:
    name: str
    parse: Callable[[dict[str, Any], ImportOptions], Any]
    add: Callable[[Session, Sequence[Any], int], AddResult]
    help: str
    noun: str = "comparisons"  # what the format stores, for the import summary


def _add_comparisons(session: Session, batch: Sequence[Any], import_id: int) -> AddResult:
    return add_comparisons(session, batch, import_id=import_id)


def _add_steps(session: Session, batch: Sequence[Any], import_id: int) -> AddResult:
    return add_step_solutions(session, batch, import_id=import_id)


def _add_events(session: Session, batch: Sequence[Any], _import_id: int) -> AddResult:
    return add_feedback_events(session, batch)


def add_feedback_items(session: Session, batch: Sequence[Any], import_id: int | None = None) -> AddResult:
    """Store a mix of comparisons and events (feedback items) in the caller's transaction."""
    comparisons = [item for item in batch if isinstance(item, Comparison)]
    events_ = [item for item in batch if not isinstance(item, Comparison)]
    a = add_comparisons(session, comparisons, import_id=import_id)
    b = add_feedback_events(session, events_)
    return AddResult(inserted=a.inserted + b.inserted, duplicates=a.duplicates + b.duplicates)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "trl",
            trl.parse,
            _add_comparisons,
            "TRL preference data: prompt/chosen/rejected, standard or conversational, explicit or implicit prompt, "
            "optional margin",
        ),
        Format(
            "hh-rlhf",
            hh_rlhf.parse,
            _add_comparisons,
            "Anthropic HH-RLHF: {chosen, rejected} full Human/Assistant transcripts",
        ),
        Format(
            "ultrafeedback",
            ultrafeedback.parse,
            _add_comparisons,
            "UltraFeedback: instruction + rated completions (or the binarized chosen/rejected variant)",
        ),
        Format(
            "alpacaeval",
            alpacaeval.parse,
            _add_comparisons,
            "AlpacaEval annotations: instruction, output_1/2, generator_1/2, preference in [1, 2]",
        ),
        Format(
            "events",
            events.parse,
            _add_events,
            "implicit feedback events (thumbs_up/down, regenerate, copy, edit), JSONL",
            noun="events",
        ),
        Format(
            "feedback",
            feedback.parse,
            add_feedback_items,
            "feedback items as POST /v1/feedback takes them: preferences (choice or ranking) and implicit events",
        ),
        Format(
            "trl-stepwise",
            trl_stepwise.parse,
            _add_steps,
            "TRL stepwise supervision (process reward data): prompt, completions (the steps), labels (true/false)",
            noun="step solutions",
        ),
        Format(
            "prm800k",
            prm800k.parse,
            _add_steps,
            "OpenAI PRM800K JSONL: question.problem and the chosen path of label.steps, ratings 1/0/-1 as "
            "good/neutral/bad",
            noun="step solutions",
        ),
        Format(
            "math-shepherd",
            math_shepherd.parse,
            _add_steps,
            "Math-Shepherd: input with every step ending in the tag ки, label with + or - in place of each tag",
            noun="step solutions",
        ),
    )
}


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise ImportFailed(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]
