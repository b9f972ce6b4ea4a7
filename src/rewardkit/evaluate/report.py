"""Writing an evaluation to disk.

``write_report(result, out)`` writes ``report.json`` (everything), ``report.md`` (the summary table and
sections), ``report.html`` (the same as a self-contained page: tables, and the plots embedded), the PNG
plots under ``plots/`` and ``scores.jsonl`` (one line per pair: its id, content key, prompt key and both
scores, which ``rewardkit eval compare`` pairs across two evaluations). Files are written to a temporary
folder inside ``out`` and moved into place, so a failed run never leaves half a report.
``summary(report)`` is the flat table of headline numbers; ``compare.py`` sets two reports side by side.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.evaluate import plots
from rewardkit.evaluate.render import report_blocks, to_html, to_markdown
from rewardkit.evaluate.robustness import headline, robustness_summary
from rewardkit.evaluate.run import EvalResult

SCORES_FILE = "scores.jsonl"


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
        "ties": report["accuracy"].get("ties"),
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
    robust = robustness_summary(report)
    if robust:
        out.update(headline(robust))
    if "best_of_n" in report:
        out["best_of_n_max_gain"] = report["best_of_n"]["max_gain"]
        out["best_of_n_gain_at_largest_n"] = report["best_of_n"].get("gain_at_largest_n")
    rq = report.get("agreement", {}).get("reward_vs_quality")
    if rq and "n_groups" in rq:  # older reports pooled it over prompts: not the same number
        out["reward_vs_quality_spearman"] = rq["spearman"]
    if "model_ranking" in report:
        out["model_ranking_spearman"] = report["model_ranking"]["spearman"]
    if "drift" in report:
        out["drift_max_psi"] = max(
            (f["psi"] for f in report["drift"]["features"].values() if f["psi"] is not None), default=None
        )
        out["ood_rate"] = report["drift"]["ood_rate"]
    if "rewardbench" in report:
        out["rewardbench_overall"] = report["rewardbench"]["overall"]
    return out


def _plots(result: EvalResult, folder: Path) -> list[str]:
    a, r = result.arrays, result.report
    folder.mkdir()
    made = [
        plots.score_histograms(a["chosen"], a["rejected"], folder / "score_histograms.png"),
        plots.margin_histogram(a["chosen"], a["rejected"], folder / "margin_histogram.png"),
        plots.reliability_diagram(a["reliability"], folder / "reliability.png"),
        plots.score_vs_length(
            a["chosen"], a["rejected"], a["chosen_len"], a["rejected_len"], folder / "score_vs_length.png"
        ),
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


def scores_lines(arrays: dict[str, Any]) -> list[str]:
    """scores.jsonl's lines: per pair its id, content key (``run.pair_key``), prompt key and both scores."""
    return [
        json.dumps({"id": i, "key": k, "prompt": p, "chosen": float(c), "rejected": float(r)})
        for i, k, p, c, r in zip(
            arrays["pair_ids"],
            arrays["pair_keys"],
            arrays["prompt_keys"],
            arrays["chosen"],
            arrays["rejected"],
            strict=True,
        )
    ]


def write_report(result: EvalResult, out: Path, *, make_plots: bool = True) -> dict[str, Path]:
    """Write report.json/.md/.html, scores.jsonl (+ plots/) into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-report-", dir=out))
    names = ("report.json", "report.md", "report.html", SCORES_FILE)
    try:
        images = _plots(result, tmp / "plots") if make_plots else []
        title = f"Reward model evaluation: {result.report.get('meta', {}).get('model', '?')}"
        blocks = report_blocks(result.report, images, [[k, v] for k, v in summary(result.report).items()])
        (tmp / "report.json").write_text(
            json.dumps(json_ready(result.report), indent=2, default=_json_default, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        (tmp / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (tmp / "report.html").write_text(
            to_html(blocks, title, {i: (tmp / i).read_bytes() for i in images}), encoding="utf-8"
        )
        (tmp / SCORES_FILE).write_text("".join(line + "\n" for line in scores_lines(result.arrays)), encoding="utf-8")
        if (out / "plots").exists():
            shutil.rmtree(out / "plots")
        for name in ("plots", *names):
            if (tmp / name).exists():  # plots: not when make_plots is off
                os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in names}


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


def load_scores(path: Path) -> list[dict[str, Any]] | None:
    """The scores.jsonl beside a report (``path``: its folder or its report.json); None when there is none
    (a report written before rewardkit kept per-pair scores)."""
    file = (path if path.is_dir() else path.parent) / SCORES_FILE
    if not file.is_file():
        return None
    rows = []
    for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            rows.append(
                {
                    "key": str(row["key"]),
                    "prompt": str(row["prompt"]),
                    "chosen": float(row["chosen"]),
                    "rejected": float(row["rejected"]),
                }
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ReportError(
                f"{file}:{lineno}: expected a JSON object with key, prompt, chosen and rejected scores"
            ) from None
    return rows
