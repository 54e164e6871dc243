"""Issue #16 item 8: fuzz every importer with random bytes and mutated real files.

Each importer (``ledger import`` in the canonical, AJ Bell, Trading 212, Freetrade and
InvestEngine formats and AJ Bell's mapping file, ``prices import`` in every price format, ``fx
import``, and the policy and manifesto files of ``strategy add``) is run through
``tradeassist.cli.main``, in this process as the console script calls it, against one real SQLite
file holding a book (listings, ECB rates, a few closes, a portfolio holding VWRL and four empty
ones). Every example ends one of two ways:

* **accepted**: exit 0, and the book still holds: ``ledger verify`` agrees, nothing stored is
  dated in the future or beyond ``core.limits``'s bounds, and importing the same file again
  adds nothing. The database file is then restored, so that examples are independent;
* **refused**: exit non-zero, exactly one stderr line starting ``error:`` that names the file
  (or the companion file it is about), never the CLI's last resort ("please report this bug")
  or a raw database error, no traceback, and every table exactly as before.

Examples are (a) random bytes, alone or after the format's own header, and (b) mutations of a
real sample (``tests/conftest.py``'s ``real_data``, read in place, never copied) or of a valid
file built here: bytes flipped, inserted or deleted, lines duplicated, dropped or swapped,
columns swapped or dropped, a cell or a JSON value replaced by an extreme of its kind
(``1E+999999``, ``-0``, ``NaN``, a 5,000-digit integer, empty, a 200 KiB cell, non-UTF-8, NUL,
a date after today or one that is year 0 in UTC...).

The run is derandomised (the same examples every time, so CI is repeatable) and sized to take
about a minute on two cores (Freetrade and InvestEngine, whose files go the way Trading 212's do,
through a CSV reader to the same import service, get fewer examples);
``TRADEASSIST_FUZZ_EXAMPLES=N`` multiplies the examples by N and ``TRADEASSIST_FUZZ_SEED=S``
draws them from seed S instead, for a longer hunt. What the fuzz
found is fixed where the input enters, with a regression test at the end of this file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import event as hypothesis_event
from hypothesis import note as hypothesis_note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.conftest import ADMIN_EMAIL
from tradeassist.core import limits
from tradeassist.core.isin import isin_check_digit
from tradeassist.db.engine import create_db_engine, dispose_engines, unit_of_work
from tradeassist.demo import data as demo
from tradeassist.services import identity, ledger, portfolios, registry

# --- how much to run -------------------------------------------------------------------------

SCALE = int(os.environ.get("TRADEASSIST_FUZZ_EXAMPLES", "1"))
RANDOM_SEED = os.environ.get("TRADEASSIST_FUZZ_SEED")
RANDOM_EXAMPLES = 20 * SCALE
MUTATED_EXAMPLES = 50 * SCALE
# Importers marked ``few`` (Freetrade, InvestEngine): what is theirs is a small parser; the CSV
# reading before it and the import service after it are what every other format's examples run.
FEW_RANDOM_EXAMPLES = 5 * SCALE
FEW_MUTATED_EXAMPLES = 15 * SCALE


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    """Derandomised unless a seed is given; no example database (CI sees the same examples)."""
    chosen = settings(
        max_examples=examples,
        deadline=None,
        derandomize=RANDOM_SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # only the autouse TRADEASSIST_USER reset
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    if RANDOM_SEED is None:
        return chosen
    return lambda test: seed(int(RANDOM_SEED))(chosen(test))


# --- the book every example starts from ------------------------------------------------------

CANONICAL_PORTFOLIO, T212_PORTFOLIO, AJBELL_PORTFOLIO = "GIA", "T212", "AJB"
FREETRADE_PORTFOLIO, INVESTENGINE_PORTFOLIO = "FT", "IE"
# The AJ Bell samples' descriptions: (ticker, quote scale) of LSE listings, as the user maps them.
AJBELL_MAPPING = {
    "Lyxor Core UK Govt Bd (DR) ETF D GBP": ("GILS", "GBX"),
    "Vanguard USD Corp Bd UCITS ETF GBP": ("VUCP", "GBP"),
    "Scottish Mortgage Ord": ("SMT", "GBX"),
    "DB X-TRACKERS MSCI WLD TRN IDX UCITS ETF1": ("XDWD", "GBX"),
    "iShares Core UK Gilts ETF GBP Dist": ("IGLT", "GBX"),
    "iShares FTSE 250 ETF GBP Dist": ("MIDD", "GBX"),
    "Vanguard FTSE All-World UCITS ETF": ("VWRL", "GBP"),
    "Vanguard FTSE All-World UCITS ETF GBP": ("VWRL", "GBP"),
    "Xtrackers MSCI UK ESG ETF 1D £": ("XUKS", "GBX"),
}
US_LISTINGS = (  # the Trading 212 samples' instruments
    ("US0378331005", "AAPL", "XNAS", "USD", "USD"),
    ("US5949181045", "MSFT", "XNAS", "USD", "USD"),
    ("US83088M1027", "SWKS", "XNAS", "USD", "USD"),
    ("GB00BLDYK618", "SMT", "XLON", "GBP", "GBX"),
)


def fake_isin(n: int) -> str:
    body = f"GB00{n:07d}"
    return body + isin_check_digit(body)


def lse_isin(ticker: str) -> str:
    """The made-up ISIN ``prepare_book`` gives an LSE listing of the AJ Bell mapping."""
    tickers = [t for t, _ in dict.fromkeys(AJBELL_MAPPING.values())]
    return fake_isin(tickers.index(ticker) + 1)


PRISTINE_FX = b"""Date,USD,JPY,GBP,
2024-01-03,1.0919,155.52,0.86330,
2024-01-02,1.0956,155.65,0.86518,
2023-12-29,1.1050,156.33,0.86905,
2023-12-28,1.1114,156.86,0.86828,
"""
PRISTINE_PRICES = {
    ("VWRL", "LSE"): b"date,close\n2023-12-28,99.8\n2023-12-29,100.0\n",
    ("GILS", "LSE"): b"date,close\n2023-12-28,1250.5\n2023-12-29,1251\n",
    ("AAPL", "XNAS"): b"date,close,currency\n2024-01-08,185.56,USD\n2024-01-09,185.14,USD\n",  # no FX yet
}


def prepare_book(url: str, folder: Path) -> None:
    """LSE listings for the AJ Bell mapping (VWRL in pounds, GILS in pence...), the US and LSE
    listings of the Trading 212 samples, ECB rates for four days of 2023-24, a few closes (Apple's
    on days without a rate), and five portfolios: GIA, with £10,000 paid in on 2020-01-02 and
    10 VWRL bought on 2023-12-29, and T212, AJB, FT and IE empty (an AJ Bell statement checks its
    running balance from nothing)."""
    from tradeassist.services import fx, prices

    engine = create_db_engine(url)
    try:
        with unit_of_work(engine) as s:
            admin = identity.get_user(s, ADMIN_EMAIL)
            tickers = dict.fromkeys(AJBELL_MAPPING.values())
            rows = [(fake_isin(n), t, "LSE", "GBP", scale) for n, (t, scale) in enumerate(tickers, start=1)]
            for isin, ticker, exchange, currency, scale in [*rows, *US_LISTINGS]:
                registry.add_instrument(s, actor=admin, isin=isin, instrument_type="ETF")
                registry.add_listing(
                    s,
                    actor=admin,
                    isin=isin,
                    ticker=ticker,
                    exchange=exchange,
                    currency=currency,
                    quote_scale=scale,
                )
            for name, broker in (
                (CANONICAL_PORTFOLIO, "AJBell"),
                (T212_PORTFOLIO, "Trading212"),
                (AJBELL_PORTFOLIO, "AJBell"),
                (FREETRADE_PORTFOLIO, "Freetrade"),
                (INVESTENGINE_PORTFOLIO, "InvestEngine"),
            ):
                portfolios.add_portfolio(s, actor=admin, name=name, broker=broker, tax_treatment="GIA")
            fx_file = folder / "pristine-fx.csv"
            fx_file.write_bytes(PRISTINE_FX)
            fx.import_fx_file(s, actor=admin, path=fx_file, fmt="ecb")
            for (ticker, exchange), body in PRISTINE_PRICES.items():
                price_file = folder / f"pristine-{ticker}.csv"
                price_file.write_bytes(body)
                prices.import_price_file(
                    s, actor=admin, path=price_file, ticker=ticker, exchange=exchange, fmt="csv"
                )
            entries = [
                ledger.manual_entry(
                    s, entry_type="CONTRIBUTION", amount="10000", entry_time=datetime(2020, 1, 2, tzinfo=UTC),
                ),
                ledger.manual_entry(
                    s, entry_type="BUY", ticker="VWRL", exchange="LSE", units="10", price="100",
                    entry_time=datetime(2023, 12, 29, 12, tzinfo=UTC), external_ref="OPEN-1",
                ),
            ]  # fmt: skip
            ledger.post_entries(
                s, actor=admin, portfolio=CANONICAL_PORTFOLIO, entries=entries, label="opening",
                batch_type="MANUAL",
            )  # fmt: skip
    finally:
        engine.dispose()


# --- the importers and their valid samples ----------------------------------------------------

FILE = "{file}"  # where the fuzzed file goes in a command's arguments

CANONICAL = b"""entry_time,entry_type,ticker,exchange,units,price,\
fees_base,cash_amount_base,external_ref,notes
2024-01-03,CONTRIBUTION,,,,,,1000.00,C1,
2024-01-04T10:30:00Z,BUY,VWRL,LSE,10,100.5,1.50,-1006.50,C2,first buy
2024-01-05,BUY,GILS,LSE,"1,000",12.5,0,-125.00,C3,pence price
2024-02-05T09:00:00+01:00,SELL,VWRL,LSE,4,101,0,404.00,C4,
2024-03-06,DIVIDEND,VWRL,LSE,,,,2.50,C5,
2024-03-07,INTEREST,,,,,,0.10,,
2024-03-08,FEE,,,,,1.00,-1.00,C7,custody
2024-03-09,WITHDRAWAL,,,,,,-100.00,C8,
"""
T212 = b"""Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,\
Total,Currency (Total),Stamp duty reserve tax,Currency (Stamp duty reserve tax),ID
Deposit,2024-03-01 09:00:00,,,,,,,,"1,000.00",GBP,,,EOF1
Market buy,2024-03-02 10:00:00,GB00BLDYK618,SMT,Scottish Mortgage,2.5,"901.20",GBX,0.01,22.53,GBP,,,EOF2
Market buy,2024-03-04 14:30:00,US0378331005,AAPL,Apple,1.5,170.10,USD,1.27,201.00,GBP,0.50,GBP,EOF3
Dividend (Ordinary),2024-03-05 02:30:00,US0378331005,AAPL,Apple,1.5,0.24,USD,Not available,0.28,GBP,,,EOF4
Interest on cash,2024-03-06 00:00:00,,,,,,,,0.42,GBP,,,EOF5
Market sell,2024-03-07 15:00:00,US0378331005,AAPL,Apple,0.5,171.00,USD,1.27,67.10,GBP,,,EOF6
Withdrawal,2024-03-08 10:00:00,,,,,,,,-50.00,GBP,,,EOF7
"""
# A multi-currency account's lines in dollars and euros, on days the book has ECB rates for (the
# import converts them to GBP at those rates).
T212_FOREIGN = (
    T212.split(b"\n")[0]
    + b"""
