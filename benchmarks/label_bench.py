"""``label ai`` keeps its configured concurrency busy: the labeling loop against the test judge server with a
simulated latency per answer.

Run: ``.venv/bin/python benchmarks/label_bench.py [--pairs 300] [--concurrency 16] [--latency 0.2] [--samples 1]``

The judge server (``tests/label/judge_server.py``: FastAPI on uvicorn, 127.0.0.1, the OpenAI chat-completions
protocol) runs as its own process, as a real judge endpoint does, and answers every request after ``--latency``
seconds: with ``concurrency`` requests in flight its capacity is ``concurrency / latency`` requests per second.
The peer, in the same run: a bare httpx loop (a semaphore, one POST per request, nothing else) against the same
server, the most any client gets out of this server on this machine. Printed: requests/s of each against the
capacity (target >= 80%), the server's own time-averaged in-flight share, and the most it saw in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewardkit.label.client import ChatClient  # noqa: E402
from rewardkit.label.constitution import load_constitution  # noqa: E402
from rewardkit.label.run import JUDGE_QUESTION, LabelConfig, Pair, label_pairs  # noqa: E402
from rewardkit.records import Response  # noqa: E402
from tests.label.judge_server import free_port  # noqa: E402


async def bare(url: str, n: int, concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=60) as client:

        async def one(i: int) -> None:
            content = JUDGE_QUESTION.format(prompt=f"Question {i}?", a="one two", b="one")
            async with semaphore:
                response = await client.post(
                    url + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": content}]}
                )
                response.json()

        await asyncio.gather(*(one(i) for i in range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
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
    port = free_port()
    code = f"from tests.label.judge_server import serve_forever; serve_forever({port}, {args.latency})"
    server = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    root, url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(root + "/stats")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "judge server did not start"
                time.sleep(0.1)
        capacity = args.concurrency / args.latency
        labelled: list[int] = []

        async def ours() -> object:
            client = ChatClient(url, "bench-judge", concurrency=args.concurrency)
            try:
                sink = lambda cs: labelled.append(len(cs))  # noqa: E731
                return await label_pairs(pairs, client, constitution, LabelConfig(samples=args.samples), sink)
            finally:
                await client.close()

        httpx.post(root + "/stats/reset")
        start, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(ours())
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        stats = httpx.get(root + "/stats").json()
        requests = summary.requests  # type: ignore[attr-defined]
        start = time.perf_counter()
        asyncio.run(bare(url, requests, args.concurrency))
        bare_wall = time.perf_counter() - start
        result = {
            "pairs": args.pairs,
            "labelled": sum(labelled),
            "requests": requests,
            "concurrency": args.concurrency,
            "latency_s": args.latency,
            "capacity_requests_per_s": round(capacity, 1),
            "label_ai_requests_per_s": round(requests / wall, 1),
            "label_ai_share_of_capacity": round(requests / wall / capacity, 3),
            "server_mean_in_flight_share": round(stats["busy_integral"] / (args.concurrency * wall), 3),
            "server_max_in_flight": stats["max_in_flight"],
            "label_ai_wall_s": round(wall, 2),
            "label_ai_cpu_s": round(cpu, 2),
            "bare_httpx_requests_per_s": round(requests / bare_wall, 1),
            "bare_httpx_share_of_capacity": round(requests / bare_wall / capacity, 3),
            "target_share": 0.8,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
