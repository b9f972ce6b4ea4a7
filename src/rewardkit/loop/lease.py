"""A lease in the store: one holder at a time, renewed by the holder, taken over once expired.

Acquiring is one conditional UPDATE ``... WHERE expires_at < now OR holder = me`` (or the first INSERT), which
works the same on SQLite and PostgreSQL without advisory locks. A holder that dies (``kill -9``) stops renewing;
its lease expires after ``ttl_s`` and the next tick takes it over. While held, a daemon thread renews it every
``ttl_s / 3``; if a renewal finds the lease taken (the holder stalled past its ttl), ``lost`` is set and the
holder must stop before its next write (``check``)."""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.store import registry as q
from rewardkit.store import session_scope
from rewardkit.store.queries import aware


class LeaseBusy(RuntimeError):
    """The lease is held by another live holder."""


class LeaseLost(RuntimeError):
    """Our lease expired and another holder took it over."""


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    def __init__(
        self, factory: sessionmaker[Session], name: str, ttl_s: float = 60.0, holder: str | None = None
    ) -> None:
        self.factory, self.name, self.ttl_s = factory, name, ttl_s
        self.holder = holder or default_holder()
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        now = datetime.now(UTC)
        with session_scope(self.factory) as s:
            ok = q.try_acquire_lease(
                s, name=self.name, holder=self.holder, now=now, expires_at=now + timedelta(seconds=self.ttl_s)
            )
        if not ok:
            with session_scope(self.factory) as s:
                row = q.get_lease(s, name=self.name)
                holder, until = (row.holder, aware(row.expires_at)) if row else ("?", now)
            left = max(0.0, (until - now).total_seconds())
            raise LeaseBusy(
                f"lease {self.name!r} is held by {holder} until {until:%H:%M:%S} UTC ({left:.0f} s left): another "
                "tick is running; if it died, the lease expires then and the next tick takes over"
            )
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                with session_scope(self.factory) as s:
                    expires = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
                    if not q.renew_lease(s, name=self.name, holder=self.holder, expires_at=expires):
                        self.lost = True
                        return
            except Exception:  # noqa: BLE001 - a database blip: the next renewal tries again before expiry
                continue

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"lease {self.name!r} expired and was taken over by another tick; stopping")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.lost:
            with session_scope(self.factory) as s:
                q.release_lease(s, name=self.name, holder=self.holder, now=datetime.now(UTC))

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.release()
