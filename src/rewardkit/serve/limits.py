"""The gate: an ASGI middleware in front of every route, deciding before a byte of the body is read.

In order: a server shutting down answers 503 (+ Retry-After); a protected route without its key answers 401
from the headers alone (the body is never read, so an unauthenticated client cannot make the server hold
memory); a Content-Length over the route's limit is 413; a body that would take the bytes of all requests in
flight past ``max_inflight_body_bytes`` is 429 + Retry-After (each route's limit bounds one request; this
bounds them all together, and the bytes stay counted until the answer is sent, since the parsed body lives
that long); a body that has not fully arrived ``body_timeout_s`` after the headers is 408 and the connection
closed. Then the body is replayed to the app in one piece. Shutting down, a request still unanswered just after
the drain deadline is cancelled and answered 503 (``drain.py``). The per-request metrics are counted here too.

Pure ASGI (not ``BaseHTTPMiddleware``) so it adds microseconds, not a task per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qsl

from rewardkit.serve.config import SMALL_BODY_BYTES, ServeSettings
from rewardkit.serve.deps import Denied, authorize
from rewardkit.serve.drain import STRAGGLER_S, Drain
from rewardkit.serve.errors import error_bytes
from rewardkit.serve.metrics import Metrics

KNOWN_ROUTES = {
    "/v1/score",
    "/v1/compare",
    "/v1/rank",
    "/get_reward",
    "/v1/feedback",
    "/admin/reload",
    "/health",
    "/ready",
    "/info",
    "/metrics",
}
# Probes are not API calls: /ready's 503 while the model loads IS its answer (a load balancer or Kubernetes
# polls it every few seconds), so counting it as a failure would make the failure rate alert on every
# start and every replica being rolled. Probes still show in rk_requests_total{route, status}.
PROBES = {"/health", "/ready"}
ERROR_TYPES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "payload_too_large",
    422: "validation",
    429: "overloaded",
    503: "not_ready",
}
CLIENT_CLOSED = 499  # nginx's code for a client that hung up before its body arrived (never sent: metrics only)


class Refusal(Exception):
    """An answer the gate gives instead of the app. ``close``: the connection is closed after it (the client
    is slow or the server is stopping); otherwise the server reads and discards the unread body."""

    def __init__(self, status: int, error_type: str, message: str, close: bool = False, retry_after: int = 0):
        super().__init__(message)
        self.status, self.error_type, self.close, self.retry_after = status, error_type, close, retry_after


class Gate:
    def __init__(self, app: Any, settings: ServeSettings, metrics: Metrics, drain: Drain) -> None:
        self.app, self.settings, self.metrics, self.drain = app, settings, metrics, drain
        self.route_limits = settings.body_limits()
        self.inflight = 0  # body bytes admitted and not yet answered, all requests together

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in KNOWN_ROUTES else "other"
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        held = [0]  # this request's bytes in self.inflight

        async def send_wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        try:
            self._check_headers(scope)
            replay = await self._read_body(scope, receive, held)
            if replay is None:
                status["code"] = CLIENT_CLOSED
                return
            cutoff = None
            try:  # once shutdown starts, what has not answered by its deadline is cut short (a reload, say)
                async with self.drain.bounded(None, slack=STRAGGLER_S) as cutoff:
                    await self.app(scope, replay, send_wrapped)
            except TimeoutError:
                if cutoff is None or not cutoff.expired() or status["started"]:  # not ours, or too late to answer
                    raise
                raise Refusal(503, "not_ready", "the server is shutting down", True, self._retry) from None
        except Refusal as refusal:
            scope["rk_error_type"] = refusal.error_type
            await _answer(send_wrapped, refusal)
        finally:
            self.inflight -= held[0]
            code = status["code"]
            self.metrics.requests.labels(route, str(code)).inc()
            if code >= 400 and route not in PROBES:
                kind = scope.get("rk_error_type") or ERROR_TYPES.get(code, "internal" if code >= 500 else "client")
                self.metrics.failures.labels(route, kind).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)

    def _check_headers(self, scope: dict[str, Any]) -> None:
        """Refuse what the headers already decide: shutdown, the key, a declared length over the limit."""
        if self.drain.draining:
            raise Refusal(503, "not_ready", "the server is shutting down, retry on another replica", True, self._retry)
        header = _header(scope, b"authorization")
        query_key = None
        if scope.get("query_string"):
            query_key = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)).get("api_key")
        caller = authorize(self.settings, scope["method"], scope["path"], header, query_key)
        if isinstance(caller, Denied):
            raise Refusal(401, "unauthorized", caller.message)
        length = _content_length(scope)
        limit = self.route_limits.get(scope["path"], SMALL_BODY_BYTES)
        if length is not None and length > limit:
            raise Refusal(413, "payload_too_large", f"request body over {limit} bytes")

    @property
    def _retry(self) -> int:
        return self.settings.retry_after_s

    def _admit(self, n: int, held: list[int]) -> None:
        """Count ``n`` more body bytes of this request in flight, or 429 when all requests' would pass the budget."""
        budget = self.settings.max_inflight_body_bytes
        if self.inflight + n > budget:
            raise Refusal(
                429,
                "overloaded",
                f"too many request bytes in flight ({self.inflight} + {n} over {budget}), retry later",
                retry_after=self._retry,
            )
        self.inflight += n
        held[0] += n

    async def _read_body(self, scope: dict[str, Any], receive: Any, held: list[int]) -> Any:
        """The ``receive`` to give the app (the whole body in one message), or None when the client hung up."""
        length = _content_length(scope)
        chunked = length is None and b"chunked" in (_header(scope, b"transfer-encoding") or "").encode()
        if not length and not chunked:  # no body (HTTP/1.1 has one only with a length or chunked)
            return receive
        limit = self.route_limits.get(scope["path"], SMALL_BODY_BYTES)
        self._admit(length or 0, held)
        loop = asyncio.get_running_loop()
        chunks, size, more = [], 0, True
        try:
            async with self.drain.bounded(loop.time() + self.settings.body_timeout_s):
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None  # http.disconnect
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise Refusal(413, "payload_too_large", f"request body over {limit} bytes", close=True)
                    if size > held[0]:
                        self._admit(size - held[0], held)
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            if self.drain.draining and loop.time() >= self.drain.deadline - 0.01:  # type: ignore[operator]
                raise Refusal(503, "not_ready", "the server is shutting down", True, self._retry) from None
            raise Refusal(
                408, "timeout", f"the body did not arrive within {self.settings.body_timeout_s:g} s", close=True
            ) from None
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        del chunks
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def _content_length(scope: dict[str, Any]) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None  # the server refuses a malformed Content-Length itself


async def _answer(send: Any, refusal: Refusal) -> None:
    body = error_bytes(refusal.error_type, str(refusal))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if refusal.retry_after:
        headers.append((b"retry-after", str(refusal.retry_after).encode()))
    if refusal.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
