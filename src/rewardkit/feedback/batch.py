"""A batch of feedback items, checked before anything is written: each item parsed with the importers' parser
(``data/importers/feedback.py``), cited score ids filled in from the score log, conflicts inside the batch found.

Pure but for ``resolve`` (score ids -> logged scores), so the service, ``rewardkit.log_feedback`` and the tests
share it. What comes out is one ``ItemResult`` per item (stored items get their id only once written) and the
parsed records to write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.data.importers import feedback as feedback_format
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import Comparison, FeedbackEvent, RecordError, canonical_json

Resolver = Callable[[list[str]], Mapping[str, Mapping[str, Any]]]
"""score ids -> the logged scores found (dicts with at least ``prompt`` and ``response``)."""

DEFAULT_SOURCE = "feedback-api"


@dataclass
class ItemResult:
    """What became of one item. ``code``: 200 stored; 413 a text over the limit; 422 invalid or unknown score id."""

    index: int
    status: str  # stored | rejected
    code: int = 200
    id: str | None = None
    field: str | None = None
    error: str | None = None
    error_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class PreparedBatch:
    results: list[ItemResult]
    records: list[tuple[int, Comparison | FeedbackEvent]] = field(default_factory=list)  # (item index, record)
    conflict: str | None = None  # two items with one client_event_id and different content
    conflicting: tuple[int, int] | None = None  # their indices

    @property
    def rejected(self) -> list[ItemResult]:
        return [r for r in self.results if r.status == "rejected"]


def _reject(index: int, field_name: str, message: str, code: int = 422, error_type: str = "validation") -> ItemResult:
    return ItemResult(
        index, "rejected", code, None, field_name, f"item {index}: field '{field_name}': {message}", error_type
    )


def _too_long(item: Mapping[str, Any], max_chars: int) -> str | None:
    """The first text field over ``max_chars`` characters (prompt, a message, a response), or None."""
    prompt = item.get("prompt")
    if isinstance(prompt, str) and len(prompt) > max_chars:
        return "prompt"
    if isinstance(prompt, list):
        for i, m in enumerate(prompt):
            if isinstance(m, dict) and isinstance(m.get("content"), str) and len(m["content"]) > max_chars:
                return f"prompt[{i}].content"
    candidates = [(f"responses[{i}]", r) for i, r in enumerate(item.get("responses") or [])]
    candidates += [(k, item.get(k)) for k in ("response", "other_response", "rationale")]
    for name, value in candidates:
        text = value.get("text") if isinstance(value, dict) else value
        if isinstance(text, str) and len(text) > max_chars:
            return name
    return None


def _cited_ids(item: Mapping[str, Any]) -> list[str]:
    ids = item.get("score_ids") if "score_ids" in item else ([item["score_id"]] if "score_id" in item else [])
    return ids if isinstance(ids, list) else []


def _fill_from_log(item: dict[str, Any], found: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The item with prompt and responses taken from the logged scores it cites (what it gives itself wins)."""
    if "score_ids" in item:
        ids = item["score_ids"]
        if not isinstance(ids, list) or len(ids) < 2 or not all(isinstance(i, str) for i in ids):
            raise RecordError("score_ids", "expected a list of at least 2 score ids (one per response, in order)")
        logged = []
        for i, sid in enumerate(ids):
            if sid not in found:
                raise RecordError(
                    f"score_ids[{i}]", f"no logged score {sid!r} (not served, or not sampled into the log)"
                )
            logged.append(found[sid])
        prompts = {canonical_json(s["prompt"]) for s in logged}
        if len(prompts) > 1:
            raise RecordError("score_ids", "the cited scores answer different prompts")
        filled = {"prompt": logged[0]["prompt"], "responses": [s["response"] for s in logged], **item}
        return filled
    if "score_id" in item:
        sid = item["score_id"]
        if not isinstance(sid, str) or sid not in found:
            raise RecordError("score_id", f"no logged score {sid!r} (not served, or not sampled into the log)")
        return {"prompt": found[sid]["prompt"], "response": found[sid]["response"], **item}
    return item


def prepare(
    items: Sequence[Any],
    *,
    resolve: Resolver | None = None,
    max_chars: int | None = None,
    source: str = DEFAULT_SOURCE,
) -> PreparedBatch:
    """Check every item; nothing is written here. ``max_chars``: the longest text accepted (None: no limit)."""
    options = ImportOptions(source)
    cited = sorted(
        {sid for item in items if isinstance(item, dict) for sid in _cited_ids(item) if isinstance(sid, str)}
    )
    found = resolve(cited) if cited and resolve is not None else {}
    results: list[ItemResult] = []
    prepared = PreparedBatch(results)
    seen: dict[str, tuple[int, dict[str, Any]]] = {}  # client_event_id -> (first index, its item)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append(_reject(index, "item", f"expected an object, got {type(item).__name__}"))
            continue
        long_field = _too_long(item, max_chars) if max_chars is not None else None
        if long_field is not None:
            results.append(_reject(index, long_field, f"longer than {max_chars} characters", 413, "too_large"))
            continue
        try:
            record = feedback_format.parse(_fill_from_log(item, found), options)
        except RecordError as exc:
            results.append(_reject(index, exc.field, exc.message))
            continue
        client_id = record.client_event_id
        if client_id is not None:
            first = seen.setdefault(client_id, (index, item))
            # the contents are compared only when an id repeats (most batches have none to compare)
            if first[0] != index and prepared.conflict is None and canonical_json(first[1]) != canonical_json(item):
                prepared.conflicting = (first[0], index)
                prepared.conflict = (
                    f"items {first[0]} and {index} share client_event_id {client_id!r} but differ in content"
                )
        results.append(ItemResult(index, "stored"))
        prepared.records.append((index, record))
    return prepared


def record_id(record: Comparison | FeedbackEvent) -> str:
    """The id a stored record has (its dedupe key): the same for a retried item, so a retry answers the same."""
    return record.dedupe_key


def summary_status(results: Sequence[ItemResult]) -> int:
    """The HTTP status of a batch: 200 all stored, 207 some stored and some rejected, else the first rejection's
    code (422 or 413): nothing was stored."""
    stored = sum(r.status == "stored" for r in results)
    if stored == len(results):
        return 200
    if stored:
        return 207
    return next(r.code for r in results if r.status == "rejected")
