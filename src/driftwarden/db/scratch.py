"""Throwaway Postgres databases for tests, benchmarks and CI.

Made beside the one a URL names, then dropped.
"""

from __future__ import annotations

import os
import uuid

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from driftwarden.db import migrate
from driftwarden.settings import Settings

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The Postgres server to work on: DATABASE_URL, SUPABASE_DB_URL, or the local default."""
    return os.environ.get("DATABASE_URL") or os.environ.get("SUPABASE_DB_URL") or DEFAULT_SERVER_URL


def _sqlalchemy_url(url: str) -> URL:
    return make_url(Settings(DATABASE_URL=url).db_url)


def libpq_url(url: str, database: str | None = None) -> str:
    """`url` as psycopg takes it (optionally naming another database on the same server)."""
    base = _sqlalchemy_url(url).set(drivername="postgresql")
    return (base.set(database=database) if database else base).render_as_string(hide_password=False)


def create_database(prefix: str, *, server: str | None = None, migrated: bool = True) -> str:
    """A new database on the server `server` names (default server_url()).

    Returns its SQLAlchemy URL.
    """
    server = server or server_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _sqlalchemy_url(server).set(database=name).render_as_string(hide_password=False)
    if migrated:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    return url


def drop_database(url: str, *, server: str | None = None) -> None:
    with psycopg.connect(libpq_url(server or server_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
