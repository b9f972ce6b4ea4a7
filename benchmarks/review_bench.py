"""Benchmark: the review queue on SQLite with 100,000 queued items.

    PYTHONPATH=src .venv/bin/python benchmarks/review_bench.py                 # 100k items, 1,000 rounds, 8 annotators
    PYTHONPATH=src .venv/bin/python benchmarks/review_bench.py --items 10000 --rounds 200   # quick

1. Latency: one annotator, 1,000 rounds of "fetch the next item" + "save a label" (each its own transaction, as
   the page does: ``next_assignment`` then ``save_label``, which also writes the comparison). p50 and p99 per
   round and per step. Target (issue 23): p99 of a round under 50 ms.
2. Concurrency: 8 annotator threads (each with its own connections) label as fast as they can on a queue whose
   items need k = 2 labels, until every item is done; then checks that no item has more than k labels, that no
   annotator labelled an item twice, and that the number of comparisons equals the number of labels.
The peer printed beside the round is a bare ``INSERT`` + ``SELECT`` by primary key on the same database: the
floor of two committed transactions on this disk (SQLite, WAL, synchronous=FULL).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select, text

from rewardkit.store import open_store, session_scope
from rewardkit.store.review import NewItem, ReviewError, enqueue, next_assignment, save_label
from rewardkit.store.tables import ComparisonRow, ReviewItemRow, ReviewLabelRow

TTL = timedelta(minutes=30)


def fill(factory, n: int, needed: int, seed: int = 0) -> float:  # noqa: ANN001
    rng = random.Random(seed)
    start = time.perf_counter()
    batch = []
    for i in range(n):
        prompt = f"Question {i}: explain topic {rng.randrange(10_000)} in two sentences."
        responses = ({"text": f"Answer A to {i}: " + "word " * rng.randrange(20, 120)}, {"text": f"Answer B to {i}."})
        batch.append(NewItem(prompt, responses, {"kind": "file", "row": i}, "uncertainty", rng.random(), needed))
        if len(batch) == 10_000:
            with session_scope(factory) as s:
                enqueue(s, batch, now=datetime.now(UTC))
            batch = []
    if batch:
        with session_scope(factory) as s:
            enqueue(s, batch, now=datetime.now(UTC))
    return time.perf_counter() - start


def one_round(factory, who: str, rng: random.Random) -> tuple[float, float] | None:  # noqa: ANN001
    """(fetch seconds, save seconds) of one round, wall clock; None when the queue has nothing left."""
    t0 = time.perf_counter()
    with session_scope(factory) as s:
        a = next_assignment(s, annotator=who, now=datetime.now(UTC), ttl=TTL, swap=rng.random() < 0.5)
    t1 = time.perf_counter()
    if a is None:
        return None
    with session_scope(factory) as s:
        save_label(s, annotator=who, item_id=a.item.id, shown_choice=rng.choice("ab"), now=datetime.now(UTC))
    return t1 - t0, time.perf_counter() - t1


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--concurrent-items", type=int, default=400, help="items (k=2) for the concurrency run")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average before the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    folder = args.dir or Path(tempfile.mkdtemp(prefix="rk-review-bench-"))

    # 1. latency on a big queue
    factory = open_store(f"sqlite:///{folder / 'latency.db'}")
    seconds = fill(factory, args.items, needed=1)
    print(f"queued {args.items:,} items in {seconds:.1f}s")
    rng = random.Random(1)
    fetches, saves, rounds, cpu = [], [], [], []
    for _ in range(args.rounds):
        c0 = time.process_time()
        got = one_round(factory, "bench", rng)
        cpu.append(time.process_time() - c0)
        assert got is not None
        fetches.append(got[0])
        saves.append(got[1])
        rounds.append(got[0] + got[1])
    floor = []
    with factory.kw["bind"].connect() as conn:
        conn.execute(text("create table if not exists floor (id integer primary key, v text)"))
        conn.commit()
        for i in range(args.rounds):
            t0 = time.perf_counter()
            conn.execute(text("insert into floor (v) values (:v)"), {"v": str(i)})
            conn.commit()
            conn.execute(text("select v from floor where id = :i"), {"i": i + 1}).fetchall()
            conn.commit()
            floor.append(time.perf_counter() - t0)
    print(f"\nfetch next + save label, {args.rounds} rounds on {args.items:,} queued items (SQLite, one annotator):")
    print(f"  round  p50 {pct(rounds, 50):6.2f} ms   p99 {pct(rounds, 99):6.2f} ms   (target: p99 < 50 ms)")
    print(f"  round CPU time (this process; the wall clock above includes waiting for a shared CPU): "
          f"p50 {pct(cpu, 50):.2f} ms, p99 {pct(cpu, 99):.2f} ms")  # fmt: skip
    print(f"  fetch  p50 {pct(fetches, 50):6.2f} ms   p99 {pct(fetches, 99):6.2f} ms")
    print(f"  save   p50 {pct(saves, 50):6.2f} ms   p99 {pct(saves, 99):6.2f} ms")
    print(f"  peer: bare insert + select, two commits: p50 {pct(floor, 50):.2f} ms, p99 {pct(floor, 99):.2f} ms; "
          f"round / peer at p50: {pct(rounds, 50) / pct(floor, 50):.1f}x")  # fmt: skip
    factory.kw["bind"].dispose()

    # 2. eight annotators at once, k = 2
    factory = open_store(f"sqlite:///{folder / 'concurrent.db'}")
    fill(factory, args.concurrent_items, needed=2, seed=2)
    errors: list[str] = []
    done_by: dict[str, int] = {}

    def annotate(who: str) -> None:
        local = random.Random(who)
        n = 0
        while True:
            try:
                got = one_round(factory, who, local)
            except ReviewError as exc:  # would mean a slot was lost between fetch and save
                errors.append(f"{who}: {exc}")
                continue
            if got is None:
                break
            n += 1
        done_by[who] = n

    start = time.perf_counter()
    threads = [threading.Thread(target=annotate, args=(f"ann{i}",)) for i in range(args.annotators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    with factory() as s:
        over = s.scalar(
            select(func.count()).select_from(ReviewItemRow).where(ReviewItemRow.labels > ReviewItemRow.needed)
        )
        per_item = s.execute(
            select(ReviewLabelRow.item_id, func.count()).group_by(ReviewLabelRow.item_id).having(func.count() > 2)
        ).all()
        twice = s.execute(
            select(ReviewLabelRow.item_id, ReviewLabelRow.annotator, func.count())
            .group_by(ReviewLabelRow.item_id, ReviewLabelRow.annotator)
            .having(func.count() > 1)
        ).all()
        open_left = s.scalar(select(func.count()).select_from(ReviewItemRow).where(ReviewItemRow.status == "open"))
        labels = s.scalar(select(func.count()).select_from(ReviewLabelRow))
        comparisons = s.scalar(select(func.count()).select_from(ComparisonRow))
    total = sum(done_by.values())
    print(f"\n{args.annotators} annotators at once on {args.concurrent_items} items needing k=2 labels:")
    print(f"  {total} labels in {wall:.1f}s ({total / wall:.0f} labels/s); per annotator {sorted(done_by.values())}")
    print(
        f"  items past k: {over}; items with > 2 labels: {len(per_item)}; an annotator twice on an item: {len(twice)}"
    )
    print(f"  items left open: {open_left}; labels {labels}, comparisons {comparisons}; refused saves: {len(errors)}")
    ok = (
        over == 0
        and not per_item
        and not twice
        and open_left == 0
        and labels == comparisons == 2 * args.concurrent_items
    )
    print(f"  {'OK' if ok else 'FAILED'}: no item labelled past its k, every item done once per slot")


if __name__ == "__main__":
    main()