Deposit,2024-01-02 09:00:00,,,,,,,,"1,000.00",GBP,,,FX1
Deposit,2024-01-03 10:00:00,,,,,,,,500.00,USD,,,FX2
Interest on cash,2024-01-05 00:00:00,,,,,,,,0.42,EUR,,,FX3
Market buy,2024-01-08 14:30:00,US0378331005,AAPL,Apple,1.5,170.10,USD,,255.15,USD,,,FX4
"""
)
FREETRADE_HEAD = (
    "Title,Type,Timestamp,Account Currency,Total Amount,Buy / Sell,Ticker,ISIN,Price per Share in Account "
    "Currency,Stamp Duty,Quantity,Venue,Order ID,Order Type,Instrument Currency,Total Shares Amount,Price "
    "per Share,FX Rate,Base FX Rate,FX Fee (BPS),FX Fee Amount,Dividend Ex Date,Dividend Pay Date,Dividend "
    "Eligible Quantity,Dividend Amount Per Share,Dividend Gross Distribution Amount,Dividend Net "
    "Distribution Amount,Dividend Withheld Tax Percentage,Dividend Withheld Tax Amount"
)


def freetrade_row(*cells: str) -> str:
    """A Freetrade line: the cells given, then empty ones up to the header's 29."""
    return ",".join([*cells, *[""] * (29 - len(cells))])


