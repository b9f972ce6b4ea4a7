"""Many processes on one store: a fleet of workers opening a new store together, and imports whose
duplicate check is overtaken by another writer. Real processes and a real second connection, on SQLite and
(with RK_TEST_POSTGRES_URL) PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, event, text

from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
from rewardkit.store import open_store, session_scope
from rewardkit.store import queries as q

WORKER = """
import sys, time
from pathlib import Path
from rewardkit.store import open_store
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
try:
    open_store(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, str(exc).splitlines()[0])
    sys.exit(1)
"""


def _empty(url: str) -> None:
    """Drop whatever an earlier round created, so the next round starts on a store without a schema."""
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.split("///", 1)[1] + suffix).unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("drop schema public cascade"))
        conn.execute(text("create schema public"))
    engine.dispose()


def head_revision() -> str:
    """The newest migration's revision (what every worker must have brought the store to)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import rewardkit.store.engine as engine

    config = Config()
    config.set_main_option("script_location", str(Path(engine.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def test_workers_opening_a_new_store_together_all_succeed(store_url: str, tmp_path: Path) -> None:
    # Before the migration lock: on SQLite 3 of 12 workers died with "table alembic_version already exists"
    # (or another table), on PostgreSQL 1 of 12 with DuplicateTable.
    failures = []
    for round_ in range(3):
        _empty(store_url)
        go = tmp_path / f"go-{round_}"
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, store_url, str(go)], stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        time.sleep(2.5)  # every worker has imported rewardkit and waits
        go.touch()
        for w in workers:
            out, _ = w.communicate(timeout=120)
            if w.returncode != 0:
                failures.append(out.strip())
    assert failures == []
    factory = open_store(store_url)
    with factory() as s:
        assert s.execute(text("select version_num from alembic_version")).scalar_one() == head_revision()
    factory.kw["bind"].dispose()


def _pair(i: int) -> Comparison:
    return Comparison(
        prompt=f"p{i}",
        responses=(Response("x"), Response("y")),
        judgement=PairwiseJudgement("a"),
        annotator=Annotator("w", "human"),
        source="unit",
    )


def test_inserted_counts_what_this_writer_stored_when_another_overtakes_its_check(store) -> None:  # noqa: ANN001
    # Another writer commits rows 3..5 after this batch checked which keys were stored and before it inserts:
    # the batch must count the 3 rows it stored, not the 6 its check found missing (two concurrent imports
    # of one file reported 9,317 + 16,702 imported while 18,168 rows were stored).
    engine = store.kw["bind"]
    fired = []

    def overtake(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if fired or not statement.lstrip().upper().startswith("SELECT COMPARISONS.ID"):
            return
        fired.append(True)
        with session_scope(store) as other:  # its own connection from the pool, committed now
            assert q.add_comparisons(other, [_pair(i) for i in range(3, 6)]).inserted == 3

    event.listen(engine, "after_cursor_execute", overtake)
    try:
        with session_scope(store) as s:
            result = q.add_comparisons(s, [_pair(i) for i in range(6)])
    finally:
        event.remove(engine, "after_cursor_execute", overtake)
    assert fired
    assert result == q.AddResult(inserted=3, duplicates=3)
    with store() as s:
        assert q.table_counts(s)["comparisons"] == 6


def test_two_concurrent_imports_into_a_new_store_count_what_each_stored(store_url: str, tmp_path: Path) -> None:
    import json

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"prompt": f"q{i}?", "chosen": f"yes {i}", "rejected": f"no {i}"}) + "\n" for i in range(6000)
        )
    )
    env = {**os.environ, "RK_HOME": str(tmp_path / "home"), "RK_DATABASE_URL": store_url}
    command = [sys.executable, "-m", "rewardkit.cli.main", "import", "trl", str(rows), "--batch-size", "200", "--json"]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    counts = [json.loads(out)["counts"] for out, _ in results]
    factory = open_store(store_url)
    with factory() as s:
        stored = q.table_counts(s)["comparisons"]
    factory.kw["bind"].dispose()
    assert stored == 6000
    assert sum(c["imported"] for c in counts) == stored
    assert all(c["imported"] + c["duplicates"] == 6000 for c in counts)
