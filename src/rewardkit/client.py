"""Clients for the reward service: ``rewardkit.Client`` (sync) and ``rewardkit.AsyncClient``.

    from rewardkit.client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as rk:
        rk.score([("What is 2+2?", "4")]).scores        # raw rewards
        rk.compare("Name a colour.", "Blue.", "No.")     # P(a better than b)
        rk.rank("Help me", ["a", "b", "c"])             # best first
        ids = rk.score([("Hi", "Hello!"), ("Hi", "Go away.")]).score_ids
        rk.feedback([{"score_ids": ids, "choice": "a", "client_event_id": "ui-1"}])   # see docs/feedback.md

Errors from the service raise ``ServiceError`` with its ``status`` and ``error_type``. A server still
loading its model (503 with Retry-After) is waited for, retrying after each Retry-After, for up to
``ready_timeout`` seconds (default 120: a trainer and its reward server are often started together);
other 429 and 503 answers are retried after Retry-After (or a short backoff) up to ``retries`` times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rewardkit.records import Prompt

RETRYABLE = (429, 503)
READY_TIMEOUT_S = 120.0  # how long a client waits for a server that is still loading its model


class ServiceError(RuntimeError):
    """The service answered with an error body ``{"error", "error_type"}``."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class Scores:
    scores: list[float]
    uncertainty: list[float] | None
    truncated: list[bool]
    model_version: str
    score_ids: list[str] | None = None  # cite them in feedback; None when the service logs no scores
    step_scores: list[list[float | None]] | None = None  # a process reward model's, per input and step


@dataclass
class Comparison:
    p_a_better: float
    scores: list[float]
    model_version: str
    score_ids: list[str] | None = None


@dataclass
class Ranking:
    order: list[int]  # indices of the responses, best first
    scores: list[float]  # in request order
    model_version: str
    score_ids: list[str] | None = None  # in request order


@dataclass
class FeedbackReceipt:
    """What /v1/feedback did: every item with ``status`` stored (``id``: the record's, the same on a retry) or
    rejected (``code``, ``field``, ``error``). A 200 or 207 comes back as a receipt; 409/413/422 raise."""

    stored: int
    rejected: int
    results: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.rejected == 0


def feedback_body(items: Sequence[dict[str, Any]], all_or_nothing: bool) -> dict[str, Any]:
    return {"items": list(items), "all_or_nothing": all_or_nothing}


def _receipt(body: dict[str, Any]) -> FeedbackReceipt:
    return FeedbackReceipt(body["stored"], body["rejected"], body["results"])


def score_body(
    items: Sequence[tuple[Prompt, str] | dict[str, Any]],
    normalize: bool,
    aggregate: str | None = None,
    uwo_lambda: float | None = None,
) -> dict[str, Any]:
    """``(prompt, response)`` tuples or ready ``{"prompt","response"} | {"messages"}`` dicts -> request body.
    ``aggregate``/``uwo_lambda``: an ensemble's mean, uwo or wco (unset: the service's default)."""
    inputs = [x if isinstance(x, dict) else {"prompt": x[0], "response": x[1]} for x in items]
    body: dict[str, Any] = {"inputs": inputs, "normalize": normalize}
    if aggregate is not None:
        body["aggregate"] = aggregate
    if uwo_lambda is not None:
        body["uwo_lambda"] = uwo_lambda
    return body


