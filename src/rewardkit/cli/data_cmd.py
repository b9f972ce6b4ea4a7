"""``rewardkit data stats|sample``: look at the store before training on it; write the bundled sample."""

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
    data = typer.Typer(help="Look at the preference data in the store; write the bundled sample.", no_args_is_help=True)
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
