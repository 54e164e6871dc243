from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import FileFormatError, ValidationError
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.db.models import LedgerBatch, LedgerEntry
from tradeassist.providers.brokers import get_broker_format
from tradeassist.providers.brokers.base import CASH_CURRENCY
from tradeassist.providers.brokers.trading212 import parse_trading212
from tradeassist.services import identity, imports, ledger, portfolios, registry

# The current export layout, with the fee columns that appear when a period had such fees.
HEAD = (
    "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
    "Result,Currency (Result),Total,Currency (Total),Withholding tax,Currency (Withholding tax),"
    "Notes,ID,Currency conversion fee,Currency (Currency conversion fee),Stamp duty reserve tax,"
    "Currency (Stamp duty reserve tax)"
)


def brokers(real_data: Path, name: str) -> Path:
    return real_data / "brokers" / name


def write(tmp_path: Path, head: str, *rows: str, name: str = "t212.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_text(("\ufeff" if bom else "") + head + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_gbp_account_export(real_data: Path) -> None:
    path = brokers(real_data, "trading212_2021-2022_GBP_investir.csv")
    parsed = parse_trading212(path)
    assert parsed.format == "trading212" and len(parsed.entries) == 20
    assert parsed.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    deposit = parsed.entries[0]
    assert (deposit.entry_type, deposit.cash_amount_base) == (EntryType.CONTRIBUTION, Decimal(6000))
    assert deposit.entry_time == datetime(2021, 3, 2, 9, 4, tzinfo=UTC)

    apple = parsed.entries[1]
    assert (apple.entry_type, apple.ticker, apple.isin, apple.description) == (
        EntryType.BUY,
        "AAPL",
        "US0378331005",
        "Apple",
    )
    assert (apple.units, apple.price, apple.price_currency) == (
        Decimal("20.13713692"),
        Decimal("133.25505"),
        "USD",
    )
    # Total 1940.99 GBP includes the 4.76 GBP currency conversion fee.
    assert (apple.fees_base, apple.cash_amount_base, apple.consideration_base) == (
        Decimal("4.76"),
        Decimal("-1940.99"),
        Decimal("1936.23"),
    )
    assert apple.extra["exchange_rate"] == "1.38588" and apple.exchange is None

    smt = parsed.entries[7]  # Scottish Mortgage, with stamp duty
    assert (smt.ticker, smt.isin, smt.units, smt.price_currency) == ("SMT", "GB00BLDYK618", 176, "GBP")
    assert (smt.fees_base, smt.cash_amount_base) == (Decimal("11.90"), Decimal("-2386.66"))

    sale = parsed.entries[6]
    assert (sale.entry_type, sale.ticker, sale.cash_amount_base, sale.fees_base) == (
        EntryType.SELL,
        "MSFT",
        Decimal("2939.35"),
        Decimal("13.13"),
    )
    assert sale.consideration_base == Decimal("2952.48")

    dividend = parsed.entries[16]  # file line 18
    assert (dividend.entry_type, dividend.cash_amount_base) == (EntryType.DIVIDEND, Decimal("1.37"))
    assert dividend.notes == "dividend: Apple (10.13713692 units)"
    # The payer, for the service to attach the dividend to its listing; units held are not units moved.
    assert (dividend.isin, dividend.ticker, dividend.description) == ("US0378331005", "AAPL", "Apple")
    assert (dividend.units, dividend.price, dividend.fees_base) == (None, None, 0)
    assert (
        dividend.extra["dividend_isin"] == "US0378331005"
        and dividend.extra["dividend_units"] == "10.13713692"
    )
    interest = parsed.entries[12]
    assert (interest.entry_type, interest.notes) == (EntryType.INTEREST, "Interest on cash")
    withdrawal = parsed.entries[17]
    assert (withdrawal.entry_type, withdrawal.cash_amount_base) == (EntryType.WITHDRAWAL, Decimal(-400))

    # No ID column values in this export: content hashes, stable across runs and distinct.
    refs = [e.external_ref for e in parsed.entries]
    assert all(ref.startswith("h-") for ref in refs) and len(set(refs)) == 20
    assert [e.external_ref for e in parse_trading212(path).entries] == refs
    # deposits 10,000 − buys 10,465.65 + sells 8,141.94 + interest 3.29 + dividends 7.31 − 400
    assert sum(e.cash_amount_base for e in parsed.entries) == Decimal("7286.89")


def test_eur_account_is_refused_in_one_line(real_data: Path) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_trading212(brokers(real_data, "trading212-export_EUR_export-to-ghostfolio.csv"))
    error = info.value
    assert error.file == "trading212-export_EUR_export-to-ghostfolio.csv"
    assert len(error.problems) == 1  # one line, not one error per row
    line, reason = error.problems[0]
    assert line is None
    assert "the account currency is EUR" in reason and "only GBP accounts are supported" in reason
    assert str(error).startswith(
        "trading212-export_EUR_export-to-ghostfolio.csv: the account currency is EUR"
    )


def test_an_account_whose_every_total_is_in_another_currency_is_not_a_gbp_account(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD, 'Deposit,2024-01-01 08:00:00,,,,,,,,,,"100","USD",,,,D1,,,,')
    with pytest.raises(FileFormatError) as info:
        parse_trading212(path)
    assert [line for line, _ in info.value.problems] == [None]
    assert "the account currency is USD" in info.value.problems[0][1]


def test_multi_currency_gbp_account_gives_its_foreign_lines_in_their_own_currency(real_data: Path) -> None:
    """The parser reads no rate (it knows no database): a line whose Total is in USD or EUR is
    given in that currency (``extra["cash_currency"]``) for the import service to convert; a GBP
    line has no such mark, as in every other format."""
    parsed = parse_trading212(brokers(real_data, "trading212_multi-currency_investir.csv"))
    by_line = {e.line: e for e in parsed.entries}
    assert sorted(by_line) == list(range(2, 21))  # every line
    foreign = {line: e.extra[CASH_CURRENCY] for line, e in by_line.items() if CASH_CURRENCY in e.extra}
    assert foreign == {
        3: "USD",
        6: "USD",
        9: "USD",
        10: "USD",
        14: "USD",
        20: "USD",
        4: "EUR",
        11: "EUR",
        15: "EUR",
    }
    assert (by_line[3].entry_type, by_line[3].cash_amount_base) == (EntryType.CONTRIBUTION, Decimal(1000))
    assert (by_line[6].entry_type, by_line[6].cash_amount_base) == (EntryType.WITHDRAWAL, Decimal(-100))
    assert (by_line[11].entry_type, by_line[11].cash_amount_base) == (EntryType.INTEREST, Decimal("1.0"))
    paypal = by_line[14]  # bought with the account's dollars
    assert (paypal.entry_type, paypal.cash_amount_base, paypal.fees_base, paypal.consideration_base) == (
        EntryType.BUY,
        Decimal("-313.67"),
        0,
        Decimal("313.67"),
    )
    assert (paypal.units, paypal.price, paypal.price_currency) == (
        Decimal("4.13171759"),
        Decimal("75.918548"),
        "USD",
    )
    assert (by_line[20].entry_type, by_line[20].cash_amount_base) == (EntryType.SELL, Decimal("354.99"))
    assert CASH_CURRENCY not in by_line[16].extra and by_line[16].cash_amount_base == Decimal("-843.26")


def test_a_foreign_line_s_fees_are_in_its_total_s_currency_and_currencies_are_codes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD,
        'Deposit,2024-01-01 08:00:00,,,,,,,,,,"1000","GBP",,,,D1,,,,',  # 2: fine
        "Market buy,2024-01-02 08:00:00,US0378331005,AAPL,Apple,1,100,USD,,,,100.50,USD,,,,B1,0.5,USD,,",  # 3
        "Market buy,2024-01-02 09:00:00,US0378331005,AAPL,Apple,1,100,USD,,,,100.50,USD,,,,B2,0.5,GBP,,",  # 4
        "Deposit,2024-01-03 08:00:00,,,,,,,,,,100,US D,,,,D2,,,,",  # 5
        "Deposit,2024-01-03 09:00:00,,,,,,,,,,100,usd,,,,D3,,,,",  # 6: upper-cased, as every code
    )
    with pytest.raises(FileFormatError) as info:
        parse_trading212(path)
    reasons = dict(info.value.problems)
    assert sorted(reasons) == [4, 5]
    assert "Currency conversion fee is in GBP" in reasons[4] and "the Total's currency (USD)" in reasons[4]
    assert reasons[5] == "Currency (Total) 'US D' is not a three-letter currency code"
    good = [path.read_text().splitlines()[line - 1] for line in (2, 3, 6)]
    kept = parse_trading212(write(tmp_path, HEAD, *good, name="ok.csv"))
    apple = next(e for e in kept.entries if e.entry_type is EntryType.BUY)
    assert (
        apple.extra[CASH_CURRENCY],
        apple.cash_amount_base,
        apple.fees_base,
        apple.consideration_base,
    ) == (
        "USD",
        Decimal("-100.50"),
        Decimal("0.50"),
        Decimal("100.00"),
    )
    assert [e.extra.get(CASH_CURRENCY) for e in kept.entries] == [None, "USD", "USD"]


