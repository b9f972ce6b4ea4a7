"""``rewardkit data gsm8k-steps`` and ``rewardkit import`` of its output: the file the PRM trainer reads, written
from the real GSM8K data, read back into the store; user mistakes are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.store.steps import iter_step_solutions


def _rk(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, list(args))


def test_generated_file_is_trl_stepwise_and_imports_once(
    shared_data: Path, tmp_path: Path, store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from rewardkit.settings import get_settings

    out = tmp_path / "steps.jsonl"
    train = str(shared_data / "gsm8k" / "train.jsonl.gz")
    result = _rk("data", "gsm8k-steps", "--out", str(out), "--input", train, "--limit", "40", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["problems"] == 40 and len(rows) == summary["solutions"] == summary["clean"] + summary["corrupted"]
    for row in rows:
        assert isinstance(row["prompt"], str) and len(row["completions"]) == len(row["labels"])
        assert all(isinstance(label, bool) for label in row["labels"])
        assert row["completions"][-1] == f"A: {row['final_answer']}"
        assert row["outcome"] is (row["first_error"] is None) and len(row["problem_id"]) == 16
        if row["first_error"] is not None:
            k = row["first_error"]
            assert row["labels"] == [True] * k + [False] * (len(row["labels"]) - k)
    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        first = _rk("import", "trl-stepwise", str(out))
        again = _rk("import", "trl-stepwise", str(out), "--json")
    finally:
        get_settings.cache_clear()
    assert first.stdout.startswith(f"imported {len(rows)} step solutions (read {len(rows)}, duplicates skipped 0, ")
    assert json.loads(again.stdout)["counts"]["duplicates"] == len(rows)
    with store() as s:
        stored = {x.solution.metadata["problem_id"]: x.solution for x in iter_step_solutions(s)}
    assert len(stored) == len(rows)
    row = rows[0]
    back = stored[row["problem_id"]]
    assert list(back.steps) == row["completions"] and back.outcome is row["outcome"]
    assert [label == "good" for label in back.labels] == row["labels"]


def test_model_solutions_mode_keeps_outcome_model_and_problem(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "models.jsonl"
    path = str(shared_data / "gsm8k" / "model_solutions.jsonl.gz")
    result = _rk("data", "gsm8k-steps", "--model-solutions", "--out", str(out), "--input", path, "--limit", "5")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 20 and len({r["problem_id"] for r in rows}) == 5
    assert {r["model_name"] for r in rows} == {
        "6b_finetuning",
        "6b_verification",
        "175b_finetuning",
        "175b_verification",
    }
    for r in rows:
        assert r["labels"] == [r["outcome"]] * len(r["completions"]) and r["supervision"] == "outcome"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corrupt-fraction", "1.5"], "--corrupt-fraction: expected a share in [0, 1], got 1.5"),
        (["--model-solutions", "--corrupt-fraction", "0.2"], "--corrupt-fraction applies to generated solutions"),
        (["--limit", "0"], "--limit: expected at least 1, got 0"),
        (["--input", "nowhere.jsonl.gz"], "--input: nowhere.jsonl.gz is not a file"),
    ],
)
def test_mistakes_are_one_line_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.jsonl"
    result = _rk("data", "gsm8k-steps", "--out", str(out), *args)
    assert isinstance(result.exception, UserError) and message in str(result.exception)
    assert "\n" not in str(result.exception) and not out.exists()


def test_a_malformed_input_names_its_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q?", "answer": "1+1 = <<1+1=2>>2\\n#### 2"}\n{"question": "q2?"}\n')
    out = tmp_path / "out.jsonl"
    result = _rk("data", "gsm8k-steps", "--out", str(out), "--input", str(bad))
    assert isinstance(result.exception, UserError) and f"{bad}, line 2: not a GSM8K record" in str(result.exception)
    assert not out.exists()


def test_a_file_that_is_not_gzip_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "train.jsonl.gz"
    bad.write_text("not gzip at all\n")
    result = _rk("data", "gsm8k-steps", "--out", str(tmp_path / "o.jsonl"), "--input", str(bad))
    assert isinstance(result.exception, UserError) and "cannot be read" in str(result.exception)
    assert not (tmp_path / "o.jsonl").exists()
