"""Issue #16, items 8 and 9: bad input is one line on stderr, never a traceback or a surprise.

Each case the issue observed is a test here, run as the user meets it: the ``tradeassist``
command (``tradeassist.cli.main``, in this process, as the console script calls it; a few
cases also as a real process at the end) against a real database on each backend. A refusal
is exit non-zero, exactly one stderr line starting ``error:`` that says why, and every table
exactly as before (a dump of all tables compared). The bounds are ``core.limits``'s.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tests.conftest import ADMIN_EMAIL
from tests.support.cli import admin_cli
from tradeassist.core import limits
from tradeassist.core.errors import FileFormatError, ValidationError
from tradeassist.core.money import to_decimal
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity, ledger, portfolios, registry

VWRL = "IE00B3RBWM25"
CANONICAL_HEAD = (
    "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes"
)
T212_HEAD = (
    "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
    "Total,Currency (Total),ID"
)
POLICY = {
    "sleeve_targets": {"CORE": "1"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}
HUGE_CELL = "x" * (200 * 1024)  # over the csv module's 128 KiB field limit

Cli = Callable[..., tuple[int, str, str]]


def dump(url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as comparable text."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            return {
                table: sorted(tuple(map(repr, row)) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
                for table in tables
            }
    finally:
        engine.dispose()


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``tradeassist --db URL ARGS...`` in this process: (exit code, stdout, stderr)."""
    return admin_cli(db_url, capsys)


@pytest.fixture
def book(db_url: str, tmp_path: Path) -> Path:
    """VWRL (pence) and VUSA (pounds) on XLON, a GIA holding £8,998.50; returns a folder for files."""
    engine = create_db_engine(db_url)
    try:
        with unit_of_work(engine) as s:
            admin = identity.get_user(s, ADMIN_EMAIL)
            for isin, ticker, scale in ((VWRL, "VWRL", "GBX"), ("IE00B3XXRP09", "VUSA", "GBP")):
                registry.add_instrument(s, actor=admin, isin=isin, instrument_type="ETF")
                registry.add_listing(
                    s,
                    actor=admin,
                    isin=isin,
                    ticker=ticker,
                    exchange="XLON",
                    currency="GBP",
                    quote_scale=scale,
                )
            portfolios.add_portfolio(s, actor=admin, name="GIA", broker="AJBell", tax_treatment="GIA")
            entry = ledger.manual_entry(
                s, entry_type="CONTRIBUTION", amount="8998.50", entry_time=datetime(2024, 1, 2, tzinfo=UTC)
            )
            ledger.post_entries(
                s, actor=admin, portfolio="GIA", entries=[entry], label="opening", batch_type="MANUAL"
            )
    finally:
        engine.dispose()
    return tmp_path


@pytest.fixture
def refused(cli: Cli, db_url: str) -> Callable[..., str]:
    """Run a command that must be refused: exit non-zero, one stderr line starting ``error:``
    that contains ``says``, every table unchanged. Returns the line."""

    def check(*args: str, says: str) -> str:
        before = dump(db_url)
        code, _, err = cli(*args)
        lines = err.splitlines()
        assert code != 0, err
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert says in lines[0], lines[0]
        assert "please report this bug" not in lines[0], "the last resort caught it: fix the cause"
        assert dump(db_url) == before
        return lines[0]

    return check


def write(folder: Path, name: str, content: str | bytes) -> str:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def canonical(folder: Path, *rows: str, name: str = "ledger.csv") -> list[str]:
    path = write(folder, name, "\n".join([CANONICAL_HEAD, *rows]) + "\n")
    return ["ledger", "import", path, "--portfolio", "GIA", "--format", "canonical"]


def prices(folder: Path, content: str | bytes, fmt: str, name: str = "prices.csv") -> list[str]:
    path = write(folder, name, content)
    return ["prices", "import", path, "--ticker", "VUSA", "--exchange", "XLON", "--format", fmt]


