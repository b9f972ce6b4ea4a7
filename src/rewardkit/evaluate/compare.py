"""``rewardkit eval compare A B``: two evaluation reports side by side, and whether B's accuracy differs
from A's by more than chance.

    result = compare_reports(load_report(a), load_report(b), load_scores(a), load_scores(b))
    print(compare_markdown(result, "A", "B"))

- **Rows**: every headline number, each accuracy per group, the RewardBench sections and the fitted
  temperature, with B - A and which way is better for that metric (higher accuracy, lower ECE, lower probe
  rise rates; none for numbers that describe the data rather than the model, such as the "longer wins"
  rule). Interval bounds are shown beside their accuracy, not differenced: the difference of two lower
  bounds is not an interval of anything.
- **Warnings** when A and B were evaluated on different data (their data fingerprints, ``run.data_fingerprint``,
  differ; for reports without one, their data, split or pair count differ): their deltas then mix a model
  change with a data change.
- **Robustness**: accuracy, the chosen-shorter accuracy and every probe's rise rate together
  (``robustness.robustness_rows``), so a robust model's accuracy cost and what it buys read off one table.
- **Paired test** from the per-pair scores files (``scores.jsonl``), on the pairs both evaluated (matched by
  content): McNemar's exact test on the discordant pairs (A right and B wrong vs A wrong and B right: under
  "no difference" each discordant pair goes either way with probability 1/2, so the count is Binomial(b + c,
  1/2)), and a 95% interval of the accuracy difference from a bootstrap that resamples prompts. McNemar treats
  the pairs as independent; the prompt bootstrap does not, so where they disagree trust the interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

from rewardkit.evaluate.accuracy import MIN_BOOTSTRAP_CLUSTERS, bootstrap_interval
from rewardkit.evaluate.render import fmt, markdown_table
from rewardkit.evaluate.report import summary
from rewardkit.evaluate.robustness import RISE_TARGET, robustness_rows

# Which way is better, per metric (exact names, then prefixes). Absent: the number describes the data, or its
# better direction depends on the data (score-length correlation: length is quality in some data sets).
HIGHER, LOWER = "higher", "lower"
DIRECTION: dict[str, str] = {
    "accuracy": HIGHER,
    "accuracy_chosen_shorter": HIGHER,
    "kappa_vs_annotators": HIGHER,
    "ties": LOWER,
    "ece_raw": LOWER,
    "ece_stored_temperature": LOWER,
    "brier_raw": LOWER,
    "reward_vs_quality_spearman": HIGHER,
    "model_ranking_spearman": HIGHER,
    "rewardbench_overall": HIGHER,
    "worst_probe_rise_rate": LOWER,
    "probes_within_target": HIGHER,
}
DIRECTION_PREFIXES: tuple[tuple[str, str], ...] = (
    ("accuracy[", HIGHER),
    ("rewardbench:", HIGHER),
    ("probe_rise_rate:", LOWER),
    ("best_of_n_", HIGHER),
)
_INTERVAL_BOUNDS = ("accuracy_low", "accuracy_high")


def direction(metric: str) -> str | None:
    """'higher', 'lower' or None (no better direction) for a compared metric's name."""
    if metric in DIRECTION:
        return DIRECTION[metric]
    return next((d for prefix, d in DIRECTION_PREFIXES if metric.startswith(prefix)), None)


def comparable_metrics(report: dict[str, Any]) -> dict[str, tuple[float | None, tuple[float, float] | None]]:
    """Metric name -> (value, 95% interval or None): the headline numbers (interval bounds folded into their
    accuracy), the accuracy of every group, the RewardBench sections and the fitted temperature."""
    acc = report["accuracy"]["overall"]
    out: dict[str, tuple[float | None, tuple[float, float] | None]] = {}
    for key, value in summary(report).items():
        if key in _INTERVAL_BOUNDS:
            continue
        out[key] = (value, (acc["low"], acc["high"]) if key == "accuracy" else None)
    for name, by in report["accuracy"].get("by_group", {}).items():
        for group, a in by.items():
            out[f"accuracy[{name}={group}]"] = (a["accuracy"], (a["low"], a["high"]))
    for section, value in (report.get("rewardbench") or {}).get("sections", {}).items():
        out[f"rewardbench:{section}"] = (value, None)
    out["fitted_temperature"] = ((report.get("calibration") or {}).get("fitted_temperature"), None)
    return out


def _winner(delta: float | None, better: str | None) -> str | None:
    if delta is None or better is None or np.isnan(delta):
        return None
    if delta == 0:
        return "same"
    return "b" if (delta > 0) == (better == HIGHER) else "a"


def data_warnings(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Why A's and B's numbers may not be comparable: they were evaluated on different data."""
    fa, fb = a.get("data_fingerprint"), b.get("data_fingerprint")
    if fa and fb:
        if fa != fb:
            return [
                f"A and B were evaluated on different pairs (data fingerprints {fa[:12]} vs {fb[:12]}): "
                "their differences mix the models with the data"
            ]
        return []
    ma, mb = a.get("meta", {}), b.get("meta", {})
    differ = [
        f"{what} {va!r} vs {vb!r}"
        for what, va, vb in (
            ("data", ma.get("data"), mb.get("data")),
            ("split", ma.get("split"), mb.get("split")),
            ("pairs", a.get("n_pairs"), b.get("n_pairs")),
        )
        if va != vb
    ]
    note = (
        "a report without a data fingerprint (written by an older rewardkit): "
        "the data could not be checked pair by pair"
    )
    return [f"A and B may have been evaluated on different data ({'; '.join(differ)})", note] if differ else [note]


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (A right/B wrong, A wrong/B right):
    the binomial test of a_only successes in a_only + b_only trials at p = 1/2; 1.0 with none."""
    n = a_only + b_only
    return 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)


