"""``rewardkit score INPUT --model M --out OUT``: score a JSONL / CSV / Parquet file with a reward model.

Rows are (prompt, response), chat ``messages`` ending in the assistant's response, or pairs
(prompt, response_a, response_b | chosen, rejected). Output: the input rows plus score, score_normalized,
score_std (ensembles), truncated; pairs get score_a, score_b and the calibrated p_a_better.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rewardkit.cli.output import UserError, emit_json, progress_bar, stdout
from rewardkit.settings import DEVICE_HELP, DTYPE_HELP, SCORE_DTYPES


def check_scorer_options(dtype: str, device: str) -> None:
    """A clear error for a --dtype or --device the scorer would reject, before the model loads."""
    from rewardkit.model.device import resolve_device

    if dtype not in SCORE_DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(SCORE_DTYPES)}, got {dtype!r}")
    try:
        resolve_device(device)
    except ValueError as exc:
        raise UserError(f"--device: {exc}") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def score(
        input: Annotated[Path, typer.Argument(help="JSONL (.jsonl/.jsonl.gz), CSV or Parquet file of rows to score.")],
        model: Annotated[str, typer.Option("--model", "-m", help="Reward model folder or HF id (default: the bundled backbone).")] = "default",
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (.jsonl/.csv/.parquet). Default: INPUT.scored.jsonl")] = None,
        max_length: Annotated[int | None, typer.Option(help="Token limit per row (default: the model card's).")] = None,
        token_budget: Annotated[int, typer.Option(help="Tokens per batch (rows x padded width; CPU: 1-4K is fastest per token, raise on a GPU).")] = 2048,
        dtype: Annotated[str, typer.Option(help=DTYPE_HELP + ".")] = "auto",
        threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's choice).")] = None,
        device: Annotated[str, typer.Option(help=DEVICE_HELP + ".")] = "auto",
        json_: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Score every row of INPUT with a reward model (fast token-budget batches, input order kept)."""
        from rewardkit.score import InputError, check_output_path, load_scorer, read_rows, score_rows, write_rows

        out_path = out or input.with_name(input.name.split(".")[0] + ".scored.jsonl")
        try:
            check_output_path(out_path)
            check_scorer_options(dtype, device)  # options first: cheap, before reading a large file
            rows = read_rows(input)
            try:
                scorer = load_scorer(model, max_length=max_length, token_budget=token_budget, dtype=dtype, threads=threads, device=device)
            except OSError as exc:
                raise UserError(f"cannot load model {model!r}: {exc}") from None
            start = time.perf_counter()
            with progress_bar("scoring", total=None, unit="rows") as bar:
                scored = score_rows(scorer, rows, on_batch=bar.advance)
            seconds = time.perf_counter() - start
            write_rows(scored, out_path)
        except InputError as exc:
            raise UserError(str(exc)) from None
        truncated = sum(bool(r.get("truncated") or r.get("truncated_a") or r.get("truncated_b")) for r in scored)
        summary = {
            "rows": len(scored), "out": str(out_path), "model_version": scorer.card.version,
            "dtype": str(scorer.dtype).replace("torch.", ""), "truncated_rows": truncated,
            "seconds": round(seconds, 3), "rows_per_s": round(len(scored) / seconds, 1) if seconds else None,
        }
        if json_:
            emit_json(summary)
            return
        stdout.print(
            f"scored {len(scored)} rows -> {out_path} ({summary['rows_per_s']} rows/s, {summary['dtype']}, "
            f"{truncated} truncated)", highlight=False,
        )
