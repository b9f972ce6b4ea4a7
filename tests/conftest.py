"""Shared fixtures.

``tiny_model`` (and ``tiny_model_b``, ``tiny_chat_model``) is the one tiny reward model the
tests share, built once per session by rk_testing.tiny_models; tests must not change the folder (build your own
with rk_testing.tiny_models where a test writes to it).

``store_url`` gives every store test a fresh, migrated database: a SQLite file, and again a fresh database on
the real PostgreSQL server named by ``RK_TEST_POSTGRES_URL`` (CI starts one; locally the PostgreSQL variant
is skipped when the variable is unset).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rk_testing.tiny_models import build_tiny_chat_model, build_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# every test's default home (store, snapshots, the service's score log) is a throwaway folder, never the checkout
os.environ["RK_HOME"] = tempfile.mkdtemp(prefix="rk-test-home-")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# the scorer remembers its precision per machine and model (rewardkit.scoring.precision): tests keep theirs apart
os.environ.setdefault("RK_PRECISION_CACHE", os.path.join(tempfile.mkdtemp(prefix="rk-precision-"), "precision.json"))

SHARED_DATA = Path(os.environ.get("RK_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real preference data in ../shared/data; tests that need it skip cleanly without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny reward model (seed 0): read-only, shared by every test."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=0)


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same shape with other weights (seed 1): a second model version."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=1)


@pytest.fixture(scope="session")
def tiny_prm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny process reward model, trained briefly by the real PRM training path: read-only, shared."""
    from rk_testing.tiny_models import train_tiny_prm

    return train_tiny_prm(tmp_path_factory.mktemp("tiny_prm"))


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a Mistral-like chat template (alternating roles, no system turn)."""
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny_chat") / "model")


def _postgres_database(base_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"rk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = os.environ.get("RK_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("RK_TEST_POSTGRES_URL is not set (CI sets it; see .ci/run)")
    yield from _postgres_database(base)


@pytest.fixture
def store(store_url: str):
    """A migrated session factory on a fresh database."""
    from rewardkit.store import open_store

    factory = open_store(store_url)
    yield factory
    factory.kw["bind"].dispose()
