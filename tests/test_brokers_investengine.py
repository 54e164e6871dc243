"""InvestEngine exports: trades only, no cash. The real sample line by line; what an investor must
add (contributions recorded first, or --option contributions=each-buy) and the error that says
so; the import into a real SQLite file (atomic, idempotent) and through the command line."""

from __future__ import annotations

import os
import re
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
from tradeassist.core.errors import FileFormatError, LedgerError, ValidationError
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import LedgerBatch, LedgerEntry
from tradeassist.providers.brokers import get_broker_format
from tradeassist.providers.brokers.investengine import parse_investengine
from tradeassist.services import identity, imports, ledger, portfolios, registry

SAMPLE = "investengine-export_export-to-ghostfolio.csv"
HEAD = (
    "Security / ISIN,Transaction Type,Quantity,Share Price,Total Trade Value,Trade Date/Time,"
    "Settlement Date,Broker"
)
VWRP = "Vanguard FTSE All-World / ISIN IE00BK5BQT80"


def sample(real_data: Path) -> Path:
    return real_data / "brokers" / SAMPLE


def write(tmp_path: Path, *rows: str, name: str = "investengine.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_the_real_export_line_by_line(real_data: Path) -> None:
    parsed = parse_investengine(sample(real_data))
    assert parsed.format == "investengine" and len(parsed.entries) == 5
    first, *_, sale = parsed.entries
    assert (first.entry_type, first.isin, first.ticker, first.description) == (
        EntryType.BUY,
        "IE00BK5BQT80",
        None,
        "Vanguard FTSE All-World",
    )
    # UK time: 23/12/24 15:18:12 is GMT; 30/04/25 14:13:11 is BST, an hour ahead of UTC
    assert first.entry_time == datetime(2024, 12, 23, 15, 18, 12, tzinfo=UTC)
    assert sale.entry_time == datetime(2025, 4, 30, 13, 13, 11, tzinfo=UTC)
    # the price InvestEngine prints is rounded to the penny (2.699055 × £110.79 = £299.03):
    # the price is the Total Trade Value / Quantity, the value kept exact as the consideration
    assert (first.units, first.consideration_base, first.cash_amount_base, first.fees_base) == (
        Decimal("2.699055"),
        Decimal("299.04"),
        Decimal("-299.04"),
        0,
    )
    assert (first.price, first.price_currency) == (Decimal("110.79433357"), "GBP")
    assert first.extra["share_price"] == "£110.79" and first.extra["settlement_date"] == "27/12/24"
    assert (sale.entry_type, sale.units, sale.cash_amount_base) == (
        EntryType.SELL,
        Decimal("10.696127"),
        Decimal("1093.41"),
    )
    assert sum(e.cash_amount_base for e in parsed.entries) == Decimal("1093.41") - Decimal("1199.98")
    refs = [e.external_ref for e in parsed.entries]
    assert len(set(refs)) == 5 and refs == [
        e.external_ref for e in parse_investengine(sample(real_data)).entries
    ]
    # no cash lines: what to do when the ledger finds the buys unpaid for
    assert "no cash lines" in parsed.cash_hint and "--option contributions=each-buy" in parsed.cash_hint
    assert "tradeassist ledger add" in parsed.cash_hint


def test_each_buy_paid_in_as_it_is_made(real_data: Path) -> None:
    parsed = get_broker_format("investengine").parse(sample(real_data), contributions="each-buy")
    kinds = [e.entry_type for e in parsed.entries]
    assert kinds == [EntryType.CONTRIBUTION, EntryType.BUY] * 4 + [EntryType.SELL]
    for contribution, buy in zip(parsed.entries[0:8:2], parsed.entries[1:8:2], strict=True):
        assert contribution.entry_time == buy.entry_time and contribution.line == buy.line
        assert contribution.cash_amount_base == -buy.cash_amount_base
        assert contribution.external_ref != buy.external_ref
        assert f"line {buy.line}" in contribution.notes
    assert sum(e.cash_amount_base for e in parsed.entries) == Decimal("1093.41")
    assert parsed.cash_hint is None
    with pytest.raises(ValidationError, match=re.escape("contributions=none|each-buy")):
        get_broker_format("investengine").parse(sample(real_data), contributions="monthly")


def test_newest_first_files_and_four_digit_years(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'"{VWRP}",Sell,1,£120.00,£120.00,01/08/2024 09:30:00,05/08/2024,None',
        f'"{VWRP}",Buy,2,"£1,000.00","£2,000.00",01/02/2024 09:30,05/02/2024,None',
    )
    buy, sell = parse_investengine(path, contributions="each-buy").entries[1:]
    assert (buy.line, sell.line) == (3, 2)
    assert buy.entry_time == datetime(2024, 2, 1, 9, 30, tzinfo=UTC)
    assert sell.entry_time == datetime(2024, 8, 1, 8, 30, tzinfo=UTC)
    assert (buy.consideration_base, buy.price) == (Decimal("2000.00"), Decimal("1000.00000000"))


def test_every_bad_line_is_named_with_its_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{VWRP},Buy,1,£100.00,£100.00,23/12/24 15:18:12,27/12/24,None",  # 2: fine
        "Vanguard FTSE All-World,Buy,1,£100.00,£100.00,23/12/24 15:18:12,27/12/24,None",  # 3
        f"{VWRP},Dividend,1,£1.00,£1.00,23/12/24 15:18:12,27/12/24,None",  # 4
        f"{VWRP},Buy,1,£100.00,£100.00,2024-12-23 15:18,27/12/24,None",  # 5
        f"{VWRP},Buy,0,£100.00,£100.00,23/12/24 15:18:12,27/12/24,None",  # 6
        f"{VWRP},Buy,1,£100.00,,23/12/24 15:18:12,27/12/24,None",  # 7
        f"{VWRP},Buy,1,£100.00,£100.00,31/02/24 15:18:12,27/12/24,None",  # 8
        f"{VWRP[:-1]}1,Buy,1,£100.00,£100.00,23/12/24 15:18:12,27/12/24,None",  # 9: check digit
        f"{VWRP},Buy,1",  # 10
    )
    with pytest.raises(FileFormatError) as info:
        parse_investengine(path)
    assert info.value.file == "investengine.csv"
    reasons = dict(info.value.problems)
    assert sorted(reasons) == list(range(3, 11))
    assert "'Vanguard FTSE All-World' does not name an ISIN" in reasons[3]
    assert "transaction type 'Dividend' is not supported" in reasons[4]
    assert "Trade Date/Time '2024-12-23 15:18' is not dd/mm/yy hh:mm:ss" in reasons[5]
    assert "needs units > 0" in reasons[6]
    assert "Total Trade Value is empty" in reasons[7]
    assert "does not exist" in reasons[8]
    assert "check digit" in reasons[9]
    assert reasons[10] == "has 3 fields, expected 8"


