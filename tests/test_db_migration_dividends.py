"""Migration 0006 on a database that already holds a ledger: DIVIDEND becomes a type the database
accepts, no existing row changes (the ledger stays append-only, its triggers in place), and the
INTEREST rows the imports wrote for dividends read as dividends; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tests.support.migrations import database_at, downgrade
from tradeassist.core.enums import BatchType, EntryType, TaxTreatment
from tradeassist.db import migrate
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import LedgerBatch, LedgerEntry, Portfolio, User
from tradeassist.services import income, ledger

D = Decimal
ENTRIES = LedgerEntry.__table__
OLD = [  # what the imports wrote before DIVIDEND existed
    (datetime(2023, 4, 1, tzinfo=UTC), EntryType.CONTRIBUTION, D("1000"), "subscription"),
    (datetime(2023, 5, 2, tzinfo=UTC), EntryType.INTEREST, D("1.37"), "dividend: Apple (10 units)"),
    (datetime(2023, 5, 3, tzinfo=UTC), EntryType.INTEREST, D("0.23"), "Interest on cash"),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database on each backend, migrated up to the revision before 0006 only."""
    with database_at(request, tmp_path, "0005_strategy_scope") as engine:
        yield engine


def _old_ledger(engine: Engine) -> None:
    """User 1, portfolio 1 and batch 1 with the OLD entries (ids from the database's sequences)."""
    now = datetime(2023, 4, 1, tzinfo=UTC)
    with engine.begin() as conn:
        user = conn.execute(
            insert(User.__table__).values(
                email="a@example.com", password_hash="x", is_enabled=True, is_bootstrap_admin=True,
                created_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        folio = conn.execute(
            insert(Portfolio.__table__).values(
                owner_user_id=user, name="ISA", broker="AJBell", base_currency="GBP",
                tax_treatment=TaxTreatment.ISA, created_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        batch = conn.execute(
            insert(LedgerBatch.__table__).values(
                portfolio_id=folio, label="import", batch_type=BatchType.IMPORT, created_by_user_id=user,
                created_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        assert (user, folio, batch) == (1, 1, 1)
        for n, (when, kind, cash, notes) in enumerate(OLD, start=1):
            conn.execute(
                insert(ENTRIES).values(
                    ledger_batch_id=batch, portfolio_id=folio, entry_time=when, entry_type=kind,
                    fees_base=D(0), cash_amount_base=cash, notes=notes, external_ref=f"R{n}",
                )
            )  # fmt: skip


def _insert_raw(engine: Engine, entry_type: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_entries (ledger_batch_id, portfolio_id, entry_time, entry_type, "
                "fees_base, cash_amount_base) VALUES (1, 1, '2023-06-01 00:00:00', :kind, 0, 1)"
            ),
            {"kind": entry_type},
        )


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(ENTRIES).order_by(ENTRIES.c.ledger_entry_id))]


def test_upgrading_a_ledger_with_interest_rows_keeps_them_and_accepts_dividends(old_engine: Engine) -> None:
    _old_ledger(old_engine)
    with pytest.raises(DBAPIError, match="ck_entrytype"):  # before: the database refuses the type
        _insert_raw(old_engine, "DIVIDEND")
    before = _rows(old_engine)

    migrate.upgrade(old_engine)

    assert migrate.current_revision(old_engine) == migrate.head_revision()
    assert _rows(old_engine) == before  # nothing rewritten
    assert [r[4] for r in before] == [EntryType.CONTRIBUTION, EntryType.INTEREST, EntryType.INTEREST]
    # still append-only: the rebuilt table has its triggers again
    for statement in ("UPDATE ledger_entries SET notes = 'x' WHERE ledger_entry_id = 2",
                      "DELETE FROM ledger_entries WHERE ledger_entry_id = 2"):  # fmt: skip
        with pytest.raises(DBAPIError, match="append-only"), old_engine.begin() as conn:
            conn.execute(text(statement))
    # a type outside the enumeration is still refused
    with pytest.raises(DBAPIError, match="ck_entrytype"):
        _insert_raw(old_engine, "DIVIDENDS")

    with unit_of_work(old_engine) as s:
        actor = s.get(User, 1)
        assert ledger.rebuild(s, actor=actor, portfolio="ISA").cash_balance == D("1001.60")
        posted = ledger.post_entries(
            s,
            actor=actor,
            portfolio="ISA",
            entries=[ledger.NewEntry(datetime(2023, 6, 1, tzinfo=UTC), EntryType.DIVIDEND, D("2.00"))],
            label="a dividend",
            batch_type="MANUAL",
        )
        assert posted.cash_balance == D("1003.60")
    with unit_of_work(old_engine, readonly=True) as s:
        rows = income.income_by_listing(s, tax_year="2023-24")
    # the legacy row is a dividend (its payer matches no listing here), the cash interest interest
    assert [(r.kind, r.payer, r.amount, r.entries) for r in rows] == [
        ("DIVIDEND", None, D("2.00"), 1),
        ("DIVIDEND", "Apple", D("1.37"), 1),
        ("INTEREST", None, D("0.23"), 1),
    ]
    assert _rows(old_engine)[:3] == before  # reading never writes

    # the ledger holds DIVIDEND rows now: going back would mean rewriting them, so it is refused
    downgrade(old_engine, "0006_dividends")  # the later migrations go back without a word
    with pytest.raises(RuntimeError, match="holds 1 DIVIDEND entries"):
        downgrade(old_engine, "0005_strategy_scope")
    assert migrate.current_revision(old_engine) == "0006_dividends"
