"""A whole evaluation with a fake deterministic scorer: the report's numbers, files, and compare."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate.best_of_n import ResponseGroup
from rewardkit.evaluate.compare import compare_reports, direction, mcnemar_exact, paired_accuracy
from rewardkit.evaluate.inputs import sample_rows
from rewardkit.evaluate.report import ReportError, json_ready, load_report, load_scores, summary, write_report
from rewardkit.evaluate.run import EvalConfig, evaluate
from rewardkit.records import PreferencePair


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
        PreferencePair(
            id=f"p{i}",
            prompt=q,
            chosen=c,
            rejected=r,
            source=s,
            annotator_kind=k,
            metadata={"chosen_position": "ab"[i % 2]},
        )
        for i, (q, c, r, s, k) in enumerate(rows)
    ]


def test_evaluate_numbers_match_hand_counts() -> None:
    groups = [
        ResponseGroup("g1", ("x", "xx", "xxxx"), (0.1, 0.5, 0.9), ("m1", "m2", "m3")),
        ResponseGroup("g2", ("y", "yy", "yyy"), (0.1, 0.5, 0.9), ("m1", "m2", "m3")),
    ]
    result = evaluate(
        length_scorer,
        _pairs(),
        EvalConfig(n_boot=100, best_of_n_ns=(1, 3)),
        temperature=2.0,
        reference_pairs=_pairs(),
        best_of_n_groups=groups,
    )
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
    assert r["best_of_n"]["gain_at_largest_n"] == pytest.approx(0.4) and r["best_of_n"]["max_gain"] == pytest.approx(
        0.4
    )
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
    assert r["n"] == 5 and r["spearman"] == pytest.approx(
        float(np.corrcoef([2.5, 4, 5, 2.5, 1], [3, 4, 5, 2, 1])[0, 1])
    )
    assert (
        evaluate(length_scorer, _pairs(), EvalConfig(n_boot=20, probes="none")).report["agreement"][
            "score_gap_vs_rating"
        ]
        is None
    )


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
    sampled = {pairs[i].chosen for i in sample_rows(len(pairs), 2)}
    assert len(edited) == 4 and all(any(r.startswith(c) for c in sampled) for r in edited)


def test_drift_uses_the_scorers_embedding_norms_when_it_gives_them() -> None:
    class WithNorms:
        """A ScoreFn whose 'embedding norm' is 10x the response length, given in the same call as the scores."""

        def __call__(self, prompts: list, responses: list[str]) -> np.ndarray:
            return self.with_features(prompts, responses)[0]

        def with_features(self, prompts: list, responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            return length_scorer(prompts, responses), {"embedding_norm": 10.0 * length_scorer(prompts, responses)}

    pairs = _pairs()
    shifted = [
        PreferencePair(id=f"r{i}", prompt=p.prompt, chosen=p.chosen * 5, rejected=p.rejected)
        for i, p in enumerate(pairs)
    ]
    drift = evaluate(WithNorms(), pairs, EvalConfig(n_boot=100), reference_pairs=shifted).report["drift"]
    assert drift["features"]["embedding_norm"]["ks_statistic"] == pytest.approx(
        drift["features"]["response_chars"]["ks_statistic"]
    )
    assert drift["features"]["embedding_norm"]["psi_verdict"] == "significant"
    # a plain ScoreFn has no embedding norms: the feature is simply absent
    assert (
        "embedding_norm"
        not in evaluate(length_scorer, pairs, EvalConfig(n_boot=100), reference_pairs=shifted).report["drift"][
            "features"
        ]
    )


def test_write_report_files_and_compare(tmp_path: Path) -> None:
    result = evaluate(length_scorer, _pairs(), EvalConfig(n_boot=50, probes="self_praise,repetition"), temperature=2.0)
    result.report["meta"] = {"model": "fake", "data": "inline"}
    paths = write_report(result, tmp_path / "a")
    report = json.loads(
        paths["report.json"].read_text(), parse_constant=lambda c: pytest.fail(f"report.json holds {c}")
    )
    assert report["accuracy"]["overall"]["accuracy"] == pytest.approx(4 / 6)
    md = paths["report.md"].read_text()
    assert "| accuracy | 0.6667 |" in md and "self_praise" in md
    # the length rules and the shorter-chosen subset (0 of 1: the length scorer picks the longer), calibration rows
    assert (
        "| rule: the longer response wins | 0.6667 |" in md
        and "| model, pairs where the chosen response is shorter | 0.0000 |" in md
    )
    assert "## Calibration of P(chosen better)" in md and "| stored temperature |" in md
    assert "the 1 pair(s) with equal scores (ties) count as wrong" in md
    for png in ("score_histograms", "margin_histogram", "reliability", "score_vs_length", "probes"):
        assert (tmp_path / "a" / "plots" / f"{png}.png").stat().st_size > 1000
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".tmp")]
    assert summary(report)["pairs"] == 6 and summary(report)["ties"] == 1


def test_report_html_is_a_page_that_needs_no_other_file(tmp_path: Path) -> None:
    import base64
    import re

    result = evaluate(length_scorer, _pairs(), EvalConfig(n_boot=50, probes="self_praise"), temperature=2.0)
    result.report["meta"] = {"model": "fake <model>", "data": "inline"}
    paths = write_report(result, tmp_path / "a")
    page = paths["report.html"].read_text()
    # tables are tables, not markdown in a <pre>
    assert "<pre>" not in page and "| --- |" not in page and "|---|" not in page and "![" not in page
    assert "<th>probe</th>" in page and "<td>self_praise</td>" in page and "fake &lt;model&gt;" in page
    # every plot is inside the page: no link to plots/, each image a PNG data URI decoding to the file's bytes
    assert 'src="plots/' not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 5
    assert base64.b64decode(images[-1]) == (tmp_path / "a" / "plots" / "probes.png").read_bytes()
    # the page reads the same with the plots folder gone
    (tmp_path / "a" / "plots" / "probes.png").unlink()
    assert page == paths["report.html"].read_text()


def _pair(i: int, prompt: str, chosen: str, rejected: str, **kwargs: object) -> PreferencePair:
    return PreferencePair(id=f"p{i}", prompt=prompt, chosen=chosen, rejected=rejected, **kwargs)


def test_probes_and_drift_count_each_distinct_response_once() -> None:
    # 8 pairs over 2 prompts; the same chosen response sits in 3 pairs of q1 and in 3 of q2: 4 distinct rows
    pairs = [
        _pair(i, q, c, f"no {i}")
        for i, (q, c) in enumerate(
            [
                ("q1", "yes a"),
                ("q1", "yes a"),
                ("q1", "yes a"),
                ("q1", "yes bb"),
                ("q2", "yes a"),
                ("q2", "yes a"),
                ("q2", "yes a"),
                ("q2", "yes ccc"),
            ]
        )
    ]
    report = evaluate(length_scorer, pairs, EvalConfig(n_boot=50, probes="self_praise"), reference_pairs=pairs).report
    assert report["probes"]["self_praise"]["n"] == 4
    assert report["probe_rows"] == {"distinct_chosen": 4, "probed": 4, "prompts": 2}
    assert report["drift"]["n_current"] == 4 and report["drift"]["n_reference"] == 4


def test_the_drift_reference_is_a_seeded_sample_not_the_first_rows() -> None:
    calls: list[list[tuple]] = []

    def counting(prompts: list, responses: list[str]) -> np.ndarray:
        calls.append(list(zip(prompts, responses)))
        return length_scorer(prompts, responses)

    reference = [_pair(i, f"r{i}", f"reference answer {i}", "x") for i in range(200)]
    config = EvalConfig(n_boot=20, probes="none", max_reference_rows=20)
    evaluate(counting, _pairs(), config, reference_pairs=reference)
    scored = {r for _, r in calls[0] if r.startswith("reference answer")}
    assert len(scored) == 20 and scored != {f"reference answer {i}" for i in range(20)}
    assert scored == {f"reference answer {i}" for i in sample_rows(200, 20, seed=0)}


def test_reward_vs_quality_is_ranked_within_each_prompt() -> None:
    # a perfect ranker inside every prompt whose scores fall from one prompt to the next while the qualities
    # rise: pooled over prompts the correlation is negative, within each prompt it is 1
    groups = [
        ResponseGroup(f"g{g}", tuple("x" * (10 * (5 - g) + k) for k in range(1, 4)), (g + 0.1, g + 0.2, g + 0.3))
        for g in range(4)
    ]
    report = evaluate(
        length_scorer, _pairs(), EvalConfig(n_boot=20, probes="none", best_of_n_ns=(1, 2)), best_of_n_groups=groups
    ).report
    rq = report["agreement"]["reward_vs_quality"]
    assert rq["spearman"] == pytest.approx(1.0) and rq["kendall"] == pytest.approx(1.0) and rq["n_groups"] == 4
    assert summary(report)["reward_vs_quality_spearman"] == pytest.approx(1.0)


def test_between_annotators_needs_two_named_annotators() -> None:
    base = _pairs()
    duplicated = base + [replace(base[0], id="dup")]  # the same pair again, nobody named
    between = evaluate(length_scorer, duplicated, EvalConfig(n_boot=20, probes="none")).report["agreement"][
        "between_annotators"
    ]
    assert between["n"] == 0 and np.isnan(between["kappa"])
    assert between["duplicate_pairs"] == 1
    named = (
        [replace(base[0], metadata={"annotator": "ann"})]
        + base[1:]
        + [replace(base[0], id="again", metadata={"annotator": "bob"})]
    )
    between = evaluate(length_scorer, named, EvalConfig(n_boot=20, probes="none")).report["agreement"][
        "between_annotators"
    ]
    assert between["n"] == 1 and between["agreement"] == 1.0 and between["duplicate_pairs"] == 0


def test_kappa_positions_hash_the_whole_pair_id() -> None:
    # ids that all end in "x" once put every chosen response in position a: kappa 0 by construction. A model
    # right on 4 pairs of 5 with balanced positions has kappa near (0.8 - 0.5) / 0.5 = 0.6
    pairs = [_pair(0, f"q{i}", f"good answer {i}", f"bad {i}") for i in range(200)]
    pairs = [replace(p, id=f"{i}-x") for i, p in enumerate(pairs)]
    pairs = [
        replace(p, chosen=p.rejected, rejected=p.chosen) if i % 5 == 0 else p for i, p in enumerate(pairs)
    ]  # 1 in 5 wrong
    agreement = evaluate(length_scorer, pairs, EvalConfig(n_boot=20, probes="none")).report["agreement"]
    assert 0.45 < agreement["model_vs_annotators"]["kappa"] < 0.75


def test_groupings_category_and_no_repeats() -> None:
    pairs = [
        replace(p, metadata={"category": "math" if i % 2 else "chat"}, source="s", attribute=None, annotator_kind="")
        for i, p in enumerate(_pairs())
    ]
    by = evaluate(length_scorer, pairs, EvalConfig(n_boot=20, probes="none")).report["accuracy"]["by_group"]
    # one source and one attribute would only repeat the overall figure: left out
    assert set(by) == {"category"} and by["category"]["math"]["n"] == 3
    # a pair file's subset doubles as its source: one table, not the same one twice
    pairs = [replace(p, metadata={"subset": f"set{i % 2}"}, source=f"set{i % 2}") for i, p in enumerate(_pairs())]
    by = evaluate(length_scorer, pairs, EvalConfig(n_boot=20, probes="none")).report["accuracy"]["by_group"]
    assert "subset" in by and "source" not in by


def test_compare_warns_on_different_data_and_tests_the_same_pairs(tmp_path: Path) -> None:
    a = evaluate(length_scorer, _pairs(), EvalConfig(n_boot=50, probes="self_praise"), temperature=2.0)
    b = evaluate(lambda p, r: -length_scorer(p, r), _pairs(), EvalConfig(n_boot=50, probes="self_praise"))
    for name, result in (("a", a), ("b", b)):
        result.report["meta"] = {"model": name, "data": "inline"}
        write_report(result, tmp_path / name, make_plots=False)
    scores = load_scores(tmp_path / "a")
    assert (
        len(scores) == 6 and scores[0]["chosen"] == len("a long good answer") and scores[0]["rejected"] == len("short")
    )
    out = compare_reports(
        load_report(tmp_path / "a"),
        load_report(tmp_path / "b"),
        load_scores(tmp_path / "a"),
        load_scores(tmp_path / "b"),
    )
    assert out["warnings"] == []  # same pairs
    rows = {row["metric"]: row for row in out["rows"]}
    assert rows["accuracy"]["b"] == pytest.approx(1 / 6) and rows["accuracy"]["delta"] == pytest.approx(1 / 6 - 4 / 6)
    assert rows["accuracy"]["better"] == "higher" and rows["accuracy"]["winner"] == "a"
    # praise lengthens a response: the length lover's score rises (1.0), the length hater's falls (0.0), lower is better
    assert (
        rows["probe_rise_rate:self_praise"]["better"] == "lower"
        and rows["probe_rise_rate:self_praise"]["winner"] == "b"
    )
    assert rows["ece_raw"]["better"] == "lower" and rows["longer_wins_accuracy"]["better"] is None
    assert "accuracy_low" not in rows and rows["accuracy"]["a_interval"] == pytest.approx(
        [a.report["accuracy"]["overall"]["low"], a.report["accuracy"]["overall"]["high"]]
    )
    assert rows["accuracy[source=s2]"]["a"] == pytest.approx(2 / 3) and "fitted_temperature" in rows
    # A right on pairs 0-3 (longer chosen), B right on pair 4 only; pair 5 is a tie for both (wrong):
    # discordant 4 vs 1 -> McNemar exact p = 2 * P(X <= 1 | n = 5) = 2 * 6/32 = 0.375
    paired = out["paired"]
    assert (paired["n"], paired["a_right_b_wrong"], paired["a_wrong_b_right"]) == (6, 4, 1)
    assert paired["mcnemar_p"] == pytest.approx(0.375) and paired["difference"] == pytest.approx(-3 / 6)

    other_data = evaluate(length_scorer, _pairs()[:4], EvalConfig(n_boot=50, probes="none"))
    other_data.report["meta"] = {"model": "c", "data": "inline"}
    write_report(other_data, tmp_path / "c", make_plots=False)
    out = compare_reports(
        load_report(tmp_path / "a"),
        load_report(tmp_path / "c"),
        load_scores(tmp_path / "a"),
        load_scores(tmp_path / "c"),
    )
    assert any("different pairs" in w for w in out["warnings"]) and any("2 only in A" in w for w in out["warnings"])
    assert out["paired"]["n"] == 4


def test_mcnemar_and_paired_accuracy_hand_computed() -> None:
    # 1 vs 6 discordant: 2 * P(X <= 1 | n = 7, 1/2) = 2 * (1 + 7) / 128 = 0.125
    assert mcnemar_exact(1, 6) == pytest.approx(0.125) and mcnemar_exact(6, 1) == pytest.approx(0.125)
    assert mcnemar_exact(0, 0) == 1.0
    a = [{"key": f"k{i}", "prompt": f"q{i}", "chosen": 1.0, "rejected": 0.0} for i in range(4)]
    b = [{"key": f"k{i}", "prompt": f"q{i}", "chosen": 0.0 if i == 0 else 1.0, "rejected": 0.5} for i in range(3)] + [
        a[0]
    ]
    out = paired_accuracy(a, b)  # b's repeated k0 counts once (its first line); k3 only in A
    assert (out["n"], out["only_in_a"], out["only_in_b"]) == (3, 1, 0)
    assert (out["a_right_b_wrong"], out["a_wrong_b_right"]) == (1, 0) and out["difference"] == pytest.approx(-1 / 3)
    assert np.isnan(out["difference_low"]) and np.isnan(out["difference_high"])  # 3 prompts: no bootstrap interval
    many_a = [{"key": f"k{i}", "prompt": f"q{i}", "chosen": 1.0, "rejected": 0.0} for i in range(40)]
    many_b = [{**r, "chosen": -1.0} if i % 4 == 0 else r for i, r in enumerate(many_a)]  # B wrong on 10 of 40
    wide = paired_accuracy(many_a, many_b)
    assert wide["difference"] == pytest.approx(-0.25) and wide["difference_low"] < -0.25 < wide["difference_high"] < 0


def test_metric_directions() -> None:
    assert [
        direction(m)
        for m in (
            "accuracy",
            "ece_raw",
            "probe_rise_rate:echo_prompt",
            "accuracy[subset=x]",
            "rewardbench:Chat",
            "best_of_n_max_gain",
            "score_length_spearman",
            "drift_max_psi",
        )
    ] == ["higher", "lower", "lower", "higher", "higher", "higher", None, None]


def test_load_report_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no report.json"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"x": 1}')
    with pytest.raises(ReportError, match="not a rewardkit evaluation report"):
        load_report(tmp_path)
    assert load_scores(tmp_path) is None  # an older report: no per-pair scores
    (tmp_path / "scores.jsonl").write_text(
        '{"key": "k", "prompt": "q", "chosen": 1.0, "rejected": 0.5}\n{"key": "k2"}\n'
    )
    with pytest.raises(
        ReportError, match=r"scores.jsonl:2: expected a JSON object with key, prompt, chosen and rejected"
    ):
        load_scores(tmp_path)


def test_compare_of_reports_without_fingerprints_checks_what_it_can() -> None:
    old = evaluate(length_scorer, _pairs(), EvalConfig(n_boot=20, probes="none")).report
    del old["data_fingerprint"]
    old["meta"] = {"data": "a.jsonl", "split": None}
    other = {**old, "meta": {"data": "b.jsonl", "split": None}}
    warnings = compare_reports(old, other)["warnings"]
    assert any("different data (data 'a.jsonl' vs 'b.jsonl')" in w for w in warnings)
    assert any("without a data fingerprint" in w for w in warnings) and any("no paired test" in w for w in warnings)
    assert compare_reports(old, old)["paired"] is None


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
    from rewardkit.evaluate.score_fns import CachedScoreFn

    class Short:
        def __call__(self, prompts: list, responses: list[str]) -> np.ndarray:
            return length_scorer(prompts, responses)

        def with_features(self, prompts: list, responses: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            return length_scorer(prompts, responses), {"embedding_norm": np.ones(len(responses) - 1)}

    with pytest.raises(ValueError, match="1 values of 'embedding_norm' for 2 responses"):
        CachedScoreFn(Short())(["q", "q"], ["a", "bb"])