def fx(folder: Path, content: str | bytes) -> list[str]:
    return ["fx", "import", write(folder, "eurofxref.csv", content), "--format", "ecb"]


def strategy(folder: Path, manifesto: bytes, policy: bytes | None = None) -> list[str]:
    policy_path = write(folder, "policy.json", policy if policy is not None else json.dumps(POLICY).encode())
    manifesto_path = write(folder, "manifesto.md", manifesto)
    return ["strategy", "add", "--label", "v1", "--policy", policy_path, "--manifesto", manifesto_path]


def cash(cli: Cli) -> Decimal:
    code, out, err = cli("cash", "--portfolio", "GIA", "--json")
    assert code == 0, err
    return Decimal(json.loads(out)["cash_balance"])


# --- 8. tracebacks become one-line errors ------------------------------------------------------


def _cell_importers(folder: Path) -> dict[str, list[str]]:
    ecb = f"Date,USD,GBP,\n2024-01-02,1.1,{HUGE_CELL},\n"
    return {
        "canonical": canonical(folder, f"2024-01-03,CONTRIBUTION,,,,,,10.00,C1,{HUGE_CELL}"),
        "trading212": [
            "ledger", "import",
            write(folder, "t212.csv", f"{T212_HEAD}\nDeposit,2024-01-03 10:00,,,,,,,,1.00,GBP,{HUGE_CELL}\n"),
            "--portfolio", "GIA", "--format", "trading212",
        ],
        "ajbell": [
            "ledger", "import",
            write(folder, "history.csv", "Date,Transaction,Description,Quantity,Amount (GBP),Reference\n"
                  f"03/01/2024,Purchase,{HUGE_CELL},1,10.00,R1\n"),
            "--portfolio", "GIA", "--format", "ajbell",
        ],
        "prices-csv": prices(folder, f"date,close\n2024-01-03,{HUGE_CELL}\n", "csv"),
        "prices-yahoo": prices(folder, f"Date,Close,Volume\n2024-01-03,{HUGE_CELL},1\n", "yahoo"),
        "prices-stooq": prices(folder, f"Date,Open,High,Low,Close\n2024-01-03,1,1,1,{HUGE_CELL}\n", "stooq"),
        "fx-ecb": fx(folder, ecb),
    }  # fmt: skip


@pytest.mark.parametrize(
    "importer",
    ["canonical", "trading212", "ajbell", "prices-csv", "prices-yahoo", "prices-stooq", "fx-ecb"],
)
def test_8_a_csv_cell_over_128_kib_is_a_line_not_a_csv_error(book: Path, refused, importer: str) -> None:  # type: ignore[no-untyped-def]
    line = refused(*_cell_importers(book)[importer], says="line 2: a field is longer than 131,072 characters")
    assert len(line) < 1000  # the cell is not echoed


