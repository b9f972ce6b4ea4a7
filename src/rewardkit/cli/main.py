"""Entry point of the ``rewardkit`` console script.

Run ``rewardkit --help``. Each command group lives in its own module and registers itself here, in the one
visible list below (a test checks that every command in it answers ``--help``).
"""

from __future__ import annotations

import sys

import typer

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

    Settings come from the environment: RK_HOME (data folder, default ./rewardkit-data) and RK_DATABASE_URL (default: SQLite under RK_HOME; PostgreSQL via postgresql+psycopg://...). Each command's --help lists its options; docs/ has the guides.
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
    score_cmd,
    serve_cmd,
    train_cmd,
)

for _module in (
    demo_cmd,
    import_cmd,
    data_cmd,
    dataset_cmd,
    train_cmd,
    eval_cmd,
    score_cmd,
    filter_cmd,
    serve_cmd,
    db_cmd,
    env_cmd,
):
    _module.register(app)
# ---------------------------------------------------------------------------------------------------


def run() -> None:
    """Console-script entry: a user's mistake is one line on stderr and exit code 2 (usage errors are
    typer's own, also exit 2)."""
    try:
        app()
    except UserError as exc:
        stderr.print(f"[red]rewardkit: error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print("rewardkit: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
