"""Alembic's environment for the central server's PostgreSQL schema.

Run by :func:`callguard.server.database.migrate` (``callguard server migrate``), which sets
``sqlalchemy.url``. Migrations are plain SQL (``op.execute``): the server talks to
PostgreSQL through psycopg, not through SQLAlchemy models, so there is nothing to
autogenerate from. Each migration runs in its own transaction.
"""

from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
