"""Engines, sessions and schema set-up for SQLite (default) and PostgreSQL.

SQLite is tuned for durability under concurrent writers and crashes: WAL (readers never block the writer),
``synchronous=FULL`` (a committed transaction survives power loss, which the kill test relies on), a busy
timeout (a second writer waits instead of failing with "database is locked") and foreign keys on. For bulk
ingestion: a 64 MB page cache (random hash keys touch pages all over the B-trees) and a WAL checkpoint every
16k pages instead of 1k (profiling showed commits, i.e. checkpoints, at 25% of import time; bigger checkpoints
write each hot page once instead of many times). benchmarks/import_bench.py measures the effect.

Migrations are serialized, so a fleet of workers can open a new store together: on PostgreSQL by a
transaction-scoped advisory lock taken before Alembic reads its version table, on SQLite by an exclusive
``flock`` on a lock file beside the database (SQLite runs DDL outside a transaction, so two processes
creating the schema at once both found it missing and one died on "table alembic_version already exists").

Opening a store that is already at the newest revision (every open but the first after an upgrade) skips Alembic
altogether: the head's id is read from the migration files' text and compared with ``alembic_version``, one
query. Importing Alembic and building its environment cost about 0.5 s, most of an idle ``loop tick``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK_KEY = 0x726B_6D69_6772  # "rkmigr": the PostgreSQL advisory lock every migrating process takes
MIGRATIONS = Path(__file__).parent / "migrations"
# a migration file's ``revision = "0005"`` / ``down_revision: str | None = "0004"`` lines (Alembic's templates)
_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.*?)\s*(?:#.*)?$""", re.MULTILINE)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA wal_autocheckpoint=16384")
    cursor.close()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (made if missing), held for the block; waits for other holders.
    Where no lock can be had (a read-only folder, a file system without locks, no fcntl) the block runs
    unlocked, as before the lock existed, rather than refusing to open the store."""
    try:
        import fcntl

        fh = path.open("a")
    except (ImportError, OSError):
        yield
        return
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def migration_lock(engine: Engine) -> AbstractContextManager[None]:
    """The SQLite side of the migration lock: a file ``<database>-migrate-lock`` beside the database."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return nullcontext()
    path = Path(database)
    return _file_lock(path.with_name(path.name + "-migrate-lock"))


# Alembic's migration context is module-global, so two threads of one process must not migrate at once (the
# service opens its store in one thread while a registry follower opens it in another: KeyError 'config'); the
# file and advisory locks below serialize processes, this one the threads of a process.
_MIGRATING = threading.Lock()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic (idempotent; safe when many processes, and many threads of
    one process, run it at once)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # released when this transaction ends
            connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def single_head(revisions: dict[str, str]) -> str | None:
    """The one revision no other revision names as its parent, given revision -> down_revision (each as written in
    the file, e.g. ``'0004'`` or ``None``); None when there is no single head (branches, a merge, odd text), which
    sends the caller down Alembic's own path."""
    ids = {_literal(rev) for rev in revisions}
    parents = {_literal(down) for down in revisions.values()}
    if None in ids:
        return None
    heads = ids - parents
    return heads.pop() if len(heads) == 1 else None


def _literal(text: str) -> str | None:
    """``'0004'`` or ``"0004"`` -> 0004; ``None`` -> None; anything else (a tuple of parents) -> None."""
    match = re.fullmatch(r"""(['"])([\w.-]+)\1""", text.strip())
    return match.group(2) if match else None


def head_revision(folder: Path = MIGRATIONS / "versions") -> str | None:
    """The newest migration's id, from the migration files' text without importing Alembic (None: not one head)."""
    revisions: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")):
        lines = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if "revision" not in lines or "down_revision" not in lines:
            return None
        revisions[lines["revision"]] = lines["down_revision"]
    return single_head(revisions) if revisions else None


def at_head(engine: Engine) -> bool:
    """Whether the database's ``alembic_version`` holds exactly the newest migration's id (one query). A missing
    version table (a new database) is False; failing to connect at all raises, as migrating would."""
    head = head_revision()
    if head is None:
        return False
    with engine.connect() as connection:
        try:
            stamped = connection.execute(text("select version_num from alembic_version")).scalars().all()
        except DBAPIError:
            return False
    return stamped == [head]


def open_store(url: str | None = None) -> sessionmaker[Session]:
    """An engine for ``url`` (default: the settings' database), migrated to the latest schema (one query when it
    is already there)."""
    if url is None:
        from rewardkit.settings import get_settings

        url = get_settings().resolved_database_url
    engine = make_engine(url)
    if not at_head(engine):
        migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (nothing half-written)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
