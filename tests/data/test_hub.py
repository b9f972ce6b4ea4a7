"""Hugging Face Hub dataset ids (``rewardkit.data.hub``): which names are ids, the saved copy every command
reads, and the one-line error where the Hub cannot provide one. The fetch itself (``datasets.load_dataset``
against the Hub) cannot run here: neither this machine nor CI reaches a Hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.data.hub import HubDataset, HubDatasetError, folder_name, hub_dataset, resolve_data, save_dataset_dict
from rewardkit.data.pair_files import read_pair_file

datasets = pytest.importorskip("datasets")


def test_which_names_are_hub_dataset_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub_dataset("trl-lib/ultrafeedback_binarized") == HubDataset("trl-lib/ultrafeedback_binarized")
    assert hub_dataset("Anthropic/hh-rlhf/harmless-base") == HubDataset("Anthropic/hh-rlhf", "harmless-base")
    assert hub_dataset("allenai/reward-bench:raw") == HubDataset("allenai/reward-bench", None, "raw")
    assert hub_dataset("o/n/a/b:cfg") == HubDataset("o/n", "a/b", "cfg")
    # paths, not ids: a data file's name (a mistyped file is a missing file, not a download), relative or
    # absolute paths, a snapshot id (no owner), names the Hub does not allow
    for name in (
        "runs/train.jsonl",
        "data/pairs.parquet",
        "x/y.json.gz",
        "./a/b",
        "../a/b",
        "/abs/a/b",
        "~/a/b",
        "C:/a/b",
        "3f9a2c",
        "",
        "a/b c",
        "a//b",
        "a/b:",
        "-a/b",
    ):
        assert hub_dataset(name) is None, name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "local").mkdir(parents=True)  # a folder here wins over the id it spells
    assert hub_dataset("owner/local") is None
    assert resolve_data("owner/local") == Path("owner/local") and resolve_data("nope.jsonl") == Path("nope.jsonl")
    assert folder_name(HubDataset("o/n", "a/b", "cfg")) == "o--n--a--b@cfg"


def _prefs(n: int, tag: str = "") -> object:
    return datasets.Dataset.from_dict(
        {
            "prompt": [f"q{i}{tag}" for i in range(n)],
            "chosen": [f"good {i}" for i in range(n)],
            "rejected": [f"bad {i}" for i in range(n)],
        }
    )


def test_a_loaded_dataset_is_saved_once_and_read_like_any_datasets_folder(tmp_path: Path) -> None:
    parent = tmp_path / "hub" / "owner--prefs"
    data = datasets.DatasetDict({"train": _prefs(6), "test": _prefs(2, "t")})
    folder = save_dataset_dict(data, parent)
    train, test = read_pair_file(folder, "train"), read_pair_file(folder, "test")
    assert [(p.prompt, p.chosen, p.rejected) for p in train] == [(f"q{i}", f"good {i}", f"bad {i}") for i in range(6)]
    assert [p.prompt for p in test] == ["q0t", "q1t"]
    stamp = (folder / "dataset_dict.json").stat().st_mtime_ns
    assert save_dataset_dict(data, parent) == folder  # the same data: the copy saved before, not saved again
    assert (folder / "dataset_dict.json").stat().st_mtime_ns == stamp
    newer = save_dataset_dict(datasets.DatasetDict({"train": _prefs(7)}), parent)  # a new revision: its own folder
    assert newer != folder and len(read_pair_file(newer, "train")) == 7
    assert sorted(p.name for p in parent.iterdir()) == sorted([folder.name, newer.name])  # no temporaries left


def test_one_split_of_a_saved_hub_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``resolve_data(..., split=)``: an import takes one split (train unless --split), naming the others
    when it is missing. The fetch is replaced by saving a local DatasetDict: no Hub is reachable here."""
    from rewardkit.data import hub

    data = datasets.DatasetDict({"train": _prefs(6), "test": _prefs(2, "t")})
    monkeypatch.setattr(
        hub, "save_hub_dataset", lambda spec, root, name: save_dataset_dict(data, root / folder_name(spec))
    )
    whole = resolve_data("owner/prefs", home=tmp_path)
    assert resolve_data("owner/prefs", home=tmp_path, split="train") == whole / "train"
    assert [p.prompt for p in read_pair_file(resolve_data("owner/prefs", home=tmp_path, split="test"))] == [
        "q0t",
        "q1t",
    ]
    with pytest.raises(HubDatasetError, match="owner/prefs: no split 'train_prefs'; its splits: train, test"):
        resolve_data("owner/prefs", home=tmp_path, split="train_prefs")


