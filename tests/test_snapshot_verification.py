"""Snapshots checked, not trusted (issue #16, item 5), on both backends.

The snapshots are writable by design, so raw SQL can make them lie. A posting that advances
them checks them against the ledger first and is refused, with the figures and the repair, when
they differ; nothing is written. ``ledger verify`` reports every snapshot that differs from a
replay (exit status 1; ``--json`` every row) and ``ledger rebuild`` repairs them.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from tests.support.cli import run_cli as run_tradeassist
from tradeassist.core.enums import EntryType
from tradeassist.core.errors import LedgerError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    AuditEvent,
    CashSnapshot,
    HoldingSnapshot,
    LedgerBatch,
    LedgerEntry,
    User,
)
from tradeassist.services import corporate_actions, ledger, portfolios, registry
from tradeassist.services.ledger import NewEntry

D = Decimal
T0 = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
VWRL, VWRP = "IE00B3RBWM25", "IE00BK5BQT80"
REBUILD = "run `tradeassist ledger rebuild --portfolio Main`"


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def cash_entry(kind: EntryType, days: float, amount: str) -> NewEntry:
    return NewEntry(at(days), kind, D(amount))


def trade(
    kind: EntryType, days: float, ticker: str, units: str, price: str, cash: str, fees: str = "0"
) -> NewEntry:
    return NewEntry(
        at(days), kind, D(cash), D(fees), ticker=ticker, exchange="XLON", units=D(units), price=D(price)
    )


def post(engine: Engine, admin: User, *entries: NewEntry, portfolio: str = "Main") -> ledger.PostResult:
    with unit_of_work(engine) as s:
        return ledger.post_entries(
            s,
            actor=s.get(User, admin.user_id),
            portfolio=portfolio,
            entries=list(entries),
            label="test",
            batch_type="MANUAL",
        )


def verify(engine: Engine, admin: User, portfolio: str | None = None) -> list[ledger.SnapshotCheck]:
    with unit_of_work(engine, readonly=True) as s:
        return ledger.verify_snapshots(s, actor=s.get(User, admin.user_id), portfolio=portfolio)


def rebuild(engine: Engine, admin: User) -> ledger.RebuildResult:
    with unit_of_work(engine) as s:
        return ledger.rebuild(s, actor=s.get(User, admin.user_id), portfolio="Main")


def raw(engine: Engine, sql: str) -> None:
    """What an outside tool does: SQL straight at the tables, no service in the way."""
    with engine.begin() as conn:
        assert conn.execute(text(sql)).rowcount >= 1


def state(engine: Engine) -> dict[str, Any]:
    """Everything a refused posting must leave as it was."""
    with unit_of_work(engine, readonly=True) as s:
        counts = {
            model.__tablename__: s.execute(select(func.count()).select_from(model)).scalar()
            for model in (LedgerBatch, LedgerEntry, AuditEvent)
        }
        holdings = s.execute(select(HoldingSnapshot).order_by(HoldingSnapshot.listing_id)).scalars()
        cash = s.execute(select(CashSnapshot)).scalars()
        return counts | {
            "holdings": [r.model_dump() for r in holdings],
            "cash": [r.model_dump() for r in cash],
        }


@pytest.fixture
def book(engine: Engine, admin: User) -> Engine:
    """Portfolio Main: £10,000 in, 10 VWRL for £856.25, 4 VWRP for £406.52, £261.27 interest:
    cash £8,998.50."""
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        for isin, ticker, scale in ((VWRL, "VWRL", "GBX"), (VWRP, "VWRP", "GBP")):
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="ETF")
            registry.add_listing(
                s, actor=actor, isin=isin, ticker=ticker, exchange="XLON", currency="GBP", quote_scale=scale
            )
        portfolios.add_portfolio(s, actor=actor, name="Main", broker="AJBell", tax_treatment="GIA")
    post(
        engine,
        admin,
        cash_entry(EntryType.CONTRIBUTION, 0, "10000"),
        trade(EntryType.BUY, 1, "VWRL", "10", "8512.5", "-856.25", "5.00"),
        trade(EntryType.BUY, 2, "VWRP", "4", "101.255", "-406.52", "1.50"),
        cash_entry(EntryType.INTEREST, 3, "261.27"),
    )
    with unit_of_work(engine, readonly=True) as s:
        assert ledger.cash(s, actor=s.get(User, admin.user_id), portfolio="Main")["cash_balance"] == D(
            "8998.50"
        )
    return engine


# --- the cash snapshot -----------------------------------------------------------------------


def test_a_tampered_cash_snapshot_refuses_the_withdrawal_it_would_let_in(book: Engine, admin: User) -> None:
    raw(book, "UPDATE cash_snapshots SET cash_balance = '100000'")
    before = state(book)
    with pytest.raises(LedgerError) as refused:
        post(book, admin, cash_entry(EntryType.WITHDRAWAL, 10, "-50000"))
    assert str(refused.value) == (
        f"the cash snapshot of portfolio Main (£100,000.00) does not match its ledger (£8,998.50): {REBUILD}"
    )
    assert state(book) == before  # nothing written, not even an audit row
    # Any posting that advances the snapshot is refused, not only one that would overdraw.
    with pytest.raises(LedgerError, match="does not match its ledger"):
        post(book, admin, cash_entry(EntryType.WITHDRAWAL, 10, "-1"))
    assert state(book) == before


def test_ledger_rebuild_repairs_the_snapshot_and_the_ledger_decides_again(book: Engine, admin: User) -> None:
    raw(book, "UPDATE cash_snapshots SET cash_balance = '100000'")
    result = rebuild(book, admin)
    assert result.changed and result.cash_balance == D("8998.50")
    with pytest.raises(LedgerError, match=r"cash would go below zero: -£41,001.50"):
        post(book, admin, cash_entry(EntryType.WITHDRAWAL, 10, "-50000"))
    assert post(book, admin, cash_entry(EntryType.WITHDRAWAL, 10, "-998.50")).cash_balance == D("8000.00")
    assert all(check.matches for check in verify(book, admin))


def test_a_sub_penny_difference_is_shown_exactly(book: Engine, admin: User) -> None:
    raw(book, "UPDATE cash_snapshots SET cash_balance = '8998.501'")
    with pytest.raises(LedgerError) as refused:
        post(book, admin, cash_entry(EntryType.CONTRIBUTION, 10, "1"))
    assert "(£8,998.501) does not match its ledger (£8,998.50)" in str(refused.value)


def test_a_missing_cash_row_is_a_difference_too(book: Engine, admin: User) -> None:
    raw(book, "DELETE FROM cash_snapshots")
    with pytest.raises(
        LedgerError, match=r"portfolio Main \(£0.00\) does not match its ledger \(£8,998.50\)"
    ):
        post(book, admin, cash_entry(EntryType.CONTRIBUTION, 10, "1"))
    (cash,) = [c for c in verify(book, admin) if c.snapshot == "cash"]
    assert cash.stored_cash_balance is None and cash.ledger_cash_balance == D("8998.50") and not cash.matches
    rebuild(book, admin)
    assert post(book, admin, cash_entry(EntryType.CONTRIBUTION, 10, "1")).cash_balance == D("8999.50")


def test_a_back_dated_posting_replays_the_ledger_and_trusts_no_snapshot(book: Engine, admin: User) -> None:
    """Before the latest entry the whole ledger is replayed: the balance comes from the ledger,
    whatever the snapshot says, and the snapshot written afterwards is the ledger's."""
    raw(book, "UPDATE cash_snapshots SET cash_balance = '100000'")
    with pytest.raises(LedgerError, match="cash would go below zero"):
        post(book, admin, cash_entry(EntryType.WITHDRAWAL, 2.5, "-50000"))
    result = post(book, admin, cash_entry(EntryType.CONTRIBUTION, 2.5, "1.50"))
    assert result.replayed and result.cash_balance == D("9000.00")
    assert all(check.matches for check in verify(book, admin))