def test_multi_currency_gbp_account_imports_its_gbp_lines_with_foreign_cash_skipped(real_data: Path) -> None:
    path = brokers(real_data, "trading212_multi-currency_investir.csv")
    parsed = get_broker_format("trading212").parse(path, foreign_cash="skip")
    lines = sorted(e.line for e in parsed.entries)
    assert lines == [2, 5, 7, 8, 12, 13, 16, 17, 18, 19]
    by_line = {e.line: e for e in parsed.entries}
    # the file's GBP Total and GBP fees are the amounts
    msft = by_line[16]
    assert (msft.entry_type, msft.cash_amount_base, msft.fees_base, msft.consideration_base) == (
        EntryType.BUY,
        Decimal("-843.26"),
        Decimal("4.95"),
        Decimal("838.31"),
    )
    assert (msft.price, msft.price_currency) == (Decimal("351.61207523"), "USD")
    asml = by_line[13]  # a dividend paid in GBP on a EUR share: its GBP Total
    assert (asml.entry_type, asml.cash_amount_base, asml.extra["withholding_tax"]) == (
        EntryType.DIVIDEND,
        Decimal("5.12"),
        "1.23 EUR",
    )
    assert by_line[5].cash_amount_base == Decimal(-250)
    with pytest.raises(ValidationError, match=r"foreign_cash=convert\|skip"):
        get_broker_format("trading212").parse(path, foreign_cash="refuse")
    with pytest.raises(ValidationError, match="unknown option"):
        get_broker_format("trading212").parse(path, colour="blue")


