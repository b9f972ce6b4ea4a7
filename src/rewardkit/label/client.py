"""An async client for any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, OpenAI).

``POST {base_url}/chat/completions`` with ``model``, ``messages``, ``temperature``, ``max_tokens``; the answer's
``choices[0].message.content`` and ``usage`` (prompt and completion tokens) are what is read. At most
``concurrency`` requests are in flight (a semaphore). 429, 5xx, timeouts and dropped connections are retried
with exponential backoff (``Retry-After`` honoured when the server sends it, capped); other 4xx (a wrong
model name, a bad key) and answers that are not chat completions raise at once: retrying will not fix them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


class JudgeError(RuntimeError):
    """The judge endpoint cannot answer: unreachable after retries, refusing the request, or not speaking the
    chat-completions protocol. One line, naming the endpoint."""


@dataclass(frozen=True)
class ChatAnswer:
    content: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ChatClient:
    base_url: str
    """The API root, e.g. http://127.0.0.1:8000/v1 (a URL ending in /chat/completions is accepted too)."""
    model: str
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 5
    timeout_s: float = 60.0
    backoff_s: float = 0.5
    """First retry's wait; doubled each retry, with jitter."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        url = self.base_url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, got {self.base_url!r}")
        self._semaphore = asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._http = httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits)
        self.retries = 0
        """Requests retried so far (429, 5xx, timeouts), for the summary."""

    async def close(self) -> None:
        await self._http.aclose()

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        before_send: Callable[[], None] | None = None,
    ) -> ChatAnswer:
        """The judge's answer. ``before_send`` runs once a slot is free, before each attempt, and may raise to
        stop the request (a budget: checked at the last moment, so at most ``concurrency`` requests overshoot)."""
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        async with self._semaphore:
            for attempt in range(self.max_retries + 1):
                if before_send is not None:
                    before_send()
                wait = await self._try(body, attempt)
                if isinstance(wait, ChatAnswer):
                    return wait
                self.retries += 1
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # _try raises on the last attempt

    async def _try(self, body: dict[str, Any], attempt: int) -> ChatAnswer | float:
        """The answer, or how long to wait before the next attempt; raises JudgeError when there is none."""
        last = attempt >= self.max_retries
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.RequestError as exc:  # timeouts, refused or dropped connections, broken responses
            if last:
                reason = "timed out" if isinstance(exc, httpx.TimeoutException) else f"unreachable ({exc})"
                raise JudgeError(f"judge endpoint {self.url} {reason} after {attempt + 1} attempts") from None
            return self._backoff(attempt)
        if response.status_code in RETRYABLE_STATUS:
            if last:
                raise JudgeError(
                    f"judge endpoint {self.url} answered HTTP {response.status_code} {attempt + 1} times"
                    f" (last: {_short(response.text)})"
                )
            return _retry_after(response) or self._backoff(attempt)
        if response.status_code >= 400:
            raise JudgeError(
                f"judge endpoint {self.url} refused the request: HTTP {response.status_code} {_short(response.text)}"
            )
        return self._parse(response)

    def _backoff(self, attempt: int) -> float:
        return self.backoff_s * (2**attempt) * (0.5 + random.random())

    def _parse(self, response: httpx.Response) -> ChatAnswer:
        try:
            payload = response.json()
            content = payload["choices"][0]["message"]["content"]
            usage = payload.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise JudgeError(
                f"judge endpoint {self.url} did not answer as an OpenAI chat completion"
                f" (expected choices[0].message.content; got {_short(response.text)})"
            ) from None
        # a refusal or a filtered answer may come back with content null: an answer without a verdict
        return ChatAnswer(content if isinstance(content, str) else "", prompt_tokens, completion_tokens)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")
