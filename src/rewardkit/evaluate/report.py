"""Writing an evaluation to disk and comparing two.

``write_report(result, out)`` writes ``report.json`` (everything), ``report.md`` (the summary table and
sections), ``report.html`` (the same, static, with the PNG plots under ``plots/``). Files are written to a
temporary folder inside ``out`` and moved into place, so a failed run never leaves half a report.
``summary(report)`` is the flat table of headline numbers; ``compare_reports(a, b)`` sets two side by side.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.evaluate import plots
from rewardkit.evaluate.run import EvalResult


class ReportError(ValueError):
    """A report file is missing or is not a rewardkit evaluation report."""


def summary(report: dict[str, Any]) -> dict[str, float | None]:
    """Headline numbers, flat: name -> value (None where the section was not computed)."""
    acc = report["accuracy"]["overall"]
    cal = report.get("calibration", {})
    lb = report.get("length_bias", {})
    out: dict[str, float | None] = {
        "pairs": report.get("n_pairs"),
        "accuracy": acc["accuracy"],
        "accuracy_low": acc["low"],
        "accuracy_high": acc["high"],
        "ece_raw": cal.get("raw", {}).get("ece"),
        "ece_stored_temperature": (cal.get("stored_temperature") or {}).get("ece"),
        "brier_raw": cal.get("raw", {}).get("brier"),
        "longer_wins_accuracy": lb.get("longer_wins"),
        "shorter_wins_accuracy": lb.get("shorter_wins"),
        "accuracy_chosen_shorter": (lb.get("accuracy_chosen_shorter") or {}).get("accuracy"),
        "score_length_spearman": (lb.get("score_length_correlation") or {}).get("spearman"),
        "kappa_vs_annotators": report.get("agreement", {}).get("model_vs_annotators", {}).get("kappa"),
        "kappa_between_annotators": (report.get("agreement", {}).get("between_annotators") or {}).get("kappa"),
    }
    for name, probe in report.get("probes", {}).items():
        out[f"probe_rise_rate:{name}"] = probe["rise_rate"]
    if "best_of_n" in report:
        out["best_of_n_max_gain"] = report["best_of_n"]["max_gain"]
        out["best_of_n_gain_at_largest_n"] = report["best_of_n"].get("gain_at_largest_n")
    if "model_ranking" in report:
        out["model_ranking_spearman"] = report["model_ranking"]["spearman"]
    if "drift" in report:
        out["drift_max_psi"] = max((f["psi"] for f in report["drift"]["features"].values() if f["psi"] is not None), default=None)
        out["ood_rate"] = report["drift"]["ood_rate"]
    if "rewardbench" in report:
        out["rewardbench_overall"] = report["rewardbench"]["overall"]
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


INT8_CAVEAT = ("**Scored in int8** (`--dtype int8`): int8 moves scores, more for longer responses, so accuracy and "
               "length-bias figures here are not the model's own; evaluate in fp32 for figures you keep or compare.")


def render_markdown(report: dict[str, Any], images: list[str]) -> str:
    meta = report.get("meta", {})
    parts = [f"# Reward model evaluation: {meta.get('model', '?')}", "", f"Data: `{meta.get('data', '?')}` ({report['n_pairs']} pairs)", ""]
    if meta.get("dtype") == "qint8":
        parts += [INT8_CAVEAT, ""]
    parts += ["## Summary", "", _table(["metric", "value"], [[k, v] for k, v in summary(report).items()]), ""]
    groups = report["accuracy"]["by_group"]
    for name, by in groups.items():
        parts += [f"## Accuracy by {name}", "", _table([name, "accuracy", "95% low", "95% high", "n"], [[g, a["accuracy"], a["low"], a["high"], a["n"]] for g, a in by.items()]), ""]
    if report.get("calibration"):
        cal = report["calibration"]
        rows = [[name, c["temperature"], c["ece"], c["brier"]] for name, c in (("raw", cal.get("raw")), ("stored temperature", cal.get("stored_temperature"))) if c]
        parts += ["## Calibration of P(chosen better)", "", _table(["scores", "temperature", "ECE", "Brier"], rows), "",
                  f"Temperature fitted on these pairs: {_fmt(cal.get('fitted_temperature'))}"
                  + (" (a bound of the search: no minimum inside it)." if cal.get("fitted_temperature_at_bound") else "."), ""]
    if report.get("length_bias"):
        lb = report["length_bias"]
        rows = [["rule: the longer response wins", lb["longer_wins"], None, None, None],
                ["rule: the shorter response wins", lb["shorter_wins"], None, None, None]]
        rows += [[f"model, pairs where the chosen response is {side}", a["accuracy"], a["low"], a["high"], a["n"]]
                 for side, a in (("shorter", lb.get("accuracy_chosen_shorter")), ("longer", lb.get("accuracy_chosen_longer"))) if a]
        corr = lb.get("score_length_correlation") or {}
        parts += ["## Length bias", "", _table(["", "accuracy", "95% low", "95% high", "n"], rows), "",
                  f"Spearman(score, response length): {_fmt(corr.get('spearman'))}.", ""]
    agreement = report.get("agreement", {})
    if agreement:
        rows = [["model vs all annotators", agreement["model_vs_annotators"]["kappa"], None, agreement["model_vs_annotators"]["n"]]]
        rows += [[f"model vs {kind}", a["kappa"], None, a["n"]] for kind, a in agreement.get("by_annotator_kind", {}).items()]
        between = agreement.get("between_annotators")
        if between and between["n"]:
            rows.append(["annotators on repeated pairs", between["kappa"], between["agreement"], between["n"]])
        parts += ["## Agreement (Cohen's kappa)", "", _table(["raters", "kappa", "raw agreement", "n"], rows), ""]
        rating = agreement.get("score_gap_vs_rating")
        if rating and rating["n"]:
            parts += ["Score gap (chosen - rejected) vs the source's rating of the gap (its margin, else the preference "
                      f"strength), n={rating['n']}: Spearman {_fmt(rating['spearman'])}, Kendall {_fmt(rating['kendall'])}.", ""]
    if report.get("probes"):
        parts += ["## Reward-hacking probes", "", _table(["probe", "rise rate", "95% interval", "mean change", "change (std)", "n", "of which cut", "unseen"], [[n, p["rise_rate"], f"{_fmt(p.get('rise_rate_low'))}-{_fmt(p.get('rise_rate_high'))}", p["mean_change"], p["mean_change_std"], p["n"], p.get("n_cut", 0), p.get("n_unseen", 0)] for n, p in report["probes"].items()]), "",
                  "of which cut: responses too long for the model to read them with every edit within max_length; their edits are compared with the response cut at its last sentence end that leaves room. "
                  "unseen: not even the first word leaves room; left out of the figures.", ""]
    if "best_of_n" in report:
        parts += ["## Best-of-N", "", _table(["N", "reward pick", "random pick", "oracle pick", "gain", "groups"], [[r["n"], r["reward_pick"], r["random_pick"], r["oracle_pick"], r["gain"], r["groups"]] for r in report["best_of_n"]["curve"]]), ""]
    if "model_ranking" in report:
        mr = report["model_ranking"]
        parts += ["## Model ranking", "", f"Spearman {_fmt(mr['spearman'])}, Kendall {_fmt(mr['kendall'])} over {mr['n']} models.", ""]
        parts += [_table(["generator", "mean reward", "reference", "count"], [[m["generator"], m["mean_reward"], m["reference"], m["count"]] for m in mr["models"]]), ""]
    if "drift" in report:
        parts += ["## Distribution shift (vs reference)", "", _table(["feature", "PSI", "verdict", "KS", "KS p"], [[n, f["psi"], f["psi_verdict"], f["ks_statistic"], f["ks_p_value"]] for n, f in report["drift"]["features"].items()]), "", f"OOD rate: {_fmt(report['drift']['ood_rate'])}", ""]
    if "rewardbench" in report:
        rb = report["rewardbench"]
        parts += ["## RewardBench sections", "", _table(["section", "score"], [[s, v] for s, v in rb["sections"].items()] + [["overall", rb["overall"]]]), ""]
        if rb.get("missing_subsets"):
            parts += [f"Not comparable with published RewardBench scores: {len(rb['missing_subsets'])} subsets missing "
                      f"({', '.join(rb['missing_subsets'])}).", ""]
    if images:
        parts += ["## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in images] + [""]
    return "\n".join(parts)


def render_html(markdown_text: str, images: list[str], title: str) -> str:
    """A static page: the markdown as preformatted text (no JS, no external assets) and the plots."""
    body = "\n".join(f'<figure><img src="{html.escape(i)}" alt="{html.escape(Path(i).stem)}"><figcaption>{html.escape(Path(i).stem)}</figcaption></figure>' for i in images)
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}pre{background:#f6f6f6;padding:1em;overflow-x:auto}"
        "figure{display:inline-block;margin:0.5em}img{max-width:520px}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<pre>{html.escape(markdown_text)}</pre>\n{body}\n</body></html>\n"
    )


def _plots(result: EvalResult, folder: Path) -> list[str]:
    a, r = result.arrays, result.report
    folder.mkdir()
    made = [
        plots.score_histograms(a["chosen"], a["rejected"], folder / "score_histograms.png"),
        plots.margin_histogram(a["chosen"], a["rejected"], folder / "margin_histogram.png"),
        plots.reliability_diagram(a["reliability"], folder / "reliability.png"),
        plots.score_vs_length(np.concatenate([a["chosen"], a["rejected"]]), np.concatenate([a["chosen_len"], a["rejected_len"]]), folder / "score_vs_length.png"),
    ]
    if a.get("best_of_n_curve"):
        made.append(plots.best_of_n_plot(a["best_of_n_curve"], folder / "best_of_n.png"))
    if r.get("probes"):
        made.append(plots.probe_bars(r["probes"], folder / "probes.png"))
    return [f"plots/{p.name}" for p in made]


def json_ready(value: Any) -> Any:
    """The report with numpy scalars as Python numbers and NaN/inf as None, so report.json is strict
    JSON that any tool (jq, JavaScript) reads."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_report(result: EvalResult, out: Path, *, make_plots: bool = True) -> dict[str, Path]:
    """Write report.json/.md/.html (+ plots/) into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-report-", dir=out))
    try:
        images = _plots(result, tmp / "plots") if make_plots else []
        title = f"Reward model evaluation: {result.report.get('meta', {}).get('model', '?')}"
        md = render_markdown(result.report, images)
        (tmp / "report.json").write_text(json.dumps(json_ready(result.report), indent=2, default=_json_default, allow_nan=False) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(md, encoding="utf-8")
        (tmp / "report.html").write_text(render_html(md, images, title), encoding="utf-8")
        if (out / "plots").exists():
            shutil.rmtree(out / "plots")
        for name in ("plots", "report.json", "report.md", "report.html"):
            if (tmp / name).exists():
                os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in ("report.json", "report.md", "report.html")}


def load_report(path: Path) -> dict[str, Any]:
    """A report.json, given the file or the folder holding it."""
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise ReportError(f"{path}: no report.json there (run `rewardkit eval` first)")
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{file}: not valid JSON ({exc.msg})") from exc
    if not isinstance(report, dict) or "accuracy" not in report:
        raise ReportError(f"{file}: not a rewardkit evaluation report (no 'accuracy' section)")
    return report


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of {metric, a, b, delta (b - a)} over the union of both summaries."""
    sa, sb = summary(a), summary(b)
    rows = []
    for key in list(sa) + [k for k in sb if k not in sa]:
        va, vb = sa.get(key), sb.get(key)
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rows.append({"metric": key, "a": va, "b": vb, "delta": delta})
    return rows


def compare_markdown(rows: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    return _table(["metric", name_a, name_b, "delta (b - a)"], [[r["metric"], r["a"], r["b"], r["delta"]] for r in rows])
