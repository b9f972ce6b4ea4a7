"""Graceful shutdown: once SIGTERM arrives, a deadline every waiting part of the service answers by.

uvicorn, on SIGTERM, stops accepting connections, waits ``timeout_graceful_shutdown`` for the requests in
flight, then cancels what is left, and a cancelled request is answered ``500 text/plain``. So the service sets
its own deadline a little before uvicorn's (``DRAIN_SHARE`` of the grace period): the gate refuses new requests
at once (503 + Retry-After), a body still being read is cut off at the deadline, and the batcher keeps scoring
its queue until then and answers what is left 503 + Retry-After (JSON, like every error).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

DRAIN_SHARE = 0.8
"""The part of the grace period spent finishing requests; the rest is for their answers to be sent."""


class Drain:
    def __init__(self) -> None:
        self.deadline: float | None = None  # event-loop time; None while serving
        self._timeouts: set[asyncio.Timeout] = set()
        self._listeners: list[Callable[[float], None]] = []

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    def listen(self, callback: Callable[[float], None]) -> None:
        """``callback(deadline)`` when shutdown starts (the batcher's ``close_at``)."""
        self._listeners.append(callback)

    def start(self, grace_s: float) -> float:
        """Shutdown begins (call in the event loop): everything answers within ``DRAIN_SHARE * grace_s``."""
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + DRAIN_SHARE * grace_s
        for timeout in self._timeouts:
            when = timeout.when()
            timeout.reschedule(self.deadline if when is None else min(when, self.deadline))
        for callback in self._listeners:
            callback(self.deadline)
        return self.deadline

    @asynccontextmanager
    async def bounded(self, when: float) -> AsyncIterator[None]:
        """``asyncio.timeout_at(when)``, brought forward to the shutdown deadline when shutdown starts."""
        if self.deadline is not None:
            when = min(when, self.deadline)
        async with asyncio.timeout_at(when) as timeout:
            self._timeouts.add(timeout)
            try:
                yield
            finally:
                self._timeouts.discard(timeout)
