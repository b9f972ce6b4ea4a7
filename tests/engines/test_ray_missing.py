"""Without the ``ray`` extra, ``--engine ray`` is one line saying how to get it (this test runs with or without Ray)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.engines.ray import RayMissingError, require_ray


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)


def test_require_ray_says_how_to_install_it(no_ray: None) -> None:
    with pytest.raises(RayMissingError, match=r"pip install rewardkit\[ray\]"):
        require_ray()


@pytest.mark.parametrize("command", [["score", "in.jsonl"], ["filter", "in.jsonl", "-o", "o.jsonl", "--keep", "top:1"]])
def test_the_cli_error_is_one_line(no_ray: None, tmp_path: Path, command: list[str]) -> None:
    res = CliRunner().invoke(app, [*command, "--engine", "ray"])
    assert isinstance(res.exception, UserError)
    assert str(res.exception) == "Ray is not installed: pip install rewardkit[ray] (or pip install 'ray[data]>=2.9')"
