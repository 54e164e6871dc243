"""The ledger's column-at-a-time paths (issue #17 item 8) against its entry-by-entry ones, on both
backends: an import takes them where every entry is plainly right, and what it stores, and
what it refuses with, is what the entry-by-entry paths store and refuse with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tradeassist.core.errors import FileFormatError, LedgerError
from tradeassist.core.isin import isin_check_digit
from tradeassist.core.money import decimal_str
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import User
from tradeassist.services import identity, imports, ledger, portfolios, registry
from tradeassist.services.ledger import NewEntry, insert, validate

D = Decimal
HEADER = "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes"
T0 = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
ROWS = [
    "2024-01-02T09:00:00Z,CONTRIBUTION,,,,,0,20000.00,{p}c1,money in",
    "2024-01-03T10:00:00Z,BUY,VWRL,LSE,10,8123.5,1.50,-813.85,{p}b1,",  # GBX: 10 × 8123.5p
    "2024-01-03T10:00:00Z,BUY,VWRP,LSE,3,101.25,0,-303.75,{p}b2,",  # the same instant
    "2024-01-04,SELL,VWRL,LSE,4,8200,0,328.00,{p}s1,",  # a date alone: midnight UTC
    "2024-01-05T00:00:00.5Z,INTEREST,,,,,,0.01,{p}i1,",  # a fraction of a second
    "2024-01-06T00:00:00Z,FEE,,,,,0.50,-0.50,{p}f1,custody",
    "2024-01-07T00:00:00Z,TRANSFER,VWRP,LSE,-1,,,0,{p}t1,out",
    "2024-01-08T00:00:00Z,WITHDRAWAL,,,,,,-100,{p}w1,",
]


def fake_isin(n: int) -> str:
    body = f"GB00{n:07d}"
    return body + isin_check_digit(body)


def setup(engine: Engine, admin: User) -> None:
    with unit_of_work(engine) as s:
        actor = s.get(User, admin.user_id)
        for n, (ticker, scale) in enumerate((("VWRL", "GBX"), ("VWRP", "GBP")), start=1):
            registry.add_instrument(s, actor=actor, isin=fake_isin(n), instrument_type="ETF")
            registry.add_listing(
                s,
                actor=actor,
                isin=fake_isin(n),
                ticker=ticker,
                exchange="LSE",
                currency="GBP",
                quote_scale=scale,
            )
        for name in ("A", "B"):
            portfolios.add_portfolio(s, actor=actor, name=name, broker="x", tax_treatment="GIA")


@pytest.fixture
def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every column-at-a-time path declined: the entry-by-entry paths alone."""
    with monkeypatch.context() as m:
        m.setattr(imports, "_plain_entries", lambda *args: None)
        m.setattr(validate, "_already_normal", lambda *args: None)
        m.setattr(validate, "_plain_entries", lambda *args: None)
        yield


@pytest.fixture
def few_rows_per_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three rows to an INSERT on SQLite, so a small batch takes several and a remainder."""
    monkeypatch.setattr(insert, "ROWS_PER_STATEMENT", 3)


def stored(engine: Engine, portfolio: str) -> list[tuple[Any, ...]]:
    """The portfolio's entries as the database holds them (on SQLite: the text), in id order."""
    columns = ", ".join(insert.ENTRY_COLUMNS[2:])
    with unit_of_work(engine, readonly=True) as s:
        return [
            tuple(row)
            for row in s.execute(
                text(
                    f"SELECT {columns} FROM ledger_entries e JOIN portfolios p USING (portfolio_id) "
                    "WHERE p.name = :name ORDER BY e.ledger_entry_id"
                ),
                {"name": portfolio},
            )
        ]


def book(engine: Engine, portfolio: str) -> tuple[Any, Any]:
    with unit_of_work(engine, readonly=True) as s:
        actor = identity.bootstrap_admin(s)
        return ledger.cash(s, actor=actor, portfolio=portfolio), ledger.holdings(
            s, actor=actor, portfolio=portfolio
        )


def do_import(engine: Engine, portfolio: str, path: Path) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s, actor=identity.bootstrap_admin(s), portfolio=portfolio, path=path, format="canonical"
        )


