"""Shared fixtures: real SQLite files always, a real PostgreSQL cluster when the binaries exist.

``db_url`` (and ``engine``) are parametrised over both backends; each test gets a fresh,
migrated database with a bootstrap admin (copied from a template for speed: a file copy on
SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL, dropped again after the test).

``make test`` runs the suite in parallel (pytest-xdist): each worker has its own temporary
directories, its own TRADEASSIST_HOME and its own PostgreSQL cluster on a free port (or, with
``TRADEASSIST_TEST_PG_URL``, its own template databases on that server), so nothing here is
shared between workers; ``tests/support/workers.py`` has the details.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from tests.support import pg
from tests.support.smtp_server import running_smtp_server
from tests.support.workers import share_bytecode_with_children, worker_id

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"

os.environ.setdefault("TRADEASSIST_HOME", str(Path("/tmp") / f"tradeassist-test-home-{os.getpid()}"))
share_bytecode_with_children()
WORKER = worker_id()
PG_TEMPLATE = f"ta_template_{WORKER}"  # per worker: workers may share one server (TRADEASSIST_TEST_PG_URL)
PG_DEMO_TEMPLATE = f"ta_demo_template_{WORKER}"

_pg_state: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _no_acting_user_from_an_earlier_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no TRADEASSIST_USER, and whatever it sets is undone after it: the
    CLI hands ``--as`` on to the notebooks it runs through the environment, which in-process
    CLI tests (CliRunner) would otherwise leave behind for the next test."""
    monkeypatch.delenv("TRADEASSIST_USER", raising=False)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real public data samples beside the repository (never copied into it)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data samples not found at {REAL_DATA}")
    return REAL_DATA


def _init(url: str) -> None:
    from tradeassist.db.engine import create_db_engine
    from tradeassist.services.setup import init_database

    engine = create_db_engine(url)
    old = {k: os.environ.get(k) for k in ("TRADEASSIST_ADMIN_EMAIL", "TRADEASSIST_ADMIN_PASSWORD")}
    os.environ["TRADEASSIST_ADMIN_EMAIL"] = ADMIN_EMAIL
    os.environ["TRADEASSIST_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    try:
        init_database(engine)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _init(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    cluster = pg.start_cluster()
    if cluster is None:
        _pg_state["skipped"] = "no PostgreSQL server binaries (initdb) found"
        pytest.skip("PostgreSQL half skipped: no PostgreSQL server binaries (initdb) found")
    _pg_state["used"] = True
    admin = sa_create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in (PG_DEMO_TEMPLATE, PG_TEMPLATE):  # left by an earlier session on an external server
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {PG_TEMPLATE}"))
    _init(str(make_url(cluster.url).set(database=PG_TEMPLATE).render_as_string(hide_password=False)))
    admin.dispose()
    yield cluster
    cluster.stop()


_counter = itertools.count()


def new_pg_database(cluster: pg.Cluster, template: str = PG_TEMPLATE) -> str:
    """A copy of ``template``. FILE_COPY copies the files (a checkpoint on a server that never
    fsyncs), about three times faster than PostgreSQL 15's default of copying through the WAL."""
    name = f"ta_test_{os.getpid()}_{next(_counter)}"
    admin = sa_create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"))
    admin.dispose()
    return make_url(cluster.url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(cluster: pg.Cluster, url: str) -> None:
    """Drop a test's database once the test is over, so the cluster stays small (hundreds of
    copies would otherwise be written to disk and removed only at the end). WITH (FORCE) ends
    any connection the test left open."""
    name = make_url(url).database
    admin = sa_create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


@contextmanager
def pg_database(request: pytest.FixtureRequest, template: str = PG_TEMPLATE) -> Iterator[str]:
    cluster = request.getfixturevalue("pg_cluster")
    url = new_pg_database(cluster, template)
    yield url
    drop_pg_database(cluster, url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh migrated database (with the bootstrap admin) on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "tradeassist.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        with pg_database(request) as url:
            yield url


DEMO_END = date(2026, 6, 30)  # the demo's last close in tests: fixed, so results are repeatable
DEMO_AS_OF = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # after that close, in London's evening


def _load_demo(url: str) -> None:
    from tradeassist.db.engine import create_db_engine
    from tradeassist.demo import load_demo

    engine = create_db_engine(url)
    load_demo(engine, end=DEMO_END)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_demo_template(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    shutil.copy(sqlite_template, path)
    _load_demo(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_demo_template(pg_cluster: pg.Cluster) -> str:
    admin = sa_create_engine(pg_cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {PG_DEMO_TEMPLATE} TEMPLATE {PG_TEMPLATE} STRATEGY FILE_COPY"))
    admin.dispose()
    _load_demo(make_url(pg_cluster.url).set(database=PG_DEMO_TEMPLATE).render_as_string(hide_password=False))
    return PG_DEMO_TEMPLATE


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database holding the demo (prices to DEMO_END), on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "demo.db"
        shutil.copy(request.getfixturevalue("sqlite_demo_template"), path)
        yield f"sqlite:///{path}"
    else:
        with pg_database(request, request.getfixturevalue("pg_demo_template")) as url:
            yield url


@pytest.fixture
def demo_engine(demo_url: str) -> Iterator[Engine]:
    from tradeassist.db.engine import create_db_engine

    eng = create_db_engine(demo_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh migrated SQLite database only (for tests that are about SQLite itself)."""
    path = tmp_path / "tradeassist.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from tradeassist.db.engine import create_db_engine

    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def admin(engine: Engine):  # type: ignore[no-untyped-def]
    from tradeassist.db.engine import unit_of_work
    from tradeassist.services import identity

    with unit_of_work(engine, readonly=True) as session:
        return identity.get_user(session, ADMIN_EMAIL)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its PostgreSQL line to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["tradeassist_pg_state"] = dict(_pg_state)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # type: ignore[no-untyped-def]
    state = getattr(node, "workeroutput", {}).get("tradeassist_pg_state") or {}
    if state.get("used"):
        _pg_state["used"] = True
    if state.get("skipped"):
        _pg_state.setdefault("skipped", state["skipped"])


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    reason = _pg_state.get("skipped")
    if reason and not _pg_state.get("used"):
        terminalreporter.write_line(f"PostgreSQL half skipped: {reason}")
    elif _pg_state.get("used"):
        terminalreporter.write_line("PostgreSQL half ran against a real server on 127.0.0.1")


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    """A real SMTP server on 127.0.0.1 (``tests/support/smtp_server.py``): (controller, recorder)."""
    with running_smtp_server() as server:
        yield server
