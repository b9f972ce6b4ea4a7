"""Fixtures for the service tests: on the tiny reward model (tests/conftest.py), a REAL uvicorn server on a free
loopback port, running ``create_app(settings)`` in a background thread (httpx talks to it over TCP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rk_testing.server import running_server

from rewardkit.serve import ServeSettings


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