# Newest first, as Freetrade writes it: every type it has, in GBP, a US share bought in dollars.
FREETRADE = "\n".join(
    [
        FREETRADE_HEAD,
        freetrade_row("Withdrawal", "WITHDRAWAL", "2024-04-18T18:09:12.259Z", "GBP", "100.00"),
        freetrade_row(
            "Apple", "DIVIDEND", "2024-03-28T18:45:00.000Z", "GBP", "0.31", "", "AAPL", "US0378331005", "",
            "", "2.00000000", "", "", "", "USD", "", "", "", "0.79", "0", "0.00", "2024-03-01",
            "2024-03-28", "2.00000000", "0.24000000", "0.48", "0.41", "15", "0.07",
        ),
        freetrade_row(
            "Scottish Mortgage", "ORDER", "2024-03-20T10:00:00.000Z", "GBP", "40.00", "SELL", "SMT",
            "GB00BLDYK618", "8.00000000", "0.00", "5.00000000", "London Stock Exchange", "FTO3", "MARKET",
            "GBP", "40.00", "8.00000000", "", "", "0",
        ),
        freetrade_row("Interest", "INTEREST_FROM_CASH", "2024-03-15T00:00:00.000Z", "GBP", "0.21"),
        freetrade_row(
            "Apple", "ORDER", "2024-03-04T15:00:00.000Z", "GBP", "301.50", "BUY", "AAPL", "US0378331005",
            "150.00000000", "0.00", "2.00000000", "Multiple", "FTO2", "MARKET", "USD", "381.00",
            "190.50000000", "1.27", "1.27", "39", "1.50",
        ),
        freetrade_row(
            "Scottish Mortgage", "ORDER", "2024-03-02T10:00:00.000Z", "GBP", "80.40", "BUY", "SMT",
            "GB00BLDYK618", "8.00000000", "0.40", "10.00000000", "London Stock Exchange", "FTO1", "MARKET",
            "GBP", "80.00", "8.00000000", "", "", "0",
        ),
        freetrade_row("February Statement", "MONTHLY_STATEMENT", "2024-03-01T00:00:00.000Z"),
        freetrade_row("Top up", "TOP_UP", "2024-03-01T00:35:22.634Z", "GBP", "1000.00"),
    ]
).encode() + b"\n"  # fmt: skip
# A fund InvestEngine names by ISIN (VWRL's listing, in pounds): two buys and a sale, UK times.
INVESTENGINE = f"""Security / ISIN,Transaction Type,Quantity,Share Price,Total Trade Value,Trade Date/Time,\
Settlement Date,Broker
Vanguard FTSE All-World / ISIN {lse_isin("VWRL")},Buy,2.5,£100.00,£250.00,02/01/24 15:18:12,04/01/24,None
Vanguard FTSE All-World / ISIN {lse_isin("VWRL")},Buy,1.25,£101.00,£126.25,02/02/24 15:00:08,06/02/24,None
Vanguard FTSE All-World / ISIN {lse_isin("VWRL")},Sell,1.5,£102.22,£153.33,30/04/24 14:13:11,02/05/24,None
""".encode()
PRICES_CSV = b"""# closes of VWRL in pounds
date,open,high,low,close,currency,quote_scale,volume
2024-01-02,100.1,101.2,99.8,100.5,GBP,GBP,1200
2024-01-03,100.5,101.0,99.0,99.9,GBP,GBP,900
2024-01-04T16:35:00+00:00,99.9,100.4,99.1,100.2,GBP,GBP,
2024-01-05,,,,100.8,,,
"""
STOOQ = b"""Date,Open,High,Low,Close,Volume
2024-01-02,100.1,101.2,99.8,100.5,1200
2024-01-03,100.5,101.0,99.0,99.9,900
2024-01-04,99.9,100.4,99.1,100.2
"""
YAHOO_CSV = b"""Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,100.1,101.2,99.8,100.5,99.1,1200
2024-01-03,null,null,null,null,null,null
2024-01-04,99.9,100.4,99.1,100.2000015258789,98.9,900
"""
ECB = b"""Date,USD,JPY,GBP,TRY,
2024-01-09,1.0940,157.74,0.85960,33.0,
2024-01-08,1.0946,158.05,0.85913,32.8,
2024-01-03,1.0919,155.52,0.86330,32.5,
2024-01-02,1.0956,155.65,0.86518,N/A,
"""
MAPPING = "description,ticker,exchange\n" + "".join(
    f'"{description}",{ticker},LSE\n' for description, (ticker, _) in AJBELL_MAPPING.items()
)


def yahoo_chart() -> bytes:
    """A Yahoo chart answer for five days from 2024-07-01, in pence, as Yahoo writes it."""
    first = int(datetime(2024, 7, 1, 7, 0, tzinfo=UTC).timestamp())
    stamps = [first + 86400 * i for i in range(5)]
    closes = "812.4, null, 815.60000000000002, 816, 813.2"
    meta = {
        "currency": "GBp",
        "symbol": "VWRL.L",
        "exchangeTimezoneName": "Europe/London",
        "regularMarketTime": stamps[-1] + 86400,
        "currentTradingPeriod": {"regular": {"start": stamps[-1], "end": stamps[-1] + 30600}},
    }
    return (
        f'{{"chart":{{"result":[{{"meta":{json.dumps(meta)},"timestamp":{json.dumps(stamps)},'
        f'"indicators":{{"quote":[{{"close":[{closes}],"open":[{closes}]}}]}}}}],"error":null}}}}'
    ).encode()


TWELVEDATA = json.dumps(
    {
        "meta": {
            "symbol": "VWRL",
            "interval": "1day",
            "currency": "GBP",
            "exchange_timezone": "Europe/London",
            "mic_code": "XLON",
        },
        "values": [
            {"datetime": "2024-01-03", "open": "100.5", "high": "101", "low": "99", "close": "99.9"},
            {"datetime": "2024-01-02", "open": "100.1", "high": "101.2", "low": "99.8", "close": 100.5},
        ],
        "status": "ok",
    }
).encode()
GSEJ = json.dumps(
    [
        {"date": "2024-01-02", "price": "100.5", "stockSymbol": "VWRL.L", "currency": "GBP"},
        {"date": "2024-01-03", "price": "99.9", "stockSymbol": "VWRL.L", "currency": "GBP"},
    ]
).encode()
POLICY = demo.POLICY.encode()
MANIFESTO = demo.MANIFESTO.encode()


def head(path: Path, lines: int) -> bytes:
    """The first lines of a real file (its header and the newest or oldest rows)."""
    with path.open("rb") as handle:
        return b"".join(handle.readline() for _ in range(lines))


def first_items(path: Path, count: int) -> bytes:
    """A JSON array file cut to its first items."""
    return json.dumps(json.loads(path.read_bytes())[:count], indent=2).encode()


@dataclass(frozen=True)
class Seed:
    """A valid (or real) file to mutate, and the command that imports it (``FILE`` = the file)."""

    body: bytes
    args: tuple[str, ...]


@dataclass(frozen=True)
class Importer:
    name: str
    kind: str  # csv, json or text: which mutations apply
    suffix: str
    seeds: Callable[[Fixed], list[Seed]]
    needs_real_data: bool = False
    few: bool = False  # fuzzed with FEW_RANDOM_EXAMPLES and FEW_MUTATED_EXAMPLES


@dataclass
class Fixed:
    """The files an importer reads besides the fuzzed one, and the real samples if present."""

    folder: Path
    real: Path | None
    files: dict[str, str] = field(default_factory=dict)

    def write(self, name: str, body: bytes | str) -> str:
        path = self.folder / name
        path.write_bytes(body.encode() if isinstance(body, str) else body)
        self.files[name] = str(path)
        return str(path)


def ledger_args(fmt: str, portfolio: str, *more: str, file: str = FILE) -> tuple[str, ...]:
    return ("ledger", "import", file, "--portfolio", portfolio, "--format", fmt, *more)


PRICE_LISTINGS = (("VWRL", "LSE"), ("GILS", "LSE"), ("AAPL", "XNAS"))  # in pounds, pence, dollars


def price_seeds(body: bytes, fmt: str) -> list[Seed]:
    """The file imported into a listing quoted in pounds, one in pence and one in dollars."""
    return [
        Seed(body, ("prices", "import", FILE, "--ticker", ticker, "--exchange", exchange, "--format", fmt))
        for ticker, exchange in PRICE_LISTINGS
    ]


def _canonical(fixed: Fixed) -> list[Seed]:
    return [Seed(CANONICAL, ledger_args("canonical", CANONICAL_PORTFOLIO))]


def _trading212(fixed: Fixed) -> list[Seed]:
    args = ledger_args("trading212", T212_PORTFOLIO)
    seeds = [Seed(T212, args), Seed(T212_FOREIGN, args)]
    if fixed.real is not None:
        brokers = fixed.real / "brokers"
        for name in (
            "trading212_2021-2022_GBP_investir.csv",
            "trading212_multi-currency_investir.csv",
            "trading212-export_EUR_export-to-ghostfolio.csv",
        ):
            seeds.append(Seed((brokers / name).read_bytes(), args))
    return seeds