def test_a_file_that_is_not_investengine_s(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Type,Amount\n01/01/2024,x,1\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="not an InvestEngine export"):
        parse_investengine(bad)
    with pytest.raises(FileFormatError, match="no entries"):
        parse_investengine(write(tmp_path))


# --- through the import service, on a real SQLite file --------------------------------------


@pytest.fixture
def book(sqlite_url: str) -> Iterator[Engine]:
    engine = create_db_engine(sqlite_url)
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        registry.add_instrument(s, actor=actor, isin="IE00BK5BQT80", instrument_type="ETF")
        registry.add_listing(
            s, actor=actor, isin="IE00BK5BQT80", ticker="VWRP", exchange="XLON", currency="GBP",
            quote_scale="GBP",
        )  # fmt: skip
        portfolios.add_portfolio(s, actor=actor, name="IE", broker="InvestEngine", tax_treatment="ISA")
    yield engine
    engine.dispose()


def do_import(engine: Engine, path: Path, **kw: Any) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s, actor=identity.bootstrap_admin(s), portfolio="IE", path=path, format="investengine", **kw
        )


def written(engine: Engine) -> tuple[int, int]:
    with unit_of_work(engine, readonly=True) as s:
        return (
            s.execute(select(func.count()).select_from(LedgerBatch)).scalar_one(),
            s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
        )


def test_without_cash_the_import_says_what_to_pass(book: Engine, real_data: Path) -> None:
    before = written(book)
    with pytest.raises((FileFormatError, LedgerError)) as info:
        do_import(book, sample(real_data))
    assert written(book) == before
    text = str(info.value)
    assert SAMPLE in text and "line 2" in text and "cash would go below zero" in text
    assert "--option contributions=each-buy" in text and "tradeassist ledger add" in text