def test_an_import_stores_by_columns_what_it_stores_entry_by_entry(
    engine: Engine, admin: User, tmp_path: Path, few_rows_per_statement: None, request: pytest.FixtureRequest
) -> None:
    setup(engine, admin)
    taken: list[bool] = []
    plain = imports._plain_entries

    def watched(*args: Any) -> Any:
        result = plain(*args)
        taken.append(result is not None)
        return result

    with pytest.MonkeyPatch.context() as m:
        m.setattr(imports, "_plain_entries", watched)
        path_a = tmp_path / "a.csv"
        path_a.write_text("\n".join([HEADER, *(row.format(p="") for row in ROWS)]) + "\n")
        assert do_import(engine, "A", path_a).added == len(ROWS)
    assert taken == [True]
    request.getfixturevalue("one_at_a_time")
    path_b = tmp_path / "b.csv"
    path_b.write_text("\n".join([HEADER, *(row.format(p="") for row in ROWS)]) + "\n\n")  # other bytes
    assert do_import(engine, "B", path_b).added == len(ROWS)
    assert stored(engine, "A") == stored(engine, "B")
    assert book(engine, "A") == book(engine, "B")
    with unit_of_work(engine) as s:
        rebuilt = ledger.rebuild(s, actor=identity.bootstrap_admin(s), portfolio="A")
    assert not rebuilt.changed


def test_stored_numbers_are_the_column_types_text(
    engine: Engine, admin: User, few_rows_per_statement: None
) -> None:
    """Exponents and negative zeros, which ``str`` of a Decimal keeps, are stored as ``decimal_str``
    writes them (the text ExactDecimal stores on SQLite); exact values on PostgreSQL."""
    setup(engine, admin)
    entries = [
        NewEntry(T0, "CONTRIBUTION", D("1.000E+4"), D("-0"), external_ref="c"),
        NewEntry(T0 + timedelta(hours=1), "BUY", D("-1.0E+3"), D("0E-2"), ticker="VWRP", exchange="LSE",
                 units=D("1E+1"), price=D("1.00E+2"), external_ref="b"),
        NewEntry(T0 + timedelta(hours=2), "INTEREST", D("0.0000001"), external_ref="i"),
        NewEntry(T0 + timedelta(hours=3), "TRANSFER", D("-0.00"), ticker="VWRP", exchange="LSE",
                 units=D("-2"), external_ref="t"),
    ]  # fmt: skip
    with unit_of_work(engine) as s:
        ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio="A",
            entries=entries,
            label="x",
            batch_type="MANUAL",
        )
    rows = stored(engine, "A")
    sqlite = engine.dialect.name == "sqlite"
    # units, price, fees_base, cash_amount_base (after the time, the type and the listing)
    numbers = [row[3:7] for row in rows]
    expected = [
        (None, None, D("-0"), D("1.000E+4")),
        (D("1E+1"), D("1.00E+2"), D("0E-2"), D("-1.0E+3")),
        (None, None, D(0), D("0.0000001")),
        (D(-2), None, D(0), D("-0.00")),
    ]
    if sqlite:
        assert numbers == [tuple(decimal_str(v) for v in row) for row in expected]
        assert numbers[0] == (None, None, "0", "10000") and numbers[2][3] == "0.0000001"
        assert rows[0][0] == "2024-01-02 09:00:00.000000"
    else:
        assert numbers == expected
    assert book(engine, "A")[0]["cash_balance"] == D("9000.0000001")


def test_the_column_checks_refuse_what_the_entry_checks_refuse(
    engine: Engine, admin: User, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    setup(engine, admin)
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        "2024-01-02T09:00:00Z,CONTRIBUTION,,,,,0,1000,c1,",
        "2024-01-03T10:00:00Z,BUY,VWRP,LSE,3,101.25,0,-300.00,b1,",  # units × price ≠ cash
        f"{future},INTEREST,,,,,,1,i1,",  # dated in the future
        "2024-01-04T10:00:00Z,BUY,VWRL,LSE,10,8123.5,1.50,-813.85,b2,",
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(FileFormatError) as by_columns:
        do_import(engine, "A", path)
    request.getfixturevalue("one_at_a_time")
    with pytest.raises(FileFormatError) as by_entries:
        do_import(engine, "A", path)
    assert by_columns.value.problems == by_entries.value.problems
    assert [line for line, _ in by_columns.value.problems] == [3, 4]
    assert stored(engine, "A") == []


def test_cash_below_zero_is_refused_by_columns_too(engine: Engine, admin: User, tmp_path: Path) -> None:
    setup(engine, admin)
    rows = [
        "2024-01-02T09:00:00Z,CONTRIBUTION,,,,,0,100,c1,",
        "2024-01-03T10:00:00Z,WITHDRAWAL,,,,,,-100.01,w1,",
    ]
    path = tmp_path / "short.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises((FileFormatError, LedgerError)) as info:
        do_import(engine, "A", path)
    assert "cash would go below zero" in str(info.value) and "line 3" in str(info.value)
    assert stored(engine, "A") == []