def _freetrade(fixed: Fixed) -> list[Seed]:
    args = ledger_args("freetrade", FREETRADE_PORTFOLIO)
    seeds = [Seed(FREETRADE, args)]
    if fixed.real is not None:  # refused for its REIT's property income, or with it for its shares
        body = (fixed.real / "brokers" / "freetrade-export_export-to-ghostfolio.csv").read_bytes()
        seeds += [Seed(body, args), Seed(body, (*args, "--option", "property_income=dividend"))]
    return seeds


def _investengine(fixed: Fixed) -> list[Seed]:
    args = ledger_args("investengine", INVESTENGINE_PORTFOLIO)
    each_buy = (*args, "--option", "contributions=each-buy")
    seeds = [Seed(INVESTENGINE, each_buy), Seed(INVESTENGINE, args)]  # no cash lines: short of cash
    if fixed.real is not None:
        body = (fixed.real / "brokers" / "investengine-export_export-to-ghostfolio.csv").read_bytes()
        seeds.append(Seed(body, each_buy))
    return seeds


def _ajbell_pairs(fixed: Fixed) -> list[tuple[str, Path, Path]]:
    assert fixed.real is not None
    folder = fixed.real / "gsej_investment_tracker" / "ajbell"
    return [
        (name, folder / f"{name}-transactionhistory.csv", folder / f"{name}-cashstatements.csv")
        for name in ("SIPP-2022", "ISA-2022")
    ]


def _ajbell_history(fixed: Fixed) -> list[Seed]:
    mapping = fixed.write("mapping.csv", MAPPING)
    seeds = []
    for _, history, statement in _ajbell_pairs(fixed):
        more = ("--cash-statement", str(statement), "--mapping", mapping)
        seeds.append(Seed(history.read_bytes(), ledger_args("ajbell", AJBELL_PORTFOLIO, *more)))
        seeds.append(
            Seed(history.read_bytes(), ledger_args("ajbell", AJBELL_PORTFOLIO, "--mapping", mapping))
        )
    return seeds


def _ajbell_statement(fixed: Fixed) -> list[Seed]:
    mapping = fixed.write("mapping.csv", MAPPING)
    seeds = []
    for _, history, statement in _ajbell_pairs(fixed):
        args = ledger_args(
            "ajbell", AJBELL_PORTFOLIO, "--cash-statement", FILE, "--mapping", mapping, file=str(history)
        )
        seeds.append(Seed(statement.read_bytes(), args))
        seeds.append(
            Seed(statement.read_bytes(), ledger_args("ajbell", AJBELL_PORTFOLIO, "--mapping", mapping))
        )
    return seeds


def _ajbell_mapping(fixed: Fixed) -> list[Seed]:
    return [
        Seed(
            MAPPING.encode(),
            ledger_args(
                "ajbell",
                AJBELL_PORTFOLIO,
                "--cash-statement",
                str(statement),
                "--mapping",
                FILE,
                file=str(history),
            ),
        )
        for _, history, statement in _ajbell_pairs(fixed)
    ]


def _prices_csv(fixed: Fixed) -> list[Seed]:
    return price_seeds(PRICES_CSV, "csv")


def _stooq(fixed: Fixed) -> list[Seed]:
    seeds = price_seeds(STOOQ, "stooq")
    if fixed.real is not None:
        for name in ("gbpusd_d.csv", "stan_uk_d.csv", "qqq_us_d.csv"):
            seeds += price_seeds(head(fixed.real / "stooq" / name, 25), "stooq")
    return seeds


def _yahoo_csv(fixed: Fixed) -> list[Seed]:
    seeds = price_seeds(YAHOO_CSV, "yahoo")
    if fixed.real is not None:
        for name in ("VUSA.L.csv", "VWRP.L.yfinance.csv", "ISF.L_monthly.csv"):
            seeds += price_seeds(head(fixed.real / "yahoo" / name, 25), "yahoo")
    return seeds


def _yahoo_chart(fixed: Fixed) -> list[Seed]:
    return price_seeds(yahoo_chart(), "yahoo")


def _twelvedata(fixed: Fixed) -> list[Seed]:
    return price_seeds(TWELVEDATA, "twelvedata")


def _gsej(fixed: Fixed) -> list[Seed]:
    seeds = price_seeds(GSEJ, "json")
    if fixed.real is not None:
        for name in ("VWRL.L.json", "AZN.L.json"):
            path = fixed.real / "gsej_investment_tracker" / "prices" / name
            seeds += price_seeds(first_items(path, 12), "json")
    return seeds


def _ecb(fixed: Fixed) -> list[Seed]:
    args = ("fx", "import", FILE, "--format", "ecb")
    seeds = [Seed(ECB, args)]
    if fixed.real is not None:
        seeds.append(Seed((fixed.real / "ecb" / "eurofxref.csv").read_bytes(), args))
        seeds.append(Seed(head(fixed.real / "ecb" / "eurofxref-hist.csv", 12), args))
    return seeds


def _policy(fixed: Fixed) -> list[Seed]:
    manifesto = fixed.write("manifesto.md", MANIFESTO)
    return [Seed(POLICY, ("strategy", "add", "--label", "fuzz", "--policy", FILE, "--manifesto", manifesto))]


def _manifesto(fixed: Fixed) -> list[Seed]:
    policy = fixed.write("policy.json", POLICY)
    return [Seed(MANIFESTO, ("strategy", "add", "--label", "fuzz", "--policy", policy, "--manifesto", FILE))]


IMPORTERS = {
    importer.name: importer
    for importer in (
        Importer("canonical", "csv", ".csv", _canonical),
        Importer("trading212", "csv", ".csv", _trading212),
        Importer("freetrade", "csv", ".csv", _freetrade, few=True),
        Importer("investengine", "csv", ".csv", _investengine, few=True),
        Importer("ajbell-history", "csv", ".csv", _ajbell_history, needs_real_data=True),
        Importer("ajbell-statement", "csv", ".csv", _ajbell_statement, needs_real_data=True),
        Importer("ajbell-mapping", "csv", ".csv", _ajbell_mapping, needs_real_data=True),
        Importer("prices-csv", "csv", ".csv", _prices_csv),
        Importer("prices-stooq", "csv", ".csv", _stooq),
        Importer("prices-yahoo", "csv", ".csv", _yahoo_csv),
        Importer("prices-yahoo-chart", "json", ".json", _yahoo_chart),
        Importer("prices-twelvedata", "json", ".json", _twelvedata),
        Importer("prices-json", "json", ".json", _gsej),
        Importer("fx-ecb", "csv", ".csv", _ecb),
        Importer("strategy-policy", "json", ".json", _policy),
        Importer("strategy-manifesto", "text", ".md", _manifesto),
    )
}


# --- mutations --------------------------------------------------------------------------------

