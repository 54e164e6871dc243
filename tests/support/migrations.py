"""Databases at an older revision, for the tests of one migration on data (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import pytest
from alembic import command
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from tradeassist.db import migrate
from tradeassist.db.engine import create_db_engine


@contextmanager
def database_at(request: pytest.FixtureRequest, tmp_path: Path, revision: str) -> Iterator[Engine]:
    """An empty database migrated to ``revision`` only: a SQLite file, or (``request.param`` is
    "postgresql") a database of its own on the test server, dropped afterwards."""
    if request.param == "sqlite":
        url, server = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        server = request.getfixturevalue("pg_cluster").url
        name = f"ta_old_{uuid4().hex[:12]}"
        admin = sa_create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0"))
        admin.dispose()
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    migrate.upgrade(engine, revision)
    try:
        yield engine
    finally:
        engine.dispose()
        if server is not None:
            admin = sa_create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)"))
            admin.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate ``engine``'s database down to ``revision``."""
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
