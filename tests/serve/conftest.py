"""Fixtures for the service tests: a tiny reward model on disk and a REAL uvicorn server on a free loopback
port, running ``create_app(settings)`` in a background thread (httpx talks to it over TCP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rk_helpers import build_tiny_model, running_server

from rewardkit.serve import ServeSettings


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)


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
