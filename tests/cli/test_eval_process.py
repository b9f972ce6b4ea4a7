"""``rewardkit eval`` on a process reward model and step-labelled data: the report's numbers are the ones the
pure functions give on the model's own step scores."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.evaluate.process import predicted_first_error, processbench_f1
from rewardkit.scoring.scorer import load_scorer
from rewardkit.train.steps import read_step_file


def test_eval_reports_step_accuracy_processbench_and_best_of_n(tiny_prm: Path, tmp_path: Path) -> None:
    data = tiny_prm.parent / "steps.jsonl"  # the training file (train_tiny_prm): labels, outcomes, problem ids
    args = ["eval", "--model", str(tiny_prm), "--data", str(data), "--out", str(tmp_path / "ev"), "--json"]
    result = CliRunner().invoke(app, [*args, "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["solutions"] == 40 and (tmp_path / "ev" / "report.json").is_file()
    solutions = read_step_file(data)
    scores = load_scorer(str(tiny_prm), dtype="fp32").score_steps(
        [s.prompt for s in solutions], [s.steps for s in solutions]
    )
    known = [s for s in solutions if s.first_error is not None or all(y is not None for y in s.labels)]
    threshold = json.loads((tiny_prm / "rewardkit.json").read_text())["step_threshold"]
    assert report["step_threshold"] == threshold  # the card's, fitted on the validation steps
    by_hand = processbench_f1(
        [predicted_first_error(scores.step_scores[solutions.index(s)], threshold) for s in known],
        [s.first_error for s in known],
    )
    assert (
        report["processbench"]["erroneous"] == by_hand["erroneous"]
        and report["processbench"]["correct"] == by_hand["correct"]
    )
    assert abs(report["processbench"]["error_accuracy"] - by_hand["error_accuracy"]) < 1e-9
    bon = report["best_of_n"]
    assert bon["problems"] == 10 and bon["candidates"] == 4
    rows = bon["selection"]
    aggregates = {"prm_min", "prm_product", "prm_mean", "prm_last"}
    assert set(rows) == {"random", "oracle", "majority_vote"} | aggregates | {f"{a}_vote" for a in aggregates}
    assert rows["random"]["value"] <= rows["oracle"]["value"] == 0.9
    assert all(r["low"] <= r["value"] <= r["high"] for r in rows.values())


def test_eval_takes_a_step_threshold_and_refuses_one_out_of_range(tiny_prm: Path, tmp_path: Path) -> None:
    data = tiny_prm.parent / "steps.jsonl"
    args = ["eval", "--model", str(tiny_prm), "--data", str(data), "--json", "--n-boot", "50"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a"), "--step-threshold", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # at 0 no step is below the threshold: every step predicted good, no first error named
    assert report["step_threshold"] == 0 and report["processbench"]["error_accuracy"] == 0
    assert report["processbench"]["correct_accuracy"] == 1
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--step-threshold", "1.5"])
    # a UserError: the CLI's entry point prints it as one line (exit 1); nothing was written
    assert isinstance(bad.exception, UserError) and bad.exit_code == 1
    assert str(bad.exception) == "--step-threshold must be a probability in [0, 1], got 1.5"
    assert not (tmp_path / "b").exists()