def test_8_b_a_close_of_1e999999_is_refused_by_the_reader(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    args = prices(book, "date,close\n2024-01-02,80.50\n2024-01-03,1E+999999\n", "csv")
    refused(*args, says="prices.csv: line 3: close 1E+999999 is out of range: at most 10^9")


def test_8_c_an_ecb_rate_of_1e_minus_999999_is_refused_by_the_reader(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    args = fx(book, "Date,USD,GBP,\n2024-01-02,1.1,1E-999999,\n")
    refused(*args, says="line 2: GBP 1E-999999 has 999999 decimal places; at most 18 are accepted")


@pytest.mark.parametrize("fmt", ["json", "yahoo", "twelvedata"])
def test_8_d_json_nested_100k_deep_is_refused(book: Path, refused, fmt: str) -> None:  # type: ignore[no-untyped-def]
    nested = "[" * 100_000 + "]" * 100_000
    body = {"json": nested, "yahoo": '{"chart": ' + nested + "}", "twelvedata": '{"meta": ' + nested + "}"}[
        fmt
    ]
    refused(*prices(book, body, fmt, name="prices.json"), says="nested too deeply")


def test_8_d_a_policy_nested_100k_deep_is_refused(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    policy = ('{"sleeve_targets": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    refused(*strategy(book, b"# Plan\n", policy), says="policy: not valid JSON: nested too deeply")


@pytest.mark.parametrize("where", ["json", "yahoo", "canonical", "trading212", "policy"])
def test_8_e_an_integer_over_4300_digits_is_refused(book: Path, refused, where: str) -> None:  # type: ignore[no-untyped-def]
    digits = "9" * 5000
    if where == "json":
        body = f'[{{"date": "2024-01-02", "price": {digits}, "stockSymbol": "VUSA.L", "currency": "GBP"}}]'
        refused(*prices(book, body, "json", name="p.json"), says="a number is too long")
    elif where == "yahoo":
        body = '{"chart": {"result": [{"meta": {"currency": "GBP"}, "timestamp": [' + digits + "]}]}}"
        refused(*prices(book, body, "yahoo", name="p.json"), says="a number is too long")
    elif where == "canonical":
        refused(
            *canonical(book, f"2024-01-03,CONTRIBUTION,,,,,,{digits},C1,"), says="is too long for a number"
        )
    elif where == "trading212":
        path = write(book, "t.csv", f"{T212_HEAD}\nDeposit,2024-01-03 10:00:00,,,,,,,,{digits},GBP,D1\n")
        args = ["ledger", "import", path, "--portfolio", "GIA", "--format", "trading212"]
        refused(*args, says="t.csv: line 2: Total: ")
    else:
        policy = json.dumps(POLICY).replace('"100"', digits).encode()
        refused(*strategy(book, b"# Plan\n", policy), says="policy: not valid JSON: a number is too long")


def test_8_f_a_latin1_manifesto_is_refused_naming_file_and_line(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    manifesto = "# Plan\n\nKeep £500 in cash.\n".encode("latin-1")
    line = refused(*strategy(book, manifesto), says="manifesto.md: line 3: is not UTF-8 text")
    assert "save it as UTF-8" in line


def test_8_f_a_latin1_broker_file_is_refused_naming_the_line(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    path = write(
        book, "t.csv", f'{T212_HEAD}\nDeposit,2024-01-03 10:00:00,,,,,,,,"£10.00",GBP,D1\n'.encode("latin-1")
    )
    refused("ledger", "import", path, "--portfolio", "GIA", "--format", "trading212",
            says="t.csv: line 2: is not UTF-8 text")  # fmt: skip


@pytest.mark.parametrize("importer", ["canonical", "prices", "fx", "manifesto"])
def test_8_g_a_3_gib_file_is_refused_before_it_is_read(book: Path, refused, importer: str) -> None:  # type: ignore[no-untyped-def]
    big = book / "big.csv"
    with big.open("wb") as handle:  # sparse: nothing is written, and nothing must be read
        handle.truncate(3 << 30)
    args = {
        "canonical": ["ledger", "import", str(big), "--portfolio", "GIA", "--format", "canonical"],
        "prices": ["prices", "import", str(big), "--ticker", "VUSA", "--exchange", "XLON", "--format", "csv"],
        "fx": ["fx", "import", str(big), "--format", "ecb"],
        "manifesto": [*strategy(book, b"# Plan\n")[:-1], str(big)],
    }[importer]
    refused(*args, says="is 3 GiB; files over 256 MiB are refused")


def test_8_g_read_file_bytes_reads_nothing_of_a_file_over_the_cap(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 101)

    class Unreadable:
        """The file, but any read fails the test."""

        def __init__(self, path: Path) -> None:
            self.handle = io.open(path, "rb")  # noqa: SIM115, UP020 (Path.open is patched; closed on exit)

        def fileno(self) -> int:
            return self.handle.fileno()

        def read(self, *args: object) -> bytes:
            raise AssertionError("the file was read")

        def __enter__(self) -> Unreadable:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    monkeypatch.setattr(Path, "open", lambda self, *args, **kwargs: Unreadable(self))
    with pytest.raises(FileFormatError, match="is 101 bytes; files over 100 bytes are refused"):
        limits.read_file_bytes(big, limit=100)
    monkeypatch.undo()
    assert limits.read_file_bytes(big, limit=101) == b"x" * 101
    limits.check_size("upload", b"x" * 100, limit=100)
    with pytest.raises(FileFormatError, match="upload: is 101 bytes"):
        limits.check_size("upload", b"x" * 101, limit=100)


# The five inputs SQLite accepted and PostgreSQL refused with raw COPY errors: now refused by the
# reader on both, before the database.
@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("2024-01-03,CONTRIBUTION,,,,,,1E+200000,C1,", "cash_amount_base: '1E+200000' is out of range"),
        ("2024-01-03,BUY,VWRL,XLON,1E+131072,1,0,-1,C1,", "units: '1E+131072' is out of range"),
        ("2024-01-03,BUY,VWRL,XLON,1,1E-16384,0,-1,C1,", "price: '1E-16384' has 16384 decimal places"),
        ("2024-01-03,CONTRIBUTION,,,,,,10.00,C1,a\x00b", "line 2: contains a NUL byte"),
        ("2024-01-03,CONTRIBUTION,,,,,,10.00," + "R" * 5000 + ",",
         "line 2: reference: 5000 characters, at most 200 are kept"),
    ],
    ids=["numeric-overflow-cash", "numeric-overflow-units", "numeric-overflow-places", "nul", "long-ref"],
)  # fmt: skip
def test_8_h_what_postgresql_cannot_store_is_refused_on_both(
    book: Path, refused, row: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    refused(*canonical(book, row), says=says)


def test_8_h_notes_too_long_are_refused(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    refused(*canonical(book, "2024-01-03,CONTRIBUTION,,,,,,10.00,C1," + "n" * 2001),
            says="line 2: notes: 2001 characters, at most 2000 are kept")  # fmt: skip


def test_8_h_exact_decimal_refuses_what_numeric_cannot_hold_before_the_database(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import Column, Integer, MetaData, Table, insert, select
    from sqlalchemy.exc import StatementError

    from tradeassist.db.types import ExactDecimal

    probe = Table(
        "bad_input_probe", MetaData(), Column("id", Integer, primary_key=True), Column("v", ExactDecimal())
    )
    probe.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(probe), [{"id": 1, "v": Decimal("1E+131071")}, {"id": 2, "v": Decimal("1E-16383")}]
            )
        for bad, why in (
            (Decimal("1E+131072"), "more than 131072 digits before the decimal point"),
            (Decimal("1E-16384"), "more than 16383 digits after the decimal point"),
            (10**140000, "an integer too wide"),
        ):
            with pytest.raises(StatementError) as info, engine.begin() as conn:
                conn.execute(insert(probe), [{"id": 3, "v": bad}])
            assert isinstance(info.value.orig, ValidationError) and why in str(info.value.orig)
        with engine.connect() as conn:
            assert conn.execute(select(probe.c.v).order_by(probe.c.id)).scalars().all() == [
                Decimal("1E+131071"),
                Decimal("1E-16383"),
            ]
    finally:
        probe.drop(engine)


# --- 9. absurd values are refused --------------------------------------------------------------


@pytest.mark.parametrize("how", ["ledger-add", "canonical"])
def test_9_a_a_contribution_of_1e999999_is_refused(book: Path, cli: Cli, refused, how: str) -> None:  # type: ignore[no-untyped-def]
    if how == "ledger-add":
        args = ["ledger", "add", "--portfolio", "GIA", "--type", "CONTRIBUTION", "--amount", "1E+999999"]
        refused(*args, says="amount: '1E+999999' is out of range: at most 10^15 in size is accepted")
    else:
        refused(*canonical(book, "2024-01-03,CONTRIBUTION,,,,,,1E+999999,C1,"),
                says="ledger.csv: line 2: cash_amount_base: '1E+999999' is out of range")  # fmt: skip
    assert cash(cli) == Decimal("8998.50")


def test_9_b_fx_rates_of_1e999999_and_beyond_the_sanity_bounds_are_refused(book: Path, refused) -> None:  # type: ignore[no-untyped-def]
    refused(
        *fx(book, "Date,USD,GBP,\n2024-01-02,1E+999999,0.86,\n"), says="line 2: USD 1E+999999 is out of range"
    )
    between = "an exchange rate must lie between 0.000001 and 10^9"
    refused(*fx(book, "Date,USD,GBP,\n2024-01-02,1.1,0.0000001,\n"),
            says=f"line 2: GBP rate 0.0000001 is out of range: {between}")  # fmt: skip


@pytest.mark.parametrize("what", ["prices", "fx"])
def test_9_c_prices_and_fx_dated_2099_are_refused(book: Path, refused, what: str) -> None:  # type: ignore[no-untyped-def]
    if what == "prices":
        args = prices(book, "date,close\n2024-01-02,80.50\n2099-01-02,80.60\n", "csv")
    else:
        args = fx(book, "Date,USD,GBP,\n2099-01-02,1.1,0.86,\n2024-01-02,1.1,0.86,\n")
    where = "line 2" if what == "fx" else "line 3"
    refused(*args, says=f"{where}: the date 2099-01-02 is in the future")


def test_9_c_today_at_the_date_line_is_not_the_future(tmp_path: Path) -> None:
    from tradeassist.providers.prices import parse_price_file

    latest = limits.latest_date()
    path = tmp_path / "p.csv"
    path.write_text(f"date,close\n{latest.isoformat()},80.5\n")
    assert parse_price_file("csv", path).bars[0].as_of == latest


def test_9_d_a_trading212_deposit_of_minus_100_is_refused_not_booked_as_plus_100(
    book: Path, cli: Cli, refused
) -> None:  # type: ignore[no-untyped-def]
    path = write(book, "t212.csv", f"{T212_HEAD}\nDeposit,2024-01-03 10:00:00,,,,,,,,-100.00,GBP,D1\n")
    refused("ledger", "import", path, "--portfolio", "GIA", "--format", "trading212",
            says="line 2: the Total of a 'Deposit' line must not be negative, got -100.00")  # fmt: skip
    assert cash(cli) == Decimal("8998.50")
    # Newer exports write a withdrawal's Total negative: still money out, as the older positive one.
    path = write(book, "t212.csv", f"{T212_HEAD}\nWithdrawal,2024-01-03 10:00:00,,,,,,,,-100.00,GBP,W1\n"
                                   "Withdrawal,2024-01-04 10:00:00,,,,,,,,100.00,GBP,W2\n")  # fmt: skip
    code, _, err = cli("ledger", "import", path, "--portfolio", "GIA", "--format", "trading212")
    assert code == 0, err
    assert cash(cli) == Decimal("8798.50")


@pytest.mark.parametrize("fmt", ["yahoo", "csv", "stooq", "json"])
def test_9_e_a_price_file_with_no_usable_row_is_an_error(book: Path, refused, fmt: str) -> None:  # type: ignore[no-untyped-def]
    body, says = {
        "yahoo": ("Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,null,null,null,null,null,null\n"
                  "2024-01-03,null,null,null,null,null,null\n", "no usable price: its 2 rows are all null"),
        "csv": ("date,close\n", "no usable price: it has no rows"),
        "stooq": ("Date,Open,High,Low,Close\n", "no usable price: it has no rows"),
        "json": ("[]", "no usable price: it has no rows"),
    }[fmt]  # fmt: skip
    refused(*prices(book, body, fmt), says=says)


def test_9_f_ten_to_the_30_is_refused_and_10_to_the_15_keeps_every_penny(
    book: Path, cli: Cli, refused
) -> None:  # type: ignore[no-untyped-def]
    add = ["ledger", "add", "--portfolio", "GIA", "--time", "2024-01-03"]
    refused(*add, "--type", "CONTRIBUTION", "--amount", "1" + "0" * 30, says="is out of range: at most 10^15")
    assert cash(cli) == Decimal("8998.50")
    for kind in ("CONTRIBUTION", "WITHDRAWAL"):
        code, _, err = cli(*add, "--type", kind, "--amount", str(10**15))
        assert code == 0, err
    assert cash(cli) == Decimal("8998.50")


# --- the bounds themselves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1E+999999", "is out of range: at most 10^15"),
        ("-1000000000000000.01", "is out of range"),
        (10**16, "is out of range"),
        (10**5000, "an integer of about 5001 digits is out of range"),
        ("0.0000000000000000001", "has 19 decimal places; at most 18"),
        ("1.00000000000000000000000000001", "has 29 decimal places"),
        ("12345678901234.123456789012345", "has 29 significant digits; at most 28"),
        ("1" * 101, "is too long for a number (at most 100 characters)"),
        (Decimal("1E-999999"), "has 999999 decimal places"),
    ],
    ids=[
        "huge",
        "just-over",
        "int",
        "int-5001-digits",
        "19-places",
        "29-places",
        "29-digits",
        "long",
        "tiny",
    ],
)
def test_to_decimal_holds_every_number_to_the_documented_bounds(value: object, says: str) -> None:
    with pytest.raises(ValidationError, match=r"^amount: ") as info:
        to_decimal(value, what="amount")
    assert says in str(info.value) and len(str(info.value)) < 200


@pytest.mark.parametrize(
    "value",
    ["1000000000000000", "-1000000000000000", "0.000000000000000001", "1234567890123.123456789012345"],
)
def test_to_decimal_accepts_the_bounds_themselves(value: str) -> None:
    assert to_decimal(value) == Decimal(value)
    assert to_decimal(Decimal(value)) == Decimal(value)


def test_a_price_bound_is_tighter_than_an_amount() -> None:
    assert to_decimal("1000000000", limit=limits.MAX_PRICE) == Decimal(10**9)
    with pytest.raises(ValidationError, match="at most 10\\^9"):
        to_decimal("1000000000.01", what="price", limit=limits.MAX_PRICE)


def test_the_scale_check_survives_a_price_no_reader_would_pass() -> None:
    from datetime import date

    from tradeassist.engine.normalize import Listing, RawPrice, normalize_prices
    from tradeassist.engine.price_quality import check_points

    listing = Listing("VWRL", "XLON", "GBP", "GBX")
    for extreme in ("1E+999999", "1E-999999"):
        raws = [
            RawPrice(date(2024, 1, 2), Decimal(8000), None),
            RawPrice(date(2024, 1, 3), Decimal(extreme), None),
        ]
        checked, _, issues = check_points(normalize_prices(listing, raws), listing=listing, prior_level=None)
        assert [sorted(f.value for f in p.flags) for p in checked] == [[], ["scale_suspect"]]
        assert len(issues) == 1


# --- the same, as a real process -----------------------------------------------------------------


def test_a_real_process_prints_one_line_and_changes_nothing(book: Path, db_url: str) -> None:
    """A handful of the cases above through ``python -m tradeassist``, started together."""
    cases = {  # a ledger import, a price import, an FX import: the three importers
        "cell": _cell_importers(book)["canonical"],
        "close": prices(book, "date,close\n2024-01-03,1E+999999\n", "csv", name="close.csv"),
        "rate": fx(book, "Date,USD,GBP,\n2024-01-02,1.1,1E-999999,\n"),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEASSIST_")}
    env |= {"TRADEASSIST_HOME": str(book / "home"), "TRADEASSIST_DB_URL": db_url}
    before = dump(db_url)
    started = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tradeassist", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in cases.items()
    }
    for name, process in started.items():
        _, err = process.communicate(timeout=300)
        lines = err.splitlines()
        assert process.returncode == 1, (name, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
    assert dump(db_url) == before