# --- the holding snapshots -------------------------------------------------------------------


def test_a_tampered_holding_refuses_the_sale_it_would_let_in(book: Engine, admin: User) -> None:
    raw(
        book,
        "UPDATE holding_snapshots SET units = '100', cost_base = '8562.50' "
        "WHERE listing_id = (SELECT listing_id FROM instrument_listings WHERE ticker = 'VWRL')",
    )
    before = state(book)
    with pytest.raises(LedgerError) as refused:
        post(book, admin, trade(EntryType.SELL, 10, "VWRL", "50", "8600", "4300.00"))
    assert str(refused.value) == (
        "the holding snapshot of VWRL (XLON) in portfolio Main (100 units costing £8,562.50) does not match "
        f"its ledger (10 units costing £856.25): {REBUILD}"
    )
    assert state(book) == before
    rebuild(book, admin)
    post(book, admin, trade(EntryType.SELL, 10, "VWRL", "5", "8600", "430.00"))
    assert all(check.matches for check in verify(book, admin))


def test_a_deleted_holding_row_refuses_a_sale_of_that_listing_only(book: Engine, admin: User) -> None:
    raw(
        book,
        "DELETE FROM holding_snapshots "
        "WHERE listing_id = (SELECT listing_id FROM instrument_listings WHERE ticker = 'VWRL')",
    )
    with pytest.raises(
        LedgerError, match=r"of VWRL \(XLON\) in portfolio Main \(none\) does not match its ledger"
    ):
        post(book, admin, trade(EntryType.SELL, 10, "VWRL", "5", "8600", "430.00"))
    # A sale of another listing depends on its own pool and on the cash only.
    post(book, admin, trade(EntryType.SELL, 10, "VWRP", "1", "102", "102.00"))


