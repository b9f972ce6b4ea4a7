"""``rewardkit dataset build`` per-source options as a user meets them: --source-cap and --source-weight
(repeatable), the per-source counts in the text output, one-line errors naming the source or option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.data.snapshot import load_split
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
from rewardkit.store import session_scope
from rewardkit.store.queries import add_comparisons


@pytest.fixture
def build(store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A store with 40 'big' and 10 'small' comparisons; returns invoke(*args) of ``rewardkit dataset build``."""
    from rewardkit.settings import get_settings

    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    human = Annotator("h1", "human")
    with session_scope(store) as s:
        add_comparisons(
            s,
            [
                Comparison(
                    f"{source} question {i}",
                    (Response(f"good {i}"), Response(f"bad {i}")),
                    PairwiseJudgement("a"),
                    human,
                    source=source,
                )
                for source, n in (("big", 40), ("small", 10))
                for i in range(n)
            ],
        )

    def invoke(*args: str):  # noqa: ANN202
        return CliRunner().invoke(app, ["dataset", "build", *args])

    yield invoke
    get_settings.cache_clear()


def test_a_cap_on_one_source_and_a_weight_on_another_with_per_source_counts_in_the_text(build) -> None:  # noqa: ANN001
    text = build("--source-cap", "big=25", "--source-weight", "small=2", "--source-weight", "big=0.5")
    assert text.exit_code == 0, text.output
    assert "sources: big 25 of 40 (cap 25, train weight 0.5), small 10 (train weight 2)" in text.stdout
    assert "balancing removed 15 pairs" in text.stdout
    built = json.loads(
        build("--source-cap", "big=25", "--source-weight", "small=2", "--source-weight", "big=0.5", "--json").stdout
    )
    assert not built["created"]  # the same content: the text run wrote it
    assert built["manifest"]["counts"]["per_source"] == {"big": 25, "small": 10}
    assert built["manifest"]["options"]["source_caps"] == [["big", 25]]
    train = load_split(Path(built["path"]), "train")
    assert {(p.source, p.weight) for p in train} == {("big", 0.5), ("small", 2.0)}
    assert all(p.weight == 1.0 for p in load_split(Path(built["path"]), "validation"))
    # without the options: every source whole, counts still in the text, another snapshot
    plain = build()
    assert "sources: big 40, small 10" in plain.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--source-cap", "alpacaeval=2000"],
            "--source-cap alpacaeval: no such source in the selected comparisons (their sources: big, small)",
        ),
        (["--source-weight", "hh-rlhf=2"], "--source-weight hh-rlhf: no such source"),
        (
            ["--source", "big", "--source-cap", "small=5"],
            "--source-cap small: no such source in the selected comparisons (their sources: big)",
        ),
        (["--source-cap", "big"], "--source-cap big: expected SOURCE=VALUE"),
        (["--source-cap", "=5"], "--source-cap =5: expected SOURCE=VALUE"),
        (["--source-cap", "big=lots"], "--source-cap big: expected a whole number after '=', got 'lots'"),
        (["--source-cap", "big=2.5"], "--source-cap big: expected a whole number after '=', got '2.5'"),
        (["--source-cap", "big=0"], "--source-cap big: expected a whole number >= 1, got 0"),
        (["--source-weight", "big=-1"], "--source-weight big: expected a positive number, got -1.0"),
        (["--source-weight", "big=x"], "--source-weight big: expected a number after '=', got 'x'"),
        (["--source-cap", "big=3", "--source-cap", "big=4"], "--source-cap big: given more than once"),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_source(build, tmp_path, args, message) -> None:  # noqa: ANN001
    result = build(*args)  # in-process the UserError comes back as it is; the console script prints it as one line
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not list((tmp_path / "home" / "snapshots").glob("*"))  # nothing written