def _rk(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RK_HOME": str(tmp_path / "home"),
        "RK_DATABASE_URL": f"sqlite:///{tmp_path / 'rk.db'}",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    return subprocess.run(
        [sys.executable, "-m", "rewardkit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


@pytest.mark.slow
def test_an_id_the_hub_cannot_provide_is_one_line_for_import_and_train(tmp_path: Path) -> None:
    for args in (("import", "trl", "owner/prefs"), ("train", "--data", "owner/prefs:cfg", "--out", "out")):
        proc = _rk(*args, tmp_path=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "not a file or folder here, and the Hugging Face Hub could not provide it as a dataset" in lines[0]
        assert "owner/prefs" in lines[0]
    assert not (tmp_path / "home" / "hub").exists() or not any((tmp_path / "home" / "hub").rglob("dataset_dict.json"))


def test_eval_data_names_the_id_it_could_not_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardkit.evaluate.inputs import EvalDataError, load_eval_pairs

    def unreachable(spec: HubDataset, root: Path, name: str) -> Path:
        raise HubDatasetError(f"{name}: not a file or folder here, and the Hugging Face Hub could not provide it")

    monkeypatch.setattr("rewardkit.data.hub.save_hub_dataset", unreachable)  # the Hub itself: not reachable here
    with pytest.raises(EvalDataError, match="owner/prefs: not a file or folder here"):
        load_eval_pairs("owner/prefs", snapshot_dir=tmp_path)


def test_training_on_a_hub_dataset_without_a_train_split_names_the_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rewardkit.data import hub
    from rewardkit.data.training_data import load_pairs

    data = datasets.DatasetDict({"train_prefs": _prefs(6), "test_prefs": _prefs(2, "t")})  # HuggingFaceH4's split names
    monkeypatch.setattr(
        hub, "save_hub_dataset", lambda spec, root, name: save_dataset_dict(data, root / folder_name(spec))
    )
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    from rewardkit.settings import get_settings

    get_settings.cache_clear()
    try:
        with pytest.raises(
            ValueError, match=r"owner/uf: no 'train' split to train on \(its splits: train_prefs, test_prefs\)"
        ):
            load_pairs("owner/uf")
    finally:
        get_settings.cache_clear()


def test_training_takes_the_split_asked_for_and_the_datasets_validation_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train --data ID --split NAME``: the pairs of that split, validated on the dataset's validation split
    where it has one (else carved by prompt); the data id says which split. No Hub is reachable here: the fetch
    saves a local DatasetDict, as above."""
    from rewardkit.data import hub
    from rewardkit.data.training_data import load_pairs
    from rewardkit.settings import get_settings

    with_val = datasets.DatasetDict({"train_prefs": _prefs(40), "validation": _prefs(3, "v"), "test_prefs": _prefs(2)})
    without_val = datasets.DatasetDict({"train_prefs": _prefs(40), "test_prefs": _prefs(5, "t")})
    sets = {"owner/uf": with_val, "owner/uf2": without_val}
    monkeypatch.setattr(
        hub, "save_hub_dataset", lambda spec, root, name: save_dataset_dict(sets[name], root / folder_name(spec))
    )
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        train, val, data_id = load_pairs("owner/uf", split="train_prefs")
        assert [p.prompt for p in train] == [f"q{i}" for i in range(40)]
        assert [p.prompt for p in val] == ["q0v", "q1v", "q2v"] and data_id.endswith(":train_prefs")
        train, val, _ = load_pairs("owner/uf2", split="train_prefs", validation_fraction=0.25)
        assert len(train) + len(val) == 40 and val and not {p.prompt for p in train} & {p.prompt for p in val}
        test, _, _ = load_pairs("owner/uf2", split="test_prefs", validation_fraction=0.4)
        assert {p.prompt for p in test} <= {f"q{i}t" for i in range(5)}  # the split asked for, nothing else
        with pytest.raises(ValueError, match=r"owner/uf: no 'train' split to train on \(its splits: train_prefs, "):
            load_pairs("owner/uf")
    finally:
        get_settings.cache_clear()


def test_split_on_a_single_file_or_a_snapshot_is_an_error_naming_it(tmp_path: Path) -> None:
    from rewardkit.data.training_data import load_pairs

    rows = tmp_path / "pairs.jsonl"
    rows.write_text("".join(f'{{"prompt": "q{i}", "chosen": "a", "rejected": "b"}}\n' for i in range(20)))
    with pytest.raises(ValueError, match=r"pairs.jsonl: a single file has no splits to choose from \(`split` 'test'\)"):
        load_pairs(str(rows), split="test")
    assert len(load_pairs(str(rows))[0]) + len(load_pairs(str(rows))[1]) == 20  # the default split reads it whole


@pytest.mark.slow
def test_train_split_mistake_is_one_line_naming_the_option(tmp_path: Path) -> None:
    rows = tmp_path / "pairs.jsonl"
    rows.write_text("".join(f'{{"prompt": "q{i}", "chosen": "a", "rejected": "b"}}\n' for i in range(20)))
    proc = _rk("train", "--data", str(rows), "--split", "test", "--out", "out", tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "a single file has no splits to choose from (--split 'test')" in lines[0], lines
