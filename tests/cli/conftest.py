"""Fixtures the command tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh RK_HOME (its default SQLite store) for one test, the settings cache cleared either side."""
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_HOME", str(tmp_path))
    monkeypatch.delenv("RK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
