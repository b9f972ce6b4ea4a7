"""Feedback items: what an application sends to ``POST /v1/feedback`` (and ``rewardkit.log_feedback``), one
JSON object each; ``rewardkit import feedback FILE`` reads the same objects from a file. One parser for all
three, so a record the service accepts is a record an import accepts, with the same errors.

An explicit preference::

    {"type": "preference",                       # optional: implied by "choice" or "ranking"
     "prompt": "..." | [messages],
     "responses": ["...", {"text": "...", "model_name": "...", "model_version": "...", "sampling": {...}}, ...],
     "choice": "a" | "b" | "tie" | "both_bad",   # two responses; or
     "ranking": [2, 0, 1],                       # response indices, best first
     "strength": 0.8, "attribute": "helpfulness", "rationale": "...",
     "annotator": {"id": "user-42", "kind": "human"},      # default: feedback-api, human
     "context": {...}, "client_event_id": "...", "source": "my-app"}

An implicit event (the kinds ``rewardkit import events`` knows: thumbs_up, thumbs_down, regenerate, copy, edit)::

    {"type": "event", "kind": "thumbs_up", "prompt": ..., "response": ..., "other_response": ...,
     "context": {...}, "client_event_id": "..."}

``context`` is the inference context where known: ``model_name``, ``model_version``, ``sampling`` (applied to
every response that does not name its own), ``request_id``, ``user_id``, ``session_id``, ``created_at`` (ISO
8601) and free ``metadata``. Instead of resending texts an item may cite what the service served: ``score_ids``
(a preference: one per response, in order) or ``score_id`` (an event); ``feedback/write.py`` fills the prompt and
responses in from the score log before this parser runs (``resolved`` below).

Every error is a ``RecordError`` naming the field. Lengths are checked here (not left to the database), since
PostgreSQL refuses an over-long name where SQLite stores it, and one such row must not fail a whole group commit.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.importers import events, fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import (
    ANNOTATOR_KINDS,
    Annotator,
    Comparison,
    FeedbackEvent,
    PairwiseJudgement,
    RankingJudgement,
    RecordError,
    Response,
)

DEFAULT_ANNOTATOR = Annotator("feedback-api", "human")
ITEM_TYPES = ("preference", "event")
CONTEXT_KEYS = (
    "model_name",
    "model_version",
    "sampling",
    "request_id",
    "user_id",
    "session_id",
    "created_at",
    "metadata",
)
# the store's column widths (store/tables.py): a longer value is a client's mistake, named here
NAME_LIMITS = {"client_event_id": 200, "model_name": 200, "model_version": 200, "user_id": 200, "session_id": 200}
NAME_LIMITS |= {"annotator.id": 200, "source": 200, "attribute": 100, "request_id": 200}


def item_type(record: dict[str, Any]) -> str:
    """``preference`` or ``event``: the ``type`` field, or implied by the fields present."""
    declared = record.get("type")
    if declared is not None:
        if declared not in ITEM_TYPES:
            raise RecordError("type", f"expected one of {', '.join(ITEM_TYPES)}, got {declared!r}")
        return str(declared)
    if "kind" in record and "choice" not in record and "ranking" not in record:
        return "event"
    if "choice" in record or "ranking" in record:
        return "preference"
    raise RecordError("type", "is missing (give type, or choice/ranking for a preference, or kind for an event)")


def _short(value: str | None, name: str) -> str | None:
    limit = NAME_LIMITS.get(name)
    if value is not None and limit is not None and len(value) > limit:
        raise RecordError(name, f"is {len(value)} characters long; at most {limit}")
    return value


def context_of(record: dict[str, Any]) -> dict[str, Any]:
    """The item's ``context`` object, checked: known keys, text where text is expected."""
    context = record.get("context") or {}
    if not isinstance(context, dict):
        raise RecordError("context", f"expected an object, got {type(context).__name__}")
    unknown = sorted(set(context) - set(CONTEXT_KEYS))
    if unknown:
        raise RecordError(f"context.{unknown[0]}", f"unknown key; expected one of {', '.join(CONTEXT_KEYS)}")
    for key in ("model_name", "model_version", "request_id", "user_id", "session_id", "created_at"):
        if context.get(key) is not None:
            if not isinstance(context[key], str):
                raise RecordError(f"context.{key}", f"expected text, got {type(context[key]).__name__}")
            _short(context[key], key)
    for key in ("sampling", "metadata"):
        if context.get(key) is not None and not isinstance(context[key], dict):
            raise RecordError(f"context.{key}", f"expected an object, got {type(context[key]).__name__}")
    return context


def _response(value: Any, name: str, context: dict[str, Any]) -> Response:
    """A response given as text or an object; the context's model and sampling fill what it does not name."""
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise RecordError(name, f"expected text or an object with 'text', got {type(value).__name__}")
    text = fields.required(value, "text") if "text" in value else None
    if not isinstance(text, str):
        raise RecordError(f"{name}.text", "is missing" if text is None else f"expected text, got {type(text).__name__}")
    sampling, metadata = value.get("sampling"), value.get("metadata") or {}
    if sampling is not None and not isinstance(sampling, dict):
        raise RecordError(f"{name}.sampling", f"expected an object, got {type(sampling).__name__}")
    if not isinstance(metadata, dict):
        raise RecordError(f"{name}.metadata", f"expected an object, got {type(metadata).__name__}")
    model_name = value.get("model_name", context.get("model_name")) or ""
    model_version = value.get("model_version", context.get("model_version")) or ""
    for key, v in (("model_name", model_name), ("model_version", model_version)):
        if not isinstance(v, str):
            raise RecordError(f"{name}.{key}", f"expected text, got {type(v).__name__}")
        if len(v) > NAME_LIMITS[key]:
            raise RecordError(f"{name}.{key}", f"is {len(v)} characters long; at most {NAME_LIMITS[key]}")
    return Response(
        text,
        model_name=model_name,
        model_version=model_version,
        sampling=sampling if sampling is not None else (context.get("sampling") or {}),
        metadata=metadata,
    )