def test_crypto_lines_are_refused_as_crypto(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD,
        'Deposit,2024-01-01 08:00:00,,,,,,,,,,"100","GBP",,,,D1,,,,',
        "Crypto buy,2024-01-02 08:00:00,,BTC,Bitcoin,0.001,40000,USD,1.25,,,32.00,GBP,,,,C1,,,,",
        "Crypto sell,2024-01-03 08:00:00,,BTC,Bitcoin,0.001,41000,USD,1.25,,,32.80,GBP,,,,C2,,,,",
    )
    with pytest.raises(FileFormatError) as info:
        parse_trading212(path)
    reasons = dict(info.value.problems)
    assert sorted(reasons) == [3, 4]
    for reason in reasons.values():
        assert "crypto is not supported" in reason
        assert "needs an instrument" not in reason


def test_pence_prices_thousands_separators_bom_and_newest_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD,
        # newest first, as a hand-sorted export might be
        'Market sell,2024-03-01 09:00:00,IE00B3RBWM25,VWRL,"Vanguard FTSE All-World",5,10500,GBX,1.00,'
        '12.50,"GBP",525.00,"GBP",,,,EOF3,,,,',
        'Limit buy,2024-02-01 10:00:00.5,IE00B3RBWM25,VWRL,"Vanguard FTSE All-World",10,10250.5,GBX,1.00,'
        ',"GBP","1,030.17","GBP",,,,EOF2,,,5.12,"GBP"',
        'Deposit,2024-01-31 08:00:00,,,,,,,,,,"2,000.00","GBP",,,,D1,,,,',
        bom=True,
    )
    deposit, buy, sell = parse_trading212(path).entries
    assert (deposit.line, buy.line, sell.line) == (4, 3, 2)
    assert deposit.cash_amount_base == Decimal("2000.00")
    assert (buy.price, buy.price_currency, buy.units) == (Decimal("10250.5"), "GBX", Decimal(10))
    # 10 × 10250.5p = £1,025.05 consideration, plus £5.12 stamp duty reserve tax.
    assert (buy.consideration_base, buy.fees_base, buy.cash_amount_base) == (
        Decimal("1025.05"),
        Decimal("5.12"),
        Decimal("-1030.17"),
    )
    assert buy.entry_time == datetime(2024, 2, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert (sell.price, sell.cash_amount_base, sell.external_ref) == (
        Decimal(10500),
        Decimal("525.00"),
        "EOF3",
    )


def test_older_export_with_total_in_gbp_and_splits(tmp_path: Path) -> None:
    head = (
        "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
        "Result (GBP),Total (GBP),Withholding tax,Currency (Withholding tax),Transaction fee (GBP),"
        "Finra fee (GBP),Notes,ID,Currency conversion fee (GBP)"
    )
    path = write(
        tmp_path,
        head,
        "Market buy,2020-05-01 14:00:00,US0378331005,AAPL,Apple,2,290.00,USD,1.25,,465.20,,,,0.04,,B1,1.16",
        "Stock split close,2020-08-31 06:00:00,US0378331005,AAPL,Apple,2,,USD,,,0.00,,,,,,S1,",
        "Stock split open,2020-08-31 06:00:01,US0378331005,AAPL,Apple,8,,USD,,,0.00,,,,,,S2,",
        "Dividend (Ordinary),2020-11-12 12:00:00,US0378331005,AAPL,Apple,8,0.205,USD,,,1.10,0.29,USD,,,,,",
    )
    buy, close, open_, dividend = parse_trading212(path).entries
    assert (buy.fees_base, buy.cash_amount_base, buy.consideration_base) == (
        Decimal("1.20"),
        Decimal("-465.20"),
        Decimal("464.00"),
    )
    assert (close.entry_type, close.units, close.cash_amount_base) == (EntryType.TRANSFER, Decimal(-2), 0)
    assert (open_.units, open_.extra["corporate_action"]) == (Decimal(8), "split")
    assert "stock split" in open_.notes
    assert dividend.extra["withholding_tax"] == "0.29 USD"
    assert (dividend.entry_type, dividend.cash_amount_base) == (EntryType.DIVIDEND, Decimal("1.10"))
    assert (dividend.isin, dividend.ticker, dividend.units, dividend.price) == (
        "US0378331005",
        "AAPL",
        None,
        None,
    )


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD,
        'Deposit,2024-01-01 08:00:00,,,,,,,,,,"100","GBP",,,,D1,,,,',  # 2: fine
        "Deposit,yesterday,,,,,,,,,,100,GBP,,,,D2,,,,",  # 3
        "Market buy,2024-01-02 08:00:00,US0378331006,AAPL,Apple,1,100,USD,1.2,,,83.33,GBP,,,,B3,,,,",  # 4
        "Market buy,2024-01-02 08:00:00,US0378331005,AAPL,Apple,1,100,USD,1.2,,,83.33,GBP,,,,D1,,,,",  # 5
        "Market buy,2024-01-02 08:00:00,US0378331005,AAPL,Apple,1,100,USD,1.2,,,,GBP,,,,B5,,,,",  # 6
        "Market buy,2024-01-02 08:00:00,US0378331005,AAPL,Apple,1,100,USD,1.2,,,83,GBP,,,,B6,0.5,USD,,",  # 7
        "Card debit,2024-01-03 08:00:00,,,,,,,,,,5,GBP,,,,C1,,,,",  # 8
        "Market buy,2024-01-02 08:00:00,US0378331005,AAPL,Apple,,100,USD,1.2,,,83.33,GBP,,,,B8,,,,",  # 9
        "Deposit,2024-01-01 08:00:00,,,,,,,,,,100,GBP",  # 10
    )
    with pytest.raises(FileFormatError) as info:
        parse_trading212(path)
    reasons = dict(info.value.problems)
    assert sorted(reasons) == list(range(3, 11))
    assert reasons[3] == "Time 'yesterday' is not a date and time"
    assert "check digit is 6, expected 5" in reasons[4]
    assert reasons[5] == "reference 'D1' repeats line 2"
    assert reasons[6] == "Total is empty"
    assert "Currency conversion fee is in USD" in reasons[7]
    assert "action 'Card debit' is not supported" in reasons[8]
    assert "needs units > 0" in reasons[9]
    assert reasons[10] == "has 13 fields, expected 21"


