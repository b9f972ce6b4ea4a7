"""Versions and aliases on a real database: registration copies and pins the files, a changed folder is refused,
racing alias moves conflict, rollback goes back one move, and the history is append-only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rewardkit.registry.aliases import history, rollback, set_alias
from rewardkit.registry.files import tree_sha256
from rewardkit.registry.versions import RegistryError, get_version, register_version, resolve_version
from rewardkit.store import registry as q
from rewardkit.store import session_scope


def test_register_copies_pins_and_is_idempotent(store, tiny_a: Path, tiny_b: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    v1, created = register_version(store, name="rm", source=tiny_a, created_by="alice", registry_dir=reg)
    assert created and v1.version == 1 and v1.sha256 == tree_sha256(tiny_a)
    assert Path(v1.path) == (reg / "rm" / "v1").resolve() and Path(v1.path) != tiny_a
    again, created = register_version(store, name="rm", source=tiny_a, created_by="bob", registry_dir=reg)
    assert not created and again.version == 1  # same files: the same version
    v2, _ = register_version(store, name="rm", source=tiny_b, created_by="alice", registry_dir=reg)
    assert v2.version == 2
    assert {p.name for p in (reg / "rm").iterdir()} == {"v1", "v2"}  # no temporary copy left behind


def test_a_changed_folder_is_refused_on_load(store, tiny_a: Path, tmp_path: Path) -> None:
    v1, _ = register_version(store, name="rm", source=tiny_a, created_by="t", registry_dir=tmp_path)
    assert resolve_version(store, name="rm", version=1).sha256 == v1.sha256
    (Path(v1.path) / "rewardkit.json").write_text('{"temperature": 9}')
    with pytest.raises(RegistryError, match=r"rm v1: the files in .* changed since registration"):
        resolve_version(store, name="rm", version=1)


@pytest.mark.parametrize(
    ("source", "message"),
    [("missing", "is not a folder"), ("empty", "no config.json"), ("nohead", "2 output labels")],
)
def test_a_folder_that_is_not_a_reward_model_is_refused(store, tiny_a: Path, tmp_path: Path, source, message) -> None:
    folder = tmp_path / source
    if source == "empty":
        folder.mkdir()
    if source == "nohead":
        shutil.copytree(tiny_a, folder)
        cfg = (folder / "config.json").read_text().replace('"regression"', '"single_label_classification"')
        (folder / "config.json").write_text(cfg.replace("{", '{"num_labels": 2, ', 1))
    with pytest.raises(RegistryError, match=message):
        register_version(store, name="rm", source=folder, created_by="t", registry_dir=tmp_path / "reg")
    with session_scope(store) as s:
        assert q.list_model_versions(s) == []  # nothing changed
    assert not any((tmp_path / "reg" / "rm").glob("*")) if (tmp_path / "reg" / "rm").exists() else True


def test_unknown_names_and_versions_say_what_exists(store, tiny_a: Path, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        get_version(store, name="nope", version=1)
    register_version(store, name="rm", source=tiny_a, created_by="t", registry_dir=tmp_path)
    with pytest.raises(RegistryError, match=r"rm has no version 7 \(versions: 1\)"):
        get_version(store, name="rm", version=7)
    with pytest.raises(RegistryError, match="rm has no alias 'champion'"):
        resolve_version(store, name="rm", alias="champion")
    with pytest.raises(RegistryError, match="model name 'bad name'"):
        register_version(store, name="bad name", source=tiny_a, created_by="t", registry_dir=tmp_path)


def test_racing_alias_moves_conflict_and_change_nothing(store, tiny_a: Path, tiny_b: Path, tmp_path: Path) -> None:
    register_version(store, name="rm", source=tiny_a, created_by="t", registry_dir=tmp_path)
    register_version(store, name="rm", source=tiny_b, created_by="t", registry_dir=tmp_path)
    set_alias(store, name="rm", alias="champion", version=1, who="t")
    # two movers both read champion = v1; the first move wins, the second finds the alias moved
    with session_scope(store) as s:
        q.move_alias(s, name="rm", alias="champion", to_version=2, expected_from=1, kind="promote", who="first")
    with pytest.raises(
        q.AliasConflict, match=r"rm@champion changed while this move was prepared \(it was v1, it is now v2\)"
    ):
        with session_scope(store) as s:
            q.move_alias(s, name="rm", alias="champion", to_version=1, expected_from=1, kind="promote", who="second")
    with session_scope(store) as s:
        assert q.alias_version(s, name="rm", alias="champion") == 2
        assert [m.who for m in q.alias_history(s, name="rm")] == ["first", "t"]  # the loser left no history row
    # creating an alias that a racer created first is a conflict too
    with pytest.raises(q.AliasConflict, match="it was unset, it is now v2"):
        with session_scope(store) as s:
            q.move_alias(s, name="rm", alias="champion", to_version=1, expected_from=None, kind="set", who="x")


def test_rollback_goes_back_one_move_and_is_recorded(store, tiny_a: Path, tiny_b: Path, tmp_path: Path) -> None:
    register_version(store, name="rm", source=tiny_a, created_by="t", registry_dir=tmp_path)
    register_version(store, name="rm", source=tiny_b, created_by="t", registry_dir=tmp_path)
    set_alias(store, name="rm", alias="champion", version=1, who="t")
    with pytest.raises(RegistryError, match="champion moves by `registry promote`"):
        set_alias(store, name="rm", alias="champion", version=2, who="t")  # once set, only promote/rollback
    with session_scope(store) as s:
        q.move_alias(
            s, name="rm", alias="champion", to_version=2, expected_from=1, kind="promote", who="p", forced=True
        )
    move = rollback(store, name="rm", who="oncall", why="bad deploy")
    assert (move.from_version, move.to_version, move.kind) == (2, 1, "rollback")
    with pytest.raises(RegistryError, match=r"rm@champion \(v1\) has no earlier version to roll back to"):
        rollback(store, name="rm", who="oncall")
    kinds = [(h["kind"], h["from_version"], h["to_version"], h["forced"]) for h in history(store, name="rm")]
    assert kinds == [("rollback", 2, 1, False), ("promote", 1, 2, True), ("set", None, 1, False)]
