from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradeassist.core.enums import EntryType
from tradeassist.core.errors import FileFormatError
from tradeassist.providers.brokers import get_broker_format
from tradeassist.providers.brokers.trading212 import parse_trading212

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


def test_eur_account_is_refused_naming_every_line(real_data: Path) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_trading212(brokers(real_data, "trading212-export_EUR_export-to-ghostfolio.csv"))
    error = info.value
    assert error.file == "trading212-export_EUR_export-to-ghostfolio.csv"
    reasons = dict(error.problems)
    assert sorted(reasons) == list(range(2, 15))
    assert reasons[2] == "the Total is in EUR; cash is kept in GBP only, so this line is refused"
    assert "action 'Stock distribution' is not supported" in reasons[11]
    assert "action 'Transfer out' is not supported" in reasons[12]


def test_multi_currency_export_names_the_non_gbp_lines(real_data: Path) -> None:
    with pytest.raises(FileFormatError) as info:
        parse_trading212(brokers(real_data, "trading212_multi-currency_investir.csv"))
    reasons = dict(info.value.problems)
    assert sorted(reasons) == [3, 4, 6, 9, 10, 11, 14, 15, 20]
    assert "in USD" in reasons[3] and "in EUR" in reasons[4]


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
