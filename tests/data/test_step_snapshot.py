"""Steps snapshots: label merging worked by hand, dedupe and conflicts, the split by prompt, an immutable
content-hashed snapshot built from a real store (SQLite and PostgreSQL), read back, exported as TRL stepwise,
and the CLI (build-steps, list, show, export)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.data.export import export_snapshot
from rewardkit.data.snapshot import SnapshotError, load_split
from rewardkit.data.step_compile import StepCompileConfig, compile_step_solutions, merge_labels
from rewardkit.data.step_snapshot import build_step_snapshot, load_step_split
from rewardkit.records import Annotator, StepSolution
from rewardkit.store import session_scope
from rewardkit.store.queries import prompt_id
from rewardkit.store.steps import StoredStepSolution, add_step_solutions

A, B = Annotator("a", "human"), Annotator("b", "human")


def sol(prompt: str, labels: tuple, steps: tuple | None = None, annotator: Annotator = A, **kw) -> StepSolution:  # noqa: ANN001
    steps = steps or tuple(f"step {i}" for i in range(len(labels)))
    return StepSolution(prompt, steps, labels, annotator, kw.pop("source", "unit"), **kw)


def stored(*solutions: StepSolution) -> list[StoredStepSolution]:
    return [StoredStepSolution(s.dedupe_key, prompt_id(s.prompt), s) for s in solutions]


def test_merge_labels_step_by_step() -> None:
    votes = [("good", "bad", "good", None), ("good", "good", "bad", None), ("good", "bad", None, None)]
    # step 0 agrees; step 1 two bad against one good; step 2 one good, one bad: a tie; step 3 nobody labelled it
    assert merge_labels(votes) == (("good", "bad", None, None), 2, 1)


def test_dedupe_conflicts_and_model_identity() -> None:
    result = compile_step_solutions(
        stored(
            sol("q1", ("good", "bad")),
            sol("q1", ("good", "good"), annotator=B),  # same steps, another label for step 1: a tie
            sol("Q1 ", ("good", "bad"), annotator=Annotator("c", "human")),  # normalised duplicate: bad wins 2-1
            sol("q1", ("good", "good"), model_name="m2"),  # another model's candidate stays apart
        ),
        StepCompileConfig(fractions=(1.0, 0.0, 0.0)),
    )
    train = result.splits["train"]
    assert sorted((e.model_name, e.labels) for e in train) == [("", ("good", "bad")), ("m2", ("good", "good"))]
    c = result.counts
    assert (c.solutions_selected, c.solutions, c.duplicates_exact, c.duplicates_normalized) == (4, 2, 1, 1)
    assert (c.conflicts_found, c.conflict_steps_unlabelled) == (1, 0)
    assert c.labels == {"good": 3, "bad": 1, "neutral": 0, "unlabelled": 0} and c.with_error == 1
    merged = next(e for e in train if not e.model_name)
    assert len(merged.solution_ids) == 3
    dropped = compile_step_solutions(
        stored(sol("q", ("good", "bad")), sol("q", ("good", "good"), annotator=B)),
        StepCompileConfig(conflicts="drop"),
    )
    assert dropped.counts.solutions == 0 and dropped.counts.conflicts_dropped == 1
    tied = compile_step_solutions(
        stored(sol("q", ("good", "bad")), sol("q", ("good", "good"), annotator=B)), StepCompileConfig()
    )
    [example] = [e for rows in tied.splits.values() for e in rows]
    assert example.labels == ("good", None) and tied.counts.conflict_steps_unlabelled == 1


def test_every_solution_of_a_prompt_lands_in_one_split() -> None:
    solutions = [sol(f"problem {i}", ("good",), model_name=m) for i in range(60) for m in ("m1", "m2", "m3")]
    result = compile_step_solutions(stored(*solutions), StepCompileConfig())
    where = {}
    for split, rows in result.splits.items():
        for e in rows:
            assert where.setdefault(e.prompt, split) == split
    assert set(where.values()) == {"train", "validation", "test"} and len(where) == 60


def _fill(store) -> None:  # noqa: ANN001
    with session_scope(store) as s:
        add_step_solutions(
            s,
            [
                sol(f"problem {i}", ("good", "neutral", "bad", None) if i % 2 else ("good", "good"), source="unit")
                for i in range(30)
            ]
            + [sol("other", (None, "good"), source="elsewhere")],
        )


def test_build_read_export_a_steps_snapshot(store, tmp_path: Path) -> None:  # noqa: ANN001
    _fill(store)
    config = StepCompileConfig(sources=("unit",))
    with session_scope(store) as s:
        built = build_step_snapshot(s, config, tmp_path / "snaps")
    with session_scope(store) as s:
        again = build_step_snapshot(s, config, tmp_path / "snaps")
    assert built.created and not again.created and again.id == built.id
    m = built.manifest
    assert m["kind"] == "steps" and m["options"]["kind"] == "steps" and m["filters"]["sources"] == ["unit"]
    assert m["counts"]["solutions"] == 30 and sum(split["rows"] for split in m["splits"].values()) == 30
    train = load_step_split(built.path, "train")
    assert train and all(e.source == "unit" for e in train)
    odd = next(e for e in train if len(e.steps) == 4)
    assert odd.labels == ("good", "neutral", "bad", None) and odd.first_error == 2
    parquet = pq.read_table(built.path / "train.parquet").to_pylist()
    assert [(r["id"], r["labels"]) for r in parquet] == [(e.id, list(e.labels)) for e in train]
    with pytest.raises(SnapshotError, match="holds step solutions, not pairs"):
        load_split(built.path, "train")
    with pytest.raises(SnapshotError, match="export it as trl-stepwise"):
        export_snapshot(built.path, "trl-jsonl", tmp_path / "x")
    rows = export_snapshot(built.path, "trl-stepwise", tmp_path / "export")
    assert sum(rows.values()) == 30
    exported = [json.loads(line) for line in (tmp_path / "export" / "train.jsonl").read_text().splitlines()]
    four = next(r for r in exported if r["completions"][0] == "step 0" and len(r["completions"]) == 3)
    assert four["labels"] == [True, True, False]  # neutral -> true; the unlabelled last step is cut
    # new data: a new snapshot whose parent is the first
    with session_scope(store) as s:
        add_step_solutions(s, [sol("problem 99", ("bad",), source="unit")])
    with session_scope(store) as s:
        newer = build_step_snapshot(s, config, tmp_path / "snaps")
    assert newer.id != built.id and newer.manifest["parent"] == built.id


def test_an_empty_selection_is_refused(store, tmp_path: Path) -> None:  # noqa: ANN001
    with session_scope(store) as s, pytest.raises(SnapshotError, match="no step solutions"):
        build_step_snapshot(s, StepCompileConfig(sources=("none",)), tmp_path)


def test_cli_build_steps_list_show_export(store, store_url: str, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from rewardkit.settings import get_settings

    _fill(store)
    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    rk = lambda *args: CliRunner().invoke(app, ["dataset", *args])  # noqa: E731
    try:
        built = rk("build-steps", "--source", "unit", "--json")
        assert built.exit_code == 0, built.output
        sid = json.loads(built.stdout)["id"]
        listed = rk("list")
        shown = rk("show", sid[:8])
        exported = rk("export", sid[:8], "--out", str(tmp_path / "out"), "--format", "trl-stepwise")
        bad = rk("build-steps", "--conflicts", "vote")
    finally:
        get_settings.cache_clear()
    assert f"{sid}" in listed.stdout and "30 solutions" in listed.stdout
    assert f"steps snapshot {sid}" in shown.stdout and "step labels: good" in shown.stdout
    assert exported.exit_code == 0 and "wrote trl-stepwise" in exported.stdout
    assert "conflicts: expected majority or drop, got 'vote'" in str(bad.exception)
