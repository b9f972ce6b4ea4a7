"""Promotion to serving: how long after an alias move every replica serves the new version, and how many requests
fail meanwhile, against the peer way to deploy a new model (restart each replica on the new folder).

Run: ``.venv/bin/python benchmarks/promotion_bench.py [--replicas 3] [--moves 3] [--restart-moves 1] [--poll 1.0]``

Starts ``--replicas`` real ``rewardkit serve --model registry:rm@champion`` processes on one SQLite store (the
shared database replicas follow), each with a client thread scoring in a loop. Then ``--moves`` times: move the
champion alias (v1 <-> v2, the store function a promotion or rollback commits) and time, per replica, until a
score comes back from the new version; failed requests are counted throughout. The peer: the same replicas
restarted one after another (``--restart-moves`` times) on the other version's folder (SIGTERM, start, ready),
timing the same thing. Target (issue 24): every replica serves the new version within 5 s of the move, with no
failed request. Prints the per-move seconds (max over replicas), failures, and the ratio restart / follow.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' tiny model (rk_testing)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    def __init__(self, model: str, home: Path, poll: float) -> None:
        self.model, self.home, self.poll, self.port = model, home, poll, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, model: str | None = None) -> None:
        self.model = model or self.model
        env = {**os.environ, "RK_HOME": str(self.home), "RK_ALIAS_POLL_S": str(self.poll), "RK_SCORE_LOG": "false",
               "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "RK_THREADS": "1"}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewardkit.cli.main", "serve", "--model", self.model, "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"replica on port {self.port} did not become ready")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class Client(threading.Thread):
    """Scores through one replica in a loop; remembers the version of every answer, and every failure."""

    def __init__(self, replica: Replica) -> None:
        super().__init__(daemon=True)
        self.replica, self.stop, self.failures, self.ok = replica, threading.Event(), 0, 0
        self.last_version: str | None = None

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                try:
                    r = http.post(
                        self.replica.url + "/v1/score", json={"inputs": [{"prompt": "Hi", "response": "Hello"}]}
                    )
                    if r.status_code == 200:
                        self.ok += 1
                        self.last_version = r.json()["model_version"]
                    else:
                        self.failures += 1
                except httpx.HTTPError:
                    self.failures += 1
                time.sleep(0.01)


def wait_all(clients: list[Client], version_name: str, start: float, timeout: float = 120) -> float:
    """Seconds from ``start`` until every client's latest answer came from ``version_name``."""
    while time.monotonic() - start < timeout:
        if all(c.last_version == version_name for c in clients):
            return time.monotonic() - start
        time.sleep(0.02)
    raise SystemExit(f"not every replica served {version_name} within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--moves", type=int, default=3)
    parser.add_argument(
        "--restart-moves", type=int, default=1, help="Rolling restarts of the peer (slow: each restarts every replica)."
    )
    parser.add_argument("--poll", type=float, default=1.0, help="Each replica's alias poll interval (s).")
    args = parser.parse_args()

    from rk_testing.tiny_models import build_tiny_model

    from rewardkit.registry.aliases import set_alias
    from rewardkit.registry.versions import register_version
    from rewardkit.store import open_store, session_scope
    from rewardkit.store import registry as q

    home = Path(tempfile.mkdtemp(prefix="rk-promotion-bench-"))
    os.environ["RK_HOME"] = str(home)
    factory = open_store(f"sqlite:///{home / 'rewardkit.db'}")
    infos = [
        register_version(factory, name="rm", source=build_tiny_model(home / f"model{i}", seed=i), created_by="bench")[0]
        for i in (1, 2)
    ]
    set_alias(factory, name="rm", alias="champion", version=1, who="bench")
    replicas = [Replica("registry:rm@champion", home, args.poll) for _ in range(args.replicas)]
    for r in replicas:
        r.start()
    for r in replicas:
        r.wait_ready()
    names = {}
    for v in (1, 2):  # each version's served name (what responses carry), read through one replica
        names[v] = httpx.get(replicas[0].url + "/info").json()["model_version"] if v == 1 else None
    clients = [Client(r) for r in replicas]
    for c in clients:
        c.start()
    time.sleep(1.0)

    follow: list[float] = []
    current = 1
    for _ in range(args.moves):
        target = 2 if current == 1 else 1
        start = time.monotonic()
        with session_scope(factory) as s:
            q.move_alias(s, name="rm", alias="champion", to_version=target, expected_from=current, kind="promote",
                         who="bench", why="benchmark")  # fmt: skip
        if names.get(target) is None:  # learn v2's served name from the first replica that switches
            while httpx.get(replicas[0].url + "/info").json()["registry_version"] != target:
                time.sleep(0.02)
            names[target] = httpx.get(replicas[0].url + "/info").json()["model_version"]
        follow.append(wait_all(clients, names[target], start))
        current = target
        time.sleep(1.0)
    follow_failures = sum(c.failures for c in clients)
    worst = max(follow)
    print(f"replicas {args.replicas}, alias poll {args.poll} s")
    print(f"follow the alias : every replica on the new version after {', '.join(f'{s:.2f}' for s in follow)} s "
          f"(max {worst:.2f} s); failed requests {follow_failures} of {sum(c.ok for c in clients) + follow_failures}",
          flush=True)  # fmt: skip

    # the peer: restart every replica on the other version's folder, one after another (a rolling restart)
    restart: list[float] = []
    for _ in range(args.restart_moves):
        target = 2 if current == 1 else 1
        start = time.monotonic()
        for r in replicas:
            r.stop()
            r.start(infos[target - 1].path)
            r.wait_ready()
        # a replica started on a folder names it by folder, not by the registry: wait for any new name on all
        while not all(c.last_version not in (None, names[current]) for c in clients):
            time.sleep(0.02)
        restart.append(time.monotonic() - start)
        names[current] = None
        names[target] = clients[0].last_version
        current = target
    restart_failures = sum(c.failures for c in clients) - follow_failures
    for c in clients:
        c.stop.set()
    for r in replicas:
        r.stop()

    print(f"rolling restart  : every replica on the new version after {', '.join(f'{s:.2f}' for s in restart)} s "
          f"(max {max(restart):.2f} s); failed requests {restart_failures}")  # fmt: skip
    print(f"ratio restart/follow (max seconds): {max(restart) / worst:.1f}x")
    print(f"target: <= 5 s and 0 failed requests -> {'MET' if worst <= 5 and follow_failures == 0 else 'NOT MET'}")


if __name__ == "__main__":
    main()
