"""``rewardkit import FORMAT PATH...``: load preference data into the store; ``import events`` and
``import convert-events`` for implicit feedback.

Run ``rewardkit import --help``. Formats and their mapping to comparisons: docs/data-formats.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, progress_bar, stdout
from rewardkit.cli.paths import check_out_file
from rewardkit.progress import ProgressHandle

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the counts as one JSON document.")]
PathsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Files (.jsonl, .jsonl.gz, .csv, .parquet), Hugging Face datasets folders (save_to_disk), or Hub "
        "dataset ids (owner/name, owner/name/DIR or owner/name:CONFIG; needs the datasets package).",
        show_default=False,
    ),
]
OnErrorOpt = Annotated[
    str,
    typer.Option(
        "--on-error",
        help="fail: stop at the first bad record and import nothing; skip: import the rest and write rejects.",
    ),
]
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split",
        help="For a Hub dataset id: the split to import (its test split would otherwise land in the training pool).",
    ),
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects", help="Where --on-error skip writes rejected records (JSONL). Default: RK_HOME/rejects/."),
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="Source dataset name stored on each comparison. Default: the format's name."),
]
AnnotatorOpt = Annotated[str | None, typer.Option("--annotator", help="Annotator id, overriding the format's default.")]
AnnotatorKindOpt = Annotated[
    str | None, typer.Option("--annotator-kind", help="human | ai | implicit | rule, overriding the format's default.")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Records per committed transaction.")]
ProgressFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--progress-file",
        help="Append 'committed N' after each committed chunk here (stderr shows N in its progress report).",
    ),
]


def _committed_reporter(progress_file: Path | None, bar: ProgressHandle):  # noqa: ANN202 - a callback
    """After each committed chunk: ``committed N`` to ``--progress-file``, and N on the progress bar (or its
    plain line without a terminal) rather than a line per chunk on stderr."""
    handle = progress_file.open("a", encoding="utf-8") if progress_file else None

    def report(n: int) -> None:
        if handle is not None:
            handle.write(f"committed {n}\n")
            handle.flush()
        bar.advance(0, committed=n)

    return report, handle


def summary_line(result: dict[str, Any]) -> str:
    """One line of an import's ``--json`` result: what was imported, of what was read (the demo prints it too)."""
    from rewardkit.data.importers.formats import FORMATS

    c = result["counts"]
    fmt = FORMATS.get(result["format"])
    noun = fmt.noun if fmt is not None else "comparisons"
    ties = "" if noun == "step solutions" else f", ties {c['ties']:,}"  # a step solution has no tie
    return (
        f"imported {c['imported']:,} {noun} (read {c['read']:,}, duplicates skipped {c['duplicates']:,}, "
        f"rejected {c['rejected']:,}{ties}); import #{result['import_id']}"
    )


def _print_result(result: dict[str, Any]) -> None:
    stdout.print(summary_line(result), highlight=False)
    for import_id in result.get("completed_imports", []):
        stdout.print(f"  completed import #{import_id}, which had been interrupted", highlight=False)
    for message in result["first_rejects"]:
        stdout.print(f"  rejected: {message}", highlight=False)
    if result["rejects_path"] and result["counts"]["rejected"]:
        stdout.print(f"  all rejected records with their reasons: {result['rejects_path']}", highlight=False)


def do_import(
    fmt: str,
    paths: list[Path],
    *,
    on_error: str = "fail",
    rejects: Path | None = None,
    source: str | None = None,
    annotator: str | None = None,
    annotator_kind: str | None = None,
    batch_size: int = 1000,
    progress_file: Path | None = None,
    json_: bool = False,
    split: str = "train",
) -> None:
    from rewardkit.cli.db_cmd import _open
    from rewardkit.data.importers.errors import ImportFailed
    from rewardkit.data.importers.run import ImportConfig, run_import
    from rewardkit.settings import get_settings

    if on_error == "skip" and rejects is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        rejects = get_settings().home / "rejects" / f"{fmt}-{stamp}.jsonl"
    if rejects is not None:
        check_out_file(
            rejects, "--rejects"
        )  # a rejects file that cannot be written fails now, before any batch commits
    from rewardkit.data.hub import HubDatasetError, resolve_data

    try:
        paths = [
            resolve_data(p, split=split) for p in paths
        ]  # a Hugging Face Hub dataset id: one split of its saved copy
    except HubDatasetError as exc:
        raise UserError(str(exc)) from None
    try:
        config = ImportConfig(fmt, tuple(paths), on_error, rejects, source, annotator, annotator_kind, batch_size)  # type: ignore[arg-type]
        factory = _open()
        with progress_bar(f"import {fmt}", unit="records") as bar:
            report, handle = _committed_reporter(progress_file, bar)
            try:
                result = run_import(factory, config, on_commit=report, progress=bar.advance)
            finally:
                if handle is not None:
                    handle.close()
    except ImportFailed as exc:
        raise UserError(str(exc)) from exc
    emit_json(result.to_json()) if json_ else _print_result(result.to_json())


def _format_command(name: str, help_text: str):  # noqa: ANN202 - a typer command
    def command(
        paths: PathsArg,
        on_error: OnErrorOpt = "fail",
        rejects: RejectsOpt = None,
        source: SourceOpt = None,
        annotator: AnnotatorOpt = None,
        annotator_kind: AnnotatorKindOpt = None,
        batch_size: BatchOpt = 1000,
        progress_file: ProgressFileOpt = None,
        json_: JsonOpt = False,
        split: SplitOpt = "train",
    ) -> None:
        do_import(
            name,
            paths,
            on_error=on_error,
            rejects=rejects,
            source=source,
            annotator=annotator,
            annotator_kind=annotator_kind,
            batch_size=batch_size,
            progress_file=progress_file,
            json_=json_,
            split=split,
        )

    command.__doc__ = f"Import {help_text}. Ends with counts (read, imported, duplicates skipped, rejected)."
    return command


def register(app: typer.Typer) -> None:
    from rewardkit.data.importers.formats import FORMATS

    group = typer.Typer(
        help="Import preference data (trl, hh-rlhf, ultrafeedback, alpacaeval), step-labelled solutions for process "
        "reward models (trl-stepwise, prm800k, math-shepherd) or implicit feedback events into the store. Importing "
        "the same data again stores nothing new. See docs/data-formats.md and docs/process-rewards.md.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="import")
    for name, fmt in FORMATS.items():
        group.command(name)(_format_command(name, fmt.help))

    @group.command("convert-events")
    def convert_events(
        source: Annotated[str, typer.Option("--source", help="Source name of the comparisons made.")] = "implicit",
        json_: JsonOpt = False,
    ) -> None:
        """Turn the stored implicit feedback events into comparisons (annotator kind implicit) by the rules
        in docs/data-formats.md: thumbs up vs down, edit, regenerate, copy. Running it again adds nothing."""
        from dataclasses import asdict

        from rewardkit.cli.db_cmd import _open
        from rewardkit.data.implicit import convert_stored_events

        if not source.strip():
            raise UserError("--source must not be empty")
        counts = asdict(convert_stored_events(_open(), source=source))
        if json_:
            emit_json(counts)
        else:
            rules = ", ".join(f"{k} {v:,}" for k, v in sorted(counts["by_rule"].items())) or "none"
            stdout.print(
                f"{counts['events']:,} events -> {counts['comparisons']:,} comparisons ({rules}); "
                f"imported {counts['imported']:,}, duplicates skipped {counts['duplicates']:,}",
                highlight=False,
            )
