"""Feedback capture under load: the real service's group-committed POST /v1/feedback against a naive endpoint
(parse, then an ORM transaction and commit per request) in the same run, on loopback.

Run: ``.venv/bin/python benchmarks/feedback_bench.py [--requests 4000] [--clients 64] [--postgres-url URL]``

For each database (SQLite; PostgreSQL too with ``--postgres-url`` or ``RK_BENCH_POSTGRES_URL``) and each commit
latency (as the disk gives it, then +2 ms per commit, simulated with a sleep in SQLAlchemy's commit event: what
a production disk or a network database costs), both servers are started as their own processes and get:
1. ``--clients`` concurrent clients sending single-event requests: events/s, p50/p99 latency, transactions/event;
2. the same clients sending batches of 100 events: events/s, latency, transactions/event.
Then the ratios grouped/naive. Targets (issue 22): single events >= 2x the naive events/s and <= 0.1 transactions
per event; >= 1,000 single-event requests/s and >= 10,000 events/s in batches on SQLite. Peak RSS of each server, and
the CPU each server used per request (what a shared machine's load moves least).

The load generator is a small asyncio HTTP/1.1 keep-alive client (pre-encoded requests, one connection per
client): httpx would spend more CPU than the server on a 2-core machine, and measure itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

COMMIT_SLEEP_ENV = "RK_BENCH_COMMIT_SLEEP_S"


# --- the servers (run in their own processes: `python feedback_bench.py --server grouped|naive ...`) -----------


def simulate_commit_latency() -> None:
    """Every engine made from here on sleeps ``RK_BENCH_COMMIT_SLEEP_S`` inside each commit (holding its locks, as
    a slow fsync or a network round trip would)."""
    delay = float(os.environ.get(COMMIT_SLEEP_ENV, "0"))
    if not delay:
        return
    from sqlalchemy import event

    import rewardkit.store.engine as engine_module

    make_engine = engine_module.make_engine

    def slow_engine(url: str, **kwargs: Any) -> Any:
        engine = make_engine(url, **kwargs)
        event.listen(engine, "commit", lambda conn: time.sleep(delay))
        return engine

    engine_module.make_engine = slow_engine


def naive_app(database_url: str) -> Any:
    """The baseline a team writes first: the same parser, then one transaction and commit per request."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from rewardkit.data.importers.formats import add_feedback_items
    from rewardkit.feedback.batch import prepare
    from rewardkit.store.engine import open_store, session_scope

    factory = open_store(database_url)
    app = FastAPI()
    app.state.transactions = 0

    @app.post("/v1/feedback")
    def feedback(body: dict[str, Any]) -> JSONResponse:  # a sync route: FastAPI runs it in its thread pool
        prepared = prepare(body["items"])
        with session_scope(factory) as session:
            add_feedback_items(session, [r for _, r in prepared.records])
        app.state.transactions += 1
        return JSONResponse({"stored": len(prepared.records)})

    @app.get("/bench/transactions")
    def transactions() -> dict[str, int]:
        return {"transactions": app.state.transactions}

    return app


