"""Opening a store already at the newest migration skips Alembic (one query), on SQLite and PostgreSQL; a new or
older database still goes through Alembic and ends at the head."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from rewardkit.store import engine as store_engine
from rewardkit.store.engine import head_revision, make_engine, migrate, open_store, single_head


def alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(store_engine.MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_revision() == alembic_head()


def test_single_head_by_hand() -> None:
    chain = {"'0001'": "None", '"0002"': "'0001'", "'0003'": '"0002"'}
    assert single_head(chain) == "0003"
    assert single_head({**chain, "'0004'": "'0002'"}) is None  # two heads (a branch): Alembic decides
    assert single_head({"'0001'": "None", "'0002'": "('0001', 'x')"}) is None  # a merge's tuple: Alembic decides
    assert single_head({"REV": "None"}) is None  # not a string literal: Alembic decides


def test_head_revision_of_files_with_annotations_and_of_a_branch(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision: str = "a1"\ndown_revision: str | None = None  # first\n')
    (tmp_path / "b.py").write_text('"""doc"""\nrevision: str = "b2"\ndown_revision: str | None = "a1"\n')
    assert head_revision(tmp_path) == "b2"
    (tmp_path / "c.py").write_text('revision = "c3"\ndown_revision = "a1"\n')
    assert head_revision(tmp_path) is None
    (tmp_path / "c.py").write_text("x = 1\n")  # no revision line: not a migration we can read, so no shortcut
    assert head_revision(tmp_path) is None


def stamped(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("select version_num from alembic_version")).scalars())
    finally:
        engine.dispose()


def test_a_store_at_head_opens_without_alembic(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = open_store(store_url)  # a new database: Alembic creates the schema
    factory.kw["bind"].dispose()
    assert stamped(store_url) == [head_revision()]

    def refuse(*_args: object, **_kw: object) -> None:
        raise AssertionError("migrate() ran on a database already at the head revision")

    monkeypatch.setattr(store_engine, "migrate", refuse)
    factory = open_store(store_url)
    with factory() as s:
        assert s.execute(text("select count(*) from comparisons")).scalar_one() == 0
    factory.kw["bind"].dispose()


def test_an_older_database_is_upgraded(store_url: str) -> None:
    head = head_revision()
    assert head is not None and head != "0001"
    engine = make_engine(store_url)
    migrate(engine, "0001")
    engine.dispose()
    assert stamped(store_url) == ["0001"]
    factory = open_store(store_url)
    tables = set(inspect(factory.kw["bind"]).get_table_names())
    factory.kw["bind"].dispose()
    assert stamped(store_url) == [head]
    assert {"loop_runs", "model_versions"} <= tables  # from later migrations


def test_an_unreachable_database_still_fails_when_opened() -> None:
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none")
