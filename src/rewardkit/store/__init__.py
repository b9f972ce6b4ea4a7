"""The preference store: typed tables, plain query functions over a Session, Alembic migrations."""

from rewardkit.store.engine import make_engine, migrate, open_store, session_scope

__all__ = ["make_engine", "migrate", "open_store", "session_scope"]
