"""The Ray engine on a real local Ray cluster (2 CPUs), against the local engine on the same shared data.

Scores are compared in fp32, where the scorer promises batch invariance within 1e-3; everything else (row
order within each shard, columns, rows kept) must be identical. Starting actors (a process importing torch
and loading the model) is most of a Ray run's time here, so the shards are scored on Ray once for the module
and the selections run over that output; four runs start actors in all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install rewardkit[ray]")

from rewardkit.engines.ray import RayOptions, RayScoreFn, ShardScorer, list_shards, score_shards  # noqa: E402
from rewardkit.engines.ray_filter import filter_shards, select_shards  # noqa: E402
from rewardkit.scoring.files import score_file  # noqa: E402
from rewardkit.scoring.filter_files import select_scored  # noqa: E402
from rewardkit.scoring.filter_run import FilterOptions, filter_file  # noqa: E402
from rewardkit.scoring.rows import InputError, read_rows  # noqa: E402
from rewardkit.scoring.scorer import BatchScorer, load_scorer  # noqa: E402
from rewardkit.scoring.writers import write_rows  # noqa: E402

OPTIONS = RayOptions(actors=2, scorer={"dtype": "fp32"})


@pytest.fixture(scope="module")
def local_scorer(tiny_model: Path) -> BatchScorer:
    return load_scorer(str(tiny_model), dtype="fp32")


@pytest.fixture(scope="module")
def scored(
    ray_cluster: Any,
    tiny_model: Path,
    local_scorer: BatchScorer,
    gsm8k: tuple,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, Path, Path]:
    """(the Ray run, its output folder, the local engine's output folder) for the GSM8K shards."""
    _, folder = gsm8k
    tmp = tmp_path_factory.mktemp("scored")
    run = score_shards(str(tiny_model), str(folder), str(tmp / "ray"), OPTIONS)
    for shard in sorted(folder.iterdir()):
        score_file(local_scorer, shard, tmp / "local" / shard.name)
    return run, tmp / "ray", tmp / "local"


def assert_same_rows(ray_rows: list[dict[str, Any]], local_rows: list[dict[str, Any]]) -> None:
    assert len(ray_rows) == len(local_rows)
    for a, b in zip(ray_rows, local_rows, strict=True):
        assert list(a) == list(b)  # the same columns in the same order
        assert (a["prompt"], a["response"], a["precision"]) == (b["prompt"], b["response"], b["precision"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)
        assert a["score_normalized"] == pytest.approx(b["score_normalized"], abs=1e-3)


SHARDS = ("part-000.parquet", "part-001.parquet", "part-002.parquet")


def test_score_on_ray_matches_the_local_engine_shard_by_shard(scored: tuple) -> None:
    run, on_ray, local = scored
    assert run.rows == 60 and [Path(o).name for o in run.outputs] == list(SHARDS) and run.precision == "fp32"
    assert 0 < run.scoring_seconds <= run.seconds
    for name in SHARDS:
        assert_same_rows(read_rows(on_ray / name), read_rows(local / name))


def test_filter_on_ray_end_to_end_keeps_what_the_local_engine_keeps(
    ray_cluster: Any, tiny_model: Path, local_scorer: BatchScorer, gsm8k: tuple, tmp_path: Path
) -> None:
    _, folder = gsm8k
    whole = tmp_path / "whole.jsonl"  # the shards in order: the row order the Ray engine selects over
    write_rows([row for name in SHARDS for row in read_rows(folder / name)], whole)
    options = FilterOptions(keep="top:30%")
    local = filter_file(local_scorer, whole, tmp_path / "kept.jsonl", options)
    on_ray = filter_shards(str(tiny_model), str(folder), tmp_path / "ray", options, OPTIONS)
    assert (on_ray["rows"], on_ray["kept"], local["kept"]) == (60, 18, 18)
    ray_kept = [row for name in SHARDS for row in read_rows(tmp_path / "ray" / name)]
    local_kept = read_rows(tmp_path / "kept.jsonl")
    assert [(r["prompt"], r["response"]) for r in ray_kept] == [(r["prompt"], r["response"]) for r in local_kept]
    manifest = json.loads((tmp_path / "ray" / "_manifest.json").read_text())
    assert manifest["engine"] == "ray" and manifest["options"]["keep"] == "top:30%"
    assert manifest["model_version"] == local_scorer.version == local["model_version"]
    assert manifest["input_sha256"] != local["input_sha256"]  # shards hashed, not the one file
    assert (tmp_path / "ray" / "_hist.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "ray" / "_scored").exists()


@pytest.mark.parametrize(
    ("keep", "normalized"),
    [("best-per-prompt", False), ("top-k-per-prompt:2", False), ("threshold:MEDIAN", True), ("top:7", False)],
)
def test_ray_selection_matches_the_local_one(
    ray_cluster: Any, scored: tuple, tmp_path: Path, keep: str, normalized: bool
) -> None:
    _, on_ray, local = scored
    if keep == "threshold:MEDIAN":  # the tiny model's scale is arbitrary: a threshold in the middle of its scores
        median = np.median([r["score_normalized"] for n in SHARDS for r in read_rows(local / n)])
        keep = f"threshold:{median}"
    options = FilterOptions(keep=keep, normalized=normalized)
    mine = select_shards([on_ray / n for n in SHARDS], on_ray, tmp_path / "ray", options)
    theirs = select_scored(
        [local / n for n in SHARDS],
        [tmp_path / "local" / n for n in SHARDS],
        options.rule,
        score_field=options.score_field,
    )
    assert mine.keep.tolist() == theirs.keep.tolist() and 0 < mine.written < 60
    for name in SHARDS:
        assert read_rows(tmp_path / "ray" / name) == read_rows(tmp_path / "local" / name)


def test_preference_pairs_on_ray_match_the_local_engine(ray_cluster: Any, scored: tuple, tmp_path: Path) -> None:
    _, on_ray, local = scored
    options = FilterOptions(min_margin=0.0)
    select_shards([on_ray / n for n in SHARDS], on_ray, tmp_path / "ray", options)
    select_scored([local / n for n in SHARDS], [tmp_path / "pairs.jsonl"], None, min_margin=0.0)
    ours, theirs = read_rows(tmp_path / "ray" / "pairs.jsonl"), read_rows(tmp_path / "pairs.jsonl")
    assert len(theirs) == 15  # one pair per prompt at margin 0: its four rows sit in different shards
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in ours] == [
        (p["prompt"], p["chosen"], p["rejected"]) for p in theirs
    ]


def test_an_actor_killed_mid_run_is_restarted_and_the_output_is_complete(
    ray_cluster: Any, tiny_model: Path, scored: tuple, gsm8k: tuple, tmp_path: Path
) -> None:
    """Also: the input and output named as file:// URIs, and the shards written as JSONL."""
    _, _, local = scored
    _, folder = gsm8k
    marker = tmp_path / "crashed-once"

    class CrashOnce(ShardScorer):  # defined here: Ray pickles it by value into the actor
        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
            if not marker.exists():
                marker.touch()
                os._exit(1)  # the actor's process dies as if its node were lost, mid-shard
            return super().__call__(batch)

    out = tmp_path / "out"
    run = score_shards(
        str(tiny_model), folder.as_uri(), out.as_uri(), OPTIONS, out_suffix=".jsonl", actor_cls=CrashOnce
    )
    assert marker.exists()  # an actor did die
    assert run.rows == 60
    for name in SHARDS:
        assert_same_rows(read_rows(out / name.replace(".parquet", ".jsonl")), read_rows(local / name))


@pytest.mark.parametrize("command", ["score", "filter"])
def test_a_bad_shard_is_named_with_its_line_and_nothing_is_scored(
    ray_cluster: Any, tiny_model: Path, tmp_path: Path, command: str
) -> None:
    """Through the CLI (``rewardkit score|filter --engine ray``), on the session's cluster."""
    from typer.testing import CliRunner

    from rewardkit.cli.main import app
    from rewardkit.cli.output import UserError

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"prompt": "p", "response": "r"}\n' * 3)
    (folder / "b.jsonl").write_text('{"prompt": "p", "response": "r"}\n{"prompt": "p", "response": 7}\n')
    extra = ["--keep", "top:1"] if command == "filter" else []
    res = CliRunner().invoke(
        app, [command, str(folder), "-m", str(tiny_model), "-o", str(tmp_path / "out"), "--engine", "ray", *extra]
    )
    assert isinstance(res.exception, UserError)
    assert str(res.exception) == f"{folder / 'b.jsonl'}, line 2: field 'response': expected text, got a number 7"
    assert not (tmp_path / "out").exists()  # every shard is checked before any is scored


def test_shards_are_listed_in_name_order_without_hidden_files(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.parquet", "_SUCCESS", ".tmp.jsonl", "sub/c.csv", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert [rel for _, rel in list_shards(str(tmp_path))] == ["a.parquet", "b.jsonl", "sub/c.csv"]
    with pytest.raises(InputError, match="no such file or folder"):
        list_shards(str(tmp_path / "missing"))


def test_eval_score_fn_on_ray_matches_the_local_scorer(
    ray_cluster: Any, tiny_model: Path, local_scorer: BatchScorer, gsm8k: tuple
) -> None:
    rows, _ = gsm8k
    prompts = [r["prompt"] for r in rows] + [[{"role": "user", "content": "chat?"}]]
    responses = [r["response"] for r in rows] + ["yes"]
    fn = RayScoreFn(str(tiny_model), OPTIONS, rows_per_batch=16)
    scores, features = fn.with_features(prompts, responses)
    local = local_scorer.score(prompts, responses)
    np.testing.assert_allclose(scores, local.raw, atol=1e-3)
    np.testing.assert_allclose(features["embedding_norm"], local.embedding_norm, rtol=1e-3)
