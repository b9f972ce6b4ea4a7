"""The service-side router on its own: band, sampling, rate limit, pairing, bounded buffer, background flush."""

from __future__ import annotations

import time

from sqlalchemy import select

from rewardkit.review.routing import ReviewRouter
from rewardkit.store.tables import ReviewItemRow


def items(store) -> list[ReviewItemRow]:
    with store() as s:
        return list(s.scalars(select(ReviewItemRow).order_by(ReviewItemRow.id)))


def test_compare_in_band_is_queued_with_priority_by_closeness(store) -> None:
    router = ReviewRouter(store, band=(0.4, 0.6), needed=2, model_version="v1")
    assert router.offer_compare("p", "x", "y", 0.5)
    assert router.offer_compare("q", "x", "y", 0.45)
    assert not router.offer_compare("r", "x", "y", 0.9)  # outside the band
    assert not router.offer_compare("s", "x", "x", 0.5)  # identical responses: nothing to judge
    router.flush()
    rows = items(store)
    assert [(r.prompt, r.reason, r.needed) for r in rows] == [("p", "routing-compare", 2), ("q", "routing-compare", 2)]
    assert [round(r.priority, 6) for r in rows] == [1.0, 0.5]  # centre 0.5, half-width 0.1: |0.45 - 0.5| / 0.1
    assert rows[0].origin["reward_model_version"] == "v1" and rows[0].origin["p_a"] == 0.5


def test_rate_limit_and_bounded_buffer_never_block(store) -> None:
    router = ReviewRouter(store, max_per_minute=3, buffer_size=2)
    now = 1_000_000.0
    results = [router.offer_compare(f"p{i}", "x", "y", 0.5, now=now) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert (router.dropped, router.limited) == (1, 2)  # the third fit the rate but not the buffer
    assert not router.offer_compare("later", "x", "y", 0.5, now=now + 60)  # a new minute, but the buffer is full
    router.flush()
    assert len(items(store)) == 2 and router.dropped == 2
    assert router.offer_compare("later", "x", "y", 0.5, now=now + 60)  # room again after the flush


def test_sampling_zero_queues_nothing(store) -> None:
    router = ReviewRouter(store, sample_rate=0.0)
    assert not router.offer_compare("p", "x", "y", 0.5)
    assert router.offer_scores(["p", "p"], ["x", "y"], [0.5, 0.5]) == 0


def test_uncertain_scores_pair_within_a_call_and_across_calls(store) -> None:
    router = ReviewRouter(store, band=(0.3, 1.0))
    # one call: p has an uncertain response (std 0.5) and a sibling; q's response is certain
    assert router.offer_scores(["p", "p", "q"], ["a", "b", "c"], [0.5, 0.1, 0.05], score_ids=["s1", "s2", "s3"]) == 1
    # a lone uncertain response waits for the next response to the same prompt
    assert router.offer_scores(["r"], ["first"], [0.9], now=100.0) == 0
    assert router.offer_scores(["r"], ["second"], [0.8], now=150.0) == 1
    router.flush()
    rows = items(store)
    assert [(r.prompt, [x["text"] for x in r.responses]) for r in rows] == [
        ("p", ["a", "b"]),
        ("r", ["second", "first"]),
    ]
    assert rows[0].origin["score_ids"] == ["s1", "s2"] and rows[0].reason == "routing-score"


def test_background_thread_flushes_and_a_failed_write_is_counted(store, tmp_path) -> None:
    router = ReviewRouter(store, flush_interval_s=0.05)
    router.start()
    router.offer_compare("p", "x", "y", 0.5)
    deadline = time.monotonic() + 10
    while router.queued == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    router.close()
    assert router.queued == 1 and len(items(store)) == 1

    from sqlalchemy.orm import sessionmaker

    from rewardkit.store.engine import make_engine

    broken = ReviewRouter(sessionmaker(make_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")))
    broken.offer_compare("p", "x", "y", 0.5)
    broken.flush()  # no tables there: logged and counted, never raised
    assert (broken.flush_errors, broken.dropped) == (1, 1)
