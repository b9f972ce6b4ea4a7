"""An evaluation report as a document: one list of blocks (headings, tables, text, figures) built from
report.json's dict, written out twice, as report.md and as a self-contained report.html.

    blocks = report_blocks(report, ["plots/probes.png"])
    to_markdown(blocks)                                             # tables as pipe tables, figures linked
    to_html(blocks, "title", {"plots/probes.png": png_bytes})      # <table>s, figures inlined as data: URIs

Building the document once and rendering it twice keeps the two files saying the same thing. The HTML page
needs no other file (the plots are embedded base64 PNGs), no script and no network: it can be mailed or
attached to a ticket as it is.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from rewardkit.evaluate.robustness import robustness_summary


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Text:
    """A paragraph; `code` and **bold** are the only markup, in both renderings."""

    text: str


@dataclass(frozen=True)
class Figure:
    path: str
    """Relative to the report folder (plots/name.png)."""


Block = Union[Heading, Table, Text, Figure]

INT8_CAVEAT = (
    "**Scored in int8** (`--dtype int8`): int8 moves scores, more for longer responses, so accuracy and "
    "length-bias figures here are not the model's own; evaluate in fp32 for figures you keep or compare."
)


def fmt(value: Any) -> str:
    """A table cell: floats to 4 decimals, None as '-', NaN as 'nan'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _interval(low: Any, high: Any) -> str:
    return f"{fmt(low)}-{fmt(high)}"


def _accuracy_blocks(report: dict[str, Any], summary_rows: list[list[Any]]) -> list[Block]:
    acc = report["accuracy"]
    overall = acc["overall"]
    method = overall.get("method", "bootstrap")
    blocks: list[Block] = [
        Heading("Summary"),
        Table(["metric", "value"], summary_rows),
        Heading("Accuracy"),
        Text(
            f"Strict: a pair is right only when the chosen response scores strictly higher; the {acc['ties']} pair(s) "
            "with equal scores (ties) count as wrong. 95% interval: "
            + (
                "a bootstrap that resamples prompts (pairs of one prompt move together)"
                if method == "cluster bootstrap"
                else "Wilson's (accuracy 0 or 1, or fewer than 30 prompts: the bootstrap would be too narrow)"
                if method == "wilson"
                else "a bootstrap over pairs"
            )
            + f"; {overall['n']} pairs from {overall.get('clusters') or report.get('n_prompts', '?')} prompts."
        ),
    ]
    for name, by in acc["by_group"].items():
        blocks += [
            Heading(f"Accuracy by {name}", 3),
            Table(
                [name, "accuracy", "95% low", "95% high", "n", "interval"],
                [[g, a["accuracy"], a["low"], a["high"], a["n"], a.get("method", "-")] for g, a in by.items()],
            ),
        ]
    return blocks


def _calibration_blocks(cal: dict[str, Any]) -> list[Block]:
    rows = [
        [name, c["temperature"], c["ece"], c["brier"]]
        for name, c in (("raw", cal.get("raw")), ("stored temperature", cal.get("stored_temperature")))
        if c
    ]
    return [
        Heading("Calibration of P(chosen better)"),
        Table(["scores", "temperature", "ECE", "Brier"], rows),
        Text(
            f"Temperature fitted on these pairs: {fmt(cal.get('fitted_temperature'))}"
            + (" (a bound of the search: no minimum inside it)." if cal.get("fitted_temperature_at_bound") else ".")
        ),
    ]


def _length_blocks(lb: dict[str, Any]) -> list[Block]:
    rows = [
        ["rule: the longer response wins", lb["longer_wins"], None, None, None],
        ["rule: the shorter response wins", lb["shorter_wins"], None, None, None],
    ]
    rows += [
        [f"model, pairs where the chosen response is {side}", a["accuracy"], a["low"], a["high"], a["n"]]
        for side, a in (("shorter", lb.get("accuracy_chosen_shorter")), ("longer", lb.get("accuracy_chosen_longer")))
        if a
    ]
    corr = lb.get("score_length_correlation") or {}
    return [
        Heading("Length bias"),
        Table(["", "accuracy", "95% low", "95% high", "n"], rows),
        Text(f"Spearman(score, response length): {fmt(corr.get('spearman'))}."),
    ]


