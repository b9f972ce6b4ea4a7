"""Entry point of the ``rewardkit`` console script.

Run ``rewardkit --help``. Each command group lives in its own module and registers itself here, in the one
visible list below (a test checks that every command in it answers ``--help``).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
import typer.main

from rewardkit.cli.output import UserError, escape, stderr

app = typer.Typer(
    name="rewardkit",
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


# --- command registry: one line per command module, in the order of the loop ------------------------
from rewardkit.cli import (  # noqa: E402
    data_cmd,
    dataset_cmd,
    db_cmd,
    demo_cmd,
    env_cmd,
    eval_cmd,
    filter_cmd,
    import_cmd,
    label_cmd,
    loop_cmd,
    monitor_cmd,
    registry_cmd,
    review_cmd,
    score_cmd,
    serve_cmd,
    train_cmd,
)

for _module in (
    demo_cmd,
    import_cmd,
    label_cmd,
    data_cmd,
    dataset_cmd,
    train_cmd,
    eval_cmd,
    registry_cmd,
    loop_cmd,
    score_cmd,
    filter_cmd,
    serve_cmd,
    monitor_cmd,
    review_cmd,
    db_cmd,
    env_cmd,
):
    _module.register(app)
# ---------------------------------------------------------------------------------------------------


def plain_help(command: Any) -> Any:
    """``command`` and every subcommand with click's plain help layout instead of typer's rich tables: the
    tables give each flag's negative form (--no-balance-sources) a column of its own, which squeezed the
    descriptions into 20 characters at 80 columns; click's layout gives them the rest of the line."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


def run() -> None:
    """Console-script entry: a user's mistake is one line on stderr and exit code 2 (usage errors are
    typer's own, also exit 2)."""
    try:
        plain_help(typer.main.get_command(app))(prog_name="rewardkit")
    except UserError as exc:
        stderr.print(f"[red]rewardkit: error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print("rewardkit: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
