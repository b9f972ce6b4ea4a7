"""A whole evaluation with a fake deterministic scorer: the report's numbers, files, and compare."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rewardkit.data.types import PreferencePair
from rewardkit.evaluate.best_of_n import ResponseGroup
from rewardkit.evaluate.report import ReportError, compare_reports, json_ready, load_report, summary, write_report
from rewardkit.evaluate.probes import probe_sample
from rewardkit.evaluate.run import EvalConfig, evaluate


def length_scorer(prompts: list, responses: list[str]) -> np.ndarray:
    return np.array([float(len(r)) for r in responses])


def _pairs() -> list[PreferencePair]:
    # 6 pairs: the chosen one is longer in 4 (a length scorer gets those right), shorter in 1, equal in 1 (a tie)
    rows = [
        ("q1", "a long good answer", "short", "s1", "human"),
        ("q2", "another long answer", "meh", "s1", "human"),
        ("q3", "yes indeed, correct", "no", "s2", "ai"),
        ("q4", "detailed and right", "wrong", "s2", "ai"),
        ("q5", "ok", "rambling wrong reply", "s2", "human"),
        ("q6", "abc", "xyz", "s1", "ai"),
    ]
    return [
        PreferencePair(id=f"p{i}", prompt=q, chosen=c, rejected=r, source=s, annotator_kind=k, metadata={"chosen_position": "ab"[i % 2]})
        for i, (q, c, r, s, k) in enumerate(rows)
    ]


def test_evaluate_numbers_match_hand_counts() -> None:
    groups = [
        ResponseGroup("g1", ("x", "xx", "xxxx"), (0.1, 0.5, 0.9), ("m1", "m2", "m3")),
        ResponseGroup("g2", ("y", "yy", "yyy"), (0.1, 0.5, 0.9), ("m1", "m2", "m3")),
    ]
    result = evaluate(length_scorer, _pairs(), EvalConfig(n_boot=100, best_of_n_ns=(1, 3)), temperature=2.0, reference_pairs=_pairs(), best_of_n_groups=groups)
    r = result.report
    assert r["accuracy"]["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert r["accuracy"]["ties"] == 1
    assert r["accuracy"]["by_group"]["source"]["s2"]["accuracy"] == pytest.approx(2 / 3)
    assert r["accuracy"]["by_group"]["annotator_kind"]["human"]["n"] == 3
    assert r["length_bias"]["longer_wins"] == pytest.approx(4 / 6)
    assert r["length_bias"]["accuracy_chosen_shorter"]["accuracy"] == 0.0
    assert set(r["probes"]) >= {"verbosity_padding", "self_praise", "sycophancy"}
    assert all(p["rise_rate"] == 1.0 for p in r["probes"].values())  # a length scorer falls for all of them
    # calibration: both rows exist and the stored temperature changes the numbers
    assert r["calibration"]["stored_temperature"]["temperature"] == 2.0
    assert r["calibration"]["raw"]["brier"] != r["calibration"]["stored_temperature"]["brier"]
    # best-of-N: the length scorer picks the best of 3 in both groups -> 0.9, the oracle too
    top = {row["n"]: row for row in r["best_of_n"]["curve"]}[3]
    assert top["reward_pick"] == pytest.approx(0.9) and top["oracle_pick"] == pytest.approx(0.9)
    assert top["random_pick"] == pytest.approx(0.5)
    assert r["best_of_n"]["gain_at_largest_n"] == pytest.approx(0.4) and r["best_of_n"]["max_gain"] == pytest.approx(0.4)
    assert r["model_ranking"]["spearman"] == pytest.approx(1.0)  # m3 > m2 > m1 both by length and quality
    assert r["drift"]["features"]["score"]["psi"] == pytest.approx(0.0)  # same data as reference
    # distinct rows: 12 pair rows + 6 x 7 probe edits + 6 best-of-N responses; the reference pairs are the
    # same pairs, so their 6 chosen rows come from the cache
    assert r["timing"]["rows_scored"] == 12 + 6 * 7 + 6


def test_score_gap_is_correlated_with_the_sources_rating_where_it_gives_one() -> None:
    # length gaps (chosen - rejected): 13, 16, 17, 13, -18, 0; ratings on four of the six pairs
    pairs = [replace(p, margin=m) for p, m in zip(_pairs(), (1.0, 3.0, 4.0, None, -2.0, None))]
    pairs[3] = replace(pairs[3], strength=0.5)  # no margin: the strength is the rating
    r = evaluate(length_scorer, pairs, EvalConfig(n_boot=20, probes="none")).report["agreement"]["score_gap_vs_rating"]
    # gaps 13, 16, 17, 13, -18 vs ratings 1, 3, 4, 0.5, -2: ranks (2.5, 4, 5, 2.5, 1) vs (3, 4, 5, 2, 1)
    assert r["n"] == 5 and r["spearman"] == pytest.approx(float(np.corrcoef([2.5, 4, 5, 2.5, 1], [3, 4, 5, 2, 1])[0, 1]))
    assert evaluate(length_scorer, _pairs(), EvalConfig(n_boot=20, probes="none")).report["agreement"]["score_gap_vs_rating"] is None


def test_evaluate_scores_every_row_in_one_call_and_each_distinct_row_once() -> None:
    calls: list[list[tuple]] = []

    def counting(prompts: list, responses: list[str]) -> np.ndarray:
        calls.append(list(zip(prompts, responses)))
        return length_scorer(prompts, responses)

    pairs = _pairs()
    evaluate(counting, pairs, EvalConfig(n_boot=100), reference_pairs=pairs + pairs)
    assert len(calls) == 1
    assert len(calls[0]) == len(set(calls[0])) == 12 + 6 * 7


def test_probes_edit_only_the_sampled_responses() -> None:
    calls: list[list[tuple]] = []

    def counting(prompts: list, responses: list[str]) -> np.ndarray:
        calls.append(list(zip(prompts, responses)))
        return length_scorer(prompts, responses)

    pairs = _pairs()
    report = evaluate(counting, pairs, EvalConfig(n_boot=50, max_probe_rows=2, probes="self_praise,repetition")).report
    assert {p["n"] for p in report["probes"].values()} == {2}
    assert report["timing"]["rows_scored"] == 12 + 2 * 2
    edited = {r for _, r in calls[0]} - {p.chosen for p in pairs} - {p.rejected for p in pairs}
    sampled = {pairs[i].chosen for i in probe_sample(len(pairs), 2)}
    assert len(edited) == 4 and all(any(r.startswith(c) for c in sampled) for r in edited)


def test_drift_uses_the_scorers_embedding_norms_when_it_gives_them() -> None:
    class WithNorms:
        """A ScoreFn whose 'embedding norm' is 10x the response length, given in the same call as the scores."""

        def __call__(self, prompts: list, responses: list[str]) -> np.ndarray:
            return self.with_features(prompts, responses)[0]

        def with_features(self, prompts: list, responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            return length_scorer(prompts, responses), {"embedding_norm": 10.0 * length_scorer(prompts, responses)}

    pairs = _pairs()
    shifted = [PreferencePair(id=f"r{i}", prompt=p.prompt, chosen=p.chosen * 5, rejected=p.rejected) for i, p in enumerate(pairs)]
    drift = evaluate(WithNorms(), pairs, EvalConfig(n_boot=100), reference_pairs=shifted).report["drift"]
    assert drift["features"]["embedding_norm"]["ks_statistic"] == pytest.approx(drift["features"]["response_chars"]["ks_statistic"])
    assert drift["features"]["embedding_norm"]["psi_verdict"] == "significant"
    # a plain ScoreFn has no embedding norms: the feature is simply absent
    assert "embedding_norm" not in evaluate(length_scorer, pairs, EvalConfig(n_boot=100), reference_pairs=shifted).report["drift"]["features"]


def test_write_report_files_and_compare(tmp_path: Path) -> None:
    result = evaluate(length_scorer, _pairs(), EvalConfig(n_boot=50, probes="self_praise,repetition"), temperature=2.0)
    result.report["meta"] = {"model": "fake", "data": "inline"}
    paths = write_report(result, tmp_path / "a")
    report = json.loads(paths["report.json"].read_text(), parse_constant=lambda c: pytest.fail(f"report.json holds {c}"))
    assert report["accuracy"]["overall"]["accuracy"] == pytest.approx(4 / 6)
    md = paths["report.md"].read_text()
    assert "| accuracy | 0.6667 |" in md and "self_praise" in md
    # the length rules and the shorter-chosen subset (0 of 1: the length scorer picks the longer), calibration rows
    assert "| rule: the longer response wins | 0.6667 |" in md and "| model, pairs where the chosen response is shorter | 0.0000 |" in md
    assert "## Calibration of P(chosen better)" in md and "| stored temperature |" in md
    html = paths["report.html"].read_text()
    for png in ("score_histograms", "margin_histogram", "reliability", "score_vs_length", "probes"):
        assert (tmp_path / "a" / "plots" / f"{png}.png").stat().st_size > 1000
        assert f"plots/{png}.png" in html
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".tmp")]

    other = evaluate(lambda p, r: -length_scorer(p, r), _pairs(), EvalConfig(n_boot=50, probes="none"))
    rows = {row["metric"]: row for row in compare_reports(report, other.report)}
    assert rows["accuracy"]["b"] == pytest.approx(1 / 6)  # only the chosen-shorter pair is right
    assert rows["accuracy"]["delta"] == pytest.approx(1 / 6 - 4 / 6)
    assert rows["probe_rise_rate:self_praise"]["b"] is None
    assert summary(report)["pairs"] == 6


def test_load_report_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no report.json"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"x": 1}')
    with pytest.raises(ReportError, match="not a rewardkit evaluation report"):
        load_report(tmp_path)


def test_config_validates() -> None:
    with pytest.raises(ValueError, match="unknown probe"):
        EvalConfig(probes="nope")
    with pytest.raises(ValueError, match="n_boot"):
        EvalConfig(n_boot=1)


def test_json_ready_makes_strict_json() -> None:
    out = json_ready({"a": float("nan"), "b": [np.float32(0.5), np.inf], "c": np.array([1, 2]), 3: np.int64(4)})
    assert out == {"a": None, "b": [0.5, None], "c": [1, 2], "3": 4}
    json.dumps(out, allow_nan=False)


def test_cached_score_fn_rejects_a_feature_of_the_wrong_length() -> None:
    from rewardkit.evaluate.scoring import CachedScoreFn

    class Short:
        def __call__(self, prompts: list, responses: list[str]) -> np.ndarray:
            return length_scorer(prompts, responses)

        def with_features(self, prompts: list, responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            return length_scorer(prompts, responses), {"embedding_norm": np.ones(len(responses) - 1)}

    with pytest.raises(ValueError, match="1 values of 'embedding_norm' for 2 responses"):
        CachedScoreFn(Short())(["q", "q"], ["a", "bb"])