TOMORROW = limits.latest_date() + timedelta(days=1)  # the first day that is the future everywhere
# Cells that have broken parsers somewhere, by the kind of cell they replace (a cell is replaced
# by one of its own kind three times in four, so a date column meets the dates that matter).
# fmt: off
NUMBERS: tuple[bytes, ...] = (
    b"1E+999999", b"-1E+999999", b"1E-999999", b"1e308", b"1.7976931348623157e+309", b"-0", b"-0.00",
    b"0", b"-1", b"NaN", b"-NaN", b"sNaN", b"Infinity", b"-inf", b"9" * 5000, b"-" + b"9" * 40,
    b"1" + b"0" * 15, b"-1" + b"0" * 15, b"1000000000000000.01", b"999999999999999.999999999999999999",
    b"1000000000", b"1000000001", b"0.000000000000000001", b"0.0000000000000000001", b"0.000000001",
    b"1e-7", b"1E+14", b"1_000", b"\xc2\xa31,000.00", b'"1,000"', b"1.2.3", b"1e", b"+5", b"0x10",
    b"\xd9\xa3", b"\xef\xbc\x91", b"12345678901234.123456789012345", b"0.5", b"3", b"100", b"-100",
)
DATES: tuple[bytes, ...] = (
    TOMORROW.isoformat().encode(), TOMORROW.strftime("%d/%m/%Y").encode(),
    TOMORROW.strftime("%d %B %Y").encode(), TOMORROW.strftime("%Y%m%d").encode(),
    (TOMORROW.isoformat() + " 00:00:00").encode(), (TOMORROW.isoformat() + "T00:00:00+14:00").encode(),
    b"2099-01-01", b"9999-12-31", b"0001-01-01", b"2024-02-30", b"2024-02-29", b"2023-02-29",
    b"2024-01-01T25:00", b"2024-01-03 10:00:00+14:00", b"2024-01-03T10:00:00-12:00",
    b"2024-01-03T10:00:00Z", b"2024-01-03T10:00:00.123456789", b"2024-W01-1", b"20240103",
    b"9999-12-31T23:59:59-12:00", b"9999-12-31T23:59:59.999999", b"0001-01-01T00:00:00+14:00",
    b"0001-01-01 00:00:00+23:59", b"0001-01-01T00:00:00", b"31/12/2099", b"31/12/9999",
    b"01/01/0001", b"30/02/2024", b"00/00/0000", b"1/1/24", b"1 January 2099", b"31 December 9999",
    b"1 January 0001", b"32 January 2024", b"99999999", b"00010101", b"\xd9\xa2\xd9\xa0/01/2024",
    b"2024-01-03\x00", b"\xc2\xb2024-01-03",
)
TEXTS: tuple[bytes, ...] = (
    b"", b" ", b"-", b"N/A", b"null", b"x" * 5000, b"y" * (200 * 1024), b"\xff\xfe", b"\xc3\x28",
    b"\x00", b"a\x00b", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b'"', b'""', b'"a\nb"', b'"a,b"', b"\r",
    b"\n", b",", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x1c", b"\x85", b"=cmd|' /C calc'!A0",
    b"R" * 201, b"n" * 2001, b"\xf0\x9f\x92\xb7" * 60,
)
WORDS: tuple[bytes, ...] = (
    b"GBX", b"GBp", b"gbx", b"GBP", b"USD", b"EUR", b"XXX", b"BUY", b"buy", b"SELL", b"DIVIDEND",
    b"TRANSFER", b"FEE", b"INTEREST", b"WITHDRAWAL", b"CONTRIBUTION", b"MANUAL_FIX", b"Market buy",
    b"Limit sell", b"Deposit", b"Withdrawal", b"Dividend (Ordinary)", b"Interest on cash",
    b"Stock split open", b"Stock split close", b"Purchase", b"Sale", b"Transfer In", b"Transfer Out",
    b"Receipt of stock following a corporate action",
    b"Removal of stock following a corporate action", b"* BALANCE B/F *", b"Purchase 1E+999999 x",
    b"Purchase 0 Vanguard FTSE All-World UCITS ETF", b"Sale 5 Vanguard FTSE All-World UCITS ETF",
    b"Purchase 0.000000001 Vanguard FTSE All-World UCITS ETF", b"Dividend 9999999999999999 x",
    b"Div 1E+999999 x", b"Gross interest", b"FX Charge", b"Subscription", b"Transfer Value",
    b"Payment to bank", b"VWRL", b"GILS", b"AAPL", b"LSE", b"XNAS", b"US0378331005", b"US0378331006",
    b"GB00BLDYK618", b"Europe/Nowhere", b"Vanguard FTSE All-World UCITS ETF", b"Not available",
)
# Raw JSON text put in place of a value.
JSON_EXTREMES: tuple[str, ...] = (
    "1E+999999", "-1E+999999", "1E-999999", "1e308", "-0", "-0.0", "0", "-1", "NaN", "Infinity",
    "-Infinity", "9" * 5000, "9" * 400, "1" + "0" * 15, "1000000001", "0.0000000000000000001", "null",
    "true", "false", "[]", "{}", '""', '"x"', '"1E+999999"', '"NaN"', '"-0"', '"' + "x" * 5000 + '"',
    '"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '"caf\\u00e9"', f'"{TOMORROW.isoformat()}"',
    '"2099-01-01"', '"9999-12-31"', '"0001-01-01"', '"2024-02-30"', '"2024-01-02 10:00:00"',
    '"2024-01-02T10:00:00+14:00"', '"0001-01-01T00:00:00+14:00"', '"0001-01-01 00:00:00"',
    '"9999-12-31 23:59:59"', '"GBp"', '"GBX"', '"USD"', '"gbp"', '"Europe/Nowhere"', '"Asia/Tokyo"',
    '"../../etc/passwd"', "[" * 200 + "]" * 200, "[" * 5000 + "]" * 5000, "253402300800",
    "253402300799", "-62135596800", "1.5", "[1, 2]", '{"a": 1}', '"1d"', '"1min"',
)
# fmt: on
EXTREMES = NUMBERS + DATES + TEXTS + WORDS
_DATE_LIKE = re.compile(rb"^\s*(\d{1,4}[-/]\d{1,2}[-/]\d{1,4}|\d{1,2} [A-Za-z]+ \d{4}|\d{8})")
_NUMBER_LIKE = re.compile(rb'^\s*"?[-+\xc2\xa3]*[\d,]*\.?\d+([eE][-+]?\d+)?"?\s*$')
RULE_KEYS = ("max single trade", "avoid", "never sell", "MAX   single trade", "Never Sell")

Draw = Callable[..., Any]


def _at(draw: Draw, size: int) -> int:
    return int(draw(st.integers(0, max(size, 0))))


def _extreme(draw: Draw, like: bytes = b"") -> bytes:
    """An extreme, of the same kind as ``like`` (a date, a number, other text) more often than not."""
    if _DATE_LIKE.match(like):
        group = DATES
    elif _NUMBER_LIKE.match(like):
        group = NUMBERS
    else:
        group = WORDS + TEXTS
    return bytes(
        draw(
            st.one_of(
                st.sampled_from(group),
                st.sampled_from(group),
                st.sampled_from(group),
                st.sampled_from(EXTREMES),
                st.binary(min_size=1, max_size=6),
            )
        )
    )


def flip(draw: Draw, data: bytes) -> bytes:
    if not data:
        return data
    i = _at(draw, len(data) - 1)
    return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]


def insert(draw: Draw, data: bytes) -> bytes:
    i = _at(draw, len(data))
    return data[:i] + _extreme(draw) + data[i:]


def delete(draw: Draw, data: bytes) -> bytes:
    i = _at(draw, len(data))
    return data[:i] + data[i + draw(st.integers(1, 64)) :]


