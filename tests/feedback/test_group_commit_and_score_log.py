"""Group commit and the score log against a real SQLite store: shared transactions, isolation of a refused
request, bounded memory and no blocking when the database stalls or is gone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import sessionmaker

from rewardkit.feedback.batch import prepare
from rewardkit.feedback.group_commit import GroupCommitWriter
from rewardkit.feedback.score_log import ScoreLogger
from rewardkit.model.reference import bin_counts
from rewardkit.store import make_engine, open_store, session_scope
from rewardkit.store import queries as q
from rewardkit.store.score_log import get_score_references, iter_score_aggregates, iter_served_scores


def records(i: int):
    item = {"prompt": f"p{i}", "responses": ["a", "b"], "choice": "a", "client_event_id": f"e{i}"}
    return [r for _, r in prepare([item]).records]


def test_concurrent_requests_share_transactions(tmp_path: Path) -> None:
    factory = open_store(f"sqlite:///{tmp_path / 's.db'}")
    writer = GroupCommitWriter(factory, max_wait_s=0.005)
    writer.start()
    with ThreadPoolExecutor(32) as pool:
        futures = list(pool.map(lambda i: writer.submit(records(i)), range(400)))
        ids = [f.result(timeout=30) for f in futures]
    writer.close()
    assert len({i for (i,) in ids}) == 400
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 400
    assert writer.records == 400 and writer.transactions < 400 / 4  # grouped, not one commit per request


def test_a_refused_request_fails_alone(tmp_path: Path) -> None:
    factory = open_store(f"sqlite:///{tmp_path / 's.db'}")
    writer = GroupCommitWriter(factory, max_wait_s=0.05)
    writer.start()
    first = writer.submit(records(0))  # alone: makes the next group "concurrent", so the writer waits for it
    first.result(timeout=10)
    good, poisoned, good2 = writer.submit(records(1)), writer.submit([object()]), writer.submit(records(2))
    assert good.result(timeout=10) and good2.result(timeout=10)
    with pytest.raises(Exception):
        poisoned.result(timeout=10)
    writer.close()
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 3


def test_requests_from_the_event_loop_share_transactions_and_get_their_ids(tmp_path: Path) -> None:
    factory = open_store(f"sqlite:///{tmp_path / 's.db'}")
    writer = GroupCommitWriter(factory, max_wait_s=0.005)
    writer.start()
    batches = [records(i) for i in range(300)]

    async def send_all() -> list[list[str]]:
        return await asyncio.gather(*[writer.write(batch) for batch in batches])

    ids = asyncio.run(send_all())
    writer.close()
    assert ids == [[r.dedupe_key for r in batch] for batch in batches]  # each request its own records' ids
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 300
    assert writer.transactions < 300 / 4


def test_an_abandoned_request_is_committed_and_the_writer_lives_on(tmp_path: Path) -> None:
    """A caller that stops waiting (a request cut off at shutdown) must not kill the writer thread when its
    answer comes: before, setting the result of a cancelled future raised in the thread and ended it."""
    factory = open_store(f"sqlite:///{tmp_path / 's.db'}")
    writer = GroupCommitWriter(factory)
    abandoned = writer.submit(records(0))  # queued before the writer runs
    assert abandoned.cancel()

    async def abandon_one_then_write() -> list[str]:
        task = asyncio.ensure_future(writer.write(records(1)))
        await asyncio.sleep(0)  # queued
        task.cancel()
        writer.start()
        return await writer.write(records(2))

    assert asyncio.run(abandon_one_then_write()) == [records(2)[0].dedupe_key]
    assert writer.submit(records(3)).result(timeout=10)
    writer.close()
    with session_scope(factory) as s:
        assert q.table_counts(s)["comparisons"] == 4  # what was sent is stored, waited for or not


def test_a_database_that_is_gone_fails_the_request(tmp_path: Path) -> None:
    factory = sessionmaker(make_engine(f"sqlite:///{tmp_path / 'gone' / 'x.db'}"))
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_text("a file where the database's folder was: nothing can open it")
    writer = GroupCommitWriter(factory)
    writer.start()
    with pytest.raises(Exception, match="unable to open database file"):
        writer.submit(records(0)).result(timeout=10)
    writer.submit(records(1)).exception(timeout=10)  # the writer thread lives on
    writer.close()
    assert writer.failures == 2 and writer.transactions == 0


def test_bin_counts_by_hand() -> None:
    # edges 0, 1: bins (-inf, 0), [0, 1), [1, inf)
    assert bin_counts(np.array([-0.5, 0.0, 0.5, 1.0, 7.0]), [0.0, 1.0]).tolist() == [1, 2, 2]


def test_every_score_is_aggregated_and_the_sampled_ones_logged(tmp_path: Path) -> None:
    factory = open_store(f"sqlite:///{tmp_path / 's.db'}")
    logger = ScoreLogger(factory, sample_rates={"/get_reward": 0.0, "/v1/score": 1.0})
    logger.set_reference(
        "v1",
        {
            "edges": [0.0, 1.0],
            "proportions": [0.25, 0.5, 0.25],
            "reward_mean": 0.5,
            "reward_std": 0.4,
            "source": "card",
        },
    )
    t = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC).timestamp()
    ids = logger.log(
        route="/v1/score",
        model_version="v1",
        prompts=["p", "q"],
        responses=["ab", "abcd"],
        scores=[0.5, 2.0],
        uncertainty=[0.1, 0.3],
        latency_ms=3.0,
        now=t,
    )
    logger.log(
        route="/get_reward",
        model_version="v1",
        prompts=["p"] * 3,
        responses=["x"] * 3,
        scores=[-1.0, 0.5, 0.5],
        now=t + 10,
    )
    logger.log(route="/v1/score", model_version="v1", prompts=["p"], responses=["xyz"], scores=[1.5], now=t + 60)
    assert len(set(ids)) == 2
    logger.flush()
    with session_scope(factory) as s:
        rows = list(iter_score_aggregates(s, since=datetime(2026, 12, 1, tzinfo=UTC)))
        served = list(iter_served_scores(s, since=datetime(2026, 12, 1, tzinfo=UTC)))
        refs = get_score_references(s)
    by = {(r["route"], r["minute"].minute): r for r in rows}
    score = by[("/v1/score", 0)]
    assert (score["count"], score["total"], score["total_sq"]) == (2, 2.5, 4.25)
    assert score["histogram"] == [0, 1, 1] and score["length_total"] == 6
    # uncertain: std >= 0.5 * reward_std (0.2): only 0.3
    assert (score["uncertain"], score["uncertainty_count"]) == (1, 2) and score["uncertainty_total"] == pytest.approx(
        0.4
    )
    assert by[("/get_reward", 0)]["histogram"] == [1, 2, 0] and by[("/v1/score", 1)]["count"] == 1
    assert sorted(r["route"] for r in served) == ["/v1/score"] * 3  # /get_reward sampled at 0
    assert {r["id"] for r in served} >= set(ids)
    assert refs["v1"]["source"] == "card" and refs["v1"]["edges"] == [0.0, 1.0]
    assert logger.logged == 3 and logger.dropped == 0 and logger.served == 6


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    logger = ScoreLogger(open_store(f"sqlite:///{tmp_path / 's.db'}"), buffer_size=5)
    logger.log(route="/v1/score", model_version="v", prompts=["p"] * 8, responses=["r"] * 8, scores=[0.0] * 8)
    assert logger.dropped == 3
    logger.flush()
    assert logger.logged == 5


def test_a_stalled_database_never_blocks_logging_and_loses_no_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    factory = open_store(f"sqlite:///{path}")
    logger = ScoreLogger(factory, buffer_size=100, flush_interval_s=0.05)
    logger.start()
    # another writer holds the database for 2 s: every flush in that time waits on SQLite's busy timeout
    blocker = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(2.0, lambda: (blocker.execute("COMMIT"), blocker.close()))
    release.start()
    worst = 0.0
    deadline = time.monotonic() + 2.0
    n = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        logger.log(route="/v1/score", model_version="v", prompts=["p"] * 10, responses=["r"] * 10, scores=[1.0] * 10)
        worst = max(worst, time.perf_counter() - t0)
        n += 10
        time.sleep(0.005)
    release.join()
    logger.close()
    assert worst < 0.05, f"log() took {worst * 1000:.1f} ms while the database was stalled"
    assert logger.dropped > 0  # the buffer of 100 filled while the flusher waited
    with session_scope(factory) as s:
        total = sum(r["count"] for r in iter_score_aggregates(s, since=datetime.now(UTC) - timedelta(hours=1)))
        logged = sum(1 for _ in iter_served_scores(s, since=datetime.now(UTC) - timedelta(hours=1)))
    assert total == n  # every score counted
    assert logged + logger.dropped == n