def test_header_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="not a Trading 212 export: no Action, Total column"):
        parse_trading212(write(tmp_path, "Type,Time,Amount", "Deposit,2024-01-01,5"))
    with pytest.raises(FileFormatError, match=r"no Currency \(Total\) column"):
        parse_trading212(write(tmp_path, "Action,Time,Total", "Deposit,2024-01-01,5"))
    with pytest.raises(FileFormatError, match="no entries"):
        parse_trading212(write(tmp_path, HEAD))
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(FileFormatError, match="the file is empty"):
        parse_trading212(tmp_path / "empty.csv")


def test_registry(real_data: Path) -> None:
    fmt = get_broker_format("trading212")
    assert len(fmt.parse(brokers(real_data, "trading212_2021-2022_GBP_investir.csv")).entries) == 20


# --- through the import service, on a real SQLite file --------------------------------------


@pytest.fixture
def book(sqlite_url: str) -> Iterator[Engine]:
    engine = create_db_engine(sqlite_url)
    yield engine
    engine.dispose()


def register(engine: Engine, *listings: tuple[str, str, str, str, str], portfolio: str = "T212") -> None:
    """Listings (isin, ticker, exchange, currency, quote scale) and an ISA named ``portfolio``."""
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        for isin, ticker, exchange, currency, scale in listings:
            if registry.find_instrument(s, isin) is None:
                registry.add_instrument(s, actor=actor, isin=isin, instrument_type="STOCK")
            registry.add_listing(
                s,
                actor=actor,
                isin=isin,
                ticker=ticker,
                exchange=exchange,
                currency=currency,
                quote_scale=scale,
            )
        portfolios.add_portfolio(s, actor=actor, name=portfolio, broker="Trading 212", tax_treatment="ISA")


