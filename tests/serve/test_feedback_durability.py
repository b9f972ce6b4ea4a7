"""What a 200 from /v1/feedback promises: committed. A real ``rewardkit serve`` process is killed with SIGKILL
several times while clients send events; every acknowledged event must be in the store exactly once, and after
resending what was never acknowledged, every event exactly once (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from rk_testing.server import free_port
from sqlalchemy import func, select

from rewardkit.store import open_store, session_scope
from rewardkit.store.tables import FeedbackEventRow

pytestmark = pytest.mark.slow

EVENTS = 400
KILLS = 3


def start(model: Path, store_url: str, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rewardkit.cli.main", "serve", "--model", str(model), "--port", str(port)]
    env = {**os.environ, "RK_API_KEYS": "[]", "RK_DTYPE": "fp32", "RK_DATABASE_URL": store_url}
    with log.open("a") as out:
        proc = subprocess.Popen(cmd + ["--log-level", "warning"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "server not ready in 90 s"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def event(i: int) -> dict:
    return {
        "type": "event",
        "kind": "thumbs_up",
        "prompt": f"question {i}",
        "response": f"answer {i}",
        "client_event_id": f"durable-{i}",
    }


def test_every_acknowledged_event_survives_kill_9(tiny_model: Path, store_url: str, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/v1/feedback"
    acked: set[int] = set()
    lock = threading.Lock()
    rng = random.Random(0)

    def send(i: int) -> None:
        try:
            r = httpx.post(url, json={"items": [event(i)]}, timeout=10)
        except httpx.TransportError:
            return  # killed mid-request: not acknowledged, resent later
        if r.status_code == 200:
            with lock:
                acked.add(i)

    proc = start(tiny_model, store_url, port, log)
    try:
        for kill in range(KILLS + 1):
            pending = [i for i in range(EVENTS) if i not in acked]
            killer = None
            if kill < KILLS:  # SIGKILL at a random moment of the stream
                killer = threading.Timer(rng.uniform(0.3, 0.8), lambda p=proc: p.send_signal(signal.SIGKILL))
                killer.start()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(send, pending))
            if killer is not None:
                killer.join()
                proc.wait(timeout=30)
                with lock:
                    snapshot = set(acked)
                stored = stored_ids(store_url)
                missing = snapshot - stored
                assert not missing, f"acknowledged but lost after kill {kill + 1}: {sorted(missing)[:10]}"
                proc = start(tiny_model, store_url, port, log)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert acked == set(range(EVENTS))
    assert stored_ids(store_url) == set(range(EVENTS))
    with session_scope(open_store(store_url)) as s:
        assert s.scalar(select(func.count()).select_from(FeedbackEventRow)) == EVENTS  # each exactly once


def stored_ids(store_url: str) -> set[int]:
    with session_scope(open_store(store_url)) as s:
        ids = s.scalars(select(FeedbackEventRow.client_event_id))
        return {int(i.removeprefix("durable-")) for i in ids}
