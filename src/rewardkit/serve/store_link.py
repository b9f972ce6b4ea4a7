"""The service's link to the store: the feedback writer (group commit) and the score logger, opened at start.

The store is optional to scoring: if it cannot be opened (a database down at start), scoring still serves,
scores are counted as dropped from the log, and ``/v1/feedback`` answers 503 + Retry-After; the link tries to
open again at most every ``RETRY_S`` seconds, on the next feedback request or score.

The model's reference distribution (the card's ``reference``: bins fitted at training time) is handed to the
logger when a model version is first served; a card without one falls back to a normal of its reward mean/std,
with a warning (monitoring then measures drift against that approximation).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rewardkit.feedback.group_commit import GroupCommitWriter
from rewardkit.feedback.score_log import ScoreLogger
from rewardkit.serve.config import ServeSettings

log = logging.getLogger("rewardkit.serve")

RETRY_S = 5.0


class StoreLink:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.factory: sessionmaker[Session] | None = None
        self.writer: GroupCommitWriter | None = None
        self.logger: ScoreLogger | None = None
        self.review_compare: Any = None  # review.routing.ReviewRouter for /v1/compare answers, when routing is on
        self.review_scores: Any = None  # and for ensemble scores
        self.error: str | None = None
        self.attempted = False  # an open has finished, either way (/ready waits for it)
        self._tried = 0.0
        self._lock = threading.Lock()
        self._versions: set[str] = set()

    def open(self) -> bool:
        """Open the store, start the writer and logger; False (and ``error`` set) when the store cannot be opened.
        Blocking: call it off the event loop."""
        with self._lock:
            if self.factory is not None:
                return True
            self._tried = time.monotonic()
            from rewardkit.store.engine import open_store

            try:
                factory = open_store(self.settings.resolved_database_url)
            except Exception as exc:  # noqa: BLE001 - a database that is down must not stop scoring
                self.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                self.attempted = True
                log.warning("store unavailable (%s); feedback answers 503, scores are not logged", self.error)
                return False
            s = self.settings
            writer = GroupCommitWriter(factory, max_wait_s=s.feedback_max_wait_ms / 1000)
            writer.start()
            logger = None
            if s.score_log:
                rates, default = s.sample_rates()
                logger = ScoreLogger(
                    factory,
                    sample_rates=rates,
                    default_rate=default,
                    buffer_size=s.log_buffer_size,
                    flush_interval_s=s.log_flush_interval_s,
                    uncertain_threshold=s.uncertain_std,
                )
                logger.start()
            if s.review_routing:
                self.review_compare, self.review_scores = review_routers(factory, s)
            self.factory, self.writer, self.logger, self.error = factory, writer, logger, None
            self.attempted = True
            return True

    def due_for_retry(self) -> bool:
        return self.factory is None and time.monotonic() - self._tried >= RETRY_S

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.logger is not None:
            self.logger.close()
        for router in (self.review_compare, self.review_scores):
            if router is not None:
                router.close()

    def reference_for(self, version: str, card: Any) -> None:
        """Hand the logger the model version's reference distribution, once per version."""
        if self.logger is None or version in self._versions:
            return
        self._versions.add(version)
        self.logger.set_reference(version, reference_of(card, version))


def review_routers(factory: sessionmaker[Session], s: ServeSettings) -> tuple[Any, Any]:
    """Two routers into the review queue, started: one banded on P(a > b), one on ensemble std (reward stds)."""
    from rewardkit.review.routing import ReviewRouter

    common = {"sample_rate": s.review_sample_rate, "max_per_minute": s.review_max_per_minute}
    common["needed"] = s.review_labels_needed
    routers = (
        ReviewRouter(factory, band=s.review_p_band, **common),
        ReviewRouter(factory, band=s.review_std_band, **common),
    )
    for router in routers:
        router.start()
    return routers


def reference_of(card: Any, version: str) -> dict[str, Any]:
    """The card's fitted reference, or the normal fallback from its reward mean/std (warned)."""
    from rewardkit.model.reference import reference_for_card

    mean, std = getattr(card, "reward_mean", None), getattr(card, "reward_std", None)
    reference, warning = reference_for_card(
        getattr(card, "reference", None), mean if mean is not None else 0.0, std if std else 1.0
    )
    if warning:
        log.warning("model %s: %s", version, warning)
    return reference