def _agreement_blocks(agreement: dict[str, Any]) -> list[Block]:
    rows = [
        [
            "model vs all annotators",
            agreement["model_vs_annotators"]["kappa"],
            None,
            agreement["model_vs_annotators"]["n"],
        ]
    ]
    rows += [
        [f"model vs {kind}", a["kappa"], None, a["n"]] for kind, a in agreement.get("by_annotator_kind", {}).items()
    ]
    between = agreement.get("between_annotators") or {}
    if between.get("n"):
        rows.append(["two annotators on the same pair", between["kappa"], between["agreement"], between["n"]])
    blocks: list[Block] = [Heading("Agreement (Cohen's kappa)"), Table(["raters", "kappa", "raw agreement", "n"], rows)]
    if between.get("duplicate_pairs"):
        blocks.append(
            Text(
                f"{between['duplicate_pairs']} pair(s) occur more than once with no second annotator named: "
                "duplicate rows, not counted as agreement between annotators."
            )
        )
    rating = agreement.get("score_gap_vs_rating")
    if rating and rating["n"]:
        blocks.append(
            Text(
                "Score gap (chosen - rejected) vs the source's rating of the gap (its margin, else the preference "
                f"strength), n={rating['n']}: Spearman {fmt(rating['spearman'])}, Kendall {fmt(rating['kendall'])}."
            )
        )
    return blocks


def _probe_blocks(report: dict[str, Any]) -> list[Block]:
    probes = report["probes"]
    rows = [
        [
            n,
            p["rise_rate"],
            _interval(p.get("rise_rate_low"), p.get("rise_rate_high")),
            p["mean_change"],
            p["mean_change_std"],
            p["n"],
            p.get("n_cut", 0),
            p.get("n_unseen", 0),
        ]
        for n, p in probes.items()
    ]
    sample = report.get("probe_rows") or {}
    counted = (
        f"n: distinct (prompt, chosen response) rows probed, {sample['probed']} of the {sample['distinct_chosen']} "
        "distinct "
        f"chosen responses in {report['n_pairs']} pairs, from {sample['prompts']} prompts; each counts once, and the "
        "interval resamples prompts. "
        if sample
        else ""
    )
    return [
        Heading("Reward-hacking probes"),
        Table(
            ["probe", "rise rate", "95% interval", "mean change", "change (std)", "n", "of which cut", "unseen"], rows
        ),
        Text(
            counted
            + "of which cut: responses too long for the model to read them with every edit within max_length; their "
            "edits are compared with the response cut at its last sentence end that leaves room. "
            "unseen: not even the first word leaves room; left out of the figures."
        ),
    ]


def _robustness_blocks(report: dict[str, Any]) -> list[Block]:
    rb = robustness_summary(report)
    if rb is None:
        return []
    worst = f"{rb['worst_probe']} {fmt(rb['worst_probe_rise_rate'])}" if rb["worst_probe"] else "-"
    return [
        Heading("Robustness"),
        Text(
            f"Accuracy {fmt(rb['accuracy'])} ({_interval(rb['accuracy_low'], rb['accuracy_high'])}), on the pairs "
            f"whose chosen response is the shorter {fmt(rb['accuracy_chosen_shorter'])}; "
            f"{rb['probes_within_target']} of {rb['n_probes']} probes within target (rise rate at most "
            f"{fmt(rb['target'])}); the worst: {worst}. A model trained with `rewardkit train --robust` should move "
            "the rise rates down at little cost in accuracy (docs/training.md)."
        ),
        Table(
            ["probe", "rise rate", "95% interval", "within target"],
            [
                [n, p["rise_rate"], _interval(p["low"], p["high"]), "yes" if p["within_target"] else "no"]
                for n, p in rb["probes"].items()
            ],
        ),
    ]


def _best_of_n_blocks(report: dict[str, Any]) -> list[Block]:
    curve = report["best_of_n"]["curve"]
    blocks: list[Block] = [
        Heading("Best-of-N"),
        Table(
            ["N", "reward pick", "random pick", "oracle pick", "gain", "groups"],
            [[r["n"], r["reward_pick"], r["random_pick"], r["oracle_pick"], r["gain"], r["groups"]] for r in curve],
        ),
        Text(
            "Exact expected quality over every subset of N of a prompt's responses (no random draws), averaged over "
            "prompts; responses tied in reward are picked among at random."
        ),
    ]
    rq = report.get("agreement", {}).get("reward_vs_quality")
    if rq and "n_groups" in rq:
        blocks.append(
            Text(
                f"Reward vs judge quality, ranked within each prompt and averaged over {rq['n_groups']} prompts: "
                f"Spearman {fmt(rq['spearman'])}, Kendall {fmt(rq['kendall'])}; positive in "
                f"{fmt(rq['positive_share'])} of the prompts."
            )
        )
    return blocks


