"""A REAL uvicorn server on a free loopback port (``running_server``) and a reader for its Prometheus metrics."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from rewardkit.serve import ServeSettings, create_app
from rewardkit.serve.server import build_server


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(settings: ServeSettings, wait_ready: bool = True) -> Iterator[str]:
    """Serve ``create_app(settings)`` with uvicorn on 127.0.0.1:<free port>; yields the base URL."""
    port = free_port()
    app = create_app(settings)
    # the server `rewardkit serve` runs (header timeout, drain), without configuring logging (pytest captures it)
    server = build_server(app, settings, log_level="warning", host="127.0.0.1", port=port, log_config=None)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        while wait_ready and httpx.get(url + "/ready").status_code != 200:
            assert time.monotonic() < deadline, "model did not load"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
