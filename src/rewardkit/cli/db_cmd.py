"""``rewardkit db``: create or upgrade the schema, show what the store holds, check its integrity."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import text

from rewardkit.cli.output import UserError, emit_json, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _open():  # noqa: ANN202 - a sessionmaker
    from rewardkit.settings import get_settings
    from rewardkit.store import open_store

    url = get_settings().resolved_database_url
    try:
        return open_store(url)
    except Exception as exc:  # an unreachable server or a bad URL is the user's to fix
        reason = str(exc).split("\n(Background")[0]
        raise UserError(f"cannot open the database {url.split('@')[-1]}: {reason}") from exc


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The preference store (RK_DATABASE_URL; default SQLite under RK_HOME).", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command()
    def migrate(json_: JsonOpt = False) -> None:
        """Create the schema or upgrade it to the latest migration (safe to run repeatedly)."""
        factory = _open()
        with factory() as s:
            revision = s.execute(text("select version_num from alembic_version")).scalar_one()
        emit_json({"revision": revision}) if json_ else stdout.print(f"schema at revision {revision}")

    @db.command()
    def status(json_: JsonOpt = False) -> None:
        """Row counts of every table."""
        from rewardkit.store.queries import table_counts

        with _open()() as s:
            counts = table_counts(s)
        if json_:
            emit_json(counts)
            return
        for table, n in counts.items():
            stdout.print(f"{table:>22}: {n:,}")

    @db.command()
    def check(json_: JsonOpt = False) -> None:
        """Check the store: the database's own integrity check (SQLite: PRAGMA integrity_check; PostgreSQL: a
        connection test) and imports that were interrupted (killed mid-way) or failed after storing a part of
        their input. Exits 1 when either finds a problem."""
        from rewardkit.data.importers.audit import unfinished_imports

        factory = _open()
        with factory() as s:
            if s.get_bind().dialect.name == "sqlite":
                result = s.execute(text("PRAGMA integrity_check")).scalar_one()
            else:
                result = "ok" if s.execute(text("select 1")).scalar_one() == 1 else "failed"
            unfinished = unfinished_imports(s)
        partial = [u for u in unfinished if u.state != "running"]
        if json_:
            emit_json({"integrity": result, "unfinished_imports": [u.to_json() for u in unfinished]})
        else:
            stdout.print(f"integrity: {result}")
            for u in unfinished:
                stdout.print(f"{'running' if u.state == 'running' else 'incomplete'}: {u.describe()}", highlight=False)
        if result != "ok" or partial:
            raise typer.Exit(1)
