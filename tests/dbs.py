"""Databases for the SQL tests: one private schema (PostgreSQL) or database (MariaDB) per run.

The servers come from ``JIANYI_FLOW_TEST_POSTGRES_URL`` and ``JIANYI_FLOW_TEST_MYSQL_URL``.
Each test session creates ``jf_<random>`` there and drops it at the end, so runs on a
shared server (two engineers, two CI jobs) never see each other's rows.  Unset variables
skip those tests with a message saying how to enable them — except under CI (``CI`` set),
where a missing or unreachable database fails the run: a green CI that silently skipped
PostgreSQL would be lying.

Import the fixtures into a test module to use them (``from dbs import postgres_url``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.sql import migrate as db
from jianyi_flow.storage.sql.schema import EVENT_SEQ, TABLES, counters

POSTGRES_ENV = "JIANYI_FLOW_TEST_POSTGRES_URL"
MYSQL_ENV = "JIANYI_FLOW_TEST_MYSQL_URL"
POSTGRES_EXAMPLE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MYSQL_EXAMPLE = "mysql+pymysql://root@127.0.0.1:3306/test"


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def base_url(env: str, example: str) -> URL:
    value = os.environ.get(env)
    if not value:
        unavailable(f"{env} is not set; to run these tests set {env}={example}")
    return make_url(value)


def url_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _admin_engine(url: URL, what: str) -> Engine:
    try:
        engine = sa.create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # driver missing, server down, bad credentials: all mean "cannot test"
        unavailable(f"{what} at {url.render_as_string(hide_password=True)} is not reachable: {exc}")
    return engine


def run_name() -> str:
    return f"jf_{secrets.token_hex(5)}"


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    """A new empty schema on the test PostgreSQL server, first on the URL's search_path; dropped after."""
    base = base_url(POSTGRES_ENV, POSTGRES_EXAMPLE)
    admin = _admin_engine(base, "PostgreSQL")
    schema = run_name()
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield url_text(base.update_query_dict({"options": f"-csearch_path={schema}"}))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextlib.contextmanager
def private_mysql() -> Iterator[str]:
    """A new empty database on the test MariaDB server; dropped after."""
    base = base_url(MYSQL_ENV, MYSQL_EXAMPLE)
    admin = _admin_engine(base, "MariaDB")
    name = run_name()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield url_text(base.set(database=name))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The run's own PostgreSQL schema (shared by the tests of one session)."""
    with private_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """The run's own MariaDB database (shared by the tests of one session)."""
    with private_mysql() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A schema of the test's own, for tests that need an empty database (migrations)."""
    with private_postgres() as url:
        yield url


@pytest.fixture
def empty_mysql_url() -> Iterator[str]:
    """A database of the test's own, for tests that need an empty database (migrations)."""
    with private_mysql() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_migrated(postgres_url: str) -> str:
    """The run's PostgreSQL schema with the jianyi_flow tables."""
    db.upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
def mysql_migrated(mysql_url: str) -> str:
    """The run's MariaDB database with the jianyi_flow tables."""
    db.upgrade(mysql_url)
    return mysql_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file to copy: cheaper than migrating a new file for every test."""
    path = tmp_path_factory.mktemp("template") / "jianyi.db"
    SqlStore.open(f"sqlite:///{path}").close()  # closing the last connection checkpoints the WAL
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    """The URL of a fresh copy of the template in ``directory``."""
    target = directory / "jianyi.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def wipe(engine: Engine) -> None:
    """Delete every jianyi_flow row, children first, and start the event log again at 0.

    (Tests share one migrated schema per run.)
    """
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in TABLES)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
        else:
            for table in reversed(TABLES):
                conn.execute(table.delete())
        conn.execute(counters.insert().values(name=EVENT_SEQ, value=0))


BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
"""The three SQL backends, for ``@pytest.fixture(params=BACKENDS)``."""


def backend_store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:
    """An empty SqlStore on ``request.param``'s backend (the body of a parametrised fixture)."""
    if request.param == "sqlite":
        url = sqlite_copy(sqlite_template, tmp_path)
    else:
        url = str(request.getfixturevalue(f"{request.param}_migrated"))
    with SqlStore(url) as store:
        wipe(store.engine)
        yield store
