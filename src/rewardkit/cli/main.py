"""Entry point of the ``rewardkit`` console script.

Run ``rewardkit --help``. Each command group lives in its own module and is named here, in the one visible list
below, which imports a module only when its command runs (a test checks that every command answers ``--help``).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
import typer.main

from rewardkit.cli.lazy import LazyCommands
from rewardkit.cli.output import UserError, escape, stderr

# --- command registry: one line per command module, in the order of the loop ------------------------
# Each module's ``register(app)`` adds the command named here; the module is imported when that command runs
# (cli/lazy.py), so ``rewardkit loop tick`` does not pay for scoring's, evaluation's or the service's imports.
COMMAND_MODULES = {
    "demo": "rewardkit.cli.demo_cmd",
    "import": "rewardkit.cli.import_cmd",
    "label": "rewardkit.cli.label_cmd",
    "data": "rewardkit.cli.data_cmd",
    "dataset": "rewardkit.cli.dataset_cmd",
    "train": "rewardkit.cli.train_cmd",
    "eval": "rewardkit.cli.eval_cmd",
    "registry": "rewardkit.cli.registry_cmd",
    "loop": "rewardkit.cli.loop_cmd",
    "score": "rewardkit.cli.score_cmd",
    "filter": "rewardkit.cli.filter_cmd",
    "serve": "rewardkit.cli.serve_cmd",
    "monitor": "rewardkit.cli.monitor_cmd",
    "review": "rewardkit.cli.review_cmd",
    "db": "rewardkit.cli.db_cmd",
    "env": "rewardkit.cli.env_cmd",
}


class RootCommands(LazyCommands):
    modules = COMMAND_MODULES


app = typer.Typer(
    name="rewardkit",
    cls=RootCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Reward models end to end: preference data, training, scoring and serving, evaluation.

    Settings come from the environment: RK_HOME (data folder, default ./rewardkit-data) and RK_DATABASE_URL
    (default: SQLite under RK_HOME; PostgreSQL via postgresql+psycopg://...). Each command's --help lists its
    options; docs/ has the guides.
    """


def plain_help(command: Any) -> Any:
    """``command`` and every subcommand with click's plain help layout instead of typer's rich tables: the
    tables give each flag's negative form (--no-balance-sources) a column of its own, which squeezed the
    descriptions into 20 characters at 80 columns; click's layout gives them the rest of the line."""
    command.rich_markup_mode = None
    if not isinstance(command, LazyCommands):  # a lazy group's commands take its layout when they load
        for sub in getattr(command, "commands", {}).values():
            plain_help(sub)
    return command


def run() -> None:
    """Console-script entry: a user's mistake is one line on stderr and exit code 2 (usage errors are
    typer's own, also exit 2)."""
    try:
        command = plain_help(typer.main.get_command(app))
        command.freeze_imports = True  # a process of its own: see cli/lazy.py
        command(prog_name="rewardkit")
    except UserError as exc:
        stderr.print(f"[red]rewardkit: error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print("rewardkit: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
