"""``rewardkit.log_feedback``: store feedback items straight into the database, without the service.

The same items, checks and answers as ``POST /v1/feedback`` (``feedback/batch.py``), in one transaction: for a
batch job or a notebook next to the store. An application that serves users should send feedback to the
service instead (group commit, separate keys, the score log's ids).

    import rewardkit
    result = rewardkit.log_feedback([{"prompt": "2+2?", "responses": ["4", "5"], "choice": "a",
                                      "client_event_id": "ui-1"}])
    result.status, [r.id for r in result.results]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.data.importers.formats import add_feedback_items
from rewardkit.feedback.batch import DEFAULT_SOURCE, ItemResult, PreparedBatch, prepare, record_id, summary_status
from rewardkit.store.engine import open_store, session_scope
from rewardkit.store.score_log import get_served_scores


@dataclass
class FeedbackResult:
    status: int  # as the service would answer: 200, 207, 409, 413 or 422
    results: list[ItemResult]
    error: str | None = None
    error_type: str | None = None

    @property
    def stored(self) -> int:
        return sum(r.status == "stored" for r in self.results)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"stored": self.stored, "rejected": len(self.results) - self.stored}
        body["results"] = [r.to_json() for r in self.results]
        if self.error:  # nothing was stored: the service's error shape, with the per-item results beside it
            body |= {"error": self.error, "error_type": self.error_type or "validation"}
        return body


def score_resolver(factory: sessionmaker[Session]) -> Any:
    """score ids -> {"prompt", "response"} of the logged scores found, read in one short transaction."""

    def resolve(ids: list[str]) -> Mapping[str, Mapping[str, Any]]:
        with session_scope(factory) as session:
            rows = get_served_scores(session, ids)
            return {sid: {"prompt": r.prompt, "response": r.response} for sid, r in rows.items()}

    return resolve


def refusal(prepared: PreparedBatch, all_or_nothing: bool) -> FeedbackResult | None:
    """The answer when nothing may be written: a conflict inside the batch (409), or a rejected item under
    ``all_or_nothing`` (the first rejection's code); None when the checked records can be written."""
    if prepared.conflict and prepared.conflicting:
        for index in prepared.conflicting:
            r = prepared.results[index]
            r.status, r.code, r.error_type, r.field = "rejected", 409, "conflict", "client_event_id"
            r.error = f"item {index}: {prepared.conflict}"
        _not_stored(prepared)
        return FeedbackResult(409, prepared.results, prepared.conflict + "; nothing was stored", "conflict")
    if all_or_nothing and prepared.rejected:
        first = prepared.rejected[0]
        _not_stored(prepared)
        message = f"{first.error} (all_or_nothing: nothing was stored)"
        return FeedbackResult(first.code, prepared.results, message, first.error_type)
    return None


def _not_stored(prepared: PreparedBatch) -> None:
    """Nothing is written: the valid items say so instead of 'stored'."""
    for r in prepared.results:
        if r.status == "stored":
            r.status = "not_stored"


def acknowledge(prepared: PreparedBatch, ids: Sequence[str]) -> FeedbackResult:
    """The answer once the records are committed: each stored item gets its record's id."""
    by_index = dict(zip((i for i, _ in prepared.records), ids, strict=True))
    for r in prepared.results:
        if r.status == "stored":
            r.id = by_index[r.index]
    status = summary_status(prepared.results)
    if status in (200, 207):
        return FeedbackResult(status, prepared.results)
    first = prepared.rejected[0]  # every item was rejected: nothing was stored
    return FeedbackResult(status, prepared.results, f"{first.error} (no item was stored)", first.error_type)


def log_feedback(
    items: Sequence[Any],
    *,
    database_url: str | None = None,
    all_or_nothing: bool = False,
    source: str = DEFAULT_SOURCE,
    factory: sessionmaker[Session] | None = None,
) -> FeedbackResult:
    """Check ``items`` and store the valid ones in one transaction (see the module docstring)."""
    factory = factory or open_store(database_url)
    prepared = prepare(items, resolve=score_resolver(factory), source=source)
    refused = refusal(prepared, all_or_nothing)
    if refused is not None:
        return refused
    records = [record for _, record in prepared.records]
    if records:
        with session_scope(factory) as session:
            add_feedback_items(session, records)
    return acknowledge(prepared, [record_id(r) for r in records])
