"""Benchmark: import N generated TRL preference pairs (JSONL) into a fresh SQLite store through the real
importer (``run_import``: validation pass, then committed chunks of 1,000), and print comparisons/s and
peak RSS. Target (issue 2): >= 5,000 comparisons/s and < 500 MB for 100,000 pairs.

    .venv/bin/python benchmarks/import_bench.py                  # 100,000 pairs + the naive peer
    .venv/bin/python benchmarks/import_bench.py --pairs 20000 --peer-pairs 1000
    .venv/bin/python benchmarks/import_bench.py --profile        # where the time goes (cProfile, top 25)

The peer is the naive way to write the same comparisons: one ORM object per row (prompt, responses,
annotator, comparison, links), a ``session.get`` per row to skip duplicates, one commit per comparison. It
runs on fewer pairs (``--peer-pairs``) because it is slow; both rates are per comparison, and the ratio is
printed. CPU time (user + system) is printed beside wall time: on a shared machine the wall-clock rate
understates what an idle core does, and the CPU rate (fsync waits excluded) overstates it.
Peak RSS is the process's ``ru_maxrss`` after the real import (the peer runs afterwards).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import tempfile
import time
from pathlib import Path

from rewardkit.data.importers import trl
from rewardkit.data.importers.options import ImportOptions
from rewardkit.data.importers.run import ImportConfig, run_import
from rewardkit.records import prompt_text, utcnow
from rewardkit.store import open_store
from rewardkit.store.queries import judgement_payload, prompt_id, response_id, table_counts
from rewardkit.store.tables import AnnotatorRow, ComparisonResponseRow, ComparisonRow, PromptRow, ResponseRow

TOPICS = ("cooking", "travel", "code", "health", "history", "maths", "music", "gardening")


def generate(path: Path, n: int, offset: int = 0) -> None:
    """Write n distinct TRL pairs (mixed standard and conversational), a few hundred bytes each."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(offset, offset + n):
            topic = TOPICS[i % len(TOPICS)]
            question = f"Question {i} about {topic}: how would you explain the main idea to a beginner?"
            good = (
                f"A clear answer {i}: start with the basics of {topic}, give one worked example, then a short summary."
            )
            bad = f"Answer {i}: {topic} is complicated, look it up."
            if i % 2:
                row = {"prompt": question, "chosen": good, "rejected": bad, "margin": float(i % 5)}
            else:
                row = {
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": good}],
                    "rejected": [{"role": "assistant", "content": bad}],
                }
            fh.write(json.dumps(row) + "\n")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def naive_import(url: str, path: Path) -> int:
    """The peer: parse the same way, then one ORM add per row and one commit per comparison."""
    factory, options, n = open_store(url), ImportOptions("trl"), 0
    with path.open() as fh, factory() as session:
        for line in fh:
            c = trl.parse(json.loads(line), options)
            key = c.dedupe_key
            if session.get(ComparisonRow, key) is not None:
                continue
            now, pid = utcnow(), prompt_id(c.prompt)
            if session.get(PromptRow, pid) is None:
                session.add(PromptRow(id=pid, content=c.prompt, text=prompt_text(c.prompt), created_at=now))
            rids = []
            for r in c.responses:
                rid = response_id(pid, r)
                rids.append(rid)
                if session.get(ResponseRow, rid) is None:
                    session.add(
                        ResponseRow(
                            id=rid,
                            prompt_id=pid,
                            text=r.text,
                            model_name=r.model_name,
                            model_version=r.model_version,
                            sampling={},
                            created_at=None,
                            meta={},
                        )
                    )
            if session.get(AnnotatorRow, c.annotator.id) is None:
                session.add(AnnotatorRow(id=c.annotator.id, kind=c.annotator.kind))
            j = c.judgement
            session.add(
                ComparisonRow(
                    id=key, prompt_id=pid, kind="pairwise", judgement=judgement_payload(j),
                    choice=j.choice, strength=j.strength, margin=j.margin,
                    annotator_id=c.annotator.id, annotator_kind=c.annotator.kind,
                    source=c.source, created_at=now, meta={},
                )
            )  # fmt: skip
            session.flush()  # parents before links
            for pos, rid in enumerate(rids):
                session.add(ComparisonResponseRow(comparison_id=key, position=pos, response_id=rid))
            session.commit()
            n += 1
    factory.kw["bind"].dispose()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--peer-pairs", type=int, default=2_000, help="pairs for the naive peer (0 = skip it)")
    parser.add_argument("--profile", action="store_true", help="profile the real import and print the top 25 functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        generate(data, args.pairs)
        size_mb = data.stat().st_size / 1e6
        rss_before = peak_rss_mb()
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        factory = open_store(url)
        profiler = cProfile.Profile() if args.profile else None
        start, cpu_start = time.perf_counter(), cpu_seconds()
        if profiler:
            profiler.enable()
        result = run_import(factory, ImportConfig("trl", (data,)))
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        rss_after = peak_rss_mb()
        with factory() as s:
            stored = table_counts(s)["comparisons"]
        factory.kw["bind"].dispose()
        assert stored == result.counts.imported == args.pairs, (stored, result.counts)
        rate = args.pairs / elapsed
        print(
            f"rewardkit import trl: {args.pairs:,} pairs ({size_mb:.1f} MB JSONL) in {elapsed:.1f} s = {rate:,.0f} "
            "comparisons/s"
        )
        print(
            f"  CPU time {cpu:.1f} s = {args.pairs / cpu:,.0f} comparisons per CPU-second (wall and CPU differ when "
            "the machine is shared)"
        )
        print(f"  peak RSS {rss_after:.0f} MB (before the import {rss_before:.0f} MB)")
        print(
            f"  target >= 5,000 comparisons/s: {'met' if rate >= 5000 else 'NOT met'}; < 500 MB: "
            f"{'met' if rss_after < 500 else 'NOT met'}"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        if args.peer_pairs:
            peer_data = Path(tmp) / "peer.jsonl"
            generate(peer_data, args.peer_pairs)
            start = time.perf_counter()
            n = naive_import(f"sqlite:///{Path(tmp) / 'peer.db'}", peer_data)
            peer_rate = n / (time.perf_counter() - start)
            print(
                f"naive peer (one ORM add per row, commit per comparison): {n:,} pairs = {peer_rate:,.0f} comparisons/s"
            )
            print(f"  rewardkit importer is {rate / peer_rate:.1f}x the naive peer")


if __name__ == "__main__":
    main()
