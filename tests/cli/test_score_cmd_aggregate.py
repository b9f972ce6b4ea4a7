"""``rewardkit score --aggregate mean|uwo|wco [--uwo-lambda L]`` on a real ensemble folder of tiny models: the
rows' score is the members' mean, mean - L * std, or the lowest member (each member standardized by its own card,
checked against each member scored alone), and the rows and the --json summary say which."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rk_testing.tiny_models import build_tiny_ensemble
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError

ROWS = [{"prompt": f"question {i}?", "response": "an answer " * (i + 1)} for i in range(6)]


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ensemble(tmp_path_factory.mktemp("ens") / "ensemble", 3)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def score(data: Path, out: Path, *args: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    res = CliRunner().invoke(app, ["score", str(data), "--out", str(out), "--dtype", "fp32", "--json", *args])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return rows, json.loads(res.stdout)


def test_aggregates_of_the_members(ensemble: Path, data: Path, tmp_path: Path) -> None:
    # each member alone, standardized with its card's reference statistics, as the ensemble does
    members = []
    for i in range(3):
        rows, _ = score(data, tmp_path / f"m{i}.jsonl", "--model", str(ensemble / f"member_{i}"))
        card = json.loads((ensemble / f"member_{i}" / "rewardkit.json").read_text())
        members.append((np.array([r["score"] for r in rows]) - card["reward_mean"]) / card["reward_std"])
    stacked = np.stack(members)  # (3, rows)
    assert stacked.std(axis=0).max() > 1e-2  # the members disagree: the three aggregates differ

    mean_rows, mean_summary = score(data, tmp_path / "mean.jsonl", "--model", str(ensemble))
    np.testing.assert_allclose([r["score"] for r in mean_rows], stacked.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose([r["score_std"] for r in mean_rows], stacked.std(axis=0), atol=1e-4)
    assert "aggregate" not in mean_rows[0] and "aggregate" not in mean_summary  # the default: rows as before

    uwo_rows, uwo_summary = score(data, tmp_path / "uwo.jsonl", "--model", str(ensemble), "--aggregate", "uwo")
    np.testing.assert_allclose(
        [r["score"] for r in uwo_rows], stacked.mean(axis=0) - 0.5 * stacked.std(axis=0), atol=1e-4
    )
    assert uwo_rows[0]["aggregate"] == "uwo" and uwo_rows[0]["uwo_lambda"] == 0.5
    assert uwo_summary["aggregate"] == "uwo" and uwo_summary["uwo_lambda"] == 0.5

    rows, _ = score(data, tmp_path / "uwo2.jsonl", "--model", str(ensemble), "--aggregate", "uwo", "--uwo-lambda", "2")
    np.testing.assert_allclose([r["score"] for r in rows], stacked.mean(axis=0) - 2 * stacked.std(axis=0), atol=1e-4)

    wco_rows, wco_summary = score(data, tmp_path / "wco.jsonl", "--model", str(ensemble), "--aggregate", "wco")
    np.testing.assert_allclose([r["score"] for r in wco_rows], stacked.min(axis=0), atol=1e-4)
    assert wco_rows[0]["aggregate"] == "wco" and "uwo_lambda" not in wco_rows[0] and wco_summary["aggregate"] == "wco"
    # the std is the members' disagreement whatever the aggregate
    np.testing.assert_allclose([r["score_std"] for r in wco_rows], stacked.std(axis=0), atol=1e-4)


def test_a_single_model_is_its_own_aggregate(tiny_model: Path, data: Path, tmp_path: Path) -> None:
    plain, _ = score(data, tmp_path / "plain.jsonl", "--model", str(tiny_model))
    res = CliRunner().invoke(
        app, ["score", str(data), "--out", str(tmp_path / "w.jsonl"), "--model", str(tiny_model), "--aggregate", "wco"]
    )
    assert res.exit_code == 0, res.output
    assert "one model, not an ensemble" in res.output
    wco = [json.loads(line) for line in (tmp_path / "w.jsonl").read_text().splitlines()]
    assert [r["score"] for r in wco] == [r["score"] for r in plain]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--aggregate", "max"], "--aggregate must be one of mean, uwo, wco; got 'max'"),
        (["--aggregate", "uwo", "--uwo-lambda", "-1"], "--uwo-lambda must be a finite number >= 0; got -1.0"),
        (["--uwo-lambda", "0.3"], "--uwo-lambda only goes with --aggregate uwo (got --aggregate mean)"),
    ],
)
def test_aggregate_mistakes_are_one_line(args: list[str], expected: str, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["score", str(data), "--out", str(out), "--model", str(tmp_path / "none"), *args])
    assert isinstance(res.exception, UserError), res.output
    assert str(res.exception) == expected and not out.exists()
