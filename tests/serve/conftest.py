"""Fixtures for the service tests: a tiny reward model on disk and a REAL uvicorn server on a free loopback
port, running ``create_app(settings)`` in a background thread (httpx talks to it over TCP)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tiny_model import build_tiny_model

from rewardkit.serve import ServeSettings, create_app


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(settings: ServeSettings, wait_ready: bool = True) -> Iterator[str]:
    """Serve ``create_app(settings)`` with uvicorn on 127.0.0.1:<free port>; yields the base URL."""
    import uvicorn

    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
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


@pytest.fixture
def serve(tiny_model: Path) -> Callable[..., object]:
    """``with serve(**settings) as url:`` a real server on the tiny model (settings override defaults)."""

    def make(**overrides: object) -> object:
        fields = {"model_path": str(tiny_model), "dtype": "fp32", "api_keys": [], **overrides}
        return running_server(ServeSettings(**fields))

    return make


@pytest.fixture(scope="module")
def server_url(tiny_model: Path) -> Iterator[str]:
    """One shared server (default limits, no auth) for the read-only route tests."""
    with running_server(ServeSettings(model_path=str(tiny_model), dtype="fp32", api_keys=[])) as url:
        yield url