def test_the_pool_check_follows_splits_and_isin_changes(book: Engine, admin: User) -> None:
    """A pool depends on its instrument's corporate actions, and an ISIN change brings in the
    old instrument's pool: the check replays them as a rebuild does (no false refusal)."""
    new_isin = "IE00BK5BQV03"
    with unit_of_work(book) as s:
        actor = s.get(User, admin.user_id)
        registry.add_instrument(s, actor=actor, isin=new_isin, instrument_type="ETF")
        registry.add_listing(
            s, actor=actor, isin=new_isin, ticker="VWRA", exchange="XLON", currency="GBP", quote_scale="GBP"
        )
        corporate_actions.add_corporate_action(
            s, actor=actor, isin=VWRL, action_type="SPLIT", effective=date(2024, 1, 10), ratio="2:1"
        )
        corporate_actions.add_corporate_action(
            s,
            actor=actor,
            isin=VWRP,
            action_type="ISIN_CHANGE",
            effective=date(2024, 1, 12),
            new_isin=new_isin,
        )
    # Dated after both actions: the snapshot is advanced (checked first), not replayed.
    assert not post(book, admin, trade(EntryType.SELL, 12, "VWRL", "15", "4300", "645.00")).replayed
    assert not post(book, admin, trade(EntryType.SELL, 12, "VWRA", "1", "102", "102.00")).replayed
    assert all(check.matches for check in verify(book, admin))
    raw(book, "UPDATE holding_snapshots SET units = '3.5'")  # every pool
    with pytest.raises(LedgerError, match=r"of VWRA \(XLON\) in portfolio Main \(3.5 units"):
        post(book, admin, trade(EntryType.SELL, 12, "VWRA", "1", "102", "102.00"))


def test_verify_reports_every_differing_snapshot_and_nothing_else(book: Engine, admin: User) -> None:
    assert [(c.snapshot, c.ticker, c.matches) for c in verify(book, admin)] == [
        ("cash", None, True),
        ("holding", "VWRL", True),
        ("holding", "VWRP", True),
    ]
    raw(book, "UPDATE cash_snapshots SET cash_balance = '100000'")
    raw(
        book,
        "UPDATE holding_snapshots SET avg_cost_base = '1' "
        "WHERE listing_id = (SELECT listing_id FROM instrument_listings WHERE ticker = 'VWRP')",
    )
    checks = verify(book, admin, "Main")
    cash, vwrl, vwrp = checks
    assert (
        not cash.matches
        and cash.stored_cash_balance == D("100000")
        and cash.ledger_cash_balance == D("8998.50")
    )
    assert vwrl.matches
    assert not vwrp.matches
    assert (vwrp.stored_units, vwrp.ledger_units) == (D(4), D(4))
    assert (vwrp.stored_avg_cost_base, vwrp.ledger_avg_cost_base) == (D(1), D("101.63"))
    assert vwrp.problem == (
        "the holding snapshot of VWRP (XLON) in portfolio Main (4 units costing £406.52, £1.00 each) does "
        f"not match its ledger (4 units costing £406.52, £101.63 each): {REBUILD}"
    )
    assert rebuild(book, admin).changed
    assert all(check.matches for check in verify(book, admin))


# --- the command --------------------------------------------------------------------------


def run_cli(db_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": db_url}
    return run_tradeassist(args, env)


def test_ledger_verify_command(book: Engine, admin: User, db_url: str, tmp_path: Path) -> None:
    clean = run_cli(db_url, tmp_path, "ledger", "verify")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == "Main: every snapshot matches its ledger\n"

    raw(book, "UPDATE cash_snapshots SET cash_balance = '100000'")
    raw(
        book,
        "UPDATE holding_snapshots SET units = '100' "
        "WHERE listing_id = (SELECT listing_id FROM instrument_listings WHERE ticker = 'VWRL')",
    )
    found = run_cli(db_url, tmp_path, "ledger", "verify", "--portfolio", "Main")
    assert found.returncode == 1
    assert found.stdout.splitlines() == [
        f"the cash snapshot of portfolio Main (£100,000.00) does not match its ledger (£8,998.50): {REBUILD}",
        "the holding snapshot of VWRL (XLON) in portfolio Main (100 units costing £856.25) does not match "
        f"its ledger (10 units costing £856.25): {REBUILD}",
    ]

    as_json = run_cli(db_url, tmp_path, "ledger", "verify", "--json")
    assert as_json.returncode == 1
    rows = json.loads(as_json.stdout)
    assert [(r["snapshot"], r["ticker"], r["matches"]) for r in rows] == [
        ("cash", None, False),
        ("holding", "VWRL", False),
        ("holding", "VWRP", True),
    ]
    assert rows[0]["stored_cash_balance"] == "100000" and rows[0]["ledger_cash_balance"] == "8998.50"
    assert (rows[1]["stored_units"], rows[1]["ledger_units"]) == ("100", "10")
    assert set(rows[2]) >= {"portfolio", "exchange", "stored_cost_base", "ledger_cost_base", "problem"}

    rebuilt = run_cli(db_url, tmp_path, "ledger", "rebuild", "--portfolio", "Main")
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = run_cli(db_url, tmp_path, "ledger", "verify", "--json")
    assert again.returncode == 0 and all(r["matches"] for r in json.loads(again.stdout))
