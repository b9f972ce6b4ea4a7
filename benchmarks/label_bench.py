"""``label ai`` keeps its configured concurrency busy: the labeling loop against the test judge server with a
simulated latency per answer.

Run: ``.venv/bin/python benchmarks/label_bench.py [--pairs 300] [--concurrency 16] [--latency 0.05] [--samples 1]``

The judge server (``tests/label/judge_server.py``: FastAPI on uvicorn, 127.0.0.1, the OpenAI chat-completions
protocol) answers every request after ``--latency`` seconds, so with ``concurrency`` requests in flight its
capacity is ``concurrency / latency`` requests per second. Printed: requests/s achieved against that capacity
(target >= 80%), and the server's own measure, the time-averaged number of requests in flight divided by the
concurrency, with the most it ever saw in flight (never above the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewardkit.label.client import ChatClient  # noqa: E402
from rewardkit.label.constitution import load_constitution  # noqa: E402
from rewardkit.label.run import LabelConfig, Pair, label_pairs  # noqa: E402
from rewardkit.records import Response  # noqa: E402
from tests.label.judge_server import JudgeState, judge_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--samples", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text('[[principles]]\nname = "helpfulness"\ntext = "Prefer the more complete answer."\n')
        constitution = load_constitution(path)
    pairs = [
        Pair(f"Question {i}?", Response("one two " * (1 + i % 5)), Response("one " * (1 + i % 7)))
        for i in range(args.pairs)
    ]
    labelled: list[int] = []

    with judge_server(JudgeState(latency_s=args.latency)) as (url, state):

        async def go() -> object:
            client = ChatClient(url, "bench-judge", concurrency=args.concurrency)
            try:
                return await label_pairs(
                    pairs, client, constitution, LabelConfig(samples=args.samples), lambda cs: labelled.append(len(cs))
                )
            finally:
                await client.close()

        state.busy_integral, state.last_change = 0.0, time.perf_counter()
        start, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(go())
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        state._tick(0)  # close the busy integral at the end
        capacity = args.concurrency / args.latency
        result = {
            "pairs": args.pairs,
            "requests": summary.requests,  # type: ignore[attr-defined]
            "labelled": sum(labelled),
            "concurrency": args.concurrency,
            "latency_s": args.latency,
            "wall_s": round(wall, 3),
            # client and server share this process: cpu_s near wall_s means the run waited for a CPU, not
            # for the judge (a loaded machine), and the share below measures the machine, not the loop
            "cpu_s": round(cpu, 3),
            "requests_per_s": round(summary.requests / wall, 1),  # type: ignore[attr-defined]
            "capacity_requests_per_s": round(capacity, 1),
            "share_of_capacity": round(summary.requests / wall / capacity, 3),  # type: ignore[attr-defined]
            "mean_in_flight_share": round(state.busy_integral / (args.concurrency * wall), 3),
            "max_in_flight": state.max_in_flight,
            "target_share": 0.8,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
