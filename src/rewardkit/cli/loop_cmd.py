"""``rewardkit loop tick|run|status|alert``: continuous training (docs/registry.md). ``tick`` is one idempotent
step for cron or a Kubernetes CronJob; ``run --interval 10m`` is the same step in a loop."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, stderr, stdout
from rewardkit.cli.registry_cmd import open_factory, run

# at the top, not in the commands: the CLI imports this module only for a loop command (cli/lazy.py), and what is
# imported here loads with the garbage collector's work spared (most of an idle tick is these imports)
from rewardkit.loop.config import load_loop_config
from rewardkit.loop.machine import tick

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The loop's TOML config (see docs/registry.md).")]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """'90s', '10m', '2h', '1d' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--interval {text!r}: expected a positive duration like 90s, 10m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _print_tick(result: Any) -> None:
    if result.action == "idle":
        stdout.print(f"nothing to do ({result.detail}) in {result.seconds:.2f} s")
        return
    for step in result.steps:
        stdout.print(f"run {result.run_id}: {step}")
    stdout.print(
        f"run {result.run_id}: {result.state}{': ' + result.detail if result.detail else ''} ({result.seconds:.1f} s)"
    )


def _tick(config_path: Path) -> Any:
    config = run(load_loop_config, config_path)
    return run(tick, open_factory(), config)


def register(app: typer.Typer) -> None:
    loop = typer.Typer(help="Continuous training: trigger, retrain, gate, promote.", no_args_is_help=True)
    app.add_typer(loop, name="loop")

    @loop.command("tick")
    def tick_(config: ConfigOpt, json_: JsonOpt = False) -> None:
        """One step: if a retrain is due (or one is in progress), compile, train, gate and promote or record why not."""
        result = _tick(config)
        emit_json(result.as_json()) if json_ else _print_tick(result)
        if result.state == "failed":
            raise typer.Exit(1)

    @loop.command("run")
    def run_(
        config: ConfigOpt,
        interval: Annotated[str, typer.Option("--interval", help="Time between ticks: 90s, 10m, 2h.")] = "10m",
        max_ticks: Annotated[int, typer.Option("--max-ticks", help="Stop after this many ticks (0: never).")] = 0,
        json_: JsonOpt = False,
    ) -> None:
        """Tick every INTERVAL (a tick that finds the lease taken waits for the next one)."""
        seconds = parse_interval(interval)
        n = 0
        while True:
            try:
                result = _tick(config)
                emit_json(result.as_json()) if json_ else _print_tick(result)
            except UserError as exc:
                stderr.print(f"rewardkit: tick: {exc}")
            n += 1
            if max_ticks and n >= max_ticks:
                return
            time.sleep(seconds)

    @loop.command()
    def status(
        name: Annotated[str | None, typer.Argument(help="Only this model's runs.")] = None,
        limit: Annotated[int, typer.Option("--limit", help="Newest runs shown.")] = 20,
        json_: JsonOpt = False,
    ) -> None:
        """The newest loop runs: state, trigger, candidate, verdict or error."""
        from rewardkit.store import registry as q
        from rewardkit.store import session_scope
        from rewardkit.store.queries import aware

        with session_scope(open_factory()) as s:
            rows = [
                {
                    "id": r.id, "name": r.name, "state": r.state, "trigger": r.trigger,
                    "champion_version": r.champion_version,
                    "snapshot_id": r.snapshot_id, "candidate_version": r.candidate_version, "attempts": r.attempts,
                    "error": r.error, "passed": (r.verdict or {}).get("passed"),
                    "created_at": aware(r.created_at).isoformat(), "updated_at": aware(r.updated_at).isoformat(),
                }
                for r in q.list_loop_runs(s, name=name, limit=limit)
            ]  # fmt: skip
        if json_:
            emit_json(rows)
            return
        for r in rows:
            cand = f" candidate v{r['candidate_version']}" if r["candidate_version"] else ""
            stdout.print(f"run {r['id']} {r['name']} {r['state']}{cand} {r['updated_at']} {r['error'] or ''}")

    @loop.command()
    def alert(
        name: Annotated[str, typer.Argument(help="The model to retrain.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (recorded as the run's trigger).")],
        json_: JsonOpt = False,
    ) -> None:
        """Request a retrain (what monitoring calls on a drift alert); the next tick takes it up."""
        from rewardkit.loop.triggers import raise_alert
        from rewardkit.store import session_scope

        with session_scope(open_factory()) as s:
            run_id = raise_alert(s, name=name, reason=reason, source="cli")
        emit_json({"run_id": run_id}) if json_ else stdout.print(f"retrain requested: run {run_id}")

    @loop.command()
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Folder for the demo's store, models and configs.")] = Path(
            "loop-demo-output"
        ),
        steps: Annotated[int, typer.Option("--steps", help="Training steps of each challenger.")] = 60,
    ) -> None:
        """The loop on the bundled sample, step by step: serve by alias, feedback, tick, gates, rollback."""
        from rewardkit.cli.loop_demo import run_loop_demo

        summary = run_loop_demo(out, steps=steps)
        stdout.print(f"\nsummary: {summary}", highlight=False)