def contribute(engine: Engine, portfolio: str, when: datetime, amount: str) -> None:
    with unit_of_work(engine) as s:
        ledger.post_entries(
            s,
            actor=identity.bootstrap_admin(s),
            portfolio=portfolio,
            entries=[ledger.NewEntry(when, "CONTRIBUTION", Decimal(amount), external_ref="before")],
            label="cash from before the export",
            batch_type="MANUAL",
        )


def do_import(engine: Engine, portfolio: str, path: Path, fmt: str, **kw: Any) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s, actor=identity.bootstrap_admin(s), portfolio=portfolio, path=path, format=fmt, **kw
        )


def written(engine: Engine) -> tuple[int, int]:
    """(batches, entries) in the database."""
    with unit_of_work(engine, readonly=True) as s:
        return (
            s.execute(select(func.count()).select_from(LedgerBatch)).scalar_one(),
            s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
        )


MSFT = ("US5949181045", "MSFT", "XNAS", "USD", "USD")
AMZN = ("US0231351067", "AMZN", "XNAS", "USD", "USD")


def test_multi_currency_import_with_foreign_cash_skipped_is_atomic_and_idempotent(
    book: Engine, real_data: Path
) -> None:
    register(book, MSFT, AMZN)
    contribute(book, "T212", datetime(2022, 4, 1, tzinfo=UTC), "5000")
    path = brokers(real_data, "trading212_multi-currency_investir.csv")
    before = written(book)
    with pytest.raises(FileFormatError, match="no GBP exchange rate is stored") as info:
        do_import(book, "T212", path, "trading212")  # every line, the foreign ones converted: no rates
    assert "foreign_cash=skip" in str(info.value)
    assert written(book) == before  # refused: nothing written
    result = do_import(book, "T212", path, "trading212", options={"foreign_cash": "skip"})
    assert result.added == 10
    # 5,000 + 1,000 − 250 + 3 + 4 (interest) + 4.12 + 5.12 (dividends) − 843.26 − 3,464.02 + 4,912.43 + 317.88
    assert result.cash_balance == Decimal("6689.27")
    again = do_import(book, "T212", path, "trading212", options={"foreign_cash": "skip"})
    assert again.already_imported and again.added == 0
    assert written(book) == (before[0] + 1, before[1] + 10)


