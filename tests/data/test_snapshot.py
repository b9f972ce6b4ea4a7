"""Snapshots: content-hashed ids, atomic writes, manifests, JSONL/Parquet, TRL and datasets exports, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.cli.output import UserError
from rewardkit.data import snapshot as snap
from rewardkit.data.compile import CompileConfig
from rewardkit.data.export import export_snapshot
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, RankingJudgement, Response
from rewardkit.store import session_scope
from rewardkit.store.queries import add_comparisons, list_snapshots

HUMAN = Annotator("h1", "human")


def pairwise(prompt, a: str, b: str, choice: str = "a", margin: float | None = None, **kw) -> Comparison:
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement(choice, margin=margin),
        annotator=HUMAN,
        source="unit",
        **kw,
    )


def fill(store, n_prompts: int = 40, start: int = 0) -> None:
    with session_scope(store) as s:
        comparisons = [
            pairwise(f"question {i}", f"good answer {i}", f"bad answer {i}", margin=float(i % 3))
            for i in range(start, start + n_prompts)
        ]
        comparisons += [
            pairwise(f"question {i}", f"another good {i}", f"bad answer {i}")
            for i in range(start, start + n_prompts, 2)
        ]
        comparisons.append(pairwise("tied", "x", "y", "tie"))
        add_comparisons(s, comparisons)


def build(store, tmp_path: Path, config: CompileConfig = CompileConfig(), **kw) -> snap.BuiltSnapshot:
    with session_scope(store) as s:
        return snap.build_snapshot(s, config, tmp_path / "snapshots", **kw)


def test_building_twice_gives_the_same_id_and_writes_nothing_new(store, tmp_path) -> None:
    fill(store)
    first = build(store, tmp_path)
    second = build(store, tmp_path)
    assert first.created and not second.created
    assert first.id == second.id
    assert [p.name for p in (tmp_path / "snapshots").iterdir()] == [first.id]  # no temp folders left
    other_seed = build(store, tmp_path, CompileConfig(seed=1))
    assert other_seed.id != first.id  # the options are part of the content
    with session_scope(store) as s:
        assert {r.id for r in list_snapshots(s)} == {first.id, other_seed.id}


def test_manifest_counts_and_no_prompt_in_two_splits(store, tmp_path) -> None:
    fill(store)
    built = build(store, tmp_path)
    m = snap.read_manifest(built.path)
    assert m["id"] == built.id and m["parent"] is None
    c = m["counts"]
    assert (c["comparisons_selected"], c["labels"], c["ties_found"], c["ties_dropped"], c["pairs"]) == (
        61,
        61,
        1,
        1,
        60,
    )
    assert m["filters"]["sources"] is None and m["options"]["dedupe"] == "normalized"
    prompt_split: dict[str, str] = {}
    for split in snap.SPLITS:
        rows = snap.load_split(built.path, split)
        assert m["splits"][split]["rows"] == len(rows)
        for pair in rows:
            assert prompt_split.setdefault(pair.prompt_id, split) == split
    assert len(prompt_split) == 40


def test_parquet_holds_the_same_rows_as_jsonl(store, tmp_path) -> None:
    with session_scope(store) as s:
        add_comparisons(
            s,
            [
                pairwise(
                    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                    "hello",
                    "go away",
                    margin=1.5,
                )
            ],
        )
    fill(store, 10)
    built = build(store, tmp_path)
    for split in snap.SPLITS:
        assert snap.read_parquet_split(built.path, split) == snap.load_split(built.path, split)


def test_a_failed_write_leaves_no_snapshot_and_no_temp_folder(store, tmp_path, monkeypatch) -> None:
    fill(store)

    def boom(path, pairs) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(snap, "_write_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        build(store, tmp_path)
    assert list((tmp_path / "snapshots").iterdir()) == []
    with session_scope(store) as s:
        assert list_snapshots(s) == []


def test_parent_is_the_previous_snapshot_of_the_same_recipe(store, tmp_path) -> None:
    fill(store, 20)
    first = build(store, tmp_path)
    fill(store, 5, start=100)  # new data arrives
    second = build(store, tmp_path)
    assert second.id != first.id and second.manifest["parent"] == first.id
    explicit = build(store, tmp_path, CompileConfig(seed=3), parent="abc")
    assert explicit.manifest["parent"] == "abc"


def test_trl_jsonl_export_has_trl_columns_margin_and_no_ties(store, tmp_path) -> None:
    fill(store)
    built = build(store, tmp_path, CompileConfig(keep_ties=True))
    rows = export_snapshot(built.path, "trl-jsonl", tmp_path / "trl")
    assert sum(rows.values()) == 60  # the kept tie is left out
    lines = [
        json.loads(line)
        for split in snap.SPLITS
        for line in (tmp_path / "trl" / f"{split}.jsonl").read_text().splitlines()
    ]
    assert {tuple(sorted(r)) for r in lines} == {("chosen", "margin", "prompt", "rejected")}
    assert all(r["chosen"].startswith(("good", "another")) for r in lines)
    assert {r["margin"] for r in lines} == {0.0, 1.0, 2.0}  # 0.0 also where the source gave no margin
    with pytest.raises(snap.SnapshotError, match="exists already"):
        export_snapshot(built.path, "trl-jsonl", tmp_path / "trl")
    with pytest.raises(snap.SnapshotError, match="unknown export format"):
        export_snapshot(built.path, "csv", tmp_path / "csv")


def test_hf_export_loads_with_datasets_and_is_conversational_for_chat_prompts(store, tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    fill(store, 20)
    plain = build(store, tmp_path)
    export_snapshot(plain.path, "hf", tmp_path / "hf-plain")
    loaded = datasets.load_from_disk(str(tmp_path / "hf-plain"))
    assert set(loaded) == set(snap.SPLITS)
    assert loaded["train"].column_names == ["prompt", "chosen", "rejected", "margin"]
    assert sum(len(loaded[s]) for s in snap.SPLITS) == 30
    assert isinstance(loaded["train"][0]["prompt"], str)

    with session_scope(store) as s:
        chat = [{"role": "user", "content": "hi"}]
        add_comparisons(
            s,
            [
                pairwise(chat, "hello there", "go away"),
                Comparison(
                    prompt="rank",
                    responses=(Response("a1"), Response("a2"), Response("a3")),
                    judgement=RankingJudgement((1, 0, 2)),
                    annotator=HUMAN,
                    source="unit",
                ),
            ],
        )
    mixed = build(store, tmp_path)
    export_snapshot(mixed.path, "hf", tmp_path / "hf-chat")
    loaded = datasets.load_from_disk(str(tmp_path / "hf-chat"))
    every = [row for s in snap.SPLITS for row in loaded[s]]
    assert len(every) == 30 + 1 + 3
    hello = next(r for r in every if r["chosen"][0]["content"] == "hello there")
    assert hello["prompt"] == chat and hello["rejected"] == [{"role": "assistant", "content": "go away"}]
    text_prompt = next(r for r in every if r["chosen"][0]["content"] == "a2")
    assert text_prompt["prompt"] == [{"role": "user", "content": "rank"}]  # text prompts become a user turn


def test_ab_export_follows_balanced_positions(store, tmp_path) -> None:
    fill(store)
    built = build(store, tmp_path, CompileConfig(balance_positions=True))
    export_snapshot(built.path, "ab-jsonl", tmp_path / "ab")
    rows = [json.loads(line) for s in snap.SPLITS for line in (tmp_path / "ab" / f"{s}.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows].count("a") == 30 and len(rows) == 60
    for r in rows:
        winner = r["response_a"] if r["label"] == "a" else r["response_b"]
        assert winner.startswith(("good", "another"))


def test_cli_build_list_show_export(store_url, tmp_path, monkeypatch) -> None:
    from rewardkit.settings import get_settings
    from rewardkit.store import open_store

    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RK_DATABASE_URL", store_url)
    get_settings.cache_clear()
    try:
        fill(open_store(store_url), 10)
        runner = CliRunner()
        first = json.loads(runner.invoke(app, ["dataset", "build", "--json", "--fractions", "0.5,0.25,0.25"]).output)
        again = json.loads(runner.invoke(app, ["dataset", "build", "--json", "--fractions", "0.5,0.25,0.25"]).output)
        assert first["id"] == again["id"] and first["created"] and not again["created"]
        listed = json.loads(runner.invoke(app, ["dataset", "list", "--json"]).output)
        assert [r["id"] for r in listed] == [first["id"]] and listed[0]["pairs"] == 15
        shown = json.loads(runner.invoke(app, ["dataset", "show", first["id"][:8], "--json"]).output)
        assert shown["options"]["fractions"] == [0.5, 0.25, 0.25]
        human = runner.invoke(app, ["dataset", "show", first["id"]])
        assert "duplicates removed" in human.output and "conflicts" in human.output
        out = tmp_path / "export"
        exported = json.loads(
            runner.invoke(app, ["dataset", "export", first["id"], "--out", str(out), "--json"]).output
        )
        assert sum(exported["rows"].values()) == 15 and (out / "train.jsonl").is_file()
        monkeypatch.setenv("RK_HOME", str(tmp_path / "elsewhere"))  # another RK_HOME, the same database
        get_settings.cache_clear()
        via_registry = json.loads(runner.invoke(app, ["dataset", "show", first["id"], "--json"]).output)
        assert via_registry["id"] == first["id"]
        bad = runner.invoke(app, ["dataset", "build", "--fractions", "0.5,0.5,0.5"])
        assert isinstance(bad.exception, UserError) and "fractions" in str(bad.exception)
        missing = runner.invoke(app, ["dataset", "show", "nope"])
        assert isinstance(missing.exception, UserError)
        empty = runner.invoke(app, ["dataset", "build", "--source", "no-such-source"])
        assert isinstance(empty.exception, UserError) and "yields no pairs (0 comparisons selected" in str(
            empty.exception
        )
        bad_date = runner.invoke(app, ["dataset", "build", "--since", "yesterday"])
        assert isinstance(bad_date.exception, UserError) and "--since" in str(bad_date.exception)
        # every stored pair's chosen answer is the longer one, so length balance empties the train split only
        thinned_run = runner.invoke(
            app, ["dataset", "build", "--json", "--fractions", "0.5,0.25,0.25", "--length-balance", "0.5"]
        )
        thinned = json.loads(thinned_run.stdout)
        assert "warning: split train has no pairs" in thinned_run.stderr  # said at build time, not when train fails
        assert (
            "warning" not in runner.invoke(app, ["dataset", "build", "--json", "--fractions", "0.5,0.25,0.25"]).stderr
        )
        counts = thinned["manifest"]["counts"]
        assert counts["length_balanced_away"] == first["manifest"]["counts"]["per_split"]["train"] > 0
        assert (
            counts["per_split"]["train"] == 0
            and counts["per_split"]["test"] == first["manifest"]["counts"]["per_split"]["test"]
        )
        assert (
            thinned["manifest"]["options"]["length_balance"] == 0.5
            and "length_balance" not in first["manifest"]["options"]
        )
        bad_share = runner.invoke(app, ["dataset", "build", "--length-balance", "1"])
        assert isinstance(bad_share.exception, UserError) and "length_balance" in str(bad_share.exception)
    finally:
        get_settings.cache_clear()
