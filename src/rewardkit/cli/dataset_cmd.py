"""``rewardkit dataset build|build-steps|list|show|export``: immutable, content-hashed dataset snapshots (of
preference pairs, or with ``build-steps`` of step-labelled solutions for process reward models).

Run ``rewardkit dataset build --help`` for every rule (ranking and rating conversion, ties, dedupe,
conflicts, split, balancing); ``docs/datasets.md`` explains them with an example session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, escape, stderr, stdout
from rewardkit.cli.paths import check_out_dir

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", help="Only this source dataset (repeatable).")]
KindOpt = Annotated[
    list[str] | None,
    typer.Option("--annotator-kind", help="Only this annotator kind: human, ai, implicit, rule (repeatable)."),
]
AttributeOpt = Annotated[
    list[str] | None,
    typer.Option("--attribute", help="Only this attribute; 'overall' selects comparisons without one (repeatable)."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only comparisons created at or after this ISO date/time (UTC if no zone)."),
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Only comparisons created before this ISO date/time (UTC if no zone).")
]


DedupeOpt = Annotated[str, typer.Option(help="exact, or normalized (also equal after collapsing whitespace and case).")]
FractionsOpt = Annotated[str, typer.Option(help="Train,validation,test shares of prompts.")]
ParentOpt = Annotated[
    str | None, typer.Option(help="Parent snapshot id (default: the newest snapshot with the same options).")
]


def parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(
            f"{option}: expected an ISO date or date-time like 2025-01-31 or 2025-01-31T12:00, got {value!r}"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def filter_options(
    source: list[str] | None, kind: list[str] | None, attribute: list[str] | None, since: str | None, until: str | None
) -> dict[str, Any]:
    """The filter fields shared by ``CompileConfig`` and ``ComparisonFilter``, from the command line."""
    return {
        "sources": tuple(source) if source else None,
        "annotator_kinds": tuple(kind) if kind else None,
        "attributes": tuple(None if a == "overall" else a for a in attribute) if attribute else None,
        "since": parse_time(since, "--since"),
        "until": parse_time(until, "--until"),
    }


def parse_source_values(values: list[str] | None, option: str, kind: type) -> tuple[tuple[str, Any], ...]:
    """``--source-cap alpacaeval=2000`` / ``--source-weight hh-rlhf=2`` (repeatable) as (source, value) pairs;
    a malformed one is an error naming the option and what it got."""
    expected = "a whole number" if kind is int else "a number"
    pairs = []
    for item in values or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"{option} {item}: expected SOURCE=VALUE (e.g. {option} alpacaeval=2000)")
        try:
            pairs.append((name, kind(raw.strip())))
        except ValueError as exc:
            raise UserError(f"{option} {name}: expected {expected} after '=', got {raw!r}") from exc
    return tuple(pairs)


def compile_message(exc: Exception) -> str:
    """A compile error as the command line says it: the option as typed (--source-cap), not the field."""
    text = str(exc)
    for field_name, option in (("source_caps", "--source-cap"), ("source_weights", "--source-weight")):
        if text.startswith(field_name):
            return option + text[len(field_name) :]
    return text


def _snapshot_dir() -> Path:
    from rewardkit.settings import get_settings

    return get_settings().snapshot_dir


def _resolve(ref: str) -> Path:
    from rewardkit.data.snapshot import SnapshotNotFound, resolve_snapshot

    try:
        return resolve_snapshot(ref, _snapshot_dir())
    except SnapshotNotFound as exc:
        # not under this RK_HOME: the store's registry may know where it was written
        from rewardkit.cli.db_cmd import _open
        from rewardkit.store.queries import get_snapshot

        with _open()() as session:
            row = get_snapshot(session, ref)
        if row is not None and (Path(row.path) / "manifest.json").is_file():
            return Path(row.path)
        raise UserError(str(exc)) from exc


def _parent_id(parent: str | None) -> str | None:
    """--parent (an id prefix or folder) as the parent's full id; an unknown one is an error."""
    if parent is None:
        return None
    from rewardkit.data.snapshot import read_manifest

    return str(read_manifest(_resolve(parent))["id"])


