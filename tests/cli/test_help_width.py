"""Help at 80 columns: descriptions get the rest of the line (before: typer's tables gave each flag's negative
form a column of its own and squeezed descriptions into about 20 characters)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("command", "description"),
    [
        (["dataset", "build"], "Keep ties and both-bad verdicts as tie"),
        (["import", "trl"], "Records per committed transaction."),
        (["train"], "Output folder"),
    ],
)
def test_help_descriptions_use_the_width_of_an_80_column_terminal(command: list[str], description: str) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", *command, "--help"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"Usage: rewardkit {' '.join(command)} ")
    assert max(len(line) for line in lines) <= 80
    assert any(description in line for line in lines), proc.stdout
