"""The central server's PostgreSQL: schema migrations (Alembic) and the connection pool.

Desks never talk to PostgreSQL; only the server does, with psycopg 3 (async) through a
small pool. The schema is versioned by Alembic (``callguard/server/migrations``); the server
refuses to start on a database that is not at the newest version, and ``callguard server
migrate`` brings it there (each step in its own transaction).
"""

from __future__ import annotations

import logging
from pathlib import Path

from callguard.errors import ResourceError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseError(ResourceError):
    """PostgreSQL cannot be reached, or its schema is not the one this server needs."""


def sqlalchemy_url(dsn: str) -> str:
    """A libpq DSN (``postgresql://...``) as SQLAlchemy's URL for psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix):]
    if dsn.startswith("postgresql+psycopg://"):
        return dsn
    raise DatabaseError("server.database must be a postgresql:// connection URL")


def _alembic_config(dsn: str):  # -> alembic.config.Config
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(dsn).replace("%", "%%"))
    return cfg


def migrate(dsn: str) -> str:
    """Bring the database to the newest schema; return its revision."""
    from alembic import command
    from sqlalchemy.exc import SQLAlchemyError

    try:
        command.upgrade(_alembic_config(dsn), "head")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"the schema migration failed: {exc}") from exc
    return head_revision()


def head_revision() -> str:
    """The newest schema revision this code knows."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config("postgresql://x@/x")
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:
        raise DatabaseError("no schema migrations are installed")
    return head


async def current_revision(conn) -> str | None:  # conn: psycopg.AsyncConnection
    """The database's schema revision (Alembic's ``alembic_version``), ``None`` if new."""
    import psycopg

    try:
        cur = await conn.execute("SELECT version_num FROM alembic_version")
        row = await cur.fetchone()
    except psycopg.errors.UndefinedTable:
        await conn.rollback()
        return None
    await conn.rollback()
    if not row:
        return None
    return row["version_num"] if isinstance(row, dict) else row[0]


async def open_pool(dsn: str, size: int = 10):  # -> psycopg_pool.AsyncConnectionPool
    """A started connection pool; the schema must be at :func:`head_revision`."""
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    # Rows as dicts on every pooled connection (a request must never change a pooled
    # connection's settings: the next request would inherit them).
    pool = AsyncConnectionPool(dsn, min_size=min(2, size), max_size=size, open=False,
                               timeout=10, kwargs={"autocommit": False,
                                                   "row_factory": dict_row})
    try:
        await pool.open(wait=True, timeout=15)
    except (psycopg.Error, TimeoutError) as exc:  # pool.open raises PoolTimeout (an Error)
        await pool.close()
        raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
    async with pool.connection() as conn:
        have = await current_revision(conn)
    want = head_revision()
    if have != want:
        await pool.close()
        raise DatabaseError(f"the database schema is at {have or 'nothing'}, this server needs "
                            f"{want}: run `callguard server migrate`")
    return pool