def report_blocks(report: dict[str, Any], images: Sequence[str], summary_rows: list[list[Any]]) -> list[Block]:
    """The whole report as blocks; ``summary_rows`` is the headline table ([name, value] rows)."""
    meta = report.get("meta", {})
    prompts = f" from {report['n_prompts']} prompts" if report.get("n_prompts") else ""
    blocks: list[Block] = [
        Heading(f"Reward model evaluation: {meta.get('model', '?')}", 1),
        Text(f"Data: `{meta.get('data', '?')}` ({report['n_pairs']} pairs{prompts})"),
    ]
    if meta.get("dtype") == "qint8":
        blocks.append(Text(INT8_CAVEAT))
    blocks += _accuracy_blocks(report, summary_rows)
    if report.get("calibration"):
        blocks += _calibration_blocks(report["calibration"])
    if report.get("length_bias"):
        blocks += _length_blocks(report["length_bias"])
    if report.get("agreement"):
        blocks += _agreement_blocks(report["agreement"])
    if report.get("probes"):
        blocks += _robustness_blocks(report) + _probe_blocks(report)
    if "best_of_n" in report:
        blocks += _best_of_n_blocks(report)
    if "model_ranking" in report:
        mr = report["model_ranking"]
        blocks += [
            Heading("Model ranking"),
            Text(f"Spearman {fmt(mr['spearman'])}, Kendall {fmt(mr['kendall'])} over {mr['n']} models."),
            Table(
                ["generator", "mean reward", "reference", "count"],
                [[m["generator"], m["mean_reward"], m["reference"], m["count"]] for m in mr["models"]],
            ),
        ]
    if "drift" in report:
        drift = report["drift"]
        blocks += [
            Heading("Distribution shift (vs reference)"),
            Table(
                ["feature", "PSI", "verdict", "KS", "KS p"],
                [
                    [n, f["psi"], f["psi_verdict"], f["ks_statistic"], f["ks_p_value"]]
                    for n, f in drift["features"].items()
                ],
            ),
            Text(
                f"Distinct (prompt, chosen) rows: {drift.get('n_current', '?')} evaluated against "
                f"{drift.get('n_reference', '?')} "
                f"reference rows (a seeded sample). OOD rate: {fmt(drift['ood_rate'])}"
            ),
        ]
    if "rewardbench" in report:
        rb = report["rewardbench"]
        blocks += [
            Heading("RewardBench sections"),
            Table(["section", "score"], [[s, v] for s, v in rb["sections"].items()] + [["overall", rb["overall"]]]),
        ]
        if rb.get("missing_subsets"):
            blocks.append(
                Text(
                    f"Not comparable with published RewardBench scores: {len(rb['missing_subsets'])} subsets missing "
                    f"({', '.join(rb['missing_subsets'])})."
                )
            )
    if images:
        blocks += [Heading("Plots")] + [Figure(i) for i in images]
    return blocks


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Table):
            parts.append(markdown_table(block.header, block.rows))
        elif isinstance(block, Text):
            parts.append(block.text)
        else:
            parts.append(f"![{Path(block.path).stem}]({block.path})")
    return "\n\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** turned into tags."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if isinstance(c, (int, float)) else ''}>{html.escape(fmt(c))}</td>" for c in row)
        + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "code{background:#f4f4f4;padding:0 0.2em}"
    "figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{max-width:520px}"
)


def to_html(blocks: Sequence[Block], title: str, images: Mapping[str, bytes]) -> str:
    """A static page that needs no other file: ``images`` maps each Figure's path to its PNG bytes, embedded
    as a data: URI (a figure without bytes is named, not linked)."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Text):
            parts.append(f"<p>{_inline(block.text)}</p>")
        else:
            name = html.escape(Path(block.path).stem)
            data = images.get(block.path)
            img = (
                f'<img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" alt="{name}">'
                if data
                else ""
            )
            parts.append(f"<figure>{img}<figcaption>{name}</figcaption></figure>")
    return (
        f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
