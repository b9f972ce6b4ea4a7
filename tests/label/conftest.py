from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.label.judge_server import JudgeState, judge_server


@pytest.fixture(scope="module")
def judge() -> Iterator[tuple[str, JudgeState]]:
    """A real OpenAI-compatible judge server on loopback, shared by a module's tests."""
    with judge_server() as served:
        yield served


@pytest.fixture
def constitution_file(tmp_path: Path) -> Path:
    path = tmp_path / "constitution.toml"
    path.write_text(
        'name = "hh"\n[[principles]]\nname = "helpfulness"\ntext = "Prefer the more complete answer."\n'
        '[[principles]]\nname = "harmlessness"\ntext = "Prefer the safer answer."\n'
    )
    return path
