"""Group commit: concurrent feedback requests share one transaction, written by one thread off the event loop.

A commit costs the same whether it holds one event or a thousand (SQLite's fsync, PostgreSQL's WAL flush and
round trip), so committing per request caps a service at 1 / commit latency per connection. Here every request
hands its checked records to a queue and waits on a future; the writer thread takes what has queued, waits a
few milliseconds more for stragglers when requests are arriving concurrently, writes them all in one
transaction, and only then resolves the futures: an acknowledged request is a committed one.

If a group's transaction fails, each request of the group is retried alone, so one request the database refuses
cannot fail its neighbours; the error reaches only the request(s) it belongs to.

Run it:

    writer = GroupCommitWriter(open_store()); writer.start()
    ids = await writer.write(records)           # in the event loop: [dedupe key per record]; raises on a DB error
    ids = writer.submit(records).result()       # from any thread: a concurrent Future
    writer.close()

``write`` hands the whole group's answers to the event loop in one call (one wake-up of the loop per group, not
one per request: the per-request wake-ups and future chaining of ``asyncio.wrap_future`` cost a single-event
request a few per cent of its CPU).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.data.importers.formats import add_feedback_items
from rewardkit.store.engine import session_scope

log = logging.getLogger(__name__)


@dataclass
class _Request:
    records: Sequence[Any]
    future: Future[list[str]] | asyncio.Future[list[str]] = field(default_factory=Future)
    loop: asyncio.AbstractEventLoop | None = None  # set: ``future`` is an asyncio future of this loop


class GroupCommitWriter:
    """One writer thread; ``submit`` from any thread (or the event loop) returns a future of the records' ids."""

    def __init__(self, factory: sessionmaker[Session], *, max_wait_s: float = 0.002, max_records: int = 5000) -> None:
        self.factory, self.max_wait_s, self.max_records = factory, max_wait_s, max_records
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="rk-feedback-writer", daemon=True)
        self._closed = False
        self.transactions = 0  # committed transactions (a retried group counts each attempt that committed)
        self.records = 0  # records written (stored or found already stored)
        self.failures = 0  # requests answered with a database error

    def start(self) -> None:
        self._thread.start()

    def submit(self, records: Sequence[Any]) -> Future[list[str]]:
        if self._closed:
            raise RuntimeError("the feedback writer is closed")
        request = _Request(records)
        self._queue.put(request)
        return request.future

    async def write(self, records: Sequence[Any]) -> list[str]:
        """``submit`` for a caller in an event loop: the records' ids once committed; raises what the database
        raised (nothing of this call is stored then)."""
        if self._closed:
            raise RuntimeError("the feedback writer is closed")
        loop = asyncio.get_running_loop()
        request = _Request(records, loop.create_future(), loop)
        self._queue.put(request)
        return await request.future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop (requests submitted after this are refused)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        concurrent = False  # did the last group hold more than one request? then waiting for stragglers pays
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, stop = self._gather(first, wait=concurrent)
            concurrent = len(group) > 1
            self._write(group)
            if stop:
                return

    def _gather(self, first: _Request, wait: bool) -> tuple[list[_Request], bool]:
        group, count = [first], len(first.records)
        deadline = time.monotonic() + (self.max_wait_s if wait else 0.0)
        while count < self.max_records:
            remaining = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, True
            group.append(nxt)
            count += len(nxt.records)
        return group, False

    def _write(self, group: list[_Request]) -> None:
        outcomes: list[tuple[_Request, list[str] | None, Exception | None]] = []
        try:
            self._commit([r for request in group for r in request.records])
        except Exception as exc:  # noqa: BLE001 - every error goes to a future, none may kill the thread
            if len(group) == 1:
                outcomes.append((group[0], None, self._failed(exc)))
            else:
                for request in group:  # alone, so that only the request the database refuses fails
                    try:
                        self._commit(request.records)
                    except Exception as single:  # noqa: BLE001
                        outcomes.append((request, None, self._failed(single)))
                    else:
                        outcomes.append((request, [r.dedupe_key for r in request.records], None))
        else:
            outcomes = [(request, [r.dedupe_key for r in request.records], None) for request in group]
        self._answer(outcomes)

    def _answer(self, outcomes: list[tuple[_Request, list[str] | None, Exception | None]]) -> None:
        """Resolve each request's future: thread futures here, each event loop's futures in one call on that loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, list[str] | None, Exception | None]]] = {}
        for request, ids, exc in outcomes:
            if request.loop is not None:
                by_loop.setdefault(request.loop, []).append((request.future, ids, exc))
                continue
            try:
                if exc is not None:
                    request.future.set_exception(exc)
                else:
                    request.future.set_result(ids)  # type: ignore[arg-type]
            except InvalidStateError:  # the caller cancelled its future; what it sent is committed all the same
                pass
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    def _commit(self, records: Sequence[Any]) -> None:
        with session_scope(self.factory) as session:
            add_feedback_items(session, records)
        self.transactions += 1
        self.records += len(records)

    def _failed(self, exc: Exception) -> Exception:
        self.failures += 1
        log.warning("feedback write failed: %s", " ".join(str(exc).split())[:300])
        return exc


def _settle(answers: list[tuple[Any, list[str] | None, Exception | None]]) -> None:
    """In the event loop: resolve the futures of one group (a cancelled waiter is skipped)."""
    for future, ids, exc in answers:
        if future.done():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(ids)
