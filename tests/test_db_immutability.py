"""Append-only enforced by the database: every stream table refuses UPDATE, DELETE, a
replacing insert (INSERT OR REPLACE / ON CONFLICT DO UPDATE) and, on PostgreSQL, TRUNCATE,
and the row is unchanged afterwards. The model's mutable exceptions stay writable."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from tests.support.seed import seed_every_table
from tradeassist.db.engine import unit_of_work
from tradeassist.db.immutability import GUARDED_TABLES, STREAM_TABLES
from tradeassist.db.models import User


@pytest.fixture
def seeded(engine: Engine, admin: User) -> Engine:
    with unit_of_work(engine) as session:
        seed_every_table(session, session.get(User, admin.user_id))
    return engine


def _pk(table: str) -> list[str]:
    return [c.name for c in SQLModel.metadata.tables[table].primary_key.columns]


def _snapshot(engine: Engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]


def _first_non_pk_column(table: str) -> str:
    """The column an UPDATE sets (to itself); the first key column of an all-key table
    (strategy_version_portfolios)."""
    pk = set(_pk(table))
    columns = [c.name for c in SQLModel.metadata.tables[table].columns]
    return next((c for c in columns if c not in pk), columns[0])


def _statements(engine: Engine, table: str) -> dict[str, str]:
    col = _first_non_pk_column(table)
    pk = ", ".join(_pk(table))
    statements = {
        "UPDATE": f"UPDATE {table} SET {col} = {col}",
        "DELETE": f"DELETE FROM {table}",
    }
    if engine.dialect.name == "sqlite":
        statements["INSERT OR REPLACE"] = f"INSERT OR REPLACE INTO {table} SELECT * FROM {table}"
    else:
        statements["UPSERT"] = (
            f"INSERT INTO {table} SELECT * FROM {table} "
            f"ON CONFLICT ({pk}) DO UPDATE SET {col} = EXCLUDED.{col}"
        )
        statements["TRUNCATE"] = f"TRUNCATE {table} CASCADE"
    return statements


def _refused(engine: Engine, sql: str) -> str:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(text(sql))
    return str(info.value.orig)


def test_every_table_of_the_model_exists(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert len(SQLModel.metadata.tables) >= 32  # the data model's 32, plus added ones (price_point_rechecks)


@pytest.mark.parametrize("table", STREAM_TABLES)
def test_stream_table_refuses_every_change(seeded: Engine, table: str) -> None:
    before = _snapshot(seeded, table)
    assert before, f"{table} was not seeded"
    for name, sql in _statements(seeded, table).items():
        message = _refused(seeded, sql)
        assert "append-only" in message, (name, message)
        assert _snapshot(seeded, table) == before, f"{table} changed after {name}"


@pytest.mark.parametrize("table", sorted(GUARDED_TABLES))
def test_guarded_table_refuses_delete_and_fixed_columns(seeded: Engine, table: str) -> None:
    before = _snapshot(seeded, table)
    assert "append-only" in _refused(seeded, f"DELETE FROM {table}")
    pk = _pk(table)[0]
    assert "append-only" in _refused(seeded, f"UPDATE {table} SET {pk} = {pk} + 1000")
    if seeded.dialect.name == "sqlite":
        assert "append-only" in _refused(seeded, f"INSERT OR REPLACE INTO {table} SELECT * FROM {table}")
    else:
        assert "append-only" in _refused(seeded, f"TRUNCATE {table} CASCADE")
    assert _snapshot(seeded, table) == before


MUTABLE_UPDATES = {
    "users": "UPDATE users SET last_login_at = CURRENT_TIMESTAMP, is_enabled = is_enabled",
    "strategy_versions": "UPDATE strategy_versions SET status = 'APPROVED', approved_at = CURRENT_TIMESTAMP",
    "recommendations": "UPDATE recommendations SET status = 'IGNORED', status_reason = 'not now'",
    "alerts": "UPDATE alerts SET resolved_at = CURRENT_TIMESTAMP",
    "notifications": "UPDATE notifications SET status = 'SENT', attempts = 1",
    "holding_snapshots": "UPDATE holding_snapshots SET units = '3'",
    "cash_snapshots": "UPDATE cash_snapshots SET cash_balance = '5.00'",
    "freeze_states": "UPDATE freeze_states SET is_frozen = TRUE",
    "portfolio_summaries": "DELETE FROM portfolio_summaries",
}


@pytest.mark.parametrize("table", sorted(MUTABLE_UPDATES))
def test_mutable_exceptions_stay_writable(seeded: Engine, table: str) -> None:
    before = _snapshot(seeded, table)
    with seeded.begin() as conn:
        result = conn.execute(text(MUTABLE_UPDATES[table]))
        assert result.rowcount >= 1
    assert _snapshot(seeded, table) != before


def test_orm_update_of_a_ledger_entry_is_refused(seeded: Engine) -> None:
    from decimal import Decimal

    from sqlmodel import select

    from tradeassist.db.models import LedgerEntry

    with pytest.raises(DBAPIError, match="append-only"), unit_of_work(seeded) as session:
        entry = session.exec(select(LedgerEntry)).one()
        entry.cash_amount_base = Decimal("1.00")
        session.add(entry)
    with unit_of_work(seeded, readonly=True) as session:
        assert session.exec(select(LedgerEntry)).one().cash_amount_base == Decimal("1000.00")
