"""The lease on a real database (SQLite, and PostgreSQL when RK_TEST_POSTGRES_URL is set): one holder at a time,
renewed by its holder, taken over once expired, and a holder that lost it is told so."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from rewardkit.loop.lease import Lease, LeaseBusy, LeaseLost
from rewardkit.store import registry as q
from rewardkit.store import session_scope
from rewardkit.store.queries import aware

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def take(store, holder: str, now: datetime, ttl: float = 60) -> bool:
    with session_scope(store) as s:
        return q.try_acquire_lease(s, name="loop:rm", holder=holder, now=now, expires_at=now + timedelta(seconds=ttl))


def test_one_holder_until_expiry_then_takeover(store) -> None:
    assert take(store, "a", T0)
    assert not take(store, "b", T0 + timedelta(seconds=59))  # a holds it
    assert take(store, "a", T0 + timedelta(seconds=30))  # the holder re-takes (renews) it
    assert not take(store, "b", T0 + timedelta(seconds=89))  # renewed until 12:01:30
    assert take(store, "b", T0 + timedelta(seconds=91))  # a is dead: expired, taken over
    with session_scope(store) as s:
        assert not q.renew_lease(s, name="loop:rm", holder="a", expires_at=T0 + timedelta(hours=1))
        assert q.get_lease(s, name="loop:rm").holder == "b"


def test_the_lease_object_renews_refuses_and_notices_a_takeover(store) -> None:
    first = Lease(store, "loop:rm", ttl_s=0.6, holder="host:1")
    first.acquire()
    time.sleep(1.0)  # longer than the ttl: only the renewal thread keeps it
    with pytest.raises(LeaseBusy, match=r"lease 'loop:rm' is held by host:1 until .* UTC \(\d+ s left\)"):
        Lease(store, "loop:rm", ttl_s=0.6, holder="host:2").acquire()
    first._stop.set()  # the holder stalls (stops renewing) as a frozen process would
    first._thread.join()
    time.sleep(0.8)
    second = Lease(store, "loop:rm", ttl_s=5, holder="host:2")
    second.acquire()  # expired: taken over
    with session_scope(store) as s:
        first.lost = not q.renew_lease(s, name="loop:rm", holder="host:1", expires_at=datetime.now(UTC))
    with pytest.raises(LeaseLost, match="expired and was taken over"):
        first.check()
    second.release()
    with session_scope(store) as s:  # released: expires now, free for the next tick
        assert aware(q.get_lease(s, name="loop:rm").expires_at) <= datetime.now(UTC)
