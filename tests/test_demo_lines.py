"""What ``rewardkit demo`` prints after its import and snapshot steps, from the real commands' --json output
(before: the import result as a Python dict, and ``snapshot <id>: `` with nothing after it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.demo_cmd import snapshot_line
from rewardkit.cli.import_cmd import summary_line
from rewardkit.cli.main import app


def test_the_demo_summarises_import_and_snapshot_in_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RK_DATABASE_URL", f"sqlite:///{tmp_path / 'rk.db'}")
    get_settings.cache_clear()
    runner = CliRunner()
    sample = tmp_path / "sample.jsonl"
    assert runner.invoke(app, ["data", "sample", "--out", str(sample), "--n", "60"]).exit_code == 0
    imported = json.loads(runner.invoke(app, ["import", "trl", str(sample), "--json"]).stdout)
    built = json.loads(runner.invoke(app, ["dataset", "build", "--json"]).stdout)
    get_settings.cache_clear()

    assert summary_line(imported) == (
        "imported 60 comparisons (read 60, duplicates skipped 0, rejected 0, ties 0); import #1"
    )
    splits = built["manifest"]["splits"]
    assert sum(s["rows"] for s in splits.values()) == 60
    expected = ", ".join(f"{n} {s['rows']} pairs ({s['prompts']} prompts)" for n, s in splits.items())
    assert snapshot_line(built) == f"snapshot {built['id']}: {expected}"
    assert expected.startswith("train ")
