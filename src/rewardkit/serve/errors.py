"""The service's one error shape, ``{"error", "error_type"}``, and the handlers that give every failure it.

TEI-style codes: 401 missing key, 408 a body too slow to arrive, 413 too large, 422 invalid input, 429 overloaded
(Retry-After), 503 not ready or shutting down. A handler raises ``ServiceError``; FastAPI's own errors (a schema
violation, a body that is not JSON, 404/405) are mapped here to the same shape.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewardkit.serve.schemas import ErrorBody, validation_message

log = logging.getLogger("rewardkit.serve")


class ServiceError(Exception):
    """An error answered as ``{"error", "error_type"}`` with ``status``."""

    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.headers = status, error_type, headers


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (401, "missing or wrong bearer key"),
        (408, "the body did not arrive within body_timeout_s"),
        (413, "too many inputs, input too long or body too large"),
        (422, "invalid input, or a conversation the model's chat template refuses"),
        (429, "queue full, or too many request bytes in flight; retry after Retry-After seconds"),
        (
            503,
            "model not loaded yet or server shutting down (retry after Retry-After seconds), or the model failed "
            "to load (no Retry-After)",
        ),
    ]
}
"""The error answers every API route documents in the OpenAPI spec."""


def error_response(
    request: Request, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    request.scope["rk_error_type"] = error_type  # the metrics middleware counts the failure under it
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status, headers=headers)


def error_bytes(error_type: str, message: str) -> bytes:
    """The error body for an answer sent below FastAPI (the ASGI middleware, the HTTP protocol)."""
    return json.dumps({"error": message, "error_type": error_type}).encode()


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(request, exc.status, exc.error_type, str(exc), exc.headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, "validation", validation_message(exc.errors()))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body that is not JSON at all: invalid input, like any other
        return error_response(request, 422, "validation", f"body: {exc.detail}")
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
    return error_response(request, exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error")
    return error_response(request, 500, "internal", f"{type(exc).__name__}: {exc}")


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _internal)