def _shares(fractions: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in fractions.split(","))
    except ValueError as exc:
        raise UserError(f"--fractions: expected three numbers like 0.8,0.1,0.1, got {fractions!r}") from exc


def _warn_unfinished(session: Any) -> None:
    """Imports cut short: a snapshot built now holds only the part they stored."""
    from rewardkit.data.importers.audit import unfinished_imports

    for unfinished in unfinished_imports(session):
        stderr.print(f"warning: {unfinished.describe()}; this snapshot holds only that part", highlight=False)


def _report_built(built: Any, json_: bool) -> None:
    if json_:
        emit_json({"id": built.id, "path": str(built.path), "created": built.created, "manifest": built.manifest})
        return
    if not built.created:
        stdout.print("the same content exists already: nothing new written", highlight=False)
    _print_manifest(built.manifest, built.path)


def _print_step_manifest(m: dict[str, Any], path: Path) -> None:
    c = m["counts"]
    stdout.print(f"[bold]steps snapshot {m['id']}[/bold]  ({escape(str(path))})", markup=True, highlight=False)
    stdout.print(f"  parent: {m.get('parent') or '-'}   created: {m['created_at']}", highlight=False)
    stdout.print(f"  filters: { {k: v for k, v in m['filters'].items() if v is not None} or 'none' }", highlight=False)
    stdout.print(
        f"  solutions selected: {c['solutions_selected']:,}   duplicates removed: {c['duplicates_exact']:,} exact, "
        f"{c['duplicates_normalized']:,} normalised",
        highlight=False,
    )
    stdout.print(
        f"  conflicting labels: {c['conflicts_found']:,} solutions ({c['conflict_steps_unlabelled']:,} tied steps "
        f"left unlabelled, {c['conflicts_dropped']:,} solutions dropped)",
        highlight=False,
    )
    labels = ", ".join(f"{k} {v:,}" for k, v in c["labels"].items())
    stdout.print(f"  step labels: {labels}; solutions with an error: {c['with_error']:,}", highlight=False)
    splits = ", ".join(f"{name} {s['rows']:,} / {s['prompts']:,} prompts" for name, s in m["splits"].items())
    stdout.print(f"  solutions: {c['solutions']:,} ({splits})", highlight=False)


def _print_manifest(m: dict[str, Any], path: Path) -> None:
    if m.get("kind") == "steps":
        _print_step_manifest(m, path)
        return
    c = m["counts"]
    stdout.print(f"[bold]snapshot {m['id']}[/bold]  ({escape(str(path))})", markup=True, highlight=False)
    stdout.print(f"  parent: {m.get('parent') or '-'}   created: {m['created_at']}", highlight=False)
    stdout.print(f"  filters: { {k: v for k, v in m['filters'].items() if v is not None} or 'none' }", highlight=False)
    stdout.print(
        f"  comparisons selected: {c['comparisons_selected']:,}   labels: {c['labels']:,} {c['labels_by_origin']}",
        highlight=False,
    )
    stdout.print(
        f"  ties: {c['ties_found']:,} found, {c['ties_kept']:,} kept, {c['ties_dropped']:,} dropped", highlight=False
    )
    stdout.print(
        f"  duplicates removed: {c['duplicates_exact']:,} exact, {c['duplicates_normalized']:,} normalised",
        highlight=False,
    )
    stdout.print(
        f"  conflicts: {c['conflicts_found']:,} found, {c['conflicts_resolved']:,} resolved by majority, "
        f"{c['conflicts_dropped']:,} dropped",
        highlight=False,
    )
    if c.get("balanced_away"):
        stdout.print(f"  balancing removed {c['balanced_away']:,} pairs", highlight=False)
    if c.get("per_source"):
        stdout.print(f"  sources: {source_counts(c, m.get('options', {}))}", highlight=False)
    if c.get("length_balanced_away"):
        stdout.print(
            f"  length balancing removed {c['length_balanced_away']:,} chosen-is-longer train pairs", highlight=False
        )
    splits = ", ".join(f"{name} {s['rows']:,} pairs / {s['prompts']:,} prompts" for name, s in m["splits"].items())
    stdout.print(f"  pairs: {c['pairs']:,} ({splits})", highlight=False)


