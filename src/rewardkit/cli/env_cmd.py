"""``rewardkit env``: the versions to paste into a bug report."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Annotated

import typer

from rewardkit.cli.output import emit_json, stdout


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment_report() -> dict[str, object]:
    from sqlalchemy import text

    from rewardkit import __version__
    from rewardkit.settings import get_settings
    from rewardkit.store.engine import make_engine

    settings = get_settings()
    report: dict[str, object] = {
        "rewardkit": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **{
            name: _version(name)
            for name in ("torch", "transformers", "sqlalchemy", "alembic", "fastapi", "peft", "accelerate")
        },
        "database_url": settings.resolved_database_url.split("@")[-1],  # never print credentials
    }
    try:
        import torch

        report["cuda"] = torch.cuda.is_available()
        report["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        engine = make_engine(settings.resolved_database_url)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                report["database"] = "sqlite " + conn.execute(text("select sqlite_version()")).scalar_one()
            else:
                report["database"] = conn.execute(text("select version()")).scalar_one()
    except Exception as exc:  # env must work even when the database does not
        report["database"] = f"unavailable: {exc.__class__.__name__}: {exc}"
    return report


def register(app: typer.Typer) -> None:
    @app.command()
    def env(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """Print versions (python, torch, transformers, database) for bug reports."""
        report = environment_report()
        if json_:
            emit_json(report)
            return
        for key, value in report.items():
            stdout.print(f"{key:>14}: {value}", highlight=False)
