"""The alias follower on a real store: it applies each move once, refuses a version whose files changed (the old
one keeps serving) and applies it once fixed; registry references parse or fail with the expected form."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from rewardkit.registry.aliases import rollback, set_alias
from rewardkit.registry.follow import AliasFollower, parse_registry_ref
from rewardkit.registry.versions import RegistryError, register_version
from rewardkit.store import registry as q
from rewardkit.store import session_scope


def test_parse_registry_ref() -> None:
    assert (parse_registry_ref("registry:rm@champion").name, parse_registry_ref("registry:rm@champion").alias) == (
        "rm",
        "champion",
    )
    assert parse_registry_ref("registry:rm").alias == "champion"
    with pytest.raises(RegistryError, match="expected registry:NAME@ALIAS"):
        parse_registry_ref("registry:@x")


def test_follower_applies_moves_and_skips_a_tampered_version(store, tiny_a: Path, tiny_b: Path, tmp_path: Path) -> None:
    v1, _ = register_version(store, name="rm", source=tiny_a, created_by="t", registry_dir=tmp_path)
    v2, _ = register_version(store, name="rm", source=tiny_b, created_by="t", registry_dir=tmp_path)
    set_alias(store, name="rm", alias="champion", version=1, who="t")
    loaded: list[tuple[str, int]] = []

    async def on_move(path: str, version: int) -> None:
        loaded.append((path, version))

    async def scenario() -> None:
        follower = AliasFollower(store, "rm", "champion", on_move, interval_s=0.05)
        assert await follower.poll_once() and follower.version == 1
        assert not await follower.poll_once()  # nothing moved: nothing loaded
        with session_scope(store) as s:
            q.move_alias(s, name="rm", alias="champion", to_version=2, expected_from=1, kind="promote", who="t")
        card = Path(v2.path) / "rewardkit.json"
        saved = card.read_bytes()
        card.write_text("{}")  # tampered with after registration
        assert not await follower.poll_once() and follower.version == 1  # refused: v1 keeps serving
        assert "changed since registration" in follower.last_error
        card.write_bytes(saved)
        follower.start(current=follower.version)  # the background loop picks it up
        for _ in range(100):
            if follower.version == 2:
                break
            await asyncio.sleep(0.05)
        rollback(store, name="rm", who="t")
        for _ in range(100):
            if follower.version == 1:
                break
            await asyncio.sleep(0.05)
        await follower.stop()

    asyncio.run(scenario())
    assert [v for _, v in loaded] == [1, 2, 1] and loaded[1][0] == v2.path
    shutil.rmtree(tmp_path / "rm")