def run_server(kind: str, port: int, database_url: str) -> None:
    import uvicorn

    simulate_commit_latency()
    if kind == "naive":
        uvicorn.run(naive_app(database_url), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    from rewardkit.serve import ServeSettings, create_app
    from rewardkit.serve.server import build_server

    settings = ServeSettings(database_url=database_url, api_keys=[], dtype="fp32", score_log=False)
    app = create_app(settings)
    build_server(app, settings, log_level="warning", host="127.0.0.1", port=port, access_log=False).run()


# --- the load generator ------------------------------------------------------------------------------------


def request_bytes(port: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/feedback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def drive(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    codes: list[int] = []
    queue = list(reversed(bodies))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                data = queue.pop()
                t0 = time.perf_counter()
                writer.write(data)
                codes.append(await read_response(reader))
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    return time.perf_counter() - start, latencies, codes


# --- one run -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (from /proc): per request, a figure the machine's other load barely
    moves, unlike requests per second on a shared 2-core box."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def transactions(kind: str, port: int) -> int:
    import httpx

    if kind == "naive":
        return httpx.get(f"http://127.0.0.1:{port}/bench/transactions").json()["transactions"]
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rk_feedback_transactions_total":
                return int(sample.value)
    return 0


def start(kind: str, database_url: str, commit_sleep: float) -> tuple[subprocess.Popen, int]:
    import httpx

    port = free_port()
    env = {**os.environ, COMMIT_SLEEP_ENV: str(commit_sleep), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--server", kind, "--port", str(port), "--database-url", database_url]
    proc = subprocess.Popen(cmd, env=env)
    path = "/ready" if kind == "grouped" else "/bench/transactions"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind} server not ready in 120 s")
        time.sleep(0.2)


def events(tag: str, start_at: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "event",
            "kind": "thumbs_up",
            "prompt": f"prompt {i % 500}",
            "response": f"response {i}",
            "client_event_id": f"{tag}-{i}",
            "context": {"user_id": f"u{i % 97}", "model_version": "v1"},
        }
        for i in range(start_at, start_at + n)
    ]


def measure(kind: str, database_url: str, commit_sleep: float, requests: int, clients: int) -> dict[str, Any]:
    proc, port = start(kind, database_url, commit_sleep)
    out: dict[str, Any] = {}
    try:
        tag = f"{kind}-{commit_sleep}-{time.time_ns()}"
        for mode, per_request, n_requests in (("single", 1, requests), ("batch100", 100, max(clients, requests // 20))):
            items = events(f"{tag}-{mode}", 0, per_request * n_requests)
            bodies = [
                request_bytes(port, {"items": items[i : i + per_request]}) for i in range(0, len(items), per_request)
            ]
            tx0, cpu0 = transactions(kind, port), cpu_seconds(proc.pid)
            seconds, latencies, codes = asyncio.run(drive(port, bodies, clients))
            cpu = cpu_seconds(proc.pid) - cpu0
            tx = transactions(kind, port) - tx0
            bad = sum(c != 200 for c in codes)
            out[mode] = {
                "requests_per_s": len(bodies) / seconds,
                "events_per_s": len(items) / seconds,
                "p50_ms": float(np.percentile(latencies, 50) * 1000),
                "p99_ms": float(np.percentile(latencies, 99) * 1000),
                "transactions_per_event": tx / len(items),
                "server_cpu_ms_per_request": cpu * 1000 / len(bodies),
                "errors": bad,
            }
        out["peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def cpu_name() -> str:
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("Flags")), [])
    return f"{model} ({os.cpu_count()} cores; {' '.join(f for f in flags if f.startswith(('avx', 'amx')))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="single-event requests per run")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--postgres-url", default=os.environ.get("RK_BENCH_POSTGRES_URL"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--server", choices=["grouped", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server:
        run_server(args.server, args.port, args.database_url)
        return
    print(f"CPU: {cpu_name()}", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rk-feedback-bench-") as tmp:
        databases = [("sqlite", lambda kind, s: f"sqlite:///{tmp}/{kind}-{s}.db")]
        if args.postgres_url:
            databases.append(("postgresql", lambda kind, s: args.postgres_url))
        for db_name, url_of in databases:
            for commit_sleep in (0.0, 0.002):
                row = {}
                for kind in ("grouped", "naive"):
                    row[kind] = measure(kind, url_of(kind, commit_sleep), commit_sleep, args.requests, args.clients)
                results[f"{db_name}, commit +{commit_sleep * 1000:g} ms"] = row
                report(f"{db_name}, commit +{commit_sleep * 1000:g} ms", row)
    if args.json:
        print(json.dumps(results, indent=2))


def report(name: str, row: dict[str, Any]) -> None:
    print(f"\n== {name}")
    for kind in ("grouped", "naive"):
        r = row[kind]
        for mode in ("single", "batch100"):
            m = r[mode]
            print(
                f"  {kind:8s} {mode:9s} {m['requests_per_s']:8.0f} req/s {m['events_per_s']:9.0f} events/s  "
                f"p50 {m['p50_ms']:7.1f} ms  p99 {m['p99_ms']:7.1f} ms  {m['transactions_per_event']:.3f} tx/event"
                f"  server CPU {m['server_cpu_ms_per_request']:.2f} ms/req  errors {m['errors']}"
            )
        print(f"  {kind:8s} peak RSS {r['peak_rss_mb']:.0f} MB")
    for mode in ("single", "batch100"):
        ratio = row["grouped"][mode]["events_per_s"] / row["naive"][mode]["events_per_s"]
        print(f"  ratio grouped/naive, {mode}: {ratio:.2f}x events/s")


if __name__ == "__main__":
    main()
