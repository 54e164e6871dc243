"""Two processes writing at once lose nothing: on SQLite every write transaction begins with
BEGIN IMMEDIATE (so a read-then-write cannot interleave), on PostgreSQL the balance row is
locked FOR UPDATE."""

from __future__ import annotations

import multiprocessing as mp
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import select

from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import CashSnapshot, User
from tradeassist.services import portfolios

ROUNDS = 40


def _deposit_pennies(url: str, portfolio_id: int, start: mp.Event) -> None:  # type: ignore[valid-type]
    engine = create_db_engine(url)
    start.wait()
    for _ in range(ROUNDS):
        with unit_of_work(engine) as s:
            cash = s.exec(
                select(CashSnapshot).where(CashSnapshot.portfolio_id == portfolio_id).with_for_update()
            ).one()
            cash.cash_balance = cash.cash_balance + Decimal("0.01")
            s.add(cash)
    engine.dispose()


def test_two_processes_never_lose_an_update(engine: Engine, db_url: str, admin: User) -> None:
    with unit_of_work(engine) as s:
        p = portfolios.add_portfolio(
            s, actor=s.get(User, admin.user_id), name="SIPP", broker="AJBell", tax_treatment="SIPP"
        )
        portfolio_id = p.portfolio_id
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_deposit_pennies, args=(db_url, portfolio_id, start)) for _ in range(2)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    with unit_of_work(engine, readonly=True) as s:
        cash = s.exec(select(CashSnapshot).where(CashSnapshot.portfolio_id == portfolio_id)).one()
    assert cash.cash_balance == Decimal("0.01") * 2 * ROUNDS


def test_sqlite_connections_have_the_required_pragmas(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout", "recursive_triggers")
        }
    assert pragmas == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "busy_timeout": 10000,
        "recursive_triggers": 1,
    }
