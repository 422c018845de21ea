"""Engine and session factory for SQLite (embedded) and Postgres (scale-out, pooler-safe)."""

from __future__ import annotations

import math

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from driftwarden.settings import Settings


def make_engine(settings: Settings, *, null_pool: bool = False) -> Engine:
    url = settings.db_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings)
    kwargs: dict = {
        "pool_pre_ping": True,  # a connection the server dropped (a restart) is replaced, not used
        "hide_parameters": True,  # a logged database error must not print bodies or secrets
        # Server-side prepared statements only when DB_PREPARE_THRESHOLD is set: Supabase's
        # transaction pooler (PgBouncer) cannot keep them. A connect during an outage gives up
        # about when a pool wait would (libpq's minimum is 2 s), so the request is answered
        # 503 DATABASE_UNAVAILABLE within DB_POOL_TIMEOUT_SECONDS.
        "connect_args": {
            "prepare_threshold": settings.db_prepare_threshold,
            "connect_timeout": connect_timeout(settings),
        },
    }
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            pool_recycle=1800,
        )
    return create_engine(url, **kwargs)


def connect_timeout(settings: Settings) -> int:
    """The pool wait in whole seconds for libpq, never under its 2 s floor."""
    return max(2, math.ceil(settings.db_pool_timeout_seconds))


def _sqlite_engine(url: str, settings: Settings) -> Engine:
    # The pool bounds and its wait apply here too: past them the answer is 503, not a long queue.
    in_memory = make_url(url).database in (None, "", ":memory:") or "mode=memory" in url
    pool = (
        {}
        if in_memory
        else {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout_seconds,
        }
    )
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True, **pool
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control from pysqlite so writers queue on BEGIN IMMEDIATE
        # instead of failing with "database is locked" on a read-to-write upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
