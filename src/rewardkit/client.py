"""Clients for the reward service: ``rewardkit.Client`` (sync) and ``rewardkit.AsyncClient``.

    from rewardkit.client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as rk:
        rk.score([("What is 2+2?", "4")]).scores        # raw rewards
        rk.compare("Name a colour.", "Blue.", "No.")     # P(a better than b)
        rk.rank("Help me", ["a", "b", "c"])             # best first

Errors from the service raise ``ServiceError`` with its ``status`` and ``error_type``; 429 and 503 are
retried (honouring Retry-After) up to ``retries`` times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rewardkit.data.types import Prompt

RETRYABLE = (429, 503)


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


@dataclass
class Comparison:
    p_a_better: float
    scores: list[float]
    model_version: str


@dataclass
class Ranking:
    order: list[int]  # indices of the responses, best first
    scores: list[float]  # in request order
    model_version: str


def score_body(items: Sequence[tuple[Prompt, str] | dict[str, Any]], normalize: bool) -> dict[str, Any]:
    """``(prompt, response)`` tuples or ready ``{"prompt","response"} | {"messages"}`` dicts -> request body."""
    inputs = [x if isinstance(x, dict) else {"prompt": x[0], "response": x[1]} for x in items]
    return {"inputs": inputs, "normalize": normalize}


def _parse(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # not our error body (a proxy's page, say): keep its start
            raise ServiceError(response.status_code, "http", response.text[:200])
        raise ServiceError(response.status_code, str(body.get("error_type", "http")), str(body.get("error", response.text[:200])))
    return response.json()


def _delay(response: httpx.Response, attempt: int) -> float:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return min(0.1 * 2**attempt, 5.0)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class Client:
    """Synchronous client. ``retries``: how often a 429/503 is retried after its Retry-After."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)
        self.retries = retries

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            r = self._http.request(method, path, json=json)
            if r.status_code not in RETRYABLE or attempt == self.retries:
                return _parse(r)
            time.sleep(_delay(r, attempt))
        raise AssertionError("unreachable")

    def score(self, items: Sequence[tuple[Prompt, str] | dict[str, Any]], normalize: bool = False) -> Scores:
        return Scores(**self._request("POST", "/v1/score", score_body(items, normalize)))

    def compare(self, prompt: Prompt, response_a: str, response_b: str) -> Comparison:
        return Comparison(**self._request("POST", "/v1/compare", {"prompt": prompt, "response_a": response_a, "response_b": response_b}))

    def rank(self, prompt: Prompt, responses: Sequence[str]) -> Ranking:
        out = self._request("POST", "/v1/rank", {"prompt": prompt, "responses": list(responses)})
        return Ranking([x["index"] for x in out["ranking"]], out["scores"], out["model_version"])

    def get_reward(self, query: Sequence[str], prompts: Sequence[str] | None = None) -> list[float]:
        return self._request("POST", "/get_reward", {"query": list(query), "prompts": None if prompts is None else list(prompts)})["rewards"]

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/info")

    def ready(self) -> bool:
        return self._http.get("/ready").status_code == 200

    def reload(self, model_path: str | None = None) -> dict[str, Any]:
        return self._request("POST", "/admin/reload", {"model_path": model_path})


class AsyncClient:
    """The same calls, ``await``-able (one connection pool; safe to share between tasks)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)
        self.retries = retries

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            r = await self._http.request(method, path, json=json)
            if r.status_code not in RETRYABLE or attempt == self.retries:
                return _parse(r)
            await asyncio.sleep(_delay(r, attempt))
        raise AssertionError("unreachable")

    async def score(self, items: Sequence[tuple[Prompt, str] | dict[str, Any]], normalize: bool = False) -> Scores:
        return Scores(**await self._request("POST", "/v1/score", score_body(items, normalize)))

    async def compare(self, prompt: Prompt, response_a: str, response_b: str) -> Comparison:
        body = {"prompt": prompt, "response_a": response_a, "response_b": response_b}
        return Comparison(**await self._request("POST", "/v1/compare", body))

    async def rank(self, prompt: Prompt, responses: Sequence[str]) -> Ranking:
        out = await self._request("POST", "/v1/rank", {"prompt": prompt, "responses": list(responses)})
        return Ranking([x["index"] for x in out["ranking"]], out["scores"], out["model_version"])

    async def get_reward(self, query: Sequence[str], prompts: Sequence[str] | None = None) -> list[float]:
        body = {"query": list(query), "prompts": None if prompts is None else list(prompts)}
        return (await self._request("POST", "/get_reward", body))["rewards"]

    async def info(self) -> dict[str, Any]:
        return await self._request("GET", "/info")

    async def ready(self) -> bool:
        return (await self._http.get("/ready")).status_code == 200

    async def reload(self, model_path: str | None = None) -> dict[str, Any]:
        return await self._request("POST", "/admin/reload", {"model_path": model_path})
