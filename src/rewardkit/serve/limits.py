"""An ASGI middleware in front of every route: the body-size limit (413) and the per-request metrics.

Pure ASGI (not ``BaseHTTPMiddleware``) so it adds microseconds, not a task per request. A body with a
Content-Length over the limit is refused before it is read; a chunked body is read up to the limit and
replayed to the app."""

from __future__ import annotations

import json
import time
from typing import Any

from rewardkit.serve.metrics import Metrics

KNOWN_ROUTES = {
    "/v1/score",
    "/v1/compare",
    "/v1/rank",
    "/get_reward",
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
    413: "payload_too_large",
    422: "validation",
    429: "overloaded",
    503: "not_ready",
}


class BodyLimitAndMetrics:
    def __init__(
        self, app: Any, max_body_bytes: int, metrics: Metrics, route_limits: dict[str, int] | None = None
    ) -> None:
        self.app, self.default_limit, self.metrics = app, max_body_bytes, metrics
        self.route_limits = route_limits or {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in KNOWN_ROUTES else "other"
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        limit = self.route_limits.get(scope["path"], self.default_limit)
        try:
            replay = await self._check_body(scope, receive, limit)
            if replay is None:
                await _too_large(send_wrapped, limit)
            else:
                await self.app(scope, replay, send_wrapped)
        finally:
            code = status["code"]
            self.metrics.requests.labels(route, str(code)).inc()
            if code >= 400 and route not in PROBES:
                kind = scope.get("rk_error_type") or ERROR_TYPES.get(code, "internal" if code >= 500 else "client")
                self.metrics.failures.labels(route, kind).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)

    async def _check_body(self, scope: dict[str, Any], receive: Any, limit: int) -> Any:
        """``receive`` to give the app, or None when the body is over the limit."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                return None if int(length) > limit else receive
            except ValueError:
                return receive  # the server rejects a malformed Content-Length itself
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"error": f"request body over {limit} bytes", "error_type": "payload_too_large"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
