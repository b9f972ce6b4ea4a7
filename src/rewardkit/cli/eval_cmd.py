"""``rewardkit eval``: evaluate a reward model and write report.json / report.md / report.html with plots;
``rewardkit eval compare A B``: two reports side by side, with a paired test on the pairs both scored.

Run ``rewardkit eval --help``; ``docs/evaluation.md`` explains every metric and probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.dpo_options import BetaOption, DPOAverageOption, DPOPolicyOption, DPORefOption, DPOSpec, dpo_spec
from rewardkit.cli.output import UserError, emit_json, progress_bar, stdout
from rewardkit.cli.paths import check_out_dir
from rewardkit.cli.score_cmd import (
    ActorsOption,
    CpusOption,
    EngineOption,
    GpusOption,
    RayAddressOption,
    check_scorer_options,
    ray_options,
)
from rewardkit.data.importers.reader import dataset_splits
from rewardkit.data.pair_files import is_pair_file
from rewardkit.settings import DEVICE_HELP, DTYPE_HELP


def _reference_pairs(data: str, split: str, reference: str | None) -> list[Any] | None:
    """The pairs the drift check compares against: ``--reference`` (a snapshot or JSONL), else the
    training split of the evaluated snapshot, or its validation split when the training split was
    length-balanced (thinned of chosen-is-longer pairs, so its lengths differ from the data's by construction);
    none for a pair file without ``--reference``."""
    from rewardkit.data.snapshot import read_manifest, resolve_snapshot
    from rewardkit.evaluate.inputs import EvalDataError, load_eval_pairs

    if reference == "none":
        return None
    try:
        if reference:
            return load_eval_pairs(reference, split="train")
        if is_pair_file(Path(data)) or split == "train":
            return None
        balanced = bool(read_manifest(resolve_snapshot(data)).get("options", {}).get("length_balance"))
        return load_eval_pairs(data, split="validation" if balanced and split != "validation" else "train")
    except EvalDataError:
        if reference:
            raise
        return None  # a snapshot without a train split: no drift section


def run_eval(
    model: str,
    data: str,
    out: Path,
    *,
    split: str = "test",
    probes: str = "all",
    reference: str | None = None,
    best_of_n: Path | None = None,
    best_of_n_groups: int = 100,
    max_pairs: int | None = None,
    max_probe_rows: int = 1000,
    n_boot: int = 1000,
    plots: bool = True,
    max_length: int | None = None,
    dtype: str = "auto",
    device: str = "auto",
    on_ray: Any = None,
    dpo: DPOSpec | None = None,
) -> dict[str, Any]:
    """The library call behind the command; returns the report dict. ``on_ray``: a
    ``rewardkit.engines.ray.RayOptions`` to score the pairs and probes on Ray actors (the driver keeps a CPU
    copy of the model for its card and tokenizer). ``dpo``: evaluate a DPO policy's implicit reward instead
    (``model`` is then its policy)."""
    from rewardkit.evaluate.best_of_n import load_alpacaeval_groups
    from rewardkit.evaluate.inputs import EvalDataError, load_eval_pairs, sample_rows
    from rewardkit.evaluate.report import write_report
    from rewardkit.evaluate.run import EvalConfig, evaluate
    from rewardkit.evaluate.score_fns import load_model_for_eval
    from rewardkit.model.source import ModelNotFoundError

    check_scorer_options(dtype, device)
    check_out_dir(out, "--out")  # before minutes of scoring, not after
    if max_pairs is not None and max_pairs < 1:
        raise UserError(f"--max-pairs: expected at least 1, got {max_pairs}")
    try:
        config = EvalConfig(probes=probes, max_probe_rows=max_probe_rows, n_boot=n_boot)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    try:
        pairs = load_eval_pairs(data, split=split)
        ref = _reference_pairs(data, split, reference)
    except EvalDataError as exc:
        raise UserError(str(exc)) from exc
    if max_pairs is not None and max_pairs < len(pairs):
        # a seeded sample in file order, not the first rows: a file grouped by subset (RewardBench) keeps them all
        pairs = [pairs[i] for i in sample_rows(len(pairs), max_pairs, seed=0)]
    groups = None
    if best_of_n is not None:
        if not best_of_n.is_file():
            raise UserError(f"--best-of-n: no file {best_of_n} (expected AlpacaEval annotations JSONL, .gz allowed)")
        try:
            groups = load_alpacaeval_groups(best_of_n, max_groups=best_of_n_groups)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    try:
        loaded = (
            load_model_for_eval(
                model, max_length=max_length, dtype=dtype, device="cpu" if on_ray is not None else device
            )
            if dpo is None
            else dpo.load_for_eval(max_length=max_length, dtype=dtype, device=device)
        )
    except ModelNotFoundError as exc:
        raise UserError(f"--model: {exc}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"--model {model}: cannot load it as a reward model ({exc})") from exc

    if on_ray is not None:
        from dataclasses import replace

        from rewardkit.engines.ray import RayScoreFn

        loaded = replace(loaded, score_fn=RayScoreFn(model, on_ray, _local=getattr(loaded.score_fn, "scorer", None)))
    if loaded.dtype == "qint8":
        from rewardkit.cli.output import stderr
        from rewardkit.evaluate.render import INT8_CAVEAT

        stderr.print(INT8_CAVEAT.replace("**", ""), highlight=False)
    stages = (
        ["scoring pairs", "calibration"]
        + (["probes"] if probes != "none" else [])
        + (["distribution shift"] if ref else [])
        + (["best-of-N"] if groups else [])
    )
    with progress_bar("evaluating", total=len(stages), unit="stages") as bar:
        result = evaluate(
            loaded.score_fn,
            pairs,
            config,
            temperature=loaded.temperature,
            reference_pairs=ref,
            best_of_n_groups=groups,
            progress=lambda name: bar.advance(1, description=name),
        )
    result.report["meta"] = {
        "model": model,
        "data": data,
        "split": split if not is_pair_file(Path(data)) or dataset_splits(Path(data)) else None,
        "best_of_n_data": str(best_of_n) if best_of_n else None,
        "dtype": loaded.dtype,
        "engine": "local" if on_ray is None else "ray",
    } | ({} if dpo is None else dpo.meta())
    write_report(result, out, make_plots=plots)
    from rewardkit.evaluate.report import json_ready

    return json_ready(result.report)


def is_prm_folder(model: str) -> bool:
    """Does ``model`` name a saved process reward model (its rewardkit.json names a step token)?"""
    from rewardkit.model.card import read_card

    try:
        return Path(model).is_dir() and read_card(model).is_prm
    except ValueError:
        return False


def run_process_eval(
    model: str,
    data: str,
    out: Path,
    *,
    split: str = "test",
    max_length: int | None,
    dtype: str,
    device: str,
    n_boot: int,
    step_threshold: float | None = None,
) -> dict[str, Any]:
    """``rewardkit eval`` for a process reward model on step-labelled solutions (a TRL stepwise JSONL file, or
    the ``split`` of a steps snapshot): step accuracy, ProcessBench F1 and best-of-N selection
    (``evaluate/process.py``), a step below ``step_threshold`` an error (None: the card's, fitted on validation
    at training time; 0.5 for cards without one); report.json and scores.jsonl in ``out``."""
    import json

    from rewardkit.atomic import atomic_write_text
    from rewardkit.cli.score_cmd import load_checked_scorer
    from rewardkit.evaluate.process import process_report
    from rewardkit.evaluate.report import json_ready
    from rewardkit.train.steps import read_step_file

    check_scorer_options(dtype, device, max_length)
    check_out_dir(out, "--out")
    if step_threshold is not None and not 0 <= step_threshold <= 1:
        raise UserError(f"--step-threshold must be a probability in [0, 1], got {step_threshold}")
    try:
        solutions = read_step_file(data) if Path(data).is_file() else step_snapshot_split(data, split)
    except (OSError, ValueError, LookupError) as exc:
        raise UserError(f"--data: {exc}") from None
    if not solutions:
        raise UserError(f"--data {data}: no solutions in split {split!r}")
    scorer = load_checked_scorer(
        model, max_length=max_length, token_budget=2048, dtype=dtype, threads=None, device=device
    )
    with progress_bar("scoring steps", total=len(solutions), unit="solutions") as bar:
        res = scorer.score_steps([s.prompt for s in solutions], [s.steps for s in solutions], on_batch=bar.advance)
    threshold = scorer.card.step_threshold if step_threshold is None else step_threshold
    report = process_report(solutions, res.step_scores, n_boot=n_boot, threshold=threshold)
    report["meta"] = {"model": model, "data": data, "model_version": scorer.version, "precision": scorer.precision}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(json_ready(report), indent=2) + "\n")
    atomic_write_text(
        out / "scores.jsonl",
        "".join(json.dumps({"index": i, "step_scores": s}) + "\n" for i, s in enumerate(res.step_scores)),
    )
    return json_ready(report)


def step_snapshot_split(data: str, split: str) -> list[Any]:
    """One split of a steps snapshot (folder, id or id prefix); a ValueError for anything else."""
    from rewardkit.data.snapshot import resolve_snapshot, snapshot_kind
    from rewardkit.data.step_snapshot import load_step_split

    folder = resolve_snapshot(data)
    if snapshot_kind(folder) != "steps":
        raise ValueError(
            f"{data}: a process reward model is evaluated on step-labelled data (a steps snapshot or file)"
        )
    return load_step_split(folder, split)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Evaluate a reward model (accuracy, calibration, length bias, hacking probes, drift, best-of-N)."
    )

    @group.callback(invoke_without_command=True)
    def eval_(
        ctx: typer.Context,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="A trained model folder (rewardkit.json beside the weights) or any HF sequence-classification "
                "reward model. A process reward model (--objective prm) is evaluated on step-labelled --data (TRL "
                "stepwise JSONL): step accuracy, ProcessBench F1, best-of-N per step aggregate.",
            ),
        ] = None,
        data: Annotated[
            str | None,
            typer.Option(
                "--data",
                "-d",
                help="A dataset snapshot (folder, id or id prefix) or a file of TRL preference rows: prompt, chosen, "
                "rejected[, subset] (.jsonl, .jsonl.gz, .json, .csv, .parquet, or a datasets folder), or a "
                "Hugging Face Hub dataset id (owner/name, owner/name/DIR or owner/name:CONFIG).",
            ),
        ] = None,
        out: Annotated[
            Path,
            typer.Option(
                "--out", "-o", help="Folder for report.json, report.md, report.html, scores.jsonl and plots/."
            ),
        ] = Path("eval-report"),
        split: Annotated[str, typer.Option(help="Snapshot split to evaluate.")] = "test",
        probes: Annotated[
            str, typer.Option(help="Reward-hacking probes: all, none, or names separated by commas.")
        ] = "all",
        reference: Annotated[
            str | None,
            typer.Option(
                help="Reference data for the drift check (snapshot or pair file; 'none' to skip). Default: the "
                "snapshot's train split."
            ),
        ] = None,
        best_of_n: Annotated[
            Path | None,
            typer.Option(
                "--best-of-n", help="AlpacaEval annotations (JSONL, .gz ok) for the best-of-N curve and model ranking."
            ),
        ] = None,
        best_of_n_groups: Annotated[int, typer.Option(help="Instructions used from --best-of-n.")] = 100,
        max_pairs: Annotated[
            int | None,
            typer.Option(help="Evaluate a seeded sample of N pairs (spread over the file, so every subset stays in)."),
        ] = None,
        max_probe_rows: Annotated[
            int,
            typer.Option(
                help="Probe at most this many distinct chosen responses (a seeded sample); each probe rescores every "
                "one."
            ),
        ] = 1000,
        n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")] = 1000,
        step_threshold: Annotated[
            float | None,
            typer.Option(
                help="Process reward models: a step scored below this is an error (first-error F1, step accuracy). "
                "Default: the threshold the model card holds, fitted on the validation steps at training time."
            ),
        ] = None,
        plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the PNG plots.")] = True,
        max_length: Annotated[
            int | None,
            typer.Option(help="Token limit per row (default: the max_length the model was trained with, else 512)."),
        ] = None,
        dtype: Annotated[str, typer.Option(help=DTYPE_HELP + "; the report records it.")] = "auto",
        device: Annotated[str, typer.Option(help=DEVICE_HELP + ".")] = "auto",
        json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        engine: EngineOption = "local",
        ray_address: RayAddressOption = None,
        actors: ActorsOption = 1,
        cpus_per_actor: CpusOption = 1.0,
        gpus_per_actor: GpusOption = 0.0,
        dpo_policy: DPOPolicyOption = None,
        dpo_ref: DPORefOption = None,
        beta: BetaOption = None,
        dpo_average: DPOAverageOption = False,
    ) -> None:
        """Evaluate MODEL (or a DPO policy's implicit reward: --dpo-policy, --dpo-ref, --beta) on DATA and write a
        report to OUT. Subcommand: compare."""
        if ctx.invoked_subcommand is not None:
            return
        dpo = dpo_spec(dpo_policy, dpo_ref, beta, dpo_average, model=model, dtype=dtype, engine=engine)
        model = model or (dpo.policy if dpo else None)
        on_ray = ray_options(
            engine,
            address=ray_address,
            actors=actors,
            cpus=cpus_per_actor,
            gpus=gpus_per_actor,
            scorer={"max_length": max_length, "dtype": dtype, "device": device},
        )
        if not model or not data:
            raise UserError(
                "rewardkit eval needs --model and --data (a DPO policy: --dpo-policy in place of --model; "
                "or the subcommand: rewardkit eval compare A B)"
            )
        if is_prm_folder(model):  # step-labelled data: step accuracy, ProcessBench F1, best-of-N
            from rewardkit.evaluate.process import process_summary

            report = run_process_eval(
                model,
                data,
                out,
                split=split,
                max_length=max_length,
                dtype=dtype,
                device=device,
                n_boot=n_boot,
                step_threshold=step_threshold,
            )
            if json_:
                emit_json(report)
                return
            for line in process_summary(report):
                stdout.print(line, highlight=False)
            stdout.print(f"report: {out / 'report.json'}", highlight=False)
            return
        report = run_eval(
            model,
            data,
            out,
            split=split,
            probes=probes,
            reference=reference,
            best_of_n=best_of_n,
            best_of_n_groups=best_of_n_groups,
            max_pairs=max_pairs,
            max_probe_rows=max_probe_rows,
            n_boot=n_boot,
            plots=plots,
            max_length=max_length,
            dtype=dtype,
            device=device,
            on_ray=on_ray,
            dpo=dpo,
        )
        if json_:
            emit_json(report)
            return
        from rewardkit.evaluate.report import summary

        for key, value in summary(report).items():
            stdout.print(
                f"{key:>34}: {value:.4f}" if isinstance(value, float) else f"{key:>34}: {value}", highlight=False
            )
        stdout.print(f"report: {out / 'report.html'}", highlight=False)

    @group.command()
    def compare(
        a: Annotated[Path, typer.Argument(help="First report (folder or report.json).")],
        b: Annotated[Path, typer.Argument(help="Second report (folder or report.json).")],
        json_: Annotated[
            bool, typer.Option("--json", help="Print the comparison as JSON: rows, warnings, paired.")
        ] = False,
    ) -> None:
        """Set two evaluation reports side by side (B - A per metric, which is better) and test the accuracy
        difference on the pairs both scored (McNemar exact; scores.jsonl beside each report)."""
        from rewardkit.cli.output import stderr
        from rewardkit.evaluate.compare import compare_markdown, compare_reports
        from rewardkit.evaluate.report import ReportError, json_ready, load_report, load_scores

        try:
            result = compare_reports(load_report(a), load_report(b), load_scores(a), load_scores(b))
        except ReportError as exc:
            raise UserError(str(exc)) from exc
        for warning in result["warnings"]:
            stderr.print(f"warning: {warning}", highlight=False, markup=False)
        if json_:
            emit_json(json_ready(result))
            return
        stdout.print(compare_markdown(result, str(a), str(b)), highlight=False)

    app.add_typer(group, name="eval")