def _annotator(record: dict[str, Any], options: ImportOptions) -> Annotator:
    raw = record.get("annotator")
    if raw is None:
        return Annotator(options.annotator_id or DEFAULT_ANNOTATOR.id, options.annotator_kind or DEFAULT_ANNOTATOR.kind)
    if not isinstance(raw, dict):
        raise RecordError("annotator", f"expected an object with id and kind, got {type(raw).__name__}")
    annotator_id, kind = raw.get("id"), raw.get("kind", "human")
    if not isinstance(annotator_id, str) or not annotator_id.strip():
        raise RecordError("annotator.id", "is missing" if annotator_id is None else "expected non-empty text")
    if kind not in ANNOTATOR_KINDS:
        raise RecordError("annotator.kind", f"expected one of {', '.join(ANNOTATOR_KINDS)}, got {kind!r}")
    return Annotator(_short(annotator_id, "annotator.id") or "", kind)


def _client_event_id(record: dict[str, Any]) -> str | None:
    value = record.get("client_event_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise RecordError("client_event_id", "expected non-empty text")
    return _short(str(value), "client_event_id")


def _metadata(record: dict[str, Any], context: dict[str, Any], source: str) -> dict[str, Any]:
    """What the store keeps beside the judgement: the context that has no column of its own."""
    kept = {k: context[k] for k in ("request_id", "user_id", "session_id") if context.get(k)}
    if context.get("metadata"):
        kept["metadata"] = context["metadata"]
    if record.get("score_ids") or record.get("score_id"):
        kept["score_ids"] = record.get("score_ids") or [record["score_id"]]
    return {"source": source, "context": kept} if kept else {"source": source}


def parse_preference(record: dict[str, Any], options: ImportOptions) -> Comparison:
    context = context_of(record)
    raw = fields.required(record, "responses")
    if not isinstance(raw, list) or len(raw) < 2:
        got = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise RecordError("responses", f"expected a list of at least 2 responses, got {got}")
    responses = tuple(_response(r, f"responses[{i}]", context) for i, r in enumerate(raw))
    if ("choice" in record) == ("ranking" in record):
        raise RecordError("choice", "give exactly one of choice (2 responses) or ranking")
    if "choice" in record:
        if len(responses) != 2:
            raise RecordError("choice", f"a choice needs exactly 2 responses, got {len(responses)} (use ranking)")
        judgement: PairwiseJudgement | RankingJudgement = PairwiseJudgement(
            record["choice"], strength=fields.optional_number(record, "strength")
        )
    else:
        order = record["ranking"]
        if not isinstance(order, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in order):
            raise RecordError("ranking", "expected a list of response indices, best first")
        if len(order) != len(responses):
            raise RecordError("ranking", f"ranks {len(order)} responses but there are {len(responses)}")
        judgement = RankingJudgement(tuple(order))
    attribute = fields.optional_text(record, "attribute") or None
    source = _short(fields.optional_text(record, "source") or options.source, "source") or options.source
    return Comparison(
        prompt=fields.prompt(fields.required(record, "prompt"), "prompt"),
        responses=responses,
        judgement=judgement,
        annotator=_annotator(record, options),
        source=source,
        attribute=_short(attribute, "attribute"),
        rationale=fields.optional_text(record, "rationale") or None,
        created_at=events.timestamp(context.get("created_at")),
        client_event_id=_client_event_id(record),
        metadata=_metadata(record, context, source),
    )


def parse_event(record: dict[str, Any], options: ImportOptions) -> FeedbackEvent:
    """The events importer's parser, after the context is laid into the fields it reads."""
    context = context_of(record)
    flat = {k: v for k, v in record.items() if k not in ("type", "context", "score_id")}
    for key in ("user_id", "session_id", "created_at"):
        if context.get(key) is not None and flat.get(key) is None:
            flat[key] = context[key]
    for key in ("response", "other_response"):
        if isinstance(flat.get(key), str) and (context.get("model_name") or context.get("model_version")):
            flat[key] = {
                k: v
                for k, v in (("text", flat[key]), *((m, context.get(m)) for m in ("model_name", "model_version")))
                if v
            }
    flat["client_event_id"] = _client_event_id(record)
    flat["metadata"] = {**(flat.get("metadata") or {}), **_metadata(record, context, options.source)}
    for key in ("user_id", "session_id"):
        if isinstance(flat.get(key), str):
            _short(flat[key], key)
    return events.parse(flat, options)


def parse(record: dict[str, Any], options: ImportOptions) -> Comparison | FeedbackEvent:
    """One feedback item -> a ``Comparison`` (a preference) or a ``FeedbackEvent`` (an implicit event)."""
    if not isinstance(record, dict):
        raise RecordError("item", f"expected an object, got {type(record).__name__}")
    return parse_preference(record, options) if item_type(record) == "preference" else parse_event(record, options)
