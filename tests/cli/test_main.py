"""The command line as a user meets it: every command explains itself, mistakes are one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from rewardkit.cli.main import app


def _all_commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:  # noqa: ANN001 - typer's vendored click group
    found = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if getattr(cmd, "commands", None):
            found.extend(_all_commands(cmd, path))
    return found


COMMANDS = _all_commands(typer.main.get_command(app))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_a_user_mistake_is_one_line_and_exit_2(tmp_path) -> None:
    env = {"RK_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", "db", "status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "rewardkit: error: cannot open the database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_env_reports_versions_as_json(tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    monkeypatch.setenv("RK_HOME", str(tmp_path))
    from rewardkit.settings import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["env", "--json"])
    get_settings.cache_clear()
    report = json.loads(result.output)
    assert report["torch"] and report["transformers"]
    assert report["database"].startswith("sqlite ")
