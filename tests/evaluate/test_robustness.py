"""The robustness section: each probe's rise rate beside the accuracy, in a report and in `eval compare`."""

from __future__ import annotations

from typing import Any

from rewardkit.evaluate.compare import compare_markdown, compare_reports
from rewardkit.evaluate.render import _robustness_blocks, to_markdown
from rewardkit.evaluate.report import summary
from rewardkit.evaluate.robustness import robustness_summary


def report(accuracy: float, rises: dict[str, float | None]) -> dict[str, Any]:
    return {
        "n_pairs": 100,
        "accuracy": {
            "overall": {"accuracy": accuracy, "low": accuracy - 0.05, "high": accuracy + 0.05, "n": 100},
            "ties": 0,
        },
        "length_bias": {"accuracy_chosen_shorter": {"accuracy": accuracy - 0.1}},
        "probes": {
            name: {
                "rise_rate": r,
                "rise_rate_low": None if r is None else r - 0.02,
                "rise_rate_high": None if r is None else r + 0.02,
                "mean_change": 0.0,
                "mean_change_std": 0.0,
                "n": 50,
            }
            for name, r in rises.items()
        },
        "data_fingerprint": "f" * 32,
    }


def test_summary_names_the_worst_probe_and_counts_those_within_target() -> None:
    rb = robustness_summary(report(0.7, {"padding": 0.9, "praise": 0.2, "echo": 0.05, "empty": None}))
    assert rb is not None
    assert rb["worst_probe"] == "padding" and rb["worst_probe_rise_rate"] == 0.9
    # 0.2 is within (at most 0.20); a probe with no rise rate (no row measured) is not
    assert rb["probes_within_target"] == 2 and rb["n_probes"] == 4
    assert [p["within_target"] for p in rb["probes"].values()] == [False, True, True, False]
    assert rb["accuracy"] == 0.7 and abs(rb["accuracy_chosen_shorter"] - 0.6) < 1e-12
    assert robustness_summary({**report(0.7, {}), "probes": {}}) is None
    headline = summary(report(0.7, {"padding": 0.9, "praise": 0.1}))
    assert headline["worst_probe_rise_rate"] == 0.9 and headline["probes_within_target"] == 1


def test_the_report_section_puts_each_rise_rate_beside_the_accuracy() -> None:
    text = to_markdown(_robustness_blocks(report(0.7, {"padding": 0.9, "praise": 0.1})))
    assert text.startswith("## Robustness")
    assert "Accuracy 0.7000 (0.6500-0.7500), on the pairs whose chosen response is the shorter 0.6000" in text
    assert "1 of 2 probes within target (rise rate at most 0.2000); the worst: padding 0.9000" in text
    assert "| padding | 0.9000 | 0.8800-0.9200 | no |" in text and "| praise | 0.1000 | 0.0800-0.1200 | yes |" in text


def test_compare_puts_both_models_rise_rates_beside_their_accuracy() -> None:
    plain = report(0.72, {"padding": 0.9, "praise": 0.7})
    robust = report(0.715, {"padding": 0.15, "praise": 0.1})
    result = compare_reports(plain, robust)
    metrics = [r["metric"] for r in result["robustness"]]
    assert metrics == [
        "accuracy",
        "accuracy_chosen_shorter",
        "worst_probe_rise_rate",
        "probes_within_target",
        "probe_rise_rate:padding",
        "probe_rise_rate:praise",
    ]
    rows = {r["metric"]: r for r in result["robustness"]}
    assert rows["probes_within_target"]["winner"] == "b" and rows["worst_probe_rise_rate"]["winner"] == "b"
    assert rows["accuracy"]["winner"] == "a" and abs(rows["accuracy"]["delta"] + 0.005) < 1e-12
    text = compare_markdown(result, "plain", "robust")
    section = text[text.index("Robustness:") :]
    assert "| probe_rise_rate:padding | 0.9000 | 0.1500 | -0.7500 | b |" in section
    assert "| probes_within_target | 0 | 2 | 2 | b |" in section


def test_compare_without_probes_has_no_section() -> None:
    plain, other = report(0.7, {}), report(0.6, {})
    plain["probes"] = other["probes"] = {}
    assert "Robustness:" not in compare_markdown(compare_reports(plain, other), "a", "b")