def source_counts(counts: dict[str, Any], options: dict[str, Any]) -> str:
    """Each source's pairs in the snapshot, with what balancing left out and its cap and weight where set:
    ``alpacaeval 1,000 of 18,102 (cap 1,000), hh-rlhf 1,812 (train weight 2)``."""
    before = counts.get("per_source_before_balancing", {})
    caps, weights = dict(options.get("source_caps") or []), dict(options.get("source_weights") or [])
    parts = []
    for name, n in counts["per_source"].items():
        text = f"{name} {n:,}" + (f" of {before[name]:,}" if before.get(name, n) != n else "")
        notes = ([f"cap {caps[name]:,}"] if name in caps else []) + (
            [f"train weight {weights[name]:g}"] if name in weights else []
        )
        parts.append(text + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(parts)


def register(app: typer.Typer) -> None:
    dataset = typer.Typer(help="Build, list, show and export immutable dataset snapshots.", no_args_is_help=True)
    app.add_typer(dataset, name="dataset")

    @dataset.command()
    def build(
        source: SourceOpt = None,
        annotator_kind: KindOpt = None,
        attribute: AttributeOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        ranking_rule: Annotated[
            str, typer.Option(help="Ranking -> pairs: all (every better/worse pair), best_vs_rest, adjacent.")
        ] = "all",
        rating_attribute: Annotated[
            str | None,
            typer.Option(
                help="Rating to compare (default: 'overall' if rated, else the mean of the rated attributes)."
            ),
        ] = None,
        rating_threshold: Annotated[
            float, typer.Option(help="Ratings that differ by at least this make a pair; equal ratings are a tie.")
        ] = 1.0,
        rating_scale: Annotated[
            float | None, typer.Option(help="Width of the rating scale (4 for 1-5); strength = gap / width.")
        ] = None,
        keep_ties: Annotated[
            bool, typer.Option("--keep-ties/--drop-ties", help="Keep ties and both-bad verdicts as tie pairs.")
        ] = False,
        dedupe: DedupeOpt = "normalized",
        conflicts: Annotated[
            str, typer.Option(help="Disagreeing labels of one pair: majority (ties between verdicts drop) or drop.")
        ] = "majority",
        fractions: FractionsOpt = "0.8,0.1,0.1",
        seed: Annotated[int, typer.Option(help="Salt of the split hash and of balancing.")] = 0,
        balance_sources: Annotated[bool, typer.Option(help="Downsample every source to the smallest one.")] = False,
        max_per_source: Annotated[int | None, typer.Option(help="Cap every source at this many pairs.")] = None,
        source_cap: Annotated[
            list[str] | None,
            typer.Option(help="SOURCE=N: cap this source at N pairs (repeatable), e.g. alpacaeval=2000."),
        ] = None,
        source_weight: Annotated[
            list[str] | None,
            typer.Option(
                help="SOURCE=W: weight this source's train pairs in the loss (repeatable), e.g. hh-rlhf=2; "
                "only ratios matter."
            ),
        ] = None,
        balance_positions: Annotated[
            bool, typer.Option(help="Put the chosen response in position 'a' for exactly half the pairs (a/b exports).")
        ] = False,
        length_balance: Annotated[
            float,
            typer.Option(
                help="Train split only: drop chosen-is-longer pairs until chosen-is-shorter ones are at least this "
                "share of the unequal-length pairs (0: off; 0.5: no length shortcut left to learn)."
            ),
        ] = 0.0,
        parent: ParentOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Compile the store into a snapshot: select, convert, dedupe, resolve conflicts, balance, split by prompt.

        The snapshot's id is the hash of its content; building again from the same store and options gives the
        same id and writes nothing new."""
        from rewardkit.cli.db_cmd import _open
        from rewardkit.data.compile import CompileConfig, CompileError
        from rewardkit.data.snapshot import build_snapshot
        from rewardkit.store import session_scope

        parent = _parent_id(parent)
        shares = _shares(fractions)
        try:
            config = CompileConfig(
                **filter_options(source, annotator_kind, attribute, since, until),
                ranking_rule=ranking_rule,  # type: ignore[arg-type]
                rating_attribute=rating_attribute,
                rating_threshold=rating_threshold,
                rating_scale=rating_scale,
                keep_ties=keep_ties,
                dedupe=dedupe,  # type: ignore[arg-type]
                conflicts=conflicts,  # type: ignore[arg-type]
                fractions=shares,  # type: ignore[arg-type]
                seed=seed,
                balance_sources=balance_sources,
                max_per_source=max_per_source,
                source_caps=parse_source_values(source_cap, "--source-cap", int),
                source_weights=parse_source_values(source_weight, "--source-weight", float),
                balance_positions=balance_positions,
                length_balance=length_balance,
            )
        except CompileError as exc:
            raise UserError(compile_message(exc)) from exc
        from rewardkit.cli.output import progress_bar
        from rewardkit.data.compile import comparison_filter
        from rewardkit.data.snapshot import SnapshotError
        from rewardkit.store.queries import count_comparisons

        with session_scope(_open()) as session:
            _warn_unfinished(session)
            total = count_comparisons(session, comparison_filter(config))
            with progress_bar("compiling", total=total, unit="comparisons") as bar:
                try:
                    built = build_snapshot(session, config, _snapshot_dir(), parent=parent, on_comparison=bar.advance)
                except (SnapshotError, CompileError) as exc:  # CompileError: a cap or weight for a missing source
                    raise UserError(compile_message(exc)) from exc
        # not errors (a train-only snapshot may be what was meant; validation is carved from train when empty),
        # but said now rather than when `train` or `eval` of the snapshot fails
        prompts = sum(split["prompts"] for split in built.manifest["splits"].values())
        for name, consequence in (
            ("train", "rewardkit train on it has nothing to learn from"),
            ("test", "rewardkit eval on it needs --split validation"),
        ):
            if built.manifest["counts"]["pairs"] and not built.manifest["splits"].get(name, {}).get("rows"):
                stderr.print(
                    f"warning: split {name} has no pairs ({prompts:,} prompts split by prompt with --fractions "
                    f"{fractions}): {consequence}",
                    highlight=False,
                )
        _report_built(built, json_)

    @dataset.command("build-steps")
    def build_steps(
        source: SourceOpt = None,
        annotator_kind: KindOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        dedupe: DedupeOpt = "normalized",
        conflicts: Annotated[
            str,
            typer.Option(
                help="Disagreeing labels of one step: majority (a tie leaves the step unlabelled) or drop the solution."
            ),
        ] = "majority",
        fractions: FractionsOpt = "0.8,0.1,0.1",
        seed: Annotated[int, typer.Option(help="Salt of the split hash.")] = 0,
        parent: ParentOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Compile the stored step-labelled solutions (rewardkit import trl-stepwise, prm800k, math-shepherd) into a
        steps snapshot: select, dedupe (same prompt, steps and model), merge labels step by step, split by prompt.

        Same content and options, same id. Export it with `rewardkit dataset export ID --format trl-stepwise`."""
        from rewardkit.cli.db_cmd import _open
        from rewardkit.cli.output import progress_bar
        from rewardkit.data.compile import CompileError
        from rewardkit.data.snapshot import SnapshotError
        from rewardkit.data.step_compile import StepCompileConfig, step_filter
        from rewardkit.data.step_snapshot import build_step_snapshot
        from rewardkit.store import session_scope
        from rewardkit.store.steps import count_step_solutions

        parent = _parent_id(parent)
        shares = _shares(fractions)
        filters = filter_options(source, annotator_kind, None, since, until)
        del filters["attributes"]  # a step solution has no attribute
        try:
            config = StepCompileConfig(
                **filters,
                dedupe=dedupe,  # type: ignore[arg-type]
                conflicts=conflicts,  # type: ignore[arg-type]
                fractions=shares,  # type: ignore[arg-type]
                seed=seed,
            )
        except CompileError as exc:
            raise UserError(str(exc)) from exc
        with session_scope(_open()) as session:
            _warn_unfinished(session)
            total = count_step_solutions(session, step_filter(config))
            with progress_bar("compiling", total=total, unit="solutions") as bar:
                try:
                    built = build_step_snapshot(
                        session, config, _snapshot_dir(), parent=parent, on_solution=bar.advance
                    )
                except SnapshotError as exc:
                    raise UserError(str(exc)) from exc
        _report_built(built, json_)

    @dataset.command("list")
    def list_(json_: JsonOpt = False) -> None:
        """Every registered snapshot, oldest first."""
        from rewardkit.cli.db_cmd import _open
        from rewardkit.store.queries import list_snapshots

        with _open()() as session:
            rows = [
                {
                    "id": r.id,
                    "parent": r.parent_id,
                    "created_at": r.created_at.isoformat(),
                    "path": r.path,
                    "kind": r.manifest.get("kind", "pairs"),
                    "pairs": r.manifest["counts"].get("pairs", r.manifest["counts"].get("solutions", 0)),
                    "splits": {k: v["rows"] for k, v in r.manifest["splits"].items()},
                }
                for r in list_snapshots(session)
            ]
        if json_:
            emit_json(rows)
            return
        if not rows:
            stdout.print("no snapshots yet: run `rewardkit dataset build`")
        for r in rows:
            splits = " / ".join(f"{v:,}" for v in r["splits"].values())
            stdout.print(
                f"{r['id']}  {r['created_at'][:19]}  {r['pairs']:>8,} "
                f"{'solutions' if r['kind'] == 'steps' else 'pairs'} (train/validation/test {splits})  "
                f"parent {r['parent'] or '-'}",
                highlight=False,
            )

    @dataset.command()
    def show(
        snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique id prefix, or folder.")],
        json_: JsonOpt = False,
    ) -> None:
        """A snapshot's manifest: filters, options, counts at every step, conflicts, splits."""
        from rewardkit.data.snapshot import read_manifest

        path = _resolve(snapshot)
        manifest = read_manifest(path)
        if json_:
            emit_json(manifest)
            return
        _print_manifest(manifest, path)
        for conflict in manifest.get("conflicts", [])[:10]:
            stdout.print(f"  conflict ({conflict['outcome']}): votes {conflict['votes']}", highlight=False)

    @dataset.command()
    def export(
        snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique id prefix, or folder.")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (must not exist).")],
        format_: Annotated[
            str,
            typer.Option(
                "--format",
                help="trl-jsonl (prompt, chosen, rejected and margin per split), hf (a datasets folder), ab-jsonl; "
                "trl-stepwise (prompt, completions, labels) for a steps snapshot.",
            ),
        ] = "trl-jsonl",
        json_: JsonOpt = False,
    ) -> None:
        """Export a snapshot for other tools: TRL's preference format as JSONL, a Hugging Face datasets folder
        (load it with datasets.load_from_disk), or a/b-labelled JSONL. Ties are left out of the TRL formats. A steps
        snapshot exports as TRL stepwise JSONL (neutral steps as true; a solution stops before its first
        unlabelled step; see docs/process-rewards.md)."""
        from rewardkit.data.export import export_snapshot
        from rewardkit.data.snapshot import SnapshotError

        check_out_dir(out, "--out", must_not_exist=True)
        path = _resolve(snapshot)
        try:
            rows = export_snapshot(path, format_, out)
        except SnapshotError as exc:
            raise UserError(str(exc)) from exc
        if json_:
            emit_json({"out": str(out), "format": format_, "rows": rows})
            return
        stdout.print(f"wrote {format_} to {out}: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()), highlight=False)
