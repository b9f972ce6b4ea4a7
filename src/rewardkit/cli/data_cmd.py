"""``rewardkit data stats|sample|gsm8k-steps``: look at the store before training on it; write the bundled sample;
write step-labelled GSM8K solutions for process reward models (docs/process-rewards.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.dataset_cmd import AttributeOpt, JsonOpt, KindOpt, SinceOpt, SourceOpt, UntilOpt, filter_options
from rewardkit.cli.output import UserError, emit_json, escape, stdout
from rewardkit.cli.paths import check_out_file


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else f"{value:,}"


def _print_stats(s: dict[str, Any]) -> None:
    if not s["comparisons"]:
        stdout.print("no comparisons (in the store, or matching the filters): import some with `rewardkit import`")
        return
    stdout.print(
        f"[bold]{s['comparisons']:,} comparisons[/bold], {s['labels']:,} labelled pairs "
        f"{escape(str(s['labels_by_origin']))}",
        markup=True,
        highlight=False,
    )
    for key in ("by_source", "by_annotator_kind", "by_attribute", "by_judgement"):
        stdout.print(
            f"  {key.removeprefix('by_').replace('_', ' ')}: " + ", ".join(f"{k} {v:,}" for k, v in s[key].items()),
            highlight=False,
        )
    rate = "-" if s["tie_rate"] is None else f"{s['tie_rate']:.2%}"
    stdout.print(f"  tie rate: {rate} ({s['ties']:,} ties or both-bad)", highlight=False)
    lengths = s["lengths"]
    for unit in ("chars", "words"):
        for side in ("chosen", "rejected"):
            d = lengths[f"{side}_{unit}"]
            if d:
                stdout.print(
                    f"  {side:>8} {unit:<5} mean {d['mean']:8.1f}  median {d['median']:8.1f}  p90 {d['p90']:8.1f}",
                    highlight=False,
                )
    stdout.print(
        f"  chosen is longer in {_fmt(lengths['share_chosen_longer'])} of decided pairs (same length: "
        f"{_fmt(lengths['share_same_length'])})",
        highlight=False,
    )
    a = s["agreement"]
    if a["pairs_labelled_more_than_once"]:
        stdout.print(
            f"  agreement over {a['pairs_labelled_more_than_once']:,} pairs labelled more than once "
            f"({a['labels_on_those_pairs']:,} labels): "
            f"all agree {_fmt(a['share_all_agree'])}, pairwise {_fmt(a['pairwise_agreement'])}, kappa "
            f"{_fmt(a['kappa'])}",
            highlight=False,
        )
    else:
        stdout.print("  agreement: no pair was labelled more than once", highlight=False)
    _print_ai_agreement(s["ai_human_agreement"], "ai" in s["by_annotator_kind"])


def _print_ai_agreement(a: dict[str, Any], has_ai: bool) -> None:
    """The AI-vs-human lines: overall, then per judge model (nothing when the store holds no AI label)."""
    if not a["pairs"]:
        if has_ai:
            stdout.print("  AI vs human labels: no pair has both", highlight=False)
        return
    stdout.print(
        f"  AI vs human labels on {a['pairs']:,} pairs with both: agree {_fmt(a['agreement'])} ({a['agree']:,} of "
        f"{a['compared']:,} where both chose; ties left out: AI {a['ai_ties']:,}, human {a['human_ties']:,})",
        highlight=False,
    )
    for judge, j in a["by_judge"].items():
        stdout.print(
            f"    judge {escape(judge)}: agree {_fmt(j['agreement'])} ({j['agree']:,} of {j['compared']:,})",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    data = typer.Typer(
        help="Look at the preference data in the store; write the bundled sample and GSM8K step data.",
        no_args_is_help=True,
    )
    app.add_typer(data, name="data")

    @data.command()
    def stats(
        source: SourceOpt = None,
        annotator_kind: KindOpt = None,
        attribute: AttributeOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Counts by source, annotator kind and attribute; tie rate; chosen vs rejected lengths (length bias);
        agreement where a pair was labelled more than once; agreement of AI labels (`rewardkit label ai`) with
        human labels of the same pairs (over --since/--until/--attribute, whatever --source and --annotator-kind).
        Rankings and ratings count as the pairs `rewardkit dataset build` makes of them by default."""
        from rewardkit.cli.db_cmd import _open
        from rewardkit.cli.output import progress_bar
        from rewardkit.data.stats import store_stats
        from rewardkit.label.agreement import ai_human_agreement
        from rewardkit.store.queries import ComparisonFilter, count_comparisons

        flt = ComparisonFilter(**filter_options(source, annotator_kind, attribute, since, until))
        with _open()() as session:
            with progress_bar("reading", total=count_comparisons(session, flt), unit="comparisons") as bar:
                result = store_stats(session, flt, on_comparison=bar.advance)
            result["ai_human_agreement"] = ai_human_agreement(session, flt)
        emit_json(result) if json_ else _print_stats(result)

    @data.command()
    def sample(
        out: Annotated[
            Path, typer.Option("--out", help="JSONL file to write (TRL standard format: prompt, chosen, rejected).")
        ],
        n: Annotated[int, typer.Option("--n", help="Number of pairs.")] = 300,
        seed: Annotated[int, typer.Option(help="Generator seed (the same seed gives the same file).")] = 0,
        json_: JsonOpt = False,
    ) -> None:
        """Write the bundled sample: pairs in five categories (factual, instructions, safety, coding,
        summarisation) whose chosen response is better for a learnable reason. Load it with
        `rewardkit import trl FILE`."""
        from rewardkit.data.sample import write_sample_trl

        if n < 1:
            raise UserError(f"--n: expected at least 1, got {n}")
        check_out_file(out, "--out")
        written = write_sample_trl(out, n=n, seed=seed)
        emit_json({"out": str(out), "pairs": written}) if json_ else stdout.print(
            f"wrote {written:,} pairs to {out}", highlight=False
        )

    @data.command("gsm8k-steps")
    def gsm8k_steps(
        out: Annotated[
            Path, typer.Option("--out", help="JSONL file to write (TRL stepwise: prompt, completions, labels).")
        ],
        model_solutions: Annotated[
            bool,
            typer.Option(
                "--model-solutions",
                help="Write the shared GPT-3 model solutions with outcome labels (every step good if the answer is "
                "right, bad if wrong) instead of generating from the human solutions.",
            ),
        ] = False,
        corrupt_fraction: Annotated[
            float | None,
            typer.Option(help="Share of the problems whose solution is corrupted at one calculation. [default: 0.5]"),
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of the corruptions (the same seed gives the same file).")] = 0,
        limit: Annotated[int | None, typer.Option(help="Only the first N problems of the input.")] = None,
        input_: Annotated[
            Path | None,
            typer.Option(
                "--input",
                help="The GSM8K file. Default: ../shared/data/gsm8k/train.jsonl.gz (model_solutions.jsonl.gz with "
                "--model-solutions).",
            ),
        ] = None,
        json_: JsonOpt = False,
    ) -> None:
        """Write step-labelled GSM8K solutions for `rewardkit train --objective prm` (or `rewardkit import
        trl-stepwise`). By default from the human solutions: each solution whose steps all pass the arithmetic
        check is kept, and --corrupt-fraction of them get one wrong calculation carried forward (that step and
        the later ones labelled bad). Extra keys: problem_id, outcome, first_error, final_answer (and model_name
        with --model-solutions). The rules: docs/process-rewards.md."""
        from rewardkit.data.process.gsm8k_generate import GenerateCounts, generate_steps
        from rewardkit.data.process.gsm8k_models import read_model_solutions
        from rewardkit.data.process.stepwise_jsonl import write_stepwise_jsonl

        if model_solutions and corrupt_fraction is not None:
            raise UserError("--corrupt-fraction applies to generated solutions, not to --model-solutions")
        fraction = 0.5 if corrupt_fraction is None else corrupt_fraction
        if not 0.0 <= fraction <= 1.0:
            raise UserError(f"--corrupt-fraction: expected a share in [0, 1], got {fraction}")
        if limit is not None and limit < 1:
            raise UserError(f"--limit: expected at least 1, got {limit}")
        name = "model_solutions.jsonl.gz" if model_solutions else "train.jsonl.gz"
        path = input_ or Path("..") / "shared" / "data" / "gsm8k" / name
        if not path.is_file():
            raise UserError(f"--input: {path} is not a file (the shared GSM8K {name}; pass its path with --input)")
        check_out_file(out, "--out")
        counts = GenerateCounts()
        if model_solutions:
            solutions = read_model_solutions(path, limit=limit)
        else:
            solutions = generate_steps(path, seed=seed, corrupt_fraction=fraction, limit=limit, counts=counts)
        outcomes: list[bool | None] = []

        def noting(items):  # noqa: ANN001, ANN202 - a pass-through generator
            for item in items:
                outcomes.append(item.outcome)
                yield item

        try:
            written = write_stepwise_jsonl(out, noting(solutions))
        except ValueError as exc:  # a malformed input record, named by line (nothing was written)
            raise UserError(str(exc)) from exc
        except (OSError, EOFError) as exc:  # not gzip, cut short, unreadable
            raise UserError(f"--input: {path} cannot be read ({exc}); nothing was written") from exc
        if model_solutions:
            result: dict[str, Any] = {
                "out": str(out),
                "solutions": written.rows,
                "correct": sum(o is True for o in outcomes),
            }
            line = f"wrote {written.rows:,} model solutions ({result['correct']:,} correct) to {out}"
        else:
            left_out = dict(sorted(counts.left_out.items()))
            result = {
                "out": str(out),
                "solutions": written.rows,
                "problems": counts.problems,
                "clean": counts.clean,
                "corrupted": counts.corrupted,
                "not_corruptible": counts.not_corruptible,
                "left_out": left_out,
            }
            reasons = ", ".join(f"{k} {v:,}" for k, v in left_out.items()) or "none"
            line = (
                f"wrote {written.rows:,} solutions of {counts.problems:,} problems to {out}: {counts.clean:,} clean, "
                f"{counts.corrupted:,} corrupted ({counts.not_corruptible:,} picked had no usable corruption); "
                f"left out (a step fails the check): {reasons}"
            )
        emit_json(result) if json_ else stdout.print(line, highlight=False)
