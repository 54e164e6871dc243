"""Append-only that outside tools cannot bypass (issue #16, item 4): SQLite.

Our connections turn ``recursive_triggers`` on, so that the delete half of ``INSERT OR REPLACE``
fires the delete trigger. The ``sqlite3`` shell and Python's ``sqlite3`` module leave it off,
and through them a replacing insert rewrote a ledger entry's cash to £1,000,000 and made a user
the bootstrap admin. Every protected table now refuses an insert whose key is held already
(a BEFORE INSERT trigger, which needs no setting), so these tests go through Python's own
``sqlite3`` module with its default settings. (PostgreSQL has its own tests: an
``ON CONFLICT DO UPDATE`` fires its update trigger.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.support.seed import seed_every_table
from tradeassist.db import immutability
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.immutability import GUARDED_TABLES, STREAM_TABLES
from tradeassist.db.models import User
from tradeassist.services import identity, portfolios

PROTECTED = (*STREAM_TABLES, *GUARDED_TABLES)


@pytest.fixture
def seeded(sqlite_url: str) -> Path:
    """A migrated SQLite file with a row in every table and a second portfolio."""
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine) as session:
        admin = identity.bootstrap_admin(session)
        seed_every_table(session, admin)
        portfolios.add_portfolio(session, actor=admin, name="Other", broker="AJBell", tax_treatment="GIA")
    engine.dispose()
    database = make_url(sqlite_url).database
    assert database is not None
    return Path(database)


@pytest.fixture
def shell(seeded: Path) -> Iterator[sqlite3.Connection]:
    """What an outside tool has: Python's sqlite3 module with its default settings."""
    connection = sqlite3.connect(seeded)
    assert connection.execute("PRAGMA recursive_triggers").fetchone() == (0,)
    yield connection
    connection.close()


