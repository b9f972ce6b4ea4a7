"""Graceful shutdown: once SIGTERM arrives, a deadline every waiting part of the service answers by.

uvicorn, on SIGTERM, stops accepting connections, waits ``timeout_graceful_shutdown`` for the requests in
flight, then cancels what is left, and a cancelled request is answered ``500 text/plain``. So the service has
its own deadline, the grace period, and gives uvicorn ``ANSWER_MARGIN_S`` more (``server.py``): the gate refuses
new requests at once (503 + Retry-After), a body still being read is cut off at the deadline, and the batcher
keeps scoring its queue until then and answers what is left 503 + Retry-After (JSON, like every error); the
margin is for those answers to be written (on a busy 2-core box 100 of them took up to 0.9 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

ANSWER_MARGIN_S = 2.0
"""Seconds uvicorn waits past the grace period, for the answers given at its end to be sent."""
STRAGGLER_S = 0.5
"""Past the deadline, a request still unanswered (a model reload in flight, say: the batcher answers its own at the
deadline) is cancelled by the gate and answered 503 itself."""


class Drain:
    def __init__(self) -> None:
        self.deadline: float | None = None  # event-loop time; None while serving
        self._timeouts: dict[asyncio.Timeout, float] = {}  # each with its slack past the deadline
        self._listeners: list[Callable[[float], None]] = []

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    def listen(self, callback: Callable[[float], None]) -> None:
        """``callback(deadline)`` when shutdown starts (the batcher's ``close_at``)."""
        self._listeners.append(callback)

    def start(self, grace_s: float) -> float:
        """Shutdown begins (call in the event loop): every request in flight is answered within ``grace_s``."""
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + grace_s
        for timeout, slack in self._timeouts.items():
            when, last = timeout.when(), self.deadline + slack
            timeout.reschedule(last if when is None else min(when, last))
        for callback in self._listeners:
            callback(self.deadline)
        return self.deadline

    @asynccontextmanager
    async def bounded(self, when: float | None, slack: float = 0.0) -> AsyncIterator[asyncio.Timeout]:
        """``asyncio.timeout_at(when)`` (None: no limit), brought forward to the shutdown deadline + ``slack``
        once shutdown starts."""
        if self.deadline is not None:
            last = self.deadline + slack
            when = last if when is None else min(when, last)
        async with asyncio.timeout_at(when) as timeout:
            self._timeouts[timeout] = slack
            try:
                yield timeout
            finally:
                self._timeouts.pop(timeout, None)