def truncate(draw: Draw, data: bytes) -> bytes:
    return data[: _at(draw, len(data))]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def duplicate_line(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _at(draw, len(lines) - 1)
    lines.insert(_at(draw, len(lines)), lines[i])
    return b"\n".join(lines)


def drop_line(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    del lines[_at(draw, len(lines) - 1)]
    return b"\n".join(lines)


def swap_lines(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i, j = _at(draw, len(lines) - 1), _at(draw, len(lines) - 1)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def replace_cell(draw: Draw, data: bytes) -> bytes:
    """One cell (split on commas: quoting need not survive) replaced by an extreme."""
    lines = _lines(data)
    i = _at(draw, len(lines) - 1)
    cells = lines[i].split(b",")
    column = _at(draw, len(cells) - 1)
    cells[column] = _extreme(draw, cells[column])
    lines[i] = b",".join(cells)
    return b"\n".join(lines)


def replace_column(draw: Draw, data: bytes) -> bytes:
    """The same cell of every data line replaced by one extreme."""
    lines = _lines(data)
    column = _at(draw, 12)
    sample = lines[1].split(b",") if len(lines) > 1 else []
    value = _extreme(draw, sample[column] if column < len(sample) else b"")
    for i in range(1, len(lines)):
        cells = lines[i].split(b",")
        if column < len(cells):
            cells[column] = value
            lines[i] = b",".join(cells)
    return b"\n".join(lines)


def swap_columns(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i, j = _at(draw, 12), _at(draw, 12)
    for n, line in enumerate(lines):
        cells = line.split(b",")
        if i < len(cells) and j < len(cells):
            cells[i], cells[j] = cells[j], cells[i]
            lines[n] = b",".join(cells)
    return b"\n".join(lines)


def drop_column(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _at(draw, 12)
    return b"\n".join(b",".join(c for n, c in enumerate(line.split(b",")) if n != i) for line in lines)


def line_endings(draw: Draw, data: bytes) -> bytes:
    choice = draw(st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\x0b", b"\xe2\x80\xa8"]))
    return data.replace(b"\n", choice)


def toggle_bom(draw: Draw, data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else b"\xef\xbb\xbf" + data


def rule_line(draw: Draw, data: bytes) -> bytes:
    """A manifesto rule line with an extreme value."""
    lines = _lines(data)
    key = draw(st.sampled_from(RULE_KEYS)).encode()
    lines.insert(_at(draw, len(lines)), b"- " + key + b": " + _extreme(draw))
    return b"\n".join(lines)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


SENTINEL = "fuzz\u2063value"


def json_value(draw: Draw, data: bytes) -> bytes:
    """One value of the document replaced by raw JSON text, deleted, or duplicated."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return replace_cell(draw, data)
    path = draw(st.sampled_from(list(_paths(document))))
    if not path:
        return json.dumps(draw(st.sampled_from(JSON_EXTREMES))).encode()  # a string, not a document
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
    if action == "delete":
        del parent[path[-1]]
        return json.dumps(document).encode()
    if action == "duplicate" and isinstance(parent, list):
        parent.insert(path[-1], parent[path[-1]])
        return json.dumps(document).encode()
    parent[path[-1]] = SENTINEL
    text = json.dumps(document).replace(json.dumps(SENTINEL), draw(st.sampled_from(JSON_EXTREMES)), 1)
    return text.encode()


BYTE_OPS = (flip, insert, delete, truncate, toggle_bom)
LINE_OPS = (duplicate_line, drop_line, swap_lines, line_endings)
OPS: dict[str, tuple[Callable[[Draw, bytes], bytes], ...]] = {
    "csv": (*BYTE_OPS, *LINE_OPS, replace_cell, replace_cell, replace_cell, replace_column, swap_columns,
            drop_column),
    "json": (*BYTE_OPS, *[json_value] * 8),
    "text": (*BYTE_OPS, *LINE_OPS, rule_line, rule_line, replace_cell),
}  # fmt: skip


@st.composite
def mutated(draw: Draw, seeds: list[Seed], kind: str) -> tuple[Seed, bytes]:
    """A seed and its body after one to four mutations."""
    chosen = draw(st.sampled_from(seeds))
    body = chosen.body
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPS[kind]))
        body = op(draw, body)
        note(f"{op.__name__}: {len(body)} bytes")
    return chosen, body


def _json_keys(seeds: list[Seed]) -> list[str]:
    keys: set[str] = set()
    for s in seeds:
        with contextlib.suppress(ValueError):
            for path in _paths(json.loads(s.body)):
                keys.update(p for p in path if isinstance(p, str))
    return sorted(keys) or ["x"]


@st.composite
def random_input(draw: Draw, seeds: list[Seed], kind: str) -> tuple[Seed, bytes]:
    """Random bytes; or the format's first line (header) followed by random bytes or by text of
    the characters CSV is made of; or, for JSON, a random document made of the format's keys."""
    chosen = draw(st.sampled_from(seeds))
    first_line = chosen.body.split(b"\n", 1)[0] + b"\n"
    csvish = st.text(alphabet=',\n\r"0123456789.-+E/:TZ aN£', max_size=400)
    options = [
        st.binary(max_size=600),
        st.binary(max_size=400).map(lambda tail: first_line + tail),
        csvish.map(lambda tail: first_line + tail.encode()),
    ]
    if kind == "json":
        keys = _json_keys(seeds)
        scalars = st.one_of(
            st.none(), st.booleans(), st.integers(), st.text(max_size=20),
            st.sampled_from(["2024-01-02", "100.5", "GBp", "1E+999999"]),
        )  # fmt: skip
        documents = st.recursive(
            scalars,
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(keys), children, max_size=5)
            ),
            max_leaves=25,
        )
        options.append(documents.map(lambda doc: json.dumps(doc).encode()))
    return chosen, draw(st.one_of(options))


def note(text: str) -> None:
    if currently_in_test_context():
        hypothesis_note(text)


def event(text: str) -> None:
    if currently_in_test_context():
        hypothesis_event(text)


# --- running an example -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: an exception escaped main()
    out: str
    err: str


Dump = dict[str, list[str]]


def dump_tables(path: Path, skip: tuple[str, ...] = ()) -> Dump:
    """Every row of every table (sqlite_sequence too), as comparable text."""
    conn = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {
            name: sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"')))
            for name in names
            if name not in skip
        }
    finally:
        conn.close()


def differences(before: Dump, after: Dump) -> str:
    changed = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            gone = [limits.shown(r, 300) for r in sorted(old - new)[:3]]
            added = [limits.shown(r, 300) for r in sorted(new - old)[:3]]
            changed.append(f"{table}: -{len(old - new)} {gone} +{len(new - old)} {added}")
    return "; ".join(changed)


def _decimal(text: object) -> Decimal | None:
    try:
        return None if text is None else Decimal(str(text))
    except InvalidOperation:
        return Decimal("NaN")


def stored_problems(path: Path) -> list[str]:
    """What an accepted import must never have stored: an entry, a price or a rate dated after
    today, or a number beyond ``core.limits``'s bounds."""
    found: list[str] = []
    now = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    latest = limits.latest_date()
    conn = sqlite3.connect(path)
    try:
        for entry_id, when, units, price, fees, cash in conn.execute(
            "SELECT ledger_entry_id, entry_time, units, price, fees_base, cash_amount_base "
            "FROM ledger_entries"
        ):
            if datetime.fromisoformat(when) > now:
                found.append(f"ledger entry {entry_id} is dated {when}, in the future")
            for what, value, bound in (
                ("units", units, limits.MAX_AMOUNT),
                ("fees", fees, limits.MAX_AMOUNT),
                ("cash", cash, limits.MAX_AMOUNT),
            ):
                number = _decimal(value)
                if number is not None and not (number.is_finite() and abs(number) <= bound):
                    found.append(
                        f"ledger entry {entry_id}: {what} {limits.shown(value)} is beyond the bounds"
                    )
            number = _decimal(price)
            if number is not None and not number.is_finite():
                found.append(f"ledger entry {entry_id}: price {limits.shown(price)} is not finite")
        for point_id, as_of, raw in conn.execute("SELECT price_point_id, as_of, raw_price FROM price_points"):
            if date.fromisoformat(as_of[:10]) > latest:
                found.append(f"price point {point_id} is dated {as_of}, in the future")
            number = _decimal(raw)
            if number is None or not (number.is_finite() and abs(number) <= limits.MAX_PRICE):
                found.append(f"price point {point_id}: raw price {limits.shown(raw)} is beyond the bounds")
        for rate_id, as_of, rate in conn.execute("SELECT fx_rate_id, as_of, rate FROM fx_rates"):
            if date.fromisoformat(as_of[:10]) > latest + timedelta(days=1):  # stored at London's day end
                found.append(f"FX rate {rate_id} is dated {as_of}, in the future")
            number = _decimal(rate)
            if number is None or not (number.is_finite() and number > 0):
                found.append(f"FX rate {rate_id}: {limits.shown(rate)} is not a positive number")
    finally:
        conn.close()
    return found


@dataclass(repr=False)
class Book:
    """The prepared database (a pristine copy and the working file) and the importers' files."""

    pristine: Path
    work: Path
    fixed: Fixed
    baseline: Dump
    seeds: dict[str, list[Seed]] = field(default_factory=dict)

    def __repr__(self) -> str:  # what a failing example prints for the fixture
        return f"Book({self.work})"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.work}"

    def restore(self) -> None:
        dispose_engines()
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{self.work}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.pristine, self.work)

    def cli(self, *args: str) -> Outcome:
        """``tradeassist --db URL --as ADMIN ARGS...`` through ``tradeassist.cli.main``."""
        from tradeassist.cli import main

        out, err = io.StringIO(), io.StringIO()
        argv, sys.argv = sys.argv, ["tradeassist", "--db", self.url, "--as", ADMIN_EMAIL, *args]
        code: int | None = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # a traceback: what no input may cause
            code = None
            err.write(traceback.format_exc())
        finally:
            sys.argv = argv
            dispose_engines()
        return Outcome(code, out.getvalue(), err.getvalue())

    def run(self, importer: Importer, chosen: Seed, body: bytes) -> bool:
        """Import ``body`` as ``importer`` would; assert accepted-and-sound or refused-in-one-line.
        Returns whether it was accepted."""
        path = self.fixed.folder / f"fuzz-{importer.name}{importer.suffix}"
        path.write_bytes(body)
        args = tuple(str(path) if a == FILE else a for a in chosen.args)
        note(f"tradeassist {' '.join(limits.shown(a, 200) for a in args)}")
        note(f"body: {limits.shown(repr(body), 2000)}")
        first = self.cli(*args)
        try:
            if first.code == 0:
                event(f"{importer.name}: accepted")
                self._accepted(args)
            else:
                event(f"{importer.name}: refused")
                self._refused(first, args)
        finally:
            self.restore()
        return first.code == 0

    def _refused(self, outcome: Outcome, args: tuple[str, ...]) -> None:
        lines = outcome.err.splitlines()
        assert outcome.code is not None, f"a traceback, not one line:\n{outcome.err}"
        assert len(lines) == 1 and lines[0].startswith("error: "), (
            f"exit {outcome.code} with {len(lines)} stderr lines:\n{limits.shown(outcome.err, 4000)}"
        )
        line = lines[0]
        files = [Path(a).name for a in args if os.sep in a and Path(a).is_file()]
        assert any(name in line for name in files), f"the error names none of {files}: {line}"
        assert "please report this bug" not in line, f"the CLI's last resort caught it: {line}"
        assert not line.startswith("error: database:"), f"the database refused it, not the reader: {line}"
        after = dump_tables(self.work)
        assert after == self.baseline, (
            f"refused ({line}) but the book changed: {differences(self.baseline, after)}"
        )

    def _accepted(self, args: tuple[str, ...]) -> None:
        problems = stored_problems(self.work)
        assert not problems, f"accepted, and stored: {'; '.join(problems[:5])}"
        if args[0] == "ledger":
            verify = self.cli("ledger", "verify")
            assert verify.code == 0, f"accepted, but ledger verify says:\n{verify.out}{verify.err}"
        before = dump_tables(self.work, skip=("audit_events",))
        again = self.cli(*args)
        if args[0] == "strategy":  # a second version under the same label is refused
            self._refused_now(again, before)
            return
        assert again.code == 0, f"accepted once, then: {again.err}"
        after = dump_tables(self.work, skip=("audit_events",))
        assert after == before, f"importing the same file again changed: {differences(before, after)}"

    def _refused_now(self, outcome: Outcome, before: Dump) -> None:
        lines = outcome.err.splitlines()
        assert outcome.code not in (0, None) and len(lines) == 1 and lines[0].startswith("error: "), outcome
        assert dump_tables(self.work, skip=("audit_events",)) == before


@pytest.fixture(scope="module")
def _command_built_once() -> Iterator[None]:
    """``main()`` runs ``app()``, which has typer build the click command from the app anew on
    every call: 50 ms, most of a refused import. Here it is built once and reused, the same
    command (click keeps no state between invocations), so each example costs a third."""
    import typer.main

    from tradeassist.cli import app

    built = typer.main.get_command(app)
    original = typer.main.get_command

    def get_command(typer_instance: typer.Typer) -> Any:
        return built if typer_instance is app else original(typer_instance)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.main, "get_command", get_command)
        yield


@pytest.fixture(scope="module")
def book(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _command_built_once: None,
) -> Book:
    folder = tmp_path_factory.mktemp("fuzz")
    pristine, work = folder / "pristine.db", folder / "work.db"
    shutil.copyfile(sqlite_template, pristine)
    prepare_book(f"sqlite:///{pristine}", folder)
    dispose_engines()
    shutil.copyfile(pristine, work)
    try:
        real: Path | None = request.getfixturevalue("real_data")
    except pytest.skip.Exception:
        real = None
    return Book(pristine, work, Fixed(folder, real), dump_tables(work))


def seeds_for(book: Book, name: str) -> list[Seed]:
    importer = IMPORTERS[name]
    if importer.needs_real_data and book.fixed.real is None:
        pytest.skip("real data samples not found (tests/conftest.py's real_data)")
    if name not in book.seeds:
        book.seeds[name] = importer.seeds(book.fixed)
    return book.seeds[name]


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(IMPORTERS))
def test_every_seed_is_accepted_or_refused_in_one_line(book: Book, name: str) -> None:
    """The unmutated samples: the built ones are accepted (so mutations start from a file that
    gets all the way to the book); the real ones either way, soundly."""
    for index, chosen in enumerate(seeds_for(book, name)):
        accepted = book.run(IMPORTERS[name], chosen, chosen.body)
        assert accepted or index > 0, "the first seed (built here, or AJ Bell's real pair) is valid"


MANY = [name for name, importer in IMPORTERS.items() if not importer.few]
FEW = [name for name, importer in IMPORTERS.items() if importer.few]


def random_example(book: Book, name: str, data: st.DataObject) -> None:
    importer = IMPORTERS[name]
    chosen, body = data.draw(random_input(seeds_for(book, name), importer.kind))
    book.run(importer, chosen, body)


def mutated_example(book: Book, name: str, data: st.DataObject) -> None:
    importer = IMPORTERS[name]
    chosen, body = data.draw(mutated(seeds_for(book, name), importer.kind))
    book.run(importer, chosen, body)


@pytest.mark.parametrize("name", MANY)
@fuzz_settings(RANDOM_EXAMPLES)
@given(data=st.data())
def test_random_bytes(book: Book, name: str, data: st.DataObject) -> None:
    random_example(book, name, data)


@pytest.mark.parametrize("name", MANY)
@fuzz_settings(MUTATED_EXAMPLES)
@given(data=st.data())
def test_mutated_files(book: Book, name: str, data: st.DataObject) -> None:
    mutated_example(book, name, data)


@pytest.mark.parametrize("name", FEW)
@fuzz_settings(FEW_RANDOM_EXAMPLES)
@given(data=st.data())
def test_random_bytes_fewer_examples(book: Book, name: str, data: st.DataObject) -> None:
    random_example(book, name, data)


@pytest.mark.parametrize("name", FEW)
@fuzz_settings(FEW_MUTATED_EXAMPLES)
@given(data=st.data())
def test_mutated_files_fewer_examples(book: Book, name: str, data: st.DataObject) -> None:
    mutated_example(book, name, data)


# --- regressions: what the fuzz found -------------------------------------------------------------


def refused(book: Book, name: str, body: bytes, says: str) -> str:
    """``body`` imported as the importer's first seed is: refused in one line saying ``says``,
    the book unchanged. Returns the line."""
    importer, chosen = IMPORTERS[name], seeds_for(book, name)[0]
    path = book.fixed.folder / f"regression-{importer.name}{importer.suffix}"
    path.write_bytes(body)
    args = tuple(str(path) if a == FILE else a for a in chosen.args)
    outcome = book.cli(*args)
    try:
        book._refused(outcome, args)
    finally:
        book.restore()
    assert says in outcome.err, outcome.err
    return outcome.err.strip()


YEAR_ZERO = "0001-01-01T00:00:00+14:00"  # 2000-odd years before 0001-01-01 in UTC: year 0


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("canonical", CANONICAL.split(b"\n")[0] + f"\n{YEAR_ZERO},CONTRIBUTION,,,,,,10.00,R1,\n".encode(),
         f"line 2: entry_time '{YEAR_ZERO}' is out of range: in UTC it is outside the years 1 to 9999"),
        ("trading212", T212.split(b"\n")[0] + f"\nDeposit,{YEAR_ZERO},,,,,,,,10.00,GBP,,,R1\n".encode(),
         f"line 2: Time '{YEAR_ZERO}' is out of range"),
        ("prices-csv", f"date,close\n2024-01-02,100\n{YEAR_ZERO},100\n".encode(),
         f"line 3: timestamp '{YEAR_ZERO}' is out of range"),
        ("prices-twelvedata",
         b'{"meta": {"interval": "1h", "exchange_timezone": "Asia/Tokyo"}, '
         b'"values": [{"datetime": "0001-01-01 00:00:00", "close": "100"}]}',
         "values[0]: datetime '0001-01-01 00:00:00' is out of range"),
    ],
    ids=["canonical", "trading212", "prices-csv", "prices-twelvedata"],
)  # fmt: skip
def test_found_a_time_before_year_1_in_utc_is_refused_with_its_line(
    book: Book, name: str, body: bytes, says: str
) -> None:
    """Found writing the fuzz's date extremes: ``0001-01-01T00:00:00+14:00`` parsed, then
    converting it to UTC (for the entry's time, or to sort the prices) raised OverflowError,
    which only the CLI's last resort caught ("the input could not be read (OverflowError: date
    value out of range); please report this bug"), naming neither the file nor the line."""
    refused(book, name, body, says)


