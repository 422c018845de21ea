"""Fixtures: the same behaviour tests on SQLite (default) and Postgres (RUN_DB_INTEGRATION=1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from driftwarden.api.app import create_app
from driftwarden.clock import FrozenClock
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.settings import Settings
from tests import support


@pytest.fixture(scope="session")
def database_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | Path]:
    """Postgres: one fresh database for the run.

    SQLite: a migrated template file to copy per test.
    """
    if support.ON_POSTGRES:
        url = support.create_pg_database()
        yield url
        support.drop_pg_database(url)
    else:
        yield support.sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def _pg_engine(database_target: str | Path) -> Iterator[Engine | None]:
    if not support.ON_POSTGRES:
        yield None
        return
    engine = make_engine(Settings(DATABASE_URL=str(database_target)))
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(database_target: str | Path, tmp_path: Path, _pg_engine: Engine | None) -> str:
    """A clean database for this test, at this URL."""
    if support.ON_POSTGRES:
        assert _pg_engine is not None
        support.truncate_all(_pg_engine)
        return str(database_target)
    return support.fresh_sqlite(Path(database_target), tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(DATABASE_URL=database_url, NOTIFY_RETRY_SCHEDULE="1,2,3")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine):  # type: ignore[no-untyped-def]
    return make_session_factory(engine)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


# One app per settings shape in each test process, as a server runs one app for many requests.
# FastAPI builds a route's parameters and response models on the first request an app routes,
# for every route it walks (about 0.3 s for ours): paid once here, not in every test.
_APPS: dict[str, FastAPI] = {}


def _shape(settings: Settings) -> str:
    """The settings an app may keep from its creation: all of them but the database's URL."""
    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings
        if name != "database_url"
    }
    return repr(sorted(values.items()))


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FrozenClock):  # type: ignore[no-untyped-def]
    """This test's app: its own state (settings, engine, clock, caches) on the routes and
    middleware an earlier test with the same settings built. A test that adds a route or a
    middleware leaves its app to itself."""
    fresh = create_app(settings, engine=engine, clock=clock)
    key = _shape(settings)
    shared = _APPS.setdefault(key, fresh)
    shared.state, shared.dependency_overrides = fresh.state, fresh.dependency_overrides
    routes, middleware = list(shared.router.routes), list(shared.user_middleware)
    yield shared
    if shared.router.routes != routes or shared.user_middleware != middleware:
        del _APPS[key]


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin(engine: Engine) -> support.Tenant:
    """An org with an admin key."""
    return support.make_tenant(engine, role="admin")


@pytest.fixture
def global_admin(engine: Engine) -> support.Tenant:
    return support.make_tenant(engine, role="admin", global_key=True)