def _first_by_key(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["key"], row)  # a repeated pair counts once
    return out


def paired_accuracy(
    scores_a: Sequence[dict[str, Any]], scores_b: Sequence[dict[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """McNemar's exact test and a prompt-bootstrap interval of accuracy(B) - accuracy(A) on the distinct
    pairs both score files hold (``key``: the pair's content); the interval is NaN under
    ``MIN_BOOTSTRAP_CLUSTERS`` prompts."""
    by_a, by_b = _first_by_key(scores_a), _first_by_key(scores_b)
    shared = [k for k in by_a if k in by_b]
    right_a = np.asarray([by_a[k]["chosen"] > by_a[k]["rejected"] for k in shared], dtype=bool)
    right_b = np.asarray([by_b[k]["chosen"] > by_b[k]["rejected"] for k in shared], dtype=bool)
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    diff = right_b.astype(float) - right_a.astype(float)
    prompts = [by_a[k]["prompt"] for k in shared]
    # the percentile bootstrap is too narrow on few prompts (accuracy.MIN_BOOTSTRAP_CLUSTERS): no interval then;
    # McNemar's exact p still holds
    low, high = (
        bootstrap_interval(diff, clusters=prompts, n_boot=n_boot, seed=seed)
        if len(set(prompts)) >= MIN_BOOTSTRAP_CLUSTERS
        else (float("nan"), float("nan"))
    )
    nan = float("nan")
    return {
        "n": len(shared),
        "only_in_a": len(by_a) - len(shared),
        "only_in_b": len(by_b) - len(shared),
        "accuracy_a": float(right_a.mean()) if shared else nan,
        "accuracy_b": float(right_b.mean()) if shared else nan,
        "a_right_b_wrong": a_only,
        "a_wrong_b_right": b_only,
        "mcnemar_p": mcnemar_exact(a_only, b_only),
        "difference": float(diff.mean()) if shared else nan,
        "difference_low": low,
        "difference_high": high,
    }


def compare_reports(
    a: dict[str, Any],
    b: dict[str, Any],
    scores_a: Sequence[dict[str, Any]] | None = None,
    scores_b: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """{rows: [{metric, a, b, delta (b - a), better, winner, a_interval, b_interval}], warnings, paired}."""
    ma, mb = comparable_metrics(a), comparable_metrics(b)
    rows = []
    for key in list(ma) + [k for k in mb if k not in ma]:
        (va, ia), (vb, ib) = ma.get(key, (None, None)), mb.get(key, (None, None))
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        better = direction(key)
        rows.append(
            {
                "metric": key,
                "a": va,
                "b": vb,
                "delta": delta,
                "better": better,
                "winner": _winner(delta, better),
                "a_interval": ia,
                "b_interval": ib,
            }
        )
    warnings = data_warnings(a, b)
    paired = None
    if scores_a is not None and scores_b is not None:
        paired = paired_accuracy(scores_a, scores_b)
        if paired["n"] == 0:
            warnings.append("A and B share no pair: no paired test")
            paired = None
        elif paired["only_in_a"] or paired["only_in_b"]:
            warnings.append(
                f"the paired test uses the {paired['n']} pairs both evaluated "
                f"({paired['only_in_a']} only in A, {paired['only_in_b']} only in B)"
            )
    else:
        warnings.append("no paired test: a report has no scores.jsonl beside it (written by an older rewardkit)")
    return {"rows": rows, "warnings": warnings, "paired": paired, "robustness": robustness_rows(rows)}


def _cell(value: Any, interval: Sequence[float] | None) -> str:
    return fmt(value) if not interval else f"{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]"


def compare_markdown(result: dict[str, Any], name_a: str, name_b: str) -> str:
    table = markdown_table(
        ["metric", "better", f"A: {name_a}", f"B: {name_b}", "delta (B - A)", "better one"],
        [
            [
                r["metric"],
                r["better"] or "-",
                _cell(r["a"], r["a_interval"]),
                _cell(r["b"], r["b_interval"]),
                r["delta"],
                r["winner"] or "-",
            ]
            for r in result["rows"]
        ],
    )
    parts = [table]
    robust = [r for r in result.get("robustness") or [] if r["metric"].startswith("probe_rise_rate:")]
    if robust:
        rows = result["robustness"]
        parts.append(
            f"Robustness: each probe's rise rate beside the accuracy (a probe is within target at most "
            f"{RISE_TARGET:.2f}):\n\n"
            + markdown_table(
                ["metric", f"A: {name_a}", f"B: {name_b}", "delta (B - A)", "better one"],
                [
                    [
                        r["metric"],
                        _cell(r["a"], r["a_interval"]),
                        _cell(r["b"], r["b_interval"]),
                        r["delta"],
                        r["winner"] or "-",
                    ]
                    for r in rows
                ],
            )
        )
    p = result.get("paired")
    if p:
        parts.append(
            f"Paired, on {p['n']} pairs both evaluated: accuracy A {fmt(p['accuracy_a'])}, B {fmt(p['accuracy_b'])}; "
            f"B - A = {fmt(p['difference'])} (95% interval {fmt(p['difference_low'])} to "
            f"{fmt(p['difference_high'])}, resampling prompts). "
            f"A right and B wrong on {p['a_right_b_wrong']}, A wrong and B right on {p['a_wrong_b_right']}: "
            f"McNemar exact p = {fmt(p['mcnemar_p'])}."
        )
    return "\n\n".join(parts)