def test_unknown_instruments_are_reported_once_each_with_the_commands_that_add_them(
    book: Engine, tmp_path: Path
) -> None:
    register(book, MSFT)
    path = write(
        tmp_path,
        HEAD,
        'Deposit,2024-01-01 08:00:00,,,,,,,,,,"5000","GBP",,,,D1,,,,',
        "Market buy,2024-01-02 08:00:00,US88160R1014,TSLA,Tesla,1,200,USD,1.25,,,160.00,GBP,,,,B1,,,,",
        "Market buy,2024-01-03 08:00:00,US88160R1014,TSLA,Tesla,1,200,USD,1.25,,,160.00,GBP,,,,B2,,,,",
        'Market buy,2024-01-03 09:00:00,GB00BLDYK618,SMT,"Scottish Mortgage",10,800,GBX,1,,,80.00,GBP,,,,B3'
        ",,,,",
        "Market buy,2024-01-04 08:00:00,US5949181045,MSFT,Microsoft,1,400,USD,1.25,,,320.00,GBP,,,,B4,,,,",
        "Market sell,2024-01-05 08:00:00,US88160R1014,TSLA,Tesla,2,210,USD,1.25,,,336.00,GBP,,,,S1,,,,",
    )
    before = written(book)
    with pytest.raises(FileFormatError) as info:
        do_import(book, "T212", path, "trading212")
    assert written(book) == before
    assert info.value.file == "t212.csv"
    reasons = dict(info.value.problems)
    assert sorted(reasons) == [3, 5]  # once per instrument, at its first line
    tesla = reasons[3]
    for fragment in (
        "US88160R1014",
        "TSLA",
        "Tesla",
        "lines 3, 4, 7 (3 lines)",
        "tradeassist instrument add --isin US88160R1014 --type",
        "--name Tesla",
        "tradeassist listing add --isin US88160R1014 --ticker TSLA --exchange",
        "--currency USD --quote-scale USD",
    ):
        assert fragment in tesla, fragment
    assert tesla.index("instrument add") < tesla.index("listing add")
    smt = reasons[5]
    assert "GB00BLDYK618" in smt and "'Scottish Mortgage'" in smt and "line 5 (1 line)" in smt
    assert "--currency GBP --quote-scale GBX" in smt
    assert str(info.value).count("US88160R1014") == 3  # named once (its ISIN in the two commands)


def test_an_instrument_registered_without_a_listing_is_told_to_add_the_listing_only(
    book: Engine, tmp_path: Path
) -> None:
    register(book, MSFT)
    with unit_of_work(book) as s:
        registry.add_instrument(
            s, actor=identity.bootstrap_admin(s), isin="US88160R1014", instrument_type="STOCK"
        )
    path = write(
        tmp_path,
        HEAD,
        'Deposit,2024-01-01 08:00:00,,,,,,,,,,"5000","GBP",,,,D1,,,,',
        "Market buy,2024-01-02 08:00:00,US88160R1014,TSLA,Tesla,1,200,USD,1.25,,,160.00,GBP,,,,B1,,,,",
    )
    with pytest.raises(FileFormatError) as info:
        do_import(book, "T212", path, "trading212")
    (reason,) = dict(info.value.problems).values()
    assert "instrument add" not in reason and "tradeassist listing add --isin US88160R1014" in reason