def rows(connection: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    return connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def refused(connection: sqlite3.Connection, sql: str, *params: object) -> str:
    with pytest.raises(sqlite3.IntegrityError) as info:
        connection.execute(sql, params)
    connection.rollback()
    return str(info.value)


def columns(connection: sqlite3.Connection, table: str) -> list[str]:
    """The table's columns as the database has them."""
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


@pytest.mark.parametrize("table", PROTECTED)
def test_a_replacing_insert_is_refused_on_every_protected_table(
    shell: sqlite3.Connection, table: str
) -> None:
    before = rows(shell, table)
    assert before, f"{table} was not seeded"
    for verb in ("INSERT OR REPLACE", "REPLACE", "INSERT OR IGNORE", "INSERT"):
        message = refused(shell, f"{verb} INTO {table} SELECT * FROM {table}")
        assert f"{table} is append-only: INSERT of a key held already refused" in message, (verb, message)
        assert rows(shell, table) == before, f"{table} changed after {verb}"


@pytest.mark.parametrize("table", PROTECTED)
def test_update_and_delete_stay_refused_without_recursive_triggers(
    shell: sqlite3.Connection, table: str
) -> None:
    before = rows(shell, table)
    first = columns(shell, table)[0]
    assert "append-only" in refused(shell, f"DELETE FROM {table}")
    assert "append-only" in refused(shell, f"UPDATE {table} SET {first} = {first} + 1000")
    assert rows(shell, table) == before


def test_the_issue_rewrite_of_a_ledger_entrys_cash_is_refused(shell: sqlite3.Connection) -> None:
    names = columns(shell, "ledger_entries")
    (entry,) = shell.execute(f"SELECT {', '.join(names)} FROM ledger_entries").fetchall()
    forged = dict(zip(names, entry, strict=True)) | {"cash_amount_base": "1000000.00"}
    marks = ", ".join("?" for _ in names)
    message = refused(
        shell,
        f"INSERT OR REPLACE INTO ledger_entries ({', '.join(names)}) VALUES ({marks})",
        *forged.values(),
    )
    assert "ledger_entries is append-only" in message
    assert shell.execute("SELECT cash_amount_base FROM ledger_entries").fetchall() == [("1000.00",)]


def test_a_user_cannot_be_made_bootstrap_admin_by_replacing_the_row(shell: sqlite3.Connection) -> None:
    with shell:
        shell.execute(
            "INSERT INTO users (email, password_hash, is_enabled, is_bootstrap_admin, created_at) "
            "VALUES ('mallory@example.com', 'x', 1, 0, CURRENT_TIMESTAMP)"
        )
    names = columns(shell, "users")
    (user,) = shell.execute(
        f"SELECT {', '.join(names)} FROM users WHERE email = 'mallory@example.com'"
    ).fetchall()
    forged = dict(zip(names, user, strict=True)) | {"is_bootstrap_admin": 1}
    marks = ", ".join("?" for _ in names)
    for verb in ("INSERT OR REPLACE", "REPLACE"):
        message = refused(shell, f"{verb} INTO users ({', '.join(names)}) VALUES ({marks})", *forged.values())
        assert "users is append-only: INSERT of a key held already refused" in message
    # A new row that takes an existing row's email (a unique key) would delete that row: refused.
    admin_email = shell.execute("SELECT email FROM users WHERE is_bootstrap_admin").fetchone()[0]
    message = refused(
        shell,
        "INSERT OR REPLACE INTO users (email, password_hash, is_enabled, is_bootstrap_admin, created_at) "
        "VALUES (?, 'x', 1, 1, CURRENT_TIMESTAMP)",
        admin_email,
    )
    assert "users is append-only" in message
    assert shell.execute("SELECT email FROM users WHERE is_bootstrap_admin").fetchall() == [(admin_email,)]
    assert "changing a fixed column" in refused(
        shell, "UPDATE users SET is_bootstrap_admin = 1 WHERE email = 'mallory@example.com'"
    )


def test_update_or_replace_cannot_delete_the_row_holding_a_mutable_unique_key(
    shell: sqlite3.Connection,
) -> None:
    """``portfolios.name`` may change, and is unique: ``UPDATE OR REPLACE`` onto another
    portfolio's name would delete that portfolio (its delete trigger silent without
    recursive triggers)."""
    before = rows(shell, "portfolios")
    message = refused(shell, "UPDATE OR REPLACE portfolios SET name = 'Seed' WHERE name = 'Other'")
    assert "portfolios is append-only: UPDATE to a key another row holds refused" in message
    assert rows(shell, "portfolios") == before
    with shell:  # renaming to a free name is what the mutable column is for
        shell.execute("UPDATE portfolios SET name = 'Renamed' WHERE name = 'Other'")
    assert {r[0] for r in shell.execute("SELECT name FROM portfolios")} == {"Seed", "Renamed"}


def test_appending_still_works_from_outside(shell: sqlite3.Connection) -> None:
    with shell:
        shell.execute(
            "INSERT INTO audit_events (action, entity_type, occurred_at, details) "
            "VALUES ('NOTE', 'test', CURRENT_TIMESTAMP, '{}')"
        )
    assert shell.execute("SELECT COUNT(*) FROM audit_events WHERE action = 'NOTE'").fetchone() == (1,)


def test_a_slot_claimed_twice_is_still_an_integrity_error(seeded: Path) -> None:
    """``runs.claims`` skips a slot another runner holds on ``IntegrityError``: the insert guard
    (which now answers first) raises the same class through SQLAlchemy."""
    engine = create_db_engine(f"sqlite:///{seeded}")
    with pytest.raises(IntegrityError, match="task_run_claims is append-only"), engine.begin() as conn:
        conn.execute(text("INSERT INTO task_run_claims SELECT * FROM task_run_claims"))
    engine.dispose()


def test_every_protected_table_has_its_insert_guard(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    with engine.connect() as conn:
        triggers = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
        keys = {table: immutability.sqlite_keys(conn, table) for table in PROTECTED}
    engine.dispose()
    assert {f"trg_{t}_existing_key" for t in PROTECTED} <= triggers
    assert {"trg_portfolios_key_taken", "trg_task_definitions_key_taken"} <= triggers
    assert keys["ledger_entries"] == [("ledger_entry_id",)]
    assert keys["ledger_batches"] == [("ledger_batch_id",), ("portfolio_id", "source_sha256")]
    assert keys["sleeve_targets"][0] == ("strategy_version_id", "sleeve_code")


def test_installing_again_is_harmless(engine: Engine, admin: User) -> None:
    """Migrations call ``install`` after every table change, on both databases: it replaces the
    triggers (PostgreSQL's as they were) and leaves every rule in force."""
    with engine.begin() as conn:
        immutability.install(conn)
        immutability.install(conn)
    with unit_of_work(engine) as session:
        seed_every_table(session, session.get(User, admin.user_id))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET cash_amount_base = cash_amount_base"))
    with engine.begin() as conn:  # appending is untouched
        conn.execute(
            text(
                "INSERT INTO audit_events (action, entity_type, occurred_at, details) "
                "VALUES ('NOTE', 'test', CURRENT_TIMESTAMP, '{}')"
            )
        )
