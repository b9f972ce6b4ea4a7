"""``rewardkit monitor``: the served reward over time (report) and threshold rules for cron and CI (check).

    rewardkit monitor report --since 7d --window 1h --out monitor-report
    rewardkit monitor check --rules rules.toml --since 1h       # exit 1 and JSON alerts when a rule breaks

Both read the score aggregates the service writes to the store (RK_DATABASE_URL). ``docs/monitoring.md``
explains the statistics, the rules file and the over-optimization alarm.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, stdout
from rewardkit.cli.paths import check_out_dir

DURATION_HELP = "A duration: 30m, 1h, 7d or 2w."
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="End of the period, ISO time (UTC when no zone is given); default: the current minute."
    ),
]


def _duration(text: str, option: str) -> timedelta:
    from rewardkit.monitor.series import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


def _until(text: str | None) -> datetime:
    from rewardkit.monitor.report import current_minute
    from rewardkit.monitor.series import as_utc

    if text is None:
        return current_minute()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--until: expected an ISO time like 2026-01-31T12:00, got {text!r}") from None
    return as_utc(value)


def _min_count(value: int) -> int:
    if value < 1:
        raise UserError(f"--min-count: expected at least 1, got {value}")
    return value


def run_report(
    out: Path,
    *,
    since: timedelta,
    window: timedelta,
    until: datetime | None = None,
    min_count: int = 500,
    plots: bool = True,
    database_url: str | None = None,
) -> dict[str, Any]:
    """The library call behind ``monitor report``: read, roll, write; returns the report dict."""
    from rewardkit.monitor.report import build_report, collect, write_report
    from rewardkit.store import open_store, session_scope

    check_out_dir(out, "--out")
    if window > since:
        raise UserError("--window is longer than --since: no whole window fits in the period")
    factory = open_store(database_url) if database_url else _open_store()
    with session_scope(factory) as session:
        data = collect(session, since=since, window=window, until=until, min_count=min_count)
    report = build_report(data)
    write_report(report, data.windows, out, make_plots=plots)
    return report


def run_check(
    rules_path: Path,
    *,
    since: timedelta,
    window: timedelta,
    until: datetime | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """The library call behind ``monitor check``: ``{"ok", "alerts", "checked", "skipped", ...}``."""
    from rewardkit.model.reference import usable_references
    from rewardkit.monitor.report import current_minute
    from rewardkit.monitor.rules import RulesError, evaluate_rules, load_rules, lookback
    from rewardkit.monitor.series import as_utc
    from rewardkit.store import open_store, session_scope
    from rewardkit.store.score_log import get_score_references, iter_score_aggregates

    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        raise UserError(str(exc)) from None
    until = as_utc(until) if until else current_minute()
    span = lookback(rules, since, window)
    factory = open_store(database_url) if database_url else _open_store()
    with session_scope(factory) as session:
        references, warnings = usable_references(get_score_references(session))
        rows = list(iter_score_aggregates(session, since=until - span, until=until))
    result = evaluate_rules(rules, rows, references=references, since=since, until=until, default_window=window)
    return {
        **result,
        "rules": len(rules),
        "since": (until - since).isoformat(),
        "until": until.isoformat(),
        "warnings": warnings,
    }


def _open_store():  # noqa: ANN202 - a sessionmaker
    from rewardkit.cli.db_cmd import _open

    return _open()


def register(app: typer.Typer) -> None:
    monitor = typer.Typer(
        help="The served reward over time: drift against each model's reference, alerts, the over-optimization "
        "alarm. Reads the score aggregates the service logs (RK_DATABASE_URL).",
        no_args_is_help=True,
    )
    app.add_typer(monitor, name="monitor")

    @monitor.command()
    def report(
        out: Annotated[Path, typer.Option("--out", help="Folder for report.json/md/html and plots/.")],
        since: Annotated[str, typer.Option("--since", help=f"How far back to look. {DURATION_HELP}")] = "7d",
        window: Annotated[str, typer.Option("--window", help=f"Window of each point. {DURATION_HELP}")] = "1h",
        until: UntilOpt = None,
        min_count: Annotated[
            int,
            typer.Option(
                "--min-count",
                help="Scores a window needs for PSI/KS (fewer: 'n too small'); on 20 bins, noise alone gives PSI "
                "about 19 / n.",
            ),
        ] = 500,
        plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG time series.")] = True,
        json_: Annotated[bool, typer.Option("--json", help="Print report.json to stdout.")] = False,
    ) -> None:
        """Write a monitoring report: per model version and route, served count, mean and p05/p50/p95 of the
        reward, PSI and KS against the model's reference distribution, share of uncertain scores, mean response
        length, one PNG time series per model version, and the over-optimization verdict on RL traffic
        (/get_reward)."""
        result = run_report(
            out,
            since=_duration(since, "--since"),
            window=_duration(window, "--window"),
            until=_until(until),
            min_count=_min_count(min_count),
            plots=plots,
        )
        if json_:
            emit_json(result)
            return
        stdout.print(f"monitoring report for {len(result['models'])} model version(s) written to {out}")
        for warning in result["warnings"]:
            stdout.print(f"warning: {warning}")
        for mv in result["overoptimization_fired"]:
            stdout.print(f"over-optimization alarm: {mv}")

    @monitor.command()
    def check(
        rules: Annotated[Path, typer.Option("--rules", help="TOML rules file ([[rule]] tables; docs/monitoring.md).")],
        since: Annotated[
            str, typer.Option("--since", help=f"Check the windows of this last period. {DURATION_HELP}")
        ] = "1h",
        window: Annotated[
            str, typer.Option("--window", help=f"Window for rules that name none. {DURATION_HELP}")
        ] = "1h",
        until: UntilOpt = None,
    ) -> None:
        """Test threshold rules on the recent windows and print {"ok", "alerts", ...} as JSON. Exit status 0 when
        every rule holds, 1 when any breaks (one alert per broken rule and window), 2 for a bad rules file or
        option: for cron and CI."""
        result = run_check(
            rules, since=_duration(since, "--since"), window=_duration(window, "--window"), until=_until(until)
        )
        emit_json(result)
        if not result["ok"]:
            raise typer.Exit(1)
