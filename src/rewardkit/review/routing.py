"""Routing from live traffic: uncertain or disputed scores go to the review queue without ever slowing scoring.

``ReviewRouter(factory, band=(lo, hi), ...)``; the service calls, on the event loop:

- ``offer_compare(prompt, response_a, response_b, p_a, ...)`` after a ``/v1/compare``: queued when the
  calibrated P(a > b) lies in ``band`` (e.g. (0.4, 0.6));
- ``offer_scores(prompts, responses, stds, ...)`` after a scoring call with an ensemble: a response whose std
  lies in ``band`` is paired with another response to the same prompt (one in the same call, else the next one
  offered within ``pair_window_s``) and the pair is queued.

Either call only draws a random number, checks the band and a per-minute rate limit, and appends to a bounded
buffer (full: dropped and counted); a daemon thread writes the buffer every ``flush_interval_s`` in one
transaction (a failed write drops that batch, counted, and logs one line). ``sample_rate`` thins what is
offered before anything else. Items are queued with reason ``routing-compare`` / ``routing-score``, priority
= closeness to the band's centre (1 at the centre, 0 at its edges), ``needed`` labels each.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.records import Prompt, canonical_json
from rewardkit.store.engine import session_scope
from rewardkit.store.review import NewItem, enqueue

log = logging.getLogger(__name__)


@dataclass
class ReviewRouter:
    factory: sessionmaker[Session]
    band: tuple[float, float] = (0.4, 0.6)
    sample_rate: float = 1.0
    max_per_minute: int = 60
    needed: int = 2
    model_version: str = ""
    buffer_size: int = 1000
    flush_interval_s: float = 2.0
    pair_window_s: float = 300.0
    max_pending_prompts: int = 1000
    queued: int = 0  # items written
    dropped: int = 0  # items lost: buffer full or a failed write
    limited: int = 0  # in band but over the rate limit
    flush_errors: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.band
        if not lo < hi:
            raise ValueError(f"band must be (lo, hi) with lo < hi, got {self.band}")
        self._lock = threading.Lock()
        self._buffer: list[NewItem] = []
        self._minute = 0
        self._in_minute = 0
        # prompt -> (time, response, std, score id): an uncertain lone response waiting for a sibling
        self._pending: OrderedDict[str, tuple[float, str, float, str | None]] = OrderedDict()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rk-review-router", daemon=True)

    # -- the scoring side (event loop): memory only ----------------------------------------------------------

    def in_band(self, value: float) -> bool:
        lo, hi = self.band
        return lo <= value <= hi

    def _priority(self, value: float) -> float:
        lo, hi = self.band
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        return max(0.0, 1.0 - abs(value - centre) / half)

    def _admit(self, now: float) -> bool:
        """The rate limit: at most ``max_per_minute`` items per wall-clock minute (caller holds the lock)."""
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._in_minute = minute, 0
        if self._in_minute >= self.max_per_minute:
            self.limited += 1
            return False
        self._in_minute += 1
        return True

    def _push(self, item: NewItem, now: float) -> bool:
        with self._lock:
            if not self._admit(now):
                return False
            if len(self._buffer) >= self.buffer_size:
                self.dropped += 1
                return False
            self._buffer.append(item)
            return True

    def _item(self, prompt: Prompt, a: str, b: str, value: float, reason: str, origin: dict[str, Any]) -> NewItem:
        return NewItem(
            prompt,
            ({"text": a}, {"text": b}),
            origin={"kind": "routing", "reward_model_version": self.model_version, **origin},
            reason=reason,
            priority=self._priority(value),
            needed=self.needed,
        )

    def offer_compare(
        self, prompt: Prompt, response_a: str, response_b: str, p_a: float, *, now: float | None = None
    ) -> bool:
        """Queue a compared pair whose calibrated P(a > b) is in the band; True when it was buffered."""
        if response_a == response_b or not self.in_band(p_a) or random.random() >= self.sample_rate:
            return False
        now = time.time() if now is None else now
        item = self._item(prompt, response_a, response_b, p_a, "routing-compare", {"p_a": round(float(p_a), 6)})
        return self._push(item, now)

    def offer_scores(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        stds: Sequence[float],
        *,
        score_ids: Sequence[str | None] | None = None,
        now: float | None = None,
    ) -> int:
        """Queue pairs around responses whose ensemble std is in the band; returns how many were buffered."""
        now = time.time() if now is None else now
        ids = list(score_ids) if score_ids is not None else [None] * len(responses)
        by_prompt: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            by_prompt.setdefault(canonical_json(prompt), []).append(i)
        buffered = 0
        for key, rows in by_prompt.items():
            uncertain = [i for i in rows if self.in_band(float(stds[i]))]
            if not uncertain or random.random() >= self.sample_rate:
                continue
            i = max(uncertain, key=lambda j: float(stds[j]))
            sibling = next((j for j in rows if j != i and responses[j] != responses[i]), None)
            if sibling is not None:
                a, b, other_id = responses[i], responses[sibling], ids[sibling]
            else:
                with self._lock:
                    waiting = self._pending.pop(key, None)
                    if waiting is None or now - waiting[0] > self.pair_window_s or waiting[1] == responses[i]:
                        self._pending[key] = (now, responses[i], float(stds[i]), ids[i])
                        while len(self._pending) > self.max_pending_prompts:
                            self._pending.popitem(last=False)
                        continue
                a, b, other_id = responses[i], waiting[1], waiting[3]
            origin = {"std": round(float(stds[i]), 6), "score_ids": [ids[i], other_id]}
            buffered += self._push(self._item(prompts[i], a, b, float(stds[i]), "routing-score", origin), now)
        return buffered

    # -- the writing side (its own thread) ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
        self.flush()

    def flush(self) -> None:
        with self._lock:
            items, self._buffer = self._buffer, []
        if not items:
            return
        try:
            with session_scope(self.factory) as session:
                inserted, _ = enqueue(session, items, now=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - routing must never take the service down
            self.flush_errors += 1
            log.warning(
                "review router: write failed (%d items dropped): %s", len(items), " ".join(str(exc).split())[:200]
            )
            with self._lock:
                self.dropped += len(items)
            return
        with self._lock:
            self.queued += inserted

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queued": self.queued,
                "dropped": self.dropped,
                "limited": self.limited,
                "buffered": len(self._buffer),
                "flush_errors": self.flush_errors,
            }
