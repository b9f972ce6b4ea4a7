"""Fixtures for the registry tests: two tiny reward models on disk (tests/conftest.py's
tiny_model and tiny_model_b, read-only: registering copies them) and a migrated
store (SQLite; PostgreSQL too when RK_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_a(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="session")
def tiny_b(tiny_model_b: Path) -> Path:
    return tiny_model_b
