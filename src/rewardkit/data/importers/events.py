"""Implicit feedback events, one JSON object a line::

    {"kind": "thumbs_up", "prompt": "..." | [messages], "response": "..." | {"text": ..., "model_name": ...},
     "other_response": (same shapes; required for regenerate and edit), "user_id": "...",
     "session_id": "...", "created_at": "2026-01-31T12:00:00Z", "client_event_id": "...", "metadata": {...}}

``kind`` is one of thumbs_up, thumbs_down, regenerate, copy, edit. For ``regenerate`` ``response`` is the
replaced response and ``other_response`` the new one; for ``edit`` ``response`` is the model's text and
``other_response`` the user's edited text. Sending an event with the same ``client_event_id`` again stores
nothing new. ``rewardkit import convert-events`` turns stored events into comparisons (``data/implicit.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rewardkit.data.importers import fields
from rewardkit.data.importers.options import ImportOptions
from rewardkit.records import FEEDBACK_KINDS, FeedbackEvent, RecordError, Response


def _text(value: dict[str, Any], name: str) -> str:
    try:
        return fields.text(value, "text")
    except RecordError as exc:
        raise RecordError(f"{name}.text", exc.message) from None


def _response(value: Any, name: str) -> Response:
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(name, "is empty")
        return Response(value)
    if not isinstance(value, dict):
        raise RecordError(name, f"expected text or an object with 'text', got {type(value).__name__}")
    sampling, metadata = value.get("sampling") or {}, value.get("metadata") or {}
    if not isinstance(sampling, dict) or not isinstance(metadata, dict):
        raise RecordError(name, "sampling and metadata must be objects")
    return Response(
        _text(value, name),
        model_name=fields.optional_text(value, "model_name"),
        model_version=fields.optional_text(value, "model_version"),
        sampling=sampling,
        metadata=metadata,
    )


def timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError("created_at", f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError("created_at", f"expected an ISO 8601 timestamp, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse(record: dict[str, Any], options: ImportOptions) -> FeedbackEvent:
    kind = fields.required(record, "kind")
    if kind not in FEEDBACK_KINDS:
        raise RecordError("kind", f"expected one of {', '.join(FEEDBACK_KINDS)}, got {kind!r}")
    other = record.get("other_response")
    if kind in ("regenerate", "edit") and other is None:
        raise RecordError("other_response", f"is missing (a {kind} event needs it)")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("metadata", f"expected an object, got {type(metadata).__name__}")
    client_id = record.get("client_event_id")
    if client_id is not None and not isinstance(client_id, str | int):
        raise RecordError("client_event_id", f"expected text, got {type(client_id).__name__}")
    return FeedbackEvent(
        kind=kind,
        prompt=fields.prompt(fields.required(record, "prompt"), "prompt"),
        response=_response(fields.required(record, "response"), "response"),
        other_response=_response(other, "other_response") if other is not None else None,
        user_id=fields.optional_text(record, "user_id") or None,
        session_id=fields.optional_text(record, "session_id") or None,
        created_at=timestamp(record.get("created_at")),
        client_event_id=str(client_id) if client_id is not None else None,
        metadata={"source": options.source, **metadata},
    )
