"""``rewardkit filter INPUT --model M --keep RULE --out OUT``: score rows and keep those the reward model likes.

    rewardkit filter synth.jsonl -m rm/ --keep top:20% -o kept.jsonl          # the best fifth, exactly
    rewardkit filter synth.jsonl -m rm/ --keep threshold:0.5 --normalized    # score_normalized >= 0.5
    rewardkit filter samples.jsonl -m rm/ --keep best-per-prompt             # best-of-N selection
    rewardkit filter samples.jsonl -m rm/ --min-margin 1.0 -o pairs.jsonl    # on-policy DPO pairs
    rewardkit filter shards/ -m rm/ --keep top:20% -o kept/ --engine ray --actors 8

Rows are (prompt, response) or chat ``messages``, as ``rewardkit score`` reads them (a pair row has nothing to
keep or drop). The output holds the kept rows with their scores, in input order (pairs: prompt, chosen,
rejected, score_chosen, score_rejected, margin); beside it a manifest (OUT.manifest.json; OUT/_manifest.json
for a folder) names the model version, the options and the input's sha256, and a PNG the score histograms
before and after. The local engine streams: memory holds a scoring chunk plus 16 bytes a row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, progress_bar, stdout
from rewardkit.cli.paths import check_out_file
from rewardkit.cli.score_cmd import (
    MODEL_HELP,
    ActorsOption,
    CpusOption,
    EngineOption,
    GpusOption,
    RayAddressOption,
    check_scorer_options,
    load_checked_scorer,
    ray_options,
)
from rewardkit.scoring.selection import KEEP_HELP
from rewardkit.settings import DEVICE_HELP, DTYPE_HELP

if TYPE_CHECKING:
    from rewardkit.scoring.filter_run import FilterOptions


def filter_options(keep: str | None, min_margin: float | None, normalized: bool) -> FilterOptions:
    """The run's FilterOptions, or a UserError naming the rule or margin that is wrong."""
    from rewardkit.scoring.filter_run import FilterOptions

    try:
        return FilterOptions(keep=keep, min_margin=min_margin, normalized=normalized)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def register(app: typer.Typer) -> None:
    @app.command(name="filter")
    def filter_(
        input: Annotated[
            str,
            typer.Argument(
                metavar="INPUT",
                help="JSONL / CSV / Parquet rows (prompt, response or messages); --engine ray: also a folder of "
                "shards or a URI.",
            ),
        ],
        out: Annotated[
            str,
            typer.Option("--out", "-o", help="Output file (local) or folder (--engine ray) of the kept rows or pairs."),
        ],
        model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP, show_default=False)] = "default",
        keep: Annotated[str | None, typer.Option(help=f"What to keep: {KEEP_HELP}.")] = None,
        min_margin: Annotated[
            float | None,
            typer.Option(
                help="Write preference pairs instead: per prompt, its best response against its worst when their "
                "scores differ by at least this much."
            ),
        ] = None,
        normalized: Annotated[
            bool, typer.Option("--normalized", help="Select on score_normalized (the card's scale), not the raw score.")
        ] = False,
        max_length: Annotated[int | None, typer.Option(help="Token limit per row (default: the model card's).")] = None,
        token_budget: Annotated[int, typer.Option(help="Tokens per batch (rows x padded width).")] = 2048,
        dtype: Annotated[str, typer.Option(help=DTYPE_HELP + ".")] = "auto",
        threads: Annotated[int | None, typer.Option(help="torch threads (local engine).")] = None,
        device: Annotated[str, typer.Option(help=DEVICE_HELP + ".")] = "auto",
        engine: EngineOption = "local",
        ray_address: RayAddressOption = None,
        actors: ActorsOption = 1,
        cpus_per_actor: CpusOption = 1.0,
        gpus_per_actor: GpusOption = 0.0,
        json_: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    ) -> None:
        """Score INPUT and keep rows by reward (top share, threshold, best per prompt) or make preference pairs."""
        from rewardkit.scoring.rows import InputError

        options = filter_options(keep, min_margin, normalized)
        check_scorer_options(dtype, device, max_length)
        scorer_options = {"max_length": max_length, "token_budget": token_budget, "dtype": dtype, "device": device}
        on_ray = ray_options(
            engine, address=ray_address, actors=actors, cpus=cpus_per_actor, gpus=gpus_per_actor, scorer=scorer_options
        )
        try:
            if on_ray is not None:
                from rewardkit.engines.ray_filter import filter_shards

                try:
                    manifest = filter_shards(model, input, Path(out), options, on_ray)
                except (OSError, ValueError) as exc:
                    if isinstance(exc, InputError):
                        raise
                    raise UserError(f"--engine ray: {' '.join(str(exc).split())}") from None
            else:
                manifest = filter_local(model, Path(input), Path(out), options, scorer_options, threads)
        except InputError as exc:
            raise UserError(str(exc)) from None
        if json_:
            emit_json(manifest)
            return
        what = f"{manifest['written']} pairs" if manifest["pairs"] else f"kept {manifest['kept']}"
        stdout.print(
            f"{what} of {manifest['rows']} rows -> {manifest['out']} (dropped {manifest['dropped']}; manifest and "
            f"histograms beside it; {manifest['seconds']} s)",
            highlight=False,
        )


def filter_local(
    model: str, input_path: Path, out: Path, options: FilterOptions, scorer_options: dict[str, Any], threads: int | None
) -> dict[str, Any]:
    """The local engine: checks first (output path, input rows), then the model, then the streaming passes."""
    from rewardkit.scoring.files import check_input
    from rewardkit.scoring.filter_run import filter_file
    from rewardkit.scoring.writers import check_output_path

    check_output_path(out, input_path)
    check_out_file(out, "--out")
    checked = check_input(input_path)  # a bad row is reported before the model loads
    scorer = load_checked_scorer(model, threads=threads, **scorer_options)
    with progress_bar("scoring", total=checked.rows, unit="rows") as bar:
        return filter_file(scorer, input_path, out, options, checked=checked, on_rows=bar.advance)
