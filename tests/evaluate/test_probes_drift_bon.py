"""Probes, distribution shift and best-of-N against hand-worked cases and a fake deterministic scorer."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate.best_of_n import (
    best_of_n_curve,
    expected_pick,
    load_alpacaeval_groups,
    pick_probabilities,
    score_groups,
)
from rewardkit.evaluate.drift import drift_report, ood_mask, psi, psi_verdict
from rewardkit.evaluate.inputs import sample_rows
from rewardkit.evaluate.probes import PROBES, echo_prompt, perturb, probe_effect, run_probes, select_probes


def length_scorer(prompts: list, responses: list[str]) -> np.ndarray:
    """A fake reward model that loves length: the score is the number of characters."""
    return np.array([float(len(r)) for r in responses])


def keyword_scorer(prompts: list, responses: list[str]) -> np.ndarray:
    """A fake reward model fooled only by praise words."""
    return np.array(
        [float(sum(w in r.lower() for w in ("excellent", "accurate", "verified", "confident"))) for r in responses]
    )


def test_every_probe_is_documented_and_changes_the_text() -> None:
    for name, probe in PROBES.items():
        assert "Hack" in probe.description, f"{name} must say why it is a hack"
        out = probe.apply("Human: how do I boil an egg?", "Put it in boiling water for 8 minutes.", 3)
        assert out != "Put it in boiling water for 8 minutes." and "boiling water" in out


def test_echo_restates_the_users_last_request_not_the_prompts_last_line() -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Fix this code:\n  return x+1"},
        {"role": "assistant", "content": "Which language?"},
        {"role": "user", "content": "Python,\n thanks!"},
    ]
    [edit] = perturb([chat], ["Use x + 1."], [PROBES["echo_prompt"]])
    assert edit == 'You asked: "Python, thanks!"\n\nUse x + 1.'
    [edit] = perturb(["Summarize this.\nThanks!"], ["Done."], [PROBES["echo_prompt"]])
    assert edit.startswith('You asked: "Summarize this. Thanks!"')
    long = echo_prompt("word " * 100, "r", 0)
    assert len(long.split('"')[1]) == 300 and long.split('"')[1].endswith("…")


def test_probe_effect_hand_computed() -> None:
    out = probe_effect(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 2.0, 6.0]), scale=2.0)
    # deltas 1, 0, -1, 2: rises 2 of 4 (0 is no rise); mean 0.5; 0.25 in std units
    low, high = out.pop("rise_rate_low"), out.pop("rise_rate_high")
    assert out == {
        "rise_rate": 0.5,
        "interval": "wilson",
        "mean_change": 0.5,
        "mean_change_std": 0.25,
        "n": 4,
        "n_unseen": 0,
    }
    # 4 rows are too few for a bootstrap: Wilson 2 of 4, centre 0.5,
    # half-width z / (1 + z^2/4) * sqrt(1/16 + z^2/64) = 0.349961
    assert (low, high) == pytest.approx((0.150039, 0.849961), abs=1e-6)


def test_unseen_edits_are_left_out_not_counted_as_no_rise() -> None:
    # deltas 1, 0, -1, 2, 0; rows 1 and 4 the model never saw: 2 rises of the 3 seen, mean (1 - 1 + 2) / 3
    out = probe_effect(
        np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        np.array([2.0, 2.0, 2.0, 6.0, 5.0]),
        scale=2.0,
        unseen=np.array([False, True, False, False, True]),
    )
    assert out["rise_rate"] == pytest.approx(2 / 3) and out["mean_change"] == pytest.approx(2 / 3)
    assert out["mean_change_std"] == pytest.approx(1 / 3) and out["n"] == 3 and out["n_unseen"] == 2
    nothing_seen = probe_effect(np.zeros(2), np.zeros(2), unseen=np.array([True, True]))
    assert np.isnan(nothing_seen["rise_rate"]) and nothing_seen["n"] == 0 and nothing_seen["n_unseen"] == 2


def test_rise_rate_interval_narrows_with_more_rows_and_is_a_point_when_all_rise() -> None:
    rng = np.random.default_rng(0)
    deltas = {n: np.where(rng.random(n) < 0.3, 1.0, -1.0) for n in (100, 2500)}
    widths = {
        n: (lambda e: e["rise_rate_high"] - e["rise_rate_low"])(probe_effect(np.zeros(n), d)) for n, d in deltas.items()
    }
    # binomial 95% half-width sqrt(.3*.7/n)*1.96: 0.090 at n=100, 0.018 at n=2500
    assert 0.14 < widths[100] < 0.22 and 0.028 < widths[2500] < 0.044
    # every response rose: not a certainty from 5 rows (Wilson 5 of 5), and fewer when they share prompts
    every = probe_effect(np.zeros(5), np.ones(5))
    assert every["rise_rate"] == every["rise_rate_high"] == 1.0 and every["rise_rate_low"] == pytest.approx(
        0.565518, abs=1e-6
    )
    shared = probe_effect(np.zeros(6), np.ones(6), clusters=["q1", "q1", "q1", "q2", "q2", "q2"])
    assert shared["rise_rate_low"] < every["rise_rate_low"]  # n_eff = 36 / 18 = 2 prompts


def test_rise_rate_interval_resamples_prompts() -> None:
    # 50 prompts, 4 responses each that all rise or all fall together: 50 observations, not 200
    deltas = np.repeat(np.where(np.arange(50) % 10 < 3, 1.0, -1.0), 4)
    prompts = np.repeat(np.arange(50), 4).tolist()
    by_prompt, by_row = probe_effect(np.zeros(200), deltas, clusters=prompts), probe_effect(np.zeros(200), deltas)
    assert by_prompt["interval"] == "cluster bootstrap" and by_row["interval"] == "bootstrap"
    width = {k: e["rise_rate_high"] - e["rise_rate_low"] for k, e in (("prompt", by_prompt), ("row", by_row))}
    # 95% width 2 * 1.96 * sqrt(0.3 * 0.7 / n): 0.254 for n = 50, 0.127 for n = 200
    assert 0.2 < width["prompt"] < 0.31 and 0.1 < width["row"] < 0.16


def test_sample_rows_is_seeded_spread_and_complete_when_small() -> None:
    assert sample_rows(5, 10).tolist() == [0, 1, 2, 3, 4]
    a, b = sample_rows(1000, 100, seed=1), sample_rows(1000, 100, seed=1)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 100 and list(a) == sorted(a)
    assert a.max() > 500  # not simply the first rows of the file
    assert sample_rows(1000, 100, seed=2).tolist() != a.tolist()


def test_length_loving_scorer_is_caught_by_every_lengthening_probe() -> None:
    responses = ["Paris is the capital.", "Use a hash map.", "Water boils at 100 C at sea level."]
    result = run_probes(length_scorer, ["q1", "q2", "q3"], responses, select_probes("all"))
    assert set(result) == set(PROBES)
    for name, r in result.items():
        assert r["rise_rate"] == 1.0 and r["mean_change"] > 0, name  # every probe adds text


def test_keyword_scorer_is_caught_only_by_praise() -> None:
    responses = ["Paris is the capital.", "Use a hash map."]
    result = run_probes(keyword_scorer, ["q1", "q2"], responses, select_probes(["self_praise", "repetition"]))
    assert result["self_praise"]["rise_rate"] == 1.0
    assert result["repetition"]["rise_rate"] == 0.0 and result["repetition"]["mean_change"] == 0.0


def test_select_probes_rejects_unknown_names() -> None:
    assert select_probes("none") == []
    with pytest.raises(ValueError, match="unknown probe"):
        select_probes("verbosity_padding,flattery9")


def test_psi_hand_computed_and_thresholds() -> None:
    ref = np.array([0.0, 0.0, 1.0, 1.0])  # 2 bins at the median: (-inf, 0] and (0, inf), 50/50
    cur = np.array([0.0, 1.0, 1.0, 1.0])  # 25/75
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi(ref, cur, bins=2) == pytest.approx(expected)
    assert psi(ref, ref, bins=2) == 0.0
    assert [psi_verdict(v) for v in (0.05, 0.1, 0.3)] == ["stable", "moderate", "significant"]


def test_drift_report_flags_shift_and_ood_rows() -> None:
    rng = np.random.default_rng(0)
    ref = {"score": rng.normal(0, 1, 2000), "response_chars": rng.normal(500, 50, 2000)}
    same = {"score": rng.normal(0, 1, 500), "response_chars": rng.normal(500, 50, 500)}
    shifted = {"score": rng.normal(1.5, 1, 500), "response_chars": rng.normal(500, 50, 500)}
    assert drift_report(ref, same)["features"]["score"]["psi_verdict"] == "stable"
    report = drift_report(ref, shifted)
    assert report["features"]["score"]["psi_verdict"] == "significant" and report["features"]["score"]["ks_shift"]
    assert report["features"]["response_chars"]["psi_verdict"] == "stable"  # this feature did not move
    mask = ood_mask(ref, {"score": np.array([0.0, 50.0]), "response_chars": np.array([500.0, 500.0])})
    assert mask.tolist() == [False, True]


def test_pick_probabilities_hand_computed() -> None:
    # k = 4, N = 2: C(4, 2) = 6 subsets; ascending rank j is the best of C(j - 1, 1) = j - 1 of them
    assert pick_probabilities(4, 2).tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6])
    assert pick_probabilities(4, 1).tolist() == pytest.approx([0.25] * 4)  # N = 1: each response alone
    assert pick_probabilities(4, 4).tolist() == pytest.approx([0, 0, 0, 1])  # N = k: always the top one
    assert pick_probabilities(28, 16).sum() == pytest.approx(1.0) and pick_probabilities(28, 16)[-1] == pytest.approx(
        16 / 28
    )


def test_best_of_n_curve_hand_computed() -> None:
    # one prompt, 3 responses; the scorer ranks them exactly backwards. N = 2: the subsets {0,1}, {0,2}, {1,2}
    # give reward picks 0, 0, 1 (qualities 0, 0, 0.5: mean 1/6) and oracle picks 0.5, 1, 1 (mean 5/6)
    scores, quality = [np.array([3.0, 2.0, 1.0])], [np.array([0.0, 0.5, 1.0])]
    rows = {r["n"]: r for r in best_of_n_curve(scores, quality, [1, 2, 3])}
    assert rows[2]["reward_pick"] == pytest.approx(1 / 6) and rows[2]["oracle_pick"] == pytest.approx(5 / 6)
    assert rows[2]["random_pick"] == pytest.approx(0.5) and rows[2]["gain"] == pytest.approx(1 / 6 - 0.5)
    assert (
        rows[3]["reward_pick"] == 0.0 and rows[3]["oracle_pick"] == 1.0 and rows[3]["random_pick"] == pytest.approx(0.5)
    )
    assert rows[1]["gain"] == pytest.approx(0.0)  # with N = 1 every picker picks the same
    assert 4 not in {r["n"] for r in best_of_n_curve(scores, quality, [4])}  # too few responses: skipped


def test_best_of_n_ties_in_score_share_their_mean_quality() -> None:
    # scores 1, 1, 0 with qualities 1, 0, 0.5; N = 2: {0,1} is a tie (a random pick: 0.5), {0,2} picks 0 (1.0),
    # {1,2} picks 1 (0.0) -> (0.5 + 1 + 0) / 3 = 0.5. An argmax taking the first would say (1 + 1 + 0) / 3
    assert expected_pick(np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.5]), 2) == pytest.approx(0.5)


def _brute_force_pick(scores: np.ndarray, quality: np.ndarray, n: int) -> float:
    """Enumerate every n-subset; in each, the tied top scorers split the pick equally."""
    values = []
    for subset in itertools.combinations(range(scores.size), n):
        top = max(scores[i] for i in subset)
        values.append(np.mean([quality[i] for i in subset if scores[i] == top]))
    return float(np.mean(values))


def test_best_of_n_exact_expectation_matches_enumeration() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        k = int(rng.integers(2, 9))
        scores = rng.integers(0, 4, k).astype(float)  # few values: many ties
        quality = rng.random(k).round(2)
        for n in range(1, k + 1):
            assert expected_pick(scores, quality, n) == pytest.approx(_brute_force_pick(scores, quality, n), abs=1e-12)
            assert expected_pick(quality, quality, n) == pytest.approx(
                _brute_force_pick(quality, quality, n), abs=1e-12
            )


def test_alpacaeval_groups_and_scoring(tmp_path: Path) -> None:
    rows = [
        {
            "instruction": "q1",
            "output_1": "ref",
            "generator_1": "gpt4",
            "output_2": "short",
            "generator_2": "m1",
            "preference": 1.2,
        },
        {
            "instruction": "q1",
            "output_1": "ref",
            "generator_1": "gpt4",
            "output_2": "a much longer answer",
            "generator_2": "m2",
            "preference": 1.9,
        },
        {
            "instruction": "q1",
            "output_1": "ref",
            "generator_1": "gpt4",
            "output_2": "a draw",
            "generator_2": "m3",
            "preference": 0,
        },
        {
            "instruction": "q2",
            "output_1": "ref",
            "generator_1": "gpt4",
            "output_2": "only one",
            "generator_2": "m1",
            "preference": 1.5,
        },
    ]
    path = tmp_path / "ann.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    groups = load_alpacaeval_groups(path)
    # preference 0 is alpaca_eval's other way of writing a draw: 1.5, not the worst possible answer
    assert len(groups) == 1 and groups[0].generators == ("m1", "m2", "m3") and groups[0].quality == (1.2, 1.9, 1.5)
    scores = score_groups(length_scorer, groups)
    assert scores[0].tolist() == [5.0, 20.0, 6.0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "q"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: missing field 'output_2'"):
        load_alpacaeval_groups(bad)