def test_found_a_chart_market_time_of_1e9999991720249200_is_no_memory_error(book: Book) -> None:
    """Found by the fuzz: ``int()`` of a chart's ``regularMarketTime`` of 1E+9999991720249200
    (a JSON number; the market time only says whether today's bar is still live) tried to build
    an integer of 10^16 digits: MemoryError, the CLI's last resort. Now an unreadable market
    time is no live session, as a missing one is, and the closes are imported."""
    body = yahoo_chart().replace(b'"regularMarketTime": ', b'"regularMarketTime": 1E+9999991720249200, "x": ')
    chosen = seeds_for(book, "prices-yahoo-chart")[0]
    assert book.run(IMPORTERS["prices-yahoo-chart"], chosen, body)


@pytest.mark.parametrize(
    "name", ["prices-json", "prices-yahoo-chart", "prices-twelvedata", "strategy-policy"]
)
def test_found_a_json_exponent_decimal_cannot_hold_is_refused(book: Book, name: str) -> None:
    """Found reproducing the chart's MemoryError: ``Decimal("1E+99999999999999999999")`` (an
    exponent of 20 digits) raises decimal.InvalidOperation, which ``core.limits.load_json`` let
    through to the CLI's last resort from every JSON reader (price files and the policy)."""
    huge = b"1.5E+99999999999999999999"
    body = {
        "prices-json": GSEJ.replace(b'"100.5"', huge),
        "prices-yahoo-chart": yahoo_chart().replace(b"812.4", huge, 1),
        "prices-twelvedata": TWELVEDATA.replace(b"100.5}", huge + b"}"),
        "strategy-policy": POLICY.replace(b'"100"', huge),
    }[name]
    assert huge in body
    refused(
        book,
        name,
        body,
        says="the number 1.5E+99999999999999999999 is out of range: its exponent is too large",
    )


def test_found_a_trading212_price_currency_nobody_knows_names_its_line(book: Book) -> None:
    """Found with the fuzz's rule that a refusal names its file: a Trading 212 line priced in
    ``X`` was refused with ``quote unit: 'X' is not understood``, naming neither the file nor the
    line (the service read the currency where it had no line to hand)."""
    row = (
        b"Market buy,2024-03-02 10:00:00,GB00BLDYK618,SMT,Scottish Mortgage,2.5,901.20,X,0.01,22.53,GBP,,,E2"
    )
    body = T212.split(b"\n")[0] + b"\n" + row + b"\n"
    refused(
        book, "trading212", body, says="regression-trading212.csv: line 2: quote unit: 'X' is not understood"
    )


def test_a_trading212_file_with_dollar_and_euro_lines_gets_to_the_book(book: Book) -> None:
    """The seed whose lines are in USD and EUR is accepted (converted at the book's ECB rates), so
    that its mutations exercise the conversion, not only its refusal."""
    chosen = seeds_for(book, "trading212")[1]
    assert chosen.body == T212_FOREIGN
    assert book.run(IMPORTERS["trading212"], chosen, chosen.body)
