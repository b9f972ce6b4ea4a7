"""``POST /v1/feedback``: preferences and implicit events from an application, stored with group commit.

The items are the ones ``rewardkit import feedback`` reads (``data/importers/feedback.py``), checked by the same
parser (``feedback/batch.py``); a 200 means every item is committed. A retried request (same client_event_ids)
stores nothing new and gets the same answer. See docs/feedback.md.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at import.

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rewardkit.feedback.batch import prepare
from rewardkit.feedback.write import acknowledge, refusal, score_resolver
from rewardkit.serve.deps import CallerDep, SettingsDep
from rewardkit.serve.errors import ERRORS, ServiceError
from rewardkit.serve.store_link import StoreLink

router = APIRouter(responses=ERRORS)

ITEM_DOC = (
    "A preference {prompt, responses: [2+], choice: a|b|tie|both_bad | ranking: [indices best first], strength?, "
    "attribute?, rationale?, annotator?: {id, kind}} or an implicit event {type: 'event', kind: thumbs_up|"
    "thumbs_down|regenerate|copy|edit, prompt, response, other_response?}; either with context?: {model_name, "
    "model_version, sampling, request_id, user_id, session_id, created_at, metadata} and client_event_id?. "
    "score_ids (a preference, one per response) or score_id (an event) may stand for the prompt and responses the "
    "service served and logged."
)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[dict[str, Any]] = Field(min_length=1, description=ITEM_DOC)
    all_or_nothing: bool = Field(
        default=False, description="Refuse the whole batch (nothing stored) when any item is invalid."
    )


class ItemResultBody(BaseModel):
    index: int
    status: str = Field(description="stored | rejected | not_stored (nothing was stored: conflict, all_or_nothing)")
    code: int = Field(description="200, or why the item was refused: 409 conflict, 413 too long, 422 invalid")
    id: str | None = Field(default=None, description="The stored record's id: the same for a retried item.")
    field: str | None = None
    error: str | None = None
    error_type: str | None = None


class FeedbackResponse(BaseModel):
    stored: int
    rejected: int
    results: list[ItemResultBody]
    error: str | None = None
    error_type: str | None = None


async def ready_link(link: StoreLink, retry_after_s: int) -> StoreLink:
    """The open link, or 503 + Retry-After while the database cannot be opened."""
    # not opened yet (the start-up opener still running: wait for it), or failed long enough ago to try again
    if link.factory is None and (link.error is None or link.due_for_retry()):
        await asyncio.to_thread(link.open)
    if link.factory is None or link.writer is None:
        raise ServiceError(
            503, "store_unavailable", f"the database is unavailable ({link.error})", {"Retry-After": str(retry_after_s)}
        )
    return link


@router.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    responses={
        207: {"model": FeedbackResponse, "description": "some items stored, some rejected (see results)"},
        409: {"model": FeedbackResponse, "description": "two items share a client_event_id with different content"},
    },
)
async def feedback(body: FeedbackRequest, request: Request, _: CallerDep, settings: SettingsDep) -> JSONResponse:
    """Store feedback items. 200: all committed; 207: the valid ones committed, the rest rejected (per item);
    409/413/422: nothing stored; 503: the database is unavailable (nothing stored, retry)."""
    if len(body.items) > settings.feedback_max_items:
        raise ServiceError(
            413, "payload_too_large", f"{len(body.items)} items; the limit is {settings.feedback_max_items}"
        )
    # the link from app.state, not a dependency: each dependency costs a request ~5% of this route's CPU
    link = await ready_link(request.app.state.store_link, settings.retry_after_s)
    cites = any("score_id" in item or "score_ids" in item for item in body.items)
    check = lambda: prepare(  # noqa: E731
        body.items, resolve=score_resolver(link.factory), max_chars=settings.max_chars_per_input
    )
    try:  # reading cited score ids is a database read: off the event loop
        prepared = await asyncio.to_thread(check) if cites else check()
    except Exception as exc:  # noqa: BLE001 - the database failed, not the client
        raise _unavailable(exc, settings.retry_after_s) from None
    refused = refusal(prepared, body.all_or_nothing)
    if refused is not None:
        return JSONResponse(refused.to_json(), status_code=refused.status)
    records = [record for _, record in prepared.records]
    ids: list[str] = []
    if records:
        assert link.writer is not None
        try:
            ids = await link.writer.write(records)
        except Exception as exc:  # noqa: BLE001 - rolled back: nothing of this request is stored
            raise _unavailable(exc, settings.retry_after_s) from None
    result = acknowledge(prepared, ids)
    return JSONResponse(result.to_json(), status_code=result.status)


def _unavailable(exc: Exception, retry_after_s: int) -> ServiceError:
    detail = " ".join(str(exc).split())[:200]
    return ServiceError(
        503,
        "store_unavailable",
        f"the database refused the write ({type(exc).__name__}: {detail}); nothing was stored, retry",
        {"Retry-After": str(retry_after_s)},
    )
