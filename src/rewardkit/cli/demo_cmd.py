"""``rewardkit demo``: the whole loop on the bundled sample, as the commands a user would type.

Each step runs the real ``rewardkit`` command in a subprocess (with ``RK_HOME`` pointing into the demo
folder, so nothing outside it is touched), echoes the command line first, and stops at the first failure.
Run: ``rewardkit demo --out demo-output`` (``make demo`` does this after setting everything up).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.import_cmd import summary_line
from rewardkit.cli.output import UserError, emit_json, escape, stderr, stdout


def _step(title: str, args: list[str], env: dict[str, str], *, capture_json: bool = False) -> Any:
    shown = "rewardkit " + " ".join(shlex.quote(a) for a in args)
    stdout.print(
        f"\n[bold cyan]== {escape(title)}[/bold cyan]\n[dim]$ {escape(shown)}[/dim]", markup=True, highlight=False
    )
    command = [sys.executable, "-m", "rewardkit.cli.main", *args]
    started = time.perf_counter()
    if capture_json:
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    else:
        proc = subprocess.run(command, env=env)
    if proc.returncode != 0:
        raise UserError(f"demo step '{title}' failed (exit {proc.returncode}): {shown}")
    stdout.print(f"[dim]({time.perf_counter() - started:.1f} s)[/dim]", markup=True)
    return json.loads(proc.stdout) if capture_json else None


def snapshot_line(built: dict[str, Any]) -> str:
    """``dataset build --json`` as one line: the id and the pairs (prompts) of each split."""
    splits = built["manifest"]["splits"]
    parts = ", ".join(f"{name} {s['rows']:,} pairs ({s['prompts']:,} prompts)" for name, s in splits.items())
    return f"snapshot {built['id']}: {parts}"


def run_demo(out: Path, *, pairs: int, epochs: float) -> dict[str, Any]:
    """Sample -> import -> snapshot -> stats -> train -> evaluate -> score; returns the headline numbers."""
    out.mkdir(parents=True, exist_ok=True)
    home = out / "home"
    env = {
        **os.environ,
        "RK_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "RK_DATABASE_URL": f"sqlite:///{(home / 'rewardkit.db').resolve()}",
    }
    sample, model, report = out / "sample.jsonl", out / "model", out / "eval"

    _step("1. write the bundled sample (TRL format)", ["data", "sample", "--out", str(sample), "--n", str(pairs)], env)
    imported = _step(
        "2. import it into the store",
        ["import", "trl", str(sample), "--source", "sample", "--json"],
        env,
        capture_json=True,
    )
    stdout.print(summary_line(imported), highlight=False)
    built = _step(
        "3. build a dataset snapshot (dedupe, split by prompt)", ["dataset", "build", "--json"], env, capture_json=True
    )
    snapshot_id = built["id"]
    stdout.print(snapshot_line(built), highlight=False)
    _step("4. look at the data", ["data", "stats"], env)
    trained = _step(
        "5. train a reward model (pretrained all-MiniLM-L6-v2 backbone)",
        [
            "train",
            "--data",
            snapshot_id,
            "--out",
            str(model),
            "--epochs",
            str(epochs),
            "--batch-size",
            "16",
            "--lr",
            "1e-4",
            "--eval-every",
            "20",
            "--json",
        ],
        env,
        capture_json=True,
    )
    evaluated = _step(
        "6. evaluate it on the held-out test split (accuracy, calibration, length bias, hacking probes)",
        ["eval", "--model", str(model), "--data", snapshot_id, "--out", str(report), "--n-boot", "200", "--json"],
        env,
        capture_json=True,
    )
    to_score = out / "to_score.jsonl"
    to_score.write_text(
        "\n".join(
            json.dumps({"prompt": "What is the capital of France?", "response": r})
            for r in ("The capital of France is Paris.", "The capital of France is Berlin.")
        )
        + "\n"
    )
    _step(
        "7. score new responses",
        ["score", str(to_score), "--model", str(model), "--out", str(out / "scored.jsonl")],
        env,
    )
    for line in (out / "scored.jsonl").read_text().splitlines():
        stdout.print(line, highlight=False)
    return {"snapshot": snapshot_id, "train": trained, "eval": evaluated, "out": str(out)}


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Annotated[Path, typer.Option(help="Folder for everything the demo writes (its own database too).")] = Path(
            "demo-output"
        ),
        pairs: Annotated[int, typer.Option(help="Pairs in the generated sample.")] = 400,
        epochs: Annotated[float, typer.Option(help="Training epochs.")] = 2.0,
        json_: Annotated[bool, typer.Option("--json", help="Print the headline numbers as JSON at the end.")] = False,
    ) -> None:
        """Run the whole loop on the bundled sample: write it, import it, build a snapshot, print stats,
        train a reward model, evaluate it on held-out prompts, and score new responses."""
        result = run_demo(out, pairs=pairs, epochs=epochs)
        if json_:
            emit_json(result)
            return
        summary = _headline(result)
        stdout.print("\n[bold green]== demo done[/bold green]", markup=True)
        for key, value in summary.items():
            stdout.print(f"{key:>28}: {value}", highlight=False)
        stderr.print(f"open {out / 'eval' / 'report.html'} for the plots")


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers worth printing, read defensively from the train and eval JSON."""
    train, report = result["train"] or {}, result["eval"] or {}
    metrics = train.get("metrics", train)
    acc = report.get("accuracy", {})
    overall = acc.get("overall", acc)
    return {
        "snapshot": result["snapshot"],
        "model": train.get("out", ""),
        "validation accuracy": metrics.get("val_accuracy", metrics.get("best_val_accuracy", "?")),
        "test accuracy (95% CI)": _fmt_interval(overall),
        "report": str(Path(result["out"]) / "eval" / "report.html"),
    }


def _fmt_interval(acc: dict[str, Any]) -> str:
    value = acc.get("accuracy", acc.get("value"))
    lo, hi = acc.get("ci_low", acc.get("low")), acc.get("ci_high", acc.get("high"))
    if value is None:
        return "?"
    return f"{value:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")
