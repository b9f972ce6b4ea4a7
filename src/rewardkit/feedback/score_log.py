"""The score log: what the service served, kept without ever slowing or failing a scoring request.

Two records of every scoring call:
- **aggregates of every score**, per model version, route and minute: count, sum, sum of squares, a histogram on
  the model's reference bins, uncertain count, uncertainty sum, response length sum. A few numpy operations per
  call, summed in memory and appended to ``score_aggregates`` by a background thread; monitoring reads them.
- **the full record of a sampled fraction** (prompt, response, score, normalized score, uncertainty, model
  version, route, latency): ``sample_rates`` per route (RL rollouts through /get_reward are many and alike, so
  they are sampled lightly by default; /v1/* at 1.0). Feedback may cite a logged record's ``score_id``.

``log`` runs on the event loop and only appends to memory; the flusher thread writes every ``flush_interval_s``
in one transaction. The record buffer is bounded: when the database is down or slow and the buffer is full, new
records are dropped and counted (``dropped``), never waited for. Aggregates that fail to write are kept for the
next flush (a few hundred bytes per model version and minute, bounded by ``max_pending_aggregates``).

Every score gets a ``score_id`` (a random per-call prefix and the row's index: unique without a lookup); only the
sampled ones can be cited.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from rewardkit.model.reference import bin_counts
from rewardkit.records import Prompt
from rewardkit.store.engine import session_scope
from rewardkit.store.score_log import add_score_aggregates, add_served_scores, put_score_reference

log = logging.getLogger(__name__)

# bins used before a model version's reference is known: z-scores from -4 to 4 in steps of 0.5 around 0
FALLBACK_EDGES = tuple(np.round(np.arange(-4.0, 4.01, 0.5), 6).tolist())


@dataclass
class _Sums:
    """The running aggregate of one (model version, route, minute)."""

    edges: tuple[float, ...]
    histogram: np.ndarray
    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    uncertain: int = 0
    uncertainty_total: float = 0.0
    uncertainty_count: int = 0
    length_total: float = 0.0

    def add(self, other: _Sums) -> None:
        self.histogram = self.histogram + other.histogram
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq
        self.uncertain += other.uncertain
        self.uncertainty_total += other.uncertainty_total
        self.uncertainty_count += other.uncertainty_count
        self.length_total += other.length_total


def minute_of(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp - timestamp % 60, tz=UTC)


@dataclass
class ScoreLogger:
    """See the module docstring. ``uncertain_threshold``: an uncertainty at or over ``threshold * reward_std`` of
    the model version (or the threshold itself when the reference has no std) counts as uncertain."""

    factory: sessionmaker[Session]
    sample_rates: Mapping[str, float] = field(default_factory=dict)
    default_rate: float = 1.0
    buffer_size: int = 10_000
    flush_interval_s: float = 1.0
    uncertain_threshold: float = 0.5
    max_pending_aggregates: int = 10_000
    logged: int = 0  # full records written
    dropped: int = 0  # full records dropped (buffer full, or their write failed)
    flush_errors: int = 0
    served: int = 0  # scores aggregated

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        # (model version, route, minute, bin edges): edges are in the key so that a reference set mid-minute
        # starts a new row instead of adding counts on other bins
        self._sums: dict[tuple[str, str, datetime, tuple[float, ...]], _Sums] = {}
        self._references: dict[str, dict[str, Any]] = {}
        self._unwritten_references: list[tuple[str, dict[str, Any]]] = []
        self._recent: dict[str, dict[datetime, np.ndarray]] = {}  # model version -> minute -> histogram
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rk-score-log", daemon=True)

    # -- the scoring side (event loop) -----------------------------------------------------------------

    def set_reference(self, model_version: str, reference: Mapping[str, Any]) -> None:
        """The bins and reference distribution of a model version (``monitor.reference``), written once."""
        with self._lock:
            if model_version not in self._references:
                self._references[model_version] = dict(reference)
                self._unwritten_references.append((model_version, dict(reference)))

    def references(self) -> dict[str, dict[str, Any]]:
        """The reference distribution of every model version seen, by version."""
        with self._lock:
            return dict(self._references)

    def edges_of(self, model_version: str) -> tuple[float, ...]:
        reference = self._references.get(model_version)
        return tuple(reference["edges"]) if reference else FALLBACK_EDGES

    def rate_of(self, route: str) -> float:
        return float(self.sample_rates.get(route, self.default_rate))

    def log(
        self,
        *,
        route: str,
        model_version: str,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        scores: Sequence[float],
        normalized: Sequence[float] | None = None,
        uncertainty: Sequence[float] | None = None,
        latency_ms: float | None = None,
        request_id: str | None = None,
        now: float | None = None,
    ) -> list[str]:
        """Count every score, keep the sampled ones in full; returns one score id per score. Never raises for a
        full buffer, never touches the database."""
        now = time.time() if now is None else now
        n = len(scores)
        prefix = secrets.token_hex(8)
        ids = [f"{prefix}{i:08x}" for i in range(n)]
        values = np.asarray(scores, dtype=np.float64)
        lengths = sum(len(r) for r in responses)
        reference = self._references.get(model_version) or {}
        edges = self.edges_of(model_version)
        sums = _Sums(edges, bin_counts(values, edges), n, float(values.sum()), float((values * values).sum()))
        sums.length_total = float(lengths)
        if uncertainty is not None:
            std = np.asarray(uncertainty, dtype=np.float64)
            scale = reference.get("reward_std") or 1.0
            sums.uncertain = int((std >= self.uncertain_threshold * scale).sum())
            sums.uncertainty_total, sums.uncertainty_count = float(std.sum()), n
        rate = self.rate_of(route)
        picked = range(n) if rate >= 1.0 else [i for i in range(n) if random.random() < rate]
        created = datetime.fromtimestamp(now, tz=UTC)
        records = [
            {
                "id": ids[i],
                "created_at": created,
                "model_version": model_version,
                "route": route,
                "prompt": prompts[i],
                "response": responses[i],
                "score": float(scores[i]),
                "normalized": float(normalized[i]) if normalized is not None else None,
                "uncertainty": float(uncertainty[i]) if uncertainty is not None else None,
                "latency_ms": latency_ms,
                "request_id": request_id,
            }
            for i in picked
        ]
        minute = minute_of(now)
        with self._lock:
            self.served += n
            key = (model_version, route, minute, edges)
            if key in self._sums:
                self._sums[key].add(sums)
            else:
                self._sums[key] = sums
            recent = self._recent.setdefault(model_version, {})
            recent[minute] = recent.get(minute, 0) + sums.histogram
            room = max(0, self.buffer_size - len(self._records))
            self._records.extend(records[:room])
            self.dropped += len(records) - min(room, len(records))
        return ids

    def recent_histogram(self, model_version: str, minutes: int = 60, now: float | None = None) -> np.ndarray | None:
        """This process's histogram of the last ``minutes`` minutes on the version's bins (for the drift gauge)."""
        now = time.time() if now is None else now
        cutoff = minute_of(now - 60 * (minutes - 1))
        with self._lock:
            recent = self._recent.get(model_version, {})
            for old in [m for m in recent if m < cutoff]:
                del recent[old]
            if not recent:
                return None
            return np.sum(list(recent.values()), axis=0)

    # -- the writing side (its own thread) ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread after one last flush."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Write what has gathered, in one transaction. On failure the records are dropped and counted and the
        aggregates kept for the next flush."""
        with self._lock:
            records, self._records = self._records, []
            sums, self._sums = self._sums, {}
            references, self._unwritten_references = self._unwritten_references, []
        if not (records or sums or references):
            return
        rows = [
            {
                "model_version": version,
                "route": route,
                "minute": minute,
                "count": s.count,
                "total": s.total,
                "total_sq": s.total_sq,
                "edges": list(s.edges),
                "histogram": s.histogram.tolist(),
                "uncertain": s.uncertain,
                "uncertainty_total": s.uncertainty_total,
                "uncertainty_count": s.uncertainty_count,
                "length_total": s.length_total,
            }
            for (version, route, minute, _), s in sums.items()
        ]
        try:
            with session_scope(self.factory) as session:
                for version, reference in references:
                    put_score_reference(session, model_version=version, reference=reference)
                add_score_aggregates(session, rows)
                add_served_scores(session, records)
        except Exception as exc:  # noqa: BLE001 - logging must never take the service down
            self.flush_errors += 1
            log.warning(
                "score log: write failed (%d records dropped): %s", len(records), " ".join(str(exc).split())[:200]
            )
            with self._lock:
                self.dropped += len(records)
                self._unwritten_references = references + self._unwritten_references
                for key, s in sums.items():
                    if key in self._sums:
                        self._sums[key].add(s)
                    elif len(self._sums) < self.max_pending_aggregates:
                        self._sums[key] = s
            return
        with self._lock:
            self.logged += len(records)
