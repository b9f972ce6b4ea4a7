"""The reward service under load: a real ``rewardkit serve`` process on loopback.

Run: ``.venv/bin/python benchmarks/serve_bench.py [--requests 1000] [--clients 64] [--queue-size 64]``

1. offline: the batch scorer on the same texts in this process (the reference throughput);
2. 64 concurrent clients, single-item /v1/score requests: throughput vs offline (target >= 70%), p50/p99
   latency, errors (target 0);
3. a burst of 10x the queue size at once: only 200/429 (no 5xx), the server process stays up, its RSS
   before/after, and it serves normally afterwards;
4. with ``--score-log-ratio``: phase 2 again on a server with the score log off and one logging every score in
   full (``RK_LOG_SAMPLE_RATE=1.0``), each in its own process, and the ratio (target >= 90%, issue 22).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

# a sibling script: run as `python benchmarks/serve_bench.py`, its folder is already first on sys.path
from score_bench import load_texts


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(
    url: str, prompts: list[str], responses: list[str], clients: int
) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    codes: list[int] = []
    queue = list(range(len(prompts)))

    async def worker(c: httpx.AsyncClient) -> None:
        while queue:
            i = queue.pop()
            t = time.perf_counter()
            r = await c.post("/v1/score", json={"inputs": [{"prompt": prompts[i], "response": responses[i]}]})
            latencies.append(time.perf_counter() - t)
            codes.append(r.status_code)

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=clients)) as c:
        start = time.perf_counter()
        await asyncio.gather(*[worker(c) for _ in range(clients)])
        return time.perf_counter() - start, latencies, codes


async def burst(url: str, n: int) -> list[int]:
    body = {"inputs": [{"prompt": "word " * 200, "response": "answer " * 50}]}
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=n)) as c:
        rs = await asyncio.gather(*[c.post("/v1/score", json=body) for _ in range(n)], return_exceptions=True)
    return [r.status_code if isinstance(r, httpx.Response) else -1 for r in rs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument(
        "--queue-size", type=int, default=256, help="must hold --clients requests, else the load phase sees 429s"
    )
    ap.add_argument("--model", default="default")
    ap.add_argument(
        "--score-log-ratio", action="store_true", help="also measure throughput with the score log off vs at rate 1.0"
    )
    args = ap.parse_args()
    from rewardkit.scoring.scorer import load_scorer

    prompts, responses = load_texts(args.requests)
    scorer = load_scorer(args.model, dtype="fp32")
    scorer.score(prompts[:32], responses[:32])
    t = time.perf_counter()
    scorer.score(prompts, responses)
    offline = len(prompts) / (time.perf_counter() - t)
    del scorer

    if args.score_log_ratio:
        score_log_ratio(args, prompts, responses)
    proc, url = start_server(args, {})
    try:
        asyncio.run(load(url, prompts[:64], responses[:64], args.clients))  # warm-up
        seconds, lat, codes = asyncio.run(load(url, prompts, responses, args.clients))
        served = codes.count(200) / seconds  # successful requests only
        print(f"{'offline_seq_per_s':>28}: {offline:.4g}")
        print(f"{'served_seq_per_s':>28}: {served:.4g}  ({served / offline:.1%} of offline)")
        print(f"{'p50_ms':>28}: {np.percentile(lat, 50) * 1000:.1f}")
        print(f"{'p99_ms':>28}: {np.percentile(lat, 99) * 1000:.1f}")
        print(f"{'errors':>28}: {sum(c != 200 for c in codes)} of {len(codes)}")
        before = rss_mb(proc.pid)
        codes = asyncio.run(burst(url, 10 * args.queue_size))
        print(f"{'burst_requests':>28}: {len(codes)}")
        print(f"{'burst_status_counts':>28}: { {c: codes.count(c) for c in sorted(set(codes))} }")
        print(f"{'burst_only_200_429':>28}: {set(codes) <= {200, 429}}")
        print(f"{'server_up_after':>28}: {proc.poll() is None}")
        print(f"{'server_rss_mb_before_after':>28}: {before:.0f} -> {rss_mb(proc.pid):.0f}")
        after = httpx.post(url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}]}, timeout=60)
        print(f"{'serves_after_burst':>28}: {after.status_code == 200}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def score_log_ratio(args: argparse.Namespace, prompts: list[str], responses: list[str]) -> None:
    """Phase 2 with the score log off, then logging every score in full; alternated twice, best of each."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rk-serve-bench-") as home:
        for _ in range(2):
            for name, env in (("off", {"RK_SCORE_LOG": "false"}), ("rate_1.0", {"RK_LOG_SAMPLE_RATE": "1.0"})):
                proc, url = start_server(args, {"RK_HOME": home, **env})
                try:
                    asyncio.run(load(url, prompts[:64], responses[:64], args.clients))  # warm-up
                    seconds, _, codes = asyncio.run(load(url, prompts, responses, args.clients))
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                best[name] = max(best.get(name, 0.0), codes.count(200) / seconds)
    print(f"{'score_log_off_seq_per_s':>28}: {best['off']:.4g}")
    print(f"{'score_log_rate1_seq_per_s':>28}: {best['rate_1.0']:.4g}  ({best['rate_1.0'] / best['off']:.1%} of off)")


def start_server(args: argparse.Namespace, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewardkit.cli.main",
            "serve",
            "--model",
            args.model,
            "--port",
            str(port),
            "--queue-size",
            str(args.queue_size),
            "--dtype",
            "fp32",
            "--log-level",
            "warning",
        ],
        env={**os.environ, "RK_API_KEYS": "[]", **env},
    )
    while True:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(url + "/ready").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)


if __name__ == "__main__":
    main()
