"""What the judge labels: pairs (or single responses, for the constitutional mode) from a JSONL file or from
comparisons already in the store.

A pairs file is JSONL, one pair per line: ``prompt`` (text, or chat messages) and the two responses as
``responses`` (a list of two), ``response_a`` and ``response_b``, or ``chosen`` and ``rejected`` (a TRL file
relabelled: the judge does not see which was chosen, and the pair keeps that order). A response is text or an
object ``{"text": ..., "model": ...}``. A responses file (constitutional mode) has ``prompt`` and ``response``.
A line that is not such a record stops the read with one line naming the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rewardkit.label.revise import Original
from rewardkit.label.run import Pair
from rewardkit.records import PairwiseJudgement, RecordError, Response, validate_prompt
from rewardkit.store.queries import ComparisonFilter, iter_comparisons, response_id

PAIR_FIELDS = (("responses",), ("response_a", "response_b"), ("chosen", "rejected"))


class InputError(ValueError):
    """A pairs or responses file that cannot be read; one line naming the file, line and field."""


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
            yield number, record


def _response(value: Any, field: str) -> Response:
    if isinstance(value, str):
        return Response(value)
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        model = value.get("model", value.get("model_name", ""))
        return Response(value["text"], model_name=model if isinstance(model, str) else "")
    raise RecordError(field, 'expected text or {"text": ..., "model": ...}')


def read_pairs(path: Path) -> list[Pair]:
    pairs = []
    for number, record in _records(path):
        try:
            prompt = validate_prompt(record.get("prompt"))
            names = next((names for names in PAIR_FIELDS if all(n in record for n in names)), None)
            if names is None:
                raise RecordError("responses", "expected responses [a, b], response_a/response_b or chosen/rejected")
            if names == ("responses",):
                values = record["responses"]
                if not isinstance(values, list) or len(values) != 2:
                    raise RecordError("responses", "expected a list of exactly two responses")
                a, b = _response(values[0], "responses[0]"), _response(values[1], "responses[1]")
            else:
                a, b = _response(record[names[0]], names[0]), _response(record[names[1]], names[1])
            if (a.text, a.model_name) == (b.text, b.model_name):
                raise RecordError("responses", "the two responses are identical")
        except RecordError as exc:
            raise InputError(f"{path} line {number}: {exc}") from None
        pairs.append(Pair(prompt, a, b, {"input_line": number}))
    if not pairs:
        raise InputError(f"{path}: holds no pairs")
    return pairs


def read_originals(path: Path) -> list[Original]:
    items = []
    for number, record in _records(path):
        try:
            items.append(Original(validate_prompt(record.get("prompt")), _response(record.get("response"), "response")))
        except RecordError as exc:
            raise InputError(f"{path} line {number}: {exc}") from None
    if not items:
        raise InputError(f"{path}: holds no responses")
    return items


def pairs_from_store(session: Session, flt: ComparisonFilter) -> list[Pair]:
    """Every distinct pair of responses (same prompt, same two responses) of the stored two-response
    comparisons the filter selects, in the stored order of their first comparison."""
    seen: set[tuple[str, frozenset[str]]] = set()
    pairs = []
    for stored in iter_comparisons(session, flt):
        c = stored.comparison
        if len(c.responses) != 2 or not isinstance(c.judgement, PairwiseJudgement):
            continue
        if c.responses[0].text == c.responses[1].text:  # a tie of a response with itself: nothing to judge
            continue
        key = (stored.prompt_id, frozenset(response_id(stored.prompt_id, r) for r in c.responses))
        if key in seen:
            continue
        seen.add(key)
        pairs.append(Pair(c.prompt, c.responses[0], c.responses[1], {"labelled_from": stored.id}))
    return pairs
