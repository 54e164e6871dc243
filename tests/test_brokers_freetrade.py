"""Freetrade exports: the real sample line by line, what is refused and why, and the import into a
real SQLite file (atomic, idempotent, unknown instruments told once)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.support.cli import run_cli
from tradeassist.core.enums import EntryType
from tradeassist.core.errors import FileFormatError, ValidationError
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import LedgerBatch, LedgerEntry
from tradeassist.providers.brokers import NamedBytes, get_broker_format
from tradeassist.providers.brokers.freetrade import parse_freetrade
from tradeassist.services import identity, imports, ledger, portfolios, registry

SAMPLE = "freetrade-export_export-to-ghostfolio.csv"
HEAD = (
    "Title,Type,Timestamp,Account Currency,Total Amount,Buy / Sell,Ticker,ISIN,"
    "Price per Share in Account Currency,Stamp Duty,Quantity,Venue,Order ID,Order Type,Instrument Currency,"
    "Total Shares Amount,Price per Share,FX Rate,Base FX Rate,FX Fee (BPS),FX Fee Amount,Dividend Ex Date,"
    "Dividend Pay Date,Dividend Eligible Quantity,Dividend Amount Per Share,"
    "Dividend Gross Distribution Amount,Dividend Net Distribution Amount,Dividend Withheld Tax Percentage,"
    "Dividend Withheld Tax Amount"
)


def sample(real_data: Path) -> Path:
    return real_data / "brokers" / SAMPLE


def write(tmp_path: Path, *rows: str, name: str = "freetrade.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def cash_row(title: str, kind: str, when: str, amount: str, currency: str = "GBP") -> str:
    return f"{title},{kind},{when},{currency},{amount}" + "," * 24  # the other 24 columns empty


def order(
    when: str, side: str, total: str, price: str, quantity: str, ref: str, *, stamp: str = "0.00"
) -> str:
    """A London order in GBP for VWRL."""
    return (
        f"FTSE All World,ORDER,{when},GBP,{total},{side},VWRL,IE00B3RBWM25,{price},{stamp},{quantity},"
        f"London Stock Exchange,{ref},MARKET,GBP,{total},{price},,,0,,,,,,,,,"
    )


def test_the_real_export_is_refused_for_its_property_income_line_only(real_data: Path) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_freetrade(sample(real_data))
    assert info.value.file == SAMPLE
    ((line, reason),) = info.value.problems
    assert line == 14
    assert "PROPERTY" in reason and "property income distribution" in reason
    assert "--option property_income=dividend" in reason


def test_the_real_export_line_by_line(real_data: Path) -> None:
    parsed = get_broker_format("freetrade").parse(sample(real_data), property_income="dividend")
    assert parsed.format == "freetrade"
    by_line = {e.line: e for e in parsed.entries}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14]  # 8 and 12 are monthly statements
    times = [e.entry_time for e in parsed.entries]
    assert times == sorted(times)  # the file is newest first; entries come oldest first

    withdrawal, top_up = by_line[2], by_line[3]
    assert (withdrawal.entry_type, withdrawal.cash_amount_base) == (EntryType.WITHDRAWAL, Decimal("-2412.19"))
    assert withdrawal.entry_time == datetime(2024, 4, 18, 18, 9, 12, 259000, tzinfo=UTC)
    assert (top_up.entry_type, top_up.cash_amount_base) == (EntryType.CONTRIBUTION, Decimal("1000.00"))

    atst_dividend = by_line[4]
    assert (atst_dividend.entry_type, atst_dividend.cash_amount_base) == (
        EntryType.DIVIDEND,
        Decimal("26.69"),
    )
    assert (atst_dividend.isin, atst_dividend.ticker, atst_dividend.description) == (
        "GB00B11V7W98",
        "ATST",
        "Alliance Trust",
    )
    assert atst_dividend.notes == "dividend: Alliance Trust (421.00000000 units)"
    assert (atst_dividend.units, atst_dividend.price, atst_dividend.fees_base) == (None, None, 0)
    nvda_dividend = by_line[5]  # net of US withholding, in GBP as the file gives it
    assert nvda_dividend.cash_amount_base == Decimal("0.31")
    assert nvda_dividend.extra["withholding_tax"] == "0.07 USD"

    interest = by_line[6]
    assert (interest.entry_type, interest.cash_amount_base, interest.notes) == (
        EntryType.INTEREST,
        Decimal("0.21"),
        "Interest",
    )

    vwrl = by_line[7]
    assert (vwrl.entry_type, vwrl.ticker, vwrl.isin, vwrl.units) == (
        EntryType.BUY,
        "VWRL",
        "IE00B3RBWM25",
        Decimal(10),
    )
    assert (vwrl.price, vwrl.price_currency, vwrl.fees_base, vwrl.cash_amount_base) == (
        Decimal("99.25"),
        "GBP",
        0,
        Decimal("-992.50"),
    )
    assert vwrl.external_ref == "DJXPPWUNIUCR"

    atst = by_line[9]  # stamp duty is a fee: Total = shares 5,043.03 + 25.22
    assert (atst.fees_base, atst.cash_amount_base, atst.consideration_base) == (
        Decimal("25.22"),
        Decimal("-5068.25"),
        Decimal("5043.03"),
    )

    nvda = by_line[11]  # priced in USD, paid in GBP with Freetrade's FX fee
    assert (nvda.price, nvda.price_currency, nvda.units) == (
        Decimal("617.43931800"),
        "USD",
        Decimal("4.10561350"),
    )
    assert (nvda.fees_base, nvda.cash_amount_base, nvda.consideration_base) == (
        Decimal("7.76"),
        Decimal("-1996.75"),
        Decimal("1988.99"),
    )

    free = by_line[13]  # a free share: units in, no cash, its value as its cost
    assert (free.entry_type, free.ticker, free.units, free.cash_amount_base) == (
        EntryType.TRANSFER,
        "VWRL",
        Decimal(1),
        0,
    )
    assert free.consideration_base == Decimal("4.95") and "free share" in free.notes
    assert "corporate_action" not in free.extra

    pid = by_line[14]
    assert (pid.entry_type, pid.cash_amount_base, pid.ticker) == (EntryType.DIVIDEND, Decimal("0.07"), "AAPL")
    assert pid.notes.startswith("property income distribution: Apple")

    assert sum(e.cash_amount_base for e in parsed.entries) == Decimal("-9435.63")
    refs = [e.external_ref for e in parsed.entries]
    assert len(set(refs)) == len(refs)
    again = parse_freetrade(sample(real_data), property_income="dividend")
    assert [e.external_ref for e in again.entries] == refs


def test_sells_and_a_negative_withdrawal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        order("2024-03-05T10:00:00.000Z", "SELL", "1000.00", "100.00", "10", "S1"),
        cash_row("Withdrawal", "WITHDRAWAL", "2024-03-06T10:00:00Z", "-50.00"),
    )
    sale, withdrawal = parse_freetrade(path).entries
    assert (sale.entry_type, sale.cash_amount_base, sale.consideration_base, sale.units) == (
        EntryType.SELL,
        Decimal("1000.00"),
        Decimal("1000.00"),
        Decimal(10),
    )
    assert withdrawal.cash_amount_base == Decimal("-50.00")


def test_every_bad_line_is_named_with_its_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        cash_row("Top up", "TOP_UP", "2024-03-01T10:00:00Z", "100.00"),  # 2: fine
        cash_row("Top up", "TOP_UP", "yesterday", "100.00"),  # 3
        cash_row("Top up", "TOP_UP", "2024-03-01T11:00:00Z", "-100.00"),  # 4
        cash_row("Cashback", "CASHBACK", "2024-03-01T12:00:00Z", "1.00"),  # 5
        order("2024-03-02T10:00:00Z", "HOLD", "992.50", "99.25", "10", "O1"),  # 6
        order("2024-03-02T11:00:00Z", "BUY", "992.50", "99.25", "11", "O7"),  # 7: total disagrees
        order("2024-03-02T12:00:00Z", "BUY", "992.50", "99.25", "10", "O2"),  # 8: fine
        order("2024-03-02T13:00:00Z", "BUY", "992.50", "99.25", "10", "O2"),  # 9: ref repeats 8
        cash_row("Top up", "TOP_UP", "2024-03-01T13:00:00Z", ""),  # 10
        "Top up,TOP_UP,2024-03-01T14:00:00Z,GBP,5",  # 11
    )
    with pytest.raises(FileFormatError) as info:
        parse_freetrade(path)
    assert info.value.file == "freetrade.csv"
    reasons = dict(info.value.problems)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 9, 10, 11]
    assert "Timestamp 'yesterday'" in reasons[3]
    assert "must not be negative" in reasons[4]
    assert "type 'CASHBACK' is not supported" in reasons[5]
    assert "Buy / Sell 'HOLD'" in reasons[6]
    assert "does not agree" in reasons[7] and "£1,091.75" in reasons[7]
    assert reasons[9] == "reference 'O2' repeats line 8"
    assert "Total Amount is empty" in reasons[10]
    assert reasons[11] == "has 5 fields, expected 29"


def test_an_account_in_another_currency_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        cash_row("Top up", "TOP_UP", "2024-03-01T10:00:00Z", "100.00", "SEK"),
        cash_row("Top up", "TOP_UP", "2024-03-02T10:00:00Z", "100.00", "SEK"),
    )
    with pytest.raises(FileFormatError) as info:
        parse_freetrade(path)
    ((line, reason),) = info.value.problems
    assert line is None and "the account currency is SEK" in reason and "only GBP accounts" in reason


def test_headers_empty_files_and_options(tmp_path: Path, real_data: Path) -> None:
    with pytest.raises(FileFormatError, match="not a Freetrade export"):
        parse_freetrade(NamedBytes("x.csv", b"Action,Time,Total\nDeposit,2024-01-01,5\n"))
    with pytest.raises(FileFormatError, match="no entries"):
        parse_freetrade(write(tmp_path))
    statements_only = write(
        tmp_path, "February Statement,MONTHLY_STATEMENT,2024-03-01T00:00:00.000Z" + "," * 26
    )
    with pytest.raises(FileFormatError, match="no entries"):
        parse_freetrade(statements_only)
    with pytest.raises(ValidationError, match="unknown option"):
        get_broker_format("freetrade").parse(sample(real_data), contributions="each-buy")


# --- through the import service, on a real SQLite file --------------------------------------


LISTINGS = (
    ("IE00B3RBWM25", "VWRL", "XLON", "GBP", "GBX"),
    ("GB00B11V7W98", "ATST", "XLON", "GBP", "GBX"),
    ("US67066G1040", "NVDA", "XNAS", "USD", "USD"),
)


@pytest.fixture
def book(sqlite_url: str) -> Iterator[Engine]:
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        for isin, ticker, exchange, currency, scale in LISTINGS:
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="STOCK")
            registry.add_listing(
                s, actor=actor, isin=isin, ticker=ticker, exchange=exchange, currency=currency,
                quote_scale=scale,
            )  # fmt: skip
        portfolios.add_portfolio(s, actor=actor, name="FT", broker="Freetrade", tax_treatment="ISA")
    yield engine
    engine.dispose()


def do_import(engine: Engine, path: Path, **kw: Any) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s, actor=identity.bootstrap_admin(s), portfolio="FT", path=path, format="freetrade", **kw
        )


def written(engine: Engine) -> tuple[int, int]:
    with unit_of_work(engine, readonly=True) as s:
        return (
            s.execute(select(func.count()).select_from(LedgerBatch)).scalar_one(),
            s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
        )


def test_the_real_export_imports_once_onto_earlier_cash(book: Engine, real_data: Path) -> None:
    with unit_of_work(book) as s:
        ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio="FT",
            entries=[ledger.NewEntry(datetime(2024, 1, 2, tzinfo=UTC), "CONTRIBUTION", Decimal(10000))],
            label="cash paid in before the export",
            batch_type="MANUAL",
        )
    before = written(book)
    with pytest.raises(FileFormatError, match="line 14: type 'PROPERTY'"):
        do_import(book, sample(real_data))
    assert written(book) == before
    options = {"property_income": "dividend"}
    result = do_import(book, sample(real_data), options=options)
    assert result.added == 11 and result.cash_balance == Decimal("564.37")  # 10,000 − 9,435.63
    with unit_of_work(book, readonly=True) as s:
        actor = identity.bootstrap_admin(s)
        held = {r["ticker"]: r["units"] for r in ledger.holdings(s, actor=actor, portfolio="FT")}
        entries = ledger.list_entries(s, actor=actor, portfolio="FT")
    assert held == {"VWRL": Decimal(11), "ATST": Decimal(421), "NVDA": Decimal("4.10561350")}
    vwrl = next(e for e in entries if e["ticker"] == "VWRL" and e["entry_type"] == "BUY")
    assert vwrl["price"] == Decimal(9925)  # pounds in the file, pence in the GBX listing
    dividends = [(e["ticker"], e["cash_amount_base"]) for e in entries if e["entry_type"] == "DIVIDEND"]
    # Apple has no listing here: its dividend and its property income are kept without one
    assert dividends == [
        (None, Decimal("6.78")),
        ("NVDA", Decimal("0.31")),
        ("ATST", Decimal("26.69")),
        (None, Decimal("0.07")),
    ]
    again = do_import(book, sample(real_data), options=options)
    assert again.already_imported and again.added == 0
    assert written(book) == (before[0] + 1, before[1] + 11)


def test_a_bad_row_writes_nothing_and_unknown_instruments_are_told_once(book: Engine, tmp_path: Path) -> None:
    before = written(book)
    tesla = (
        "Tesla,ORDER,{when},GBP,160.00,BUY,TSLA,US88160R1014,160.00,0.00,1,Nasdaq,{ref},MARKET,USD,200.00,"
        "200.00,1.25,1.25,0,0.00,,,,,,,,"
    )
    path = write(
        tmp_path,
        cash_row("Top up", "TOP_UP", "2024-03-01T10:00:00Z", "1000.00"),
        tesla.format(when="2024-03-02T10:00:00Z", ref="T1"),
        tesla.format(when="2024-03-03T10:00:00Z", ref="T2"),
        order("2024-03-04T10:00:00Z", "BUY", "992.50", "99.25", "10", "V1"),
    )
    with pytest.raises(FileFormatError) as info:
        do_import(book, path)
    assert written(book) == before
    ((line, reason),) = info.value.problems
    assert line == 3 and "US88160R1014" in reason and "TSLA" in reason and "Tesla" in reason
    assert "lines 3, 4 (2 lines)" in reason
    assert reason.index("tradeassist instrument add") < reason.index("tradeassist listing add")


def test_the_command_line_imports_a_freetrade_file(book: Engine, sqlite_url: str, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        order("2024-03-04T10:00:00Z", "BUY", "992.50", "99.25", "10", "V1"),
        cash_row("Top up", "TOP_UP", "2024-03-01T10:00:00Z", "1000.00"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": sqlite_url}
    command = ["ledger", "import", str(path), "--portfolio", "FT"]
    done = run_cli([*command, "--format", "freetrade"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "freetrade.csv: 2 entries added (batch 1); cash £7.50"
    done = run_cli([*command, "--format", "freetrade"], env)
    assert done.stdout.strip() == "freetrade.csv: imported before; nothing added (cash £7.50)"
