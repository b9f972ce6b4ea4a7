"""``rewardkit label ai`` and ``label revise`` as a user runs them, against the real judge server and store:
labels land in the store and/or JSONL, a rerun skips what is done, mistakes are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.store.queries import table_counts
from tests.label.judge_server import free_port

PAIRS = [
    {"prompt": "Q1", "responses": ["one two three", "one"]},
    {"prompt": [{"role": "user", "content": "Q2"}], "response_a": "x", "response_b": {"text": "x y z", "model": "m"}},
    {"prompt": "Q3 [biased]", "chosen": "one two", "rejected": "one"},
    {"prompt": "Q4 [refuse]", "responses": ["a b", "a"]},
]


@pytest.fixture
def cli(store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()

    def invoke(*args: str):  # noqa: ANN202
        return CliRunner().invoke(app, ["label", *args])

    yield invoke
    get_settings.cache_clear()


def write_pairs(path: Path, rows: list[dict] = PAIRS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_label_ai_into_the_store_then_resume(cli, store, judge, tmp_path: Path, constitution_file: Path) -> None:
    url, state = judge
    args = ["ai", "--pairs", str(write_pairs(tmp_path / "p.jsonl")), "--endpoint", url, "--model", "judge-9"]
    args += ["--constitution", str(constitution_file), "--concurrency", "4", "--json"]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["labelled"], summary["ties"], summary["unparseable"], summary["stopped"]) == (3, 1, 1, None)
    with store() as session:
        assert table_counts(session)["comparisons"] == 3
    before = state.requests
    again = json.loads(cli(*args).stdout)
    assert again["skipped_done"] == 3 and again["labelled"] == 0 and state.requests - before == 2


def test_jsonl_only_and_budget_stop(cli, store, judge, tmp_path: Path, constitution_file: Path) -> None:
    out = tmp_path / "labels.jsonl"
    rows = [{"prompt": f"Q{i}", "responses": ["one two three", "one"]} for i in range(30)]
    args = ["ai", "--pairs", str(write_pairs(tmp_path / "p.jsonl", rows)), "--endpoint", judge[0], "--model", "j"]
    args += ["--constitution", str(constitution_file), "--no-store", "--out", str(out), "--concurrency", "1"]
    result = cli(*args, "--max-tokens-budget", "500")
    assert result.exit_code == 0, result.output
    assert "stopped: token budget of 500 spent; run the same command again to go on" in result.stdout
    written = len(out.read_text().splitlines())
    assert 0 < written < 30
    with store() as session:
        assert table_counts(session)["comparisons"] == 0  # --no-store
    rest = json.loads(cli(*args, "--json").stdout)
    assert rest["skipped_done"] == written and rest["labelled"] == 30 - written
    assert len(out.read_text().splitlines()) == 30


def test_label_revise(cli, store, judge, tmp_path: Path, constitution_file: Path) -> None:
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"prompt": "How?", "response": "Like this."}) + "\n")
    result = cli(
        "revise", "--responses", str(responses), "--endpoint", judge[0], "--model", "critic",
        "--constitution", str(constitution_file), "--principle", "harmlessness", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labelled"] == 1
    with store() as session:
        assert table_counts(session)["comparisons"] == 1


@pytest.mark.parametrize(
    ("extra", "setup", "message"),
    [
        ([], lambda p, c: c.write_text(""), "is empty"),
        ([], lambda p, c: c.write_text("[[principles]\n"), "not valid TOML"),
        ([], lambda p, c: p.write_text('{"prompt": "q", "responses": ["a"]}\n'), "line 1: field 'responses'"),
        ([], lambda p, c: p.write_text("not json\n"), "line 1: not valid JSON"),
        (["--on-disagreement", "coin"], None, "expected tie or drop"),
        (["--no-store"], None, "--no-store needs --out"),
        (["--max-cost", "1"], None, "--max-cost needs --price-in"),
        (["--from-store"], None, "either --pairs FILE or --from-store"),
    ],
)
def test_mistakes_are_one_line(cli, judge, tmp_path: Path, constitution_file: Path, extra, setup, message) -> None:
    pairs = write_pairs(tmp_path / "p.jsonl")
    if setup is not None:
        setup(pairs, constitution_file)
    result = cli(
        "ai", "--pairs", str(pairs), "--endpoint", judge[0], "--model", "j", "--constitution", str(constitution_file),
        *extra,
    )  # fmt: skip
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_endpoint_down_exits_2_with_one_line(tmp_path: Path, constitution_file: Path) -> None:
    env = {**os.environ, "RK_HOME": str(tmp_path), "RK_DATABASE_URL": f"sqlite:///{tmp_path / 'rk.db'}"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", "label", "ai", "--pairs", str(write_pairs(tmp_path / "p.jsonl")),
         "--endpoint", f"http://127.0.0.1:{free_port()}/v1", "--model", "j", "--constitution", str(constitution_file),
         "--retries", "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "unreachable" in proc.stderr and "Traceback" not in proc.stderr


def test_relabel_the_stores_human_pairs_and_measure_agreement(cli, store, judge, constitution_file: Path) -> None:
    from rewardkit.label.agreement import ai_human_agreement
    from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
    from rewardkit.store.queries import add_comparisons

    def human(prompt: str, a: str, b: str, choice: str) -> Comparison:
        return Comparison(
            prompt, (Response(a), Response(b)), PairwiseJudgement(choice), Annotator("ann", "human"), "hh"
        )

    with store() as session:  # the judge prefers the longer response: it agrees on h1 and h2, not on h3
        add_comparisons(
            session,
            [
                human("h1", "a b c", "a", "a"),
                human("h2", "a", "a b c", "b"),
                human("h3", "a b c", "a", "b"),
                human("h4", "same", "same", "tie"),  # a response tied with itself: nothing to judge
            ],
        )
        session.commit()
    args = [
        "ai",
        "--from-store",
        "--endpoint",
        judge[0],
        "--model",
        "judge-x",
        "--constitution",
        str(constitution_file),
    ]
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labelled"] == 3
    with store() as session:
        agreement = ai_human_agreement(session)
    assert (agreement["pairs"], agreement["compared"], agreement["agree"]) == (3, 3, 2)
    assert agreement["by_judge"]["judge-x"]["agreement"] == pytest.approx(2 / 3)
