"""UltraFeedback records (openbmb/UltraFeedback) and the binarized variant (HuggingFaceH4/ultrafeedback_binarized).

Full records: one prompt, several completions, each rated by GPT-4::

    {"source": "evol_instruct", "instruction": "...", "models": [...],
     "completions": [{"model": "gpt-4", "principle": "helpfulness", "response": "...",
                      "annotations": {"helpfulness": {"Rating": "4", "Rationale": "..."},   # or a 1-list
                                      "honesty": ..., "instruction_following": ..., "truthfulness": ...},
                      "overall_score": 7.5, "fine-grained_score": 4.25, "critique": "..."}, ...]}

become one comparison over all completions with a ``RatingsJudgement``: one rating per completion for each
attribute present (``helpfulness``, ``honesty``, ``instruction_following``, ``truthfulness``; a rating of
"N/A" is None), ``overall`` from ``overall_score`` and ``fine_grained`` from ``fine-grained_score`` (NaN is
None). Completion models go to ``Response.model_name``; ``principle`` and ``critique`` to the response's
metadata; the record's ``source`` (its subset) to ``metadata["subset"]``. Annotator ``gpt-4``, kind ``ai``.

Binarized records ``{"prompt", "chosen": [messages], "rejected": [messages], "score_chosen",
"score_rejected"}`` become a pairwise comparison: the final assistant messages are the responses
(``chosen`` is ``a``), choice ``a`` (``tie`` when the scores are equal), margin = score_chosen - score_rejected.
"""

from __future__ import annotations

import math
from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.data.importers.trl import split_messages
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, RatingsJudgement, RecordError, Response

ATTRIBUTES = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _rating(annotation: Any, name: str) -> float | None:
    if isinstance(annotation, list):  # some exports wrap each annotation in a 1-element list
        if len(annotation) != 1:
            raise RecordError(name, f"expected one annotation, got {len(annotation)}")
        annotation = annotation[0]
    if not isinstance(annotation, dict) or "Rating" not in annotation:
        raise RecordError(name, "expected an object with a 'Rating'")
    rating = annotation["Rating"]
    if rating is None or rating == "N/A":
        return None
    return fields.number(rating, f"{name}.Rating")


def _score(completion: dict[str, Any], key: str, name: str) -> float | None:
    value = completion.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return fields.number(value, f"{name}.{key}")


def parse_full(record: dict[str, Any], options: ImportOptions) -> Comparison:
    prompt = fields.text(record, "instruction") if "instruction" in record else fields.text(record, "prompt")
    completions = fields.required(record, "completions")
    if not isinstance(completions, list) or len(completions) < 2:
        raise RecordError(
            "completions",
            "expected a list of at least 2 completions, got "
            f"{len(completions) if isinstance(completions, list) else type(completions).__name__}",
        )
    responses: list[Response] = []
    columns: dict[str, list[float | None]] = {a: [] for a in (*ATTRIBUTES, "overall", "fine_grained")}
    for i, c in enumerate(completions):
        name = f"completions[{i}]"
        if not isinstance(c, dict):
            raise RecordError(name, f"expected an object, got {type(c).__name__}")
        metadata = {k: c[k] for k in ("principle", "critique") if c.get(k)}
        responses.append(
            Response(fields.text(c, "response"), model_name=fields.optional_text(c, "model"), metadata=metadata)
        )
        annotations = c.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise RecordError(f"{name}.annotations", f"expected an object, got {type(annotations).__name__}")
        for attr in ATTRIBUTES:
            columns[attr].append(
                _rating(annotations[attr], f"{name}.annotations.{attr}") if attr in annotations else None
            )
        columns["overall"].append(_score(c, "overall_score", name))
        columns["fine_grained"].append(_score(c, "fine-grained_score", name))
    ratings = {attr: tuple(values) for attr, values in columns.items() if any(v is not None for v in values)}
    if not ratings:
        raise RecordError("completions", "no completion has any rating")
    texts = [r.text.strip() for r in responses]
    for i, t in enumerate(texts):
        if t in texts[:i]:
            raise RecordError(f"completions[{i}].response", f"is identical to completions[{texts.index(t)}].response")
    subset = fields.optional_text(record, "source")
    return Comparison(
        prompt=prompt,
        responses=tuple(responses),
        judgement=RatingsJudgement(ratings),
        annotator=Annotator(options.annotator_id or "gpt-4", options.annotator_kind or "ai"),
        source=options.source,
        metadata={"subset": subset} if subset else {},
    )


def parse_binarized(record: dict[str, Any], options: ImportOptions) -> Comparison:
    chosen, rejected = (
        fields.messages(record.get("chosen"), "chosen"),
        fields.messages(record.get("rejected"), "rejected"),
    )
    prompt, a, b = split_messages(chosen, rejected)
    fields.distinct(a, b)
    sc, sr = fields.optional_number(record, "score_chosen"), fields.optional_number(record, "score_rejected")
    margin = sc - sr if sc is not None and sr is not None else None
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement("tie" if margin == 0 else "a", margin=margin),
        annotator=Annotator(options.annotator_id or "gpt-4", options.annotator_kind or "ai"),
        source=options.source,
        metadata={"prompt_id": record["prompt_id"]} if isinstance(record.get("prompt_id"), str) else {},
    )


def parse(record: dict[str, Any], options: ImportOptions) -> Comparison:
    """Either shape, told apart by its fields."""
    if "completions" in record:
        return parse_full(record, options)
    if "chosen" in record:
        return parse_binarized(record, options)
    raise RecordError("completions", "is missing (and no 'chosen'/'rejected' for the binarized variant)")
