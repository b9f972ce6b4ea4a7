"""Commands load on use: an idle ``loop tick`` (run by cron every few minutes) imports neither the model stack
nor the service nor Alembic, while ``--help`` still lists every command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rewardkit.cli.lazy import LazyCommands
from rewardkit.cli.main import COMMAND_MODULES

HEAVY = ("torch", "transformers", "fastapi", "alembic", "numpy", "rewardkit.serve", "rewardkit.scoring",
         "rewardkit.evaluate", "rewardkit.cli.score_cmd", "rewardkit.cli.eval_cmd")  # fmt: skip

TICK = """
import sys
from rewardkit.cli.main import run
sys.argv = ["rewardkit", "loop", "tick", "--config", sys.argv[1]]
try:
    run()
finally:
    import gc
    print("heavy:", sorted(m for m in {heavy!r} if m in sys.modules), "frozen:", gc.get_freeze_count() > 0)
"""


def test_an_idle_tick_imports_nothing_heavy(tmp_path: Path) -> None:
    config = tmp_path / "loop.toml"
    config.write_text('name = "rm"\nmin_new_comparisons = 200\n[compile]\nsources = ["app"]\n')
    env = {**os.environ, "RK_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("RK_DATABASE_URL", None)
    code = TICK.format(heavy=HEAVY)
    first = subprocess.run([sys.executable, "-c", code, str(config)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "nothing to do" in first.stdout  # the first open creates the schema (Alembic may load here)
    again = subprocess.run([sys.executable, "-c", code, str(config)], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "nothing to do (not due: 0 new comparisons < 200)" in again.stdout
    assert "heavy: [] frozen: True" in again.stdout, again.stdout  # what the command imported is spared the GC


def test_help_lists_every_command_in_the_registry() -> None:
    proc = subprocess.run([sys.executable, "-m", "rewardkit", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout.split("Commands:")[1].splitlines()
    listed = [line.split()[0] for line in commands if line.startswith("  ") and not line.startswith("   ")]
    assert listed == list(COMMAND_MODULES)
    assert "Continuous training: trigger, retrain, gate, promote." in proc.stdout  # each with its own help line


def test_a_registry_entry_its_module_does_not_register_is_named() -> None:
    class Wrong(LazyCommands):
        modules = {"tock": "rewardkit.cli.loop_cmd"}

    wrong = typer.Typer(cls=Wrong)
    wrong.callback()(lambda: None)
    with pytest.raises(RuntimeError, match=r"rewardkit.cli.loop_cmd.register\(\) added \['loop'\], not .*'tock'"):
        CliRunner().invoke(wrong, ["tock", "--help"], catch_exceptions=False)


def test_commands_run_in_process_leave_the_garbage_collector_alone() -> None:
    import gc

    from rewardkit.cli.main import app

    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(app, ["loop", "--help"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == frozen and gc.isenabled()  # a test process's objects stay collectable
