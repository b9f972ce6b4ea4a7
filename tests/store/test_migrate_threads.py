"""Threads of one process opening stores at once: Alembic's context is module-global, so they take turns."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rewardkit.store import open_store


def test_threads_migrating_at_once_all_succeed(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f's{i % 3}.db'}" for i in range(12)]  # three stores, four threads each
    with ThreadPoolExecutor(12) as pool:
        factories = list(pool.map(open_store, urls))
    assert len(factories) == 12