def _parse(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # not our error body (a proxy's page, say): keep its start
            raise ServiceError(response.status_code, "http", response.text[:200])
        raise ServiceError(
            response.status_code, str(body.get("error_type", "http")), str(body.get("error", response.text[:200]))
        )
    return response.json()


def _delay(response: httpx.Response, attempt: int) -> float:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return min(0.1 * 2**attempt, 5.0)


def _loading(response: httpx.Response) -> bool:
    """The service is still loading its model: 503 with Retry-After (a model that failed to load, or a server
    shutting down, answer 503 without it: waiting will not help)."""
    return response.status_code == 503 and "retry-after" in response.headers


def _retry_delay(
    response: httpx.Response, attempt: int, waited: float, retries: int, ready_timeout: float
) -> float | None:
    """Seconds to wait before sending the request again, or None to answer with ``response``. ``attempt``:
    retries so far other than waits for loading; ``waited``: seconds since the first try."""
    if _loading(response):
        delay = _delay(response, attempt)
        return delay if waited + delay <= ready_timeout else None
    if response.status_code in RETRYABLE and attempt < retries:
        return _delay(response, attempt)
    return None


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _ranking(out: dict[str, Any]) -> Ranking:
    return Ranking([x["index"] for x in out["ranking"]], out["scores"], out["model_version"], out.get("score_ids"))


class Client:
    """Synchronous client. ``retries``: how often a 429/503 is retried after its Retry-After;
    ``ready_timeout``: seconds to keep retrying a server that is still loading its model (0: do not wait);
    ``feedback_key``: the key /v1/feedback takes (RK_FEEDBACK_KEYS on the service), when it is not ``api_key``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        ready_timeout: float = READY_TIMEOUT_S,
        feedback_key: str | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)
        self.retries, self.ready_timeout = retries, ready_timeout
        self._feedback_headers = _headers(feedback_key) or None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        start, attempt = time.monotonic(), 0
        while True:
            r = self._http.request(method, path, json=json, headers=headers)
            delay = _retry_delay(r, attempt, time.monotonic() - start, self.retries, self.ready_timeout)
            if delay is None:
                return _parse(r)
            attempt += not _loading(r)
            time.sleep(delay)

    def score(
        self,
        items: Sequence[tuple[Prompt, str] | dict[str, Any]],
        normalize: bool = False,
        aggregate: str | None = None,
        uwo_lambda: float | None = None,
    ) -> Scores:
        return Scores(**self._request("POST", "/v1/score", score_body(items, normalize, aggregate, uwo_lambda)))

    def compare(self, prompt: Prompt, response_a: str, response_b: str) -> Comparison:
        return Comparison(
            **self._request(
                "POST", "/v1/compare", {"prompt": prompt, "response_a": response_a, "response_b": response_b}
            )
        )

    def rank(self, prompt: Prompt, responses: Sequence[str]) -> Ranking:
        return _ranking(self._request("POST", "/v1/rank", {"prompt": prompt, "responses": list(responses)}))

    def feedback(self, items: Sequence[dict[str, Any]], all_or_nothing: bool = False) -> FeedbackReceipt:
        """Send feedback items (docs/feedback.md); retried on 429/503 (safe: items are idempotent)."""
        body = feedback_body(items, all_or_nothing)
        return _receipt(self._request("POST", "/v1/feedback", body, self._feedback_headers))

    def get_reward(self, query: Sequence[str], prompts: Sequence[str] | None = None) -> list[float]:
        return self._request(
            "POST", "/get_reward", {"query": list(query), "prompts": None if prompts is None else list(prompts)}
        )["rewards"]

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/info")

    def ready(self) -> bool:
        return self._http.get("/ready").status_code == 200

    def reload(self, model_path: str | None = None) -> dict[str, Any]:
        return self._request("POST", "/admin/reload", {"model_path": model_path})


class AsyncClient:
    """The same calls, ``await``-able (one connection pool; safe to share between tasks)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        ready_timeout: float = READY_TIMEOUT_S,
        feedback_key: str | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)
        self.retries, self.ready_timeout = retries, ready_timeout
        self._feedback_headers = _headers(feedback_key) or None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        start, attempt = time.monotonic(), 0
        while True:
            r = await self._http.request(method, path, json=json, headers=headers)
            delay = _retry_delay(r, attempt, time.monotonic() - start, self.retries, self.ready_timeout)
            if delay is None:
                return _parse(r)
            attempt += not _loading(r)
            await asyncio.sleep(delay)

    async def score(
        self,
        items: Sequence[tuple[Prompt, str] | dict[str, Any]],
        normalize: bool = False,
        aggregate: str | None = None,
        uwo_lambda: float | None = None,
    ) -> Scores:
        body = score_body(items, normalize, aggregate, uwo_lambda)
        return Scores(**await self._request("POST", "/v1/score", body))

    async def compare(self, prompt: Prompt, response_a: str, response_b: str) -> Comparison:
        body = {"prompt": prompt, "response_a": response_a, "response_b": response_b}
        return Comparison(**await self._request("POST", "/v1/compare", body))

    async def rank(self, prompt: Prompt, responses: Sequence[str]) -> Ranking:
        return _ranking(await self._request("POST", "/v1/rank", {"prompt": prompt, "responses": list(responses)}))

    async def feedback(self, items: Sequence[dict[str, Any]], all_or_nothing: bool = False) -> FeedbackReceipt:
        body = feedback_body(items, all_or_nothing)
        return _receipt(await self._request("POST", "/v1/feedback", body, self._feedback_headers))

    async def get_reward(self, query: Sequence[str], prompts: Sequence[str] | None = None) -> list[float]:
        body = {"query": list(query), "prompts": None if prompts is None else list(prompts)}
        return (await self._request("POST", "/get_reward", body))["rewards"]

    async def info(self) -> dict[str, Any]:
        return await self._request("GET", "/info")

    async def ready(self) -> bool:
        return (await self._http.get("/ready")).status_code == 200

    async def reload(self, model_path: str | None = None) -> dict[str, Any]:
        return await self._request("POST", "/admin/reload", {"model_path": model_path})
