"""Alembic environment: migrations run on the connection handed over by ``store.engine.migrate``."""

from alembic import context

from rewardkit.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
