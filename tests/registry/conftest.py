"""Fixtures for the registry tests: tiny reward models on disk (tests/serve/rk_helpers.py) and a migrated
store (SQLite; PostgreSQL too when RK_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
from rk_helpers import build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)


@pytest.fixture(scope="session")
def tiny_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)