def test_with_each_buy_paid_in_it_imports_once(book: Engine, real_data: Path) -> None:
    options = {"contributions": "each-buy"}
    result = do_import(book, sample(real_data), options=options)
    assert result.added == 9 and result.cash_balance == Decimal("1093.41")
    with unit_of_work(book, readonly=True) as s:
        actor = identity.bootstrap_admin(s)
        held = ledger.holdings(s, actor=actor, portfolio="IE")
        entries = ledger.list_entries(s, actor=actor, portfolio="IE")
    assert all(h["units"] == 0 for h in held)  # bought four times, all sold
    assert [e["entry_type"] for e in entries[:2]] == ["CONTRIBUTION", "BUY"]
    assert entries[1]["ticker"] == "VWRP" and entries[1]["price"] == Decimal("110.79433357")
    again = do_import(book, sample(real_data), options=options)
    assert again.already_imported and again.added == 0
    assert written(book) == (1, 9)


def test_contributions_recorded_first_pay_for_the_buys(book: Engine, real_data: Path) -> None:
    with unit_of_work(book) as s:
        ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio="IE",
            entries=[ledger.NewEntry(datetime(2024, 12, 1, tzinfo=UTC), "CONTRIBUTION", Decimal(1200))],
            label="paid in by direct debit",
            batch_type="MANUAL",
        )
    result = do_import(book, sample(real_data))
    assert result.added == 5 and result.cash_balance == Decimal("1093.43")  # 1,200 − 1,199.98 + 1,093.41


def test_an_unknown_fund_is_told_once_with_the_commands_that_add_it(book: Engine, tmp_path: Path) -> None:
    other = "iShares Core MSCI World / ISIN IE00B4L5Y983"
    path = write(
        tmp_path,
        f"{other},Buy,1,£100.00,£100.00,23/12/24 15:18:12,27/12/24,None",
        f"{other},Buy,1,£100.00,£100.00,23/01/25 15:18:12,27/01/25,None",
    )
    with pytest.raises(FileFormatError) as info:
        do_import(book, path, options={"contributions": "each-buy"})
    assert written(book) == (0, 0)
    ((line, reason),) = info.value.problems
    assert line == 2 and "ISIN IE00B4L5Y983" in reason and "iShares Core MSCI World" in reason
    assert "lines 2, 3 (2 lines)" in reason and "--ticker <TICKER>" in reason
    assert "tradeassist instrument add --isin IE00B4L5Y983" in reason


def test_the_command_line_imports_an_investengine_file(
    book: Engine, sqlite_url: str, real_data: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(tmp_path / "home"), "TRADEASSIST_DB_URL": sqlite_url}
    command = ["ledger", "import", str(sample(real_data))]
    command += ["--portfolio", "IE", "--format", "investengine"]
    refused = run_cli(command, env)
    assert refused.returncode != 0 and "--option contributions=each-buy" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = run_cli([*command, "--option", "contributions"], env)
    assert bad.returncode != 0 and "expected KEY=VALUE" in bad.stderr
    done = run_cli([*command, "--option", "contributions=each-buy"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{SAMPLE}: 9 entries added (batch 1); cash £1,093.41"


def test_setup_import_passes_the_formats_option(
    book: Engine, sqlite_url: str, real_data: Path, tmp_path: Path
) -> None:
    """`setup import` takes `--option KEY=VALUE` as `ledger import` does (it had none, so an
    InvestEngine account could not be set up in one command), and refuses one the format does
    not take, or one for AJ Bell, in one line."""
    from tests.support.cli import clean_env

    env = clean_env(tmp_path, TRADEASSIST_DB_URL=sqlite_url)
    command = ["setup", "import", str(sample(real_data)), "--portfolio", "IE", "--format", "investengine"]
    refused = run_cli(command, env)
    assert refused.returncode != 0 and "--option contributions=each-buy" in refused.stderr
    unknown = run_cli([*command, "--option", "colour=blue"], env)
    assert unknown.returncode != 0 and "colour" in unknown.stderr and "Traceback" not in unknown.stderr
    ajbell = run_cli([*command[:-1], "ajbell", "--option", "contributions=each-buy"], env)
    assert ajbell.returncode != 0
    assert ajbell.stderr.strip() == "error: the ajbell format takes no --option (got contributions)"
    done = run_cli([*command, "--option", "contributions=each-buy"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{SAMPLE}: 9 entries added (batch 1); cash £1,093.41"
