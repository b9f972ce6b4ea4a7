"""``rewardkit monitor report`` and ``rewardkit monitor check`` on a real SQLite store of synthetic aggregates
(tests/rk_testing/monitor_synthetic.py: rm-v1 shifts by +1 std at 06:00, rm-rl is a reward-hacking RL run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rk_testing.monitor_synthetic import T0, drift_rows, fill_store, reference_4, rl_rows
from typer.testing import CliRunner

from rewardkit.cli.main import app  # noqa: E402

UNTIL = (T0 + timedelta(hours=12)).isoformat()
DRIFT_RULE = '[[rule]]\nname = "drift"\nmetric = "psi"\nmax = 0.25\nroute = "/v1/score"\n'


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from rewardkit.settings import get_settings
    from rewardkit.store import open_store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    factory = open_store(url)
    ref = reference_4()
    fill_store(factory, {"rm-v1": ref, "rm-rl": ref}, drift_rows(ref) + rl_rows(ref, reward_step=0.1, length_step=40))
    factory.kw["bind"].dispose()
    monkeypatch.setenv("RK_DATABASE_URL", url)
    monkeypatch.setenv("RK_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _rules(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return str(path)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The console script as cron runs it (UserError -> one line and exit 2 is main.run's)."""
    return subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_report_writes_the_files_and_prints_json(database: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["monitor", "report", "--since", "12h", "--window", "3h", "--until", UNTIL, "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["window"] == "3h" and report["overoptimization_fired"] == []  # 4 windows of 3h: too few
    rm_v1 = next(m for m in report["models"] if m["model_version"] == "rm-v1")
    psis = [w["psi"] for w in rm_v1["routes"][0]["windows"]]
    assert psis == pytest.approx([0, 0, 0.805716, 0.805716], abs=1e-4)  # tests/monitor/test_monitor_store.py
    assert json.loads((out / "report.json").read_text())["models"] == report["models"]
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert len(list((out / "plots").glob("*.png"))) == 2


def test_check_exits_0_when_every_rule_holds(database: str, tmp_path: Path) -> None:
    # until 06:00 nothing has drifted
    rules = _rules(tmp_path, DRIFT_RULE)
    early = (T0 + timedelta(hours=6)).isoformat()
    result = CliRunner().invoke(app, ["monitor", "check", "--rules", rules, "--since", "6h", "--until", early])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ok"] is True and out["alerts"] == [] and out["checked"] == 6


def test_check_exits_1_with_json_alerts_when_a_rule_breaks(database: str, tmp_path: Path) -> None:
    rules = _rules(tmp_path, DRIFT_RULE + '\n[[rule]]\nmetric = "overoptimization"\n')
    result = CliRunner().invoke(app, ["monitor", "check", "--rules", rules, "--since", "2h", "--until", UNTIL])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["ok"] is False
    drift = [a for a in out["alerts"] if a["rule"] == 1]
    assert [a["window_start"] for a in drift] == [(T0 + timedelta(hours=h)).isoformat() for h in (10, 11)]
    assert drift[0]["value"] == pytest.approx(0.805716, abs=1e-4)
    alarm = [a for a in out["alerts"] if a["rule"] == 2]
    assert len(alarm) == 1 and alarm[0]["model_version"] == "rm-rl"
    assert alarm[0]["evidence"]["rising_with_reward"] == ["length_mean"]


def test_a_bad_rules_file_is_one_line_and_exit_2(database: str, tmp_path: Path) -> None:
    rules = _rules(tmp_path, DRIFT_RULE + '\n[[rule]]\nmetric = "psi"\nthreshold = 0.1\n')
    proc = _cli("monitor", "check", "--rules", rules, env={"RK_DATABASE_URL": database})
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "rule 2: unknown key 'threshold' (expected some of name, metric, min, max, "
        "route, model_version, window, min_count)"
    )
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    missing = _cli("monitor", "check", "--rules", str(tmp_path / "none.toml"), env={"RK_DATABASE_URL": database})
    assert missing.returncode == 2 and "cannot read the rules file" in missing.stderr


def test_bad_options_are_one_line_and_exit_2(database: str, tmp_path: Path) -> None:
    proc = _cli(
        "monitor", "report", "--since", "7 days", "--out", str(tmp_path / "r"), env={"RK_DATABASE_URL": database}
    )
    assert proc.returncode == 2 and "--since: expected a duration like 30m, 1h, 7d or 2w, got '7 days'" in proc.stderr
    (tmp_path / "file").write_text("")
    proc = _cli("monitor", "report", "--out", str(tmp_path / "file"), env={"RK_DATABASE_URL": database})
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_help_explains_the_exit_status() -> None:
    result = CliRunner().invoke(app, ["monitor", "check", "--help"])
    assert result.exit_code == 0
    assert "Exit status 0" in result.output and "TOML" in result.output
