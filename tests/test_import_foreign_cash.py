"""Issue #17 item 6: a Trading 212 multi-currency file imported line by line into a GBP account.

A line whose Total is in USD or EUR (the account's USD or EUR cash) is converted to GBP at the
stored GBP cross (``fx_rates``, the ECB's reference rates): the latest rate on or before the
line's London date, within the 7 days price normalisation allows, rounded to the penny
half-even; the entry keeps the foreign figure in ``original_currency``/``original_amount``.
Without the rates the import is refused in one message, and nothing is written. On SQLite and
PostgreSQL (``engine``).
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from tradeassist.core.errors import FileFormatError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import (
    AuditEvent,
    CashSnapshot,
    FxRate,
    HoldingSnapshot,
    LedgerBatch,
    LedgerEntry,
)
from tradeassist.services import fx, identity, imports, ledger, portfolios, registry

SAMPLE = "trading212_multi-currency_investir.csv"
LISTINGS = (  # (isin, ticker, exchange, currency, quote scale): the sample's instruments
    ("US5949181045", "MSFT", "XNAS", "USD", "USD"),
    ("US0231351067", "AMZN", "XNAS", "USD", "USD"),
    ("US70450Y1038", "PYPL", "XNAS", "USD", "USD"),
    ("NL0010273215", "ASML", "XAMS", "EUR", "EUR"),
)
# The ECB's reference rates (1 EUR = …) on the days the sample's foreign lines use, copied from
# eurofxref-hist.csv: (USD, GBP). The test checks them against the file.
ECB = {
    date(2022, 5, 2): ("1.0524", "0.8381"),
    date(2022, 5, 3): ("1.0556", "0.8413"),
    date(2022, 5, 4): ("1.0531", "0.84194"),
    date(2022, 5, 6): ("1.057", "0.85625"),
    date(2022, 5, 9): ("1.0559", "0.85235"),
    date(2022, 5, 10): ("1.0554", "0.85595"),
    date(2022, 6, 3): ("1.073", "0.8542"),
    date(2022, 6, 10): ("1.0578", "0.85048"),
    date(2022, 8, 19): ("1.0054", "0.84938"),
}
# The sample's lines whose Total is not in GBP: line -> (time, type, amount in that currency as the
# entry keeps it, currency, the ECB day whose rate applies). Cash lines keep the signed cash; trades
# keep the consideration (Total ∓ fees; none here), as a trade in a foreign listing does.
FOREIGN = {
    3: (datetime(2022, 5, 2, 10, 52, tzinfo=UTC), "CONTRIBUTION", "1000", "USD", date(2022, 5, 2)),
    4: (datetime(2022, 5, 3, 15, 2, tzinfo=UTC), "CONTRIBUTION", "500", "EUR", date(2022, 5, 3)),
    6: (datetime(2022, 5, 4, 13, 3, tzinfo=UTC), "WITHDRAWAL", "-100", "USD", date(2022, 5, 4)),
    9: (datetime(2022, 5, 8, 9, tzinfo=UTC), "INTEREST", "5.0", "USD", date(2022, 5, 6)),  # a Sunday
    10: (datetime(2022, 5, 9, 9, tzinfo=UTC), "INTEREST", "1.0", "USD", date(2022, 5, 9)),
    11: (datetime(2022, 5, 10, 9, tzinfo=UTC), "INTEREST", "1.0", "EUR", date(2022, 5, 10)),
    14: (datetime(2022, 6, 3, 17, 8, tzinfo=UTC), "BUY", "313.67", "USD", date(2022, 6, 3)),
    15: (datetime(2022, 6, 10, 16, 8, tzinfo=UTC), "BUY", "656.50", "EUR", date(2022, 6, 10)),
    20: (datetime(2022, 8, 19, 17, 8, tzinfo=UTC), "SELL", "354.99", "USD", date(2022, 8, 19)),
}
GBP_LINES_CASH = Decimal("6689.27")  # the £5,000 paid in before, and the file's GBP lines


def penny(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def in_gbp(amount: Decimal, currency: str, day: date) -> Decimal:
    """Computed here from the ECB's EUR rates: USD × EURGBP / EURUSD, EUR × EURGBP."""
    usd, gbp = (Decimal(r) for r in ECB[day])
    return penny(amount * gbp / usd if currency == "USD" else amount * gbp)


def expected_cash(line: int) -> Decimal:
    """The GBP cash of a foreign line, signed as the ledger keeps it."""
    _, kind, amount, currency, day = FOREIGN[line]
    gbp = in_gbp(Decimal(amount), currency, day)
    return -gbp if kind == "BUY" else gbp


def register(engine: Engine) -> None:
    """The sample's listings, a portfolio T212 and £5,000 paid in before the export."""
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        for isin, ticker, exchange, currency, scale in LISTINGS:
            registry.add_instrument(s, actor=actor, isin=isin, instrument_type="STOCK")
            registry.add_listing(
                s, actor=actor, isin=isin, ticker=ticker, exchange=exchange, currency=currency,
                quote_scale=scale,
            )  # fmt: skip
        portfolios.add_portfolio(s, actor=actor, name="T212", broker="Trading 212", tax_treatment="ISA")
        ledger.post_entries(
            s,
            actor=actor,
            portfolio="T212",
            entries=[ledger.NewEntry(datetime(2022, 4, 1, tzinfo=UTC), "CONTRIBUTION", Decimal(5000))],
            label="cash from before the export",
            batch_type="MANUAL",
        )


def import_ecb(engine: Engine, path: Path, currencies: tuple[str, ...] = ("USD", "EUR")) -> None:
    with unit_of_work(engine) as s:
        fx.import_fx_file(
            s, actor=identity.bootstrap_admin(s), path=path, fmt="ecb", currencies=list(currencies)
        )


def do_import(engine: Engine, path: Path, **kw: Any) -> imports.ImportResult:
    with unit_of_work(engine) as s:
        return imports.import_file(
            s, actor=identity.bootstrap_admin(s), portfolio="T212", path=path, format="trading212", **kw
        )


def counts(engine: Engine) -> dict[str, int]:
    """Rows in every table an import could write (or a refused one leave behind)."""
    with unit_of_work(engine, readonly=True) as s:
        return {
            model.__tablename__: s.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (LedgerBatch, LedgerEntry, CashSnapshot, HoldingSnapshot, AuditEvent, FxRate)
        }


def stored(engine: Engine) -> dict[datetime, tuple[str, Decimal, Decimal, str | None, Decimal | None]]:
    """entry time -> (type, cash, fees, original currency, original amount)."""
    with unit_of_work(engine, readonly=True) as s:
        rows = s.execute(
            select(
                col(LedgerEntry.entry_time),
                col(LedgerEntry.entry_type),
                col(LedgerEntry.cash_amount_base),
                col(LedgerEntry.fees_base),
                col(LedgerEntry.original_currency),
                col(LedgerEntry.original_amount),
            )
        ).all()
    return {r[0].astimezone(UTC): (r[1].value, r[2], r[3], r[4], r[5]) for r in rows}


def test_the_rates_written_here_are_the_ecbs(real_data: Path) -> None:
    with (real_data / "ecb" / "eurofxref-hist.csv").open(newline="") as handle:
        rows = {r["Date"]: (r["USD"], r["GBP"]) for r in csv.DictReader(handle)}
    for day, (usd, gbp) in ECB.items():
        assert (Decimal(rows[day.isoformat()][0]), Decimal(rows[day.isoformat()][1])) == (
            Decimal(usd),
            Decimal(gbp),
        ), day
    assert "2022-05-08" not in rows and "2022-05-07" not in rows  # a weekend: Friday's rate applies


def test_every_line_is_imported_the_foreign_ones_at_the_ecb_rate_of_their_day(
    engine: Engine, real_data: Path, tmp_path: Path
) -> None:
    register(engine)
    import_ecb(engine, real_data / "ecb" / "eurofxref-hist.csv")
    path = real_data / "brokers" / SAMPLE
    result = do_import(engine, path)
    assert (result.added, result.skipped, result.already_imported) == (19, 0, False)
    converted = sum(expected_cash(line) for line in FOREIGN)
    assert result.cash_balance == GBP_LINES_CASH + converted

    entries = stored(engine)
    assert len(entries) == 20  # the contribution from before, and every line of the file
    for line, (when, kind, amount, currency, _) in FOREIGN.items():
        assert entries[when] == (kind, expected_cash(line), 0, currency, Decimal(amount)), line
    # the GBP lines are the file's GBP amounts, with no original amount
    msft = entries[datetime(2022, 6, 10, 12, 11, tzinfo=UTC)]
    assert msft == ("BUY", Decimal("-843.26"), Decimal("4.95"), "USD", msft[4])  # a USD listing
    deposit = entries[datetime(2022, 5, 1, 9, 1, tzinfo=UTC)]
    assert deposit == ("CONTRIBUTION", Decimal(1000), 0, None, None)
    with unit_of_work(engine, readonly=True) as s:
        held = {
            h["ticker"]: h["units"]
            for h in ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio="T212")
        }
    # PayPal bought with USD and sold for USD; ASML bought with EUR and still held
    assert "PYPL" not in held or held["PYPL"] == 0
    assert held["ASML"] == 1

    # importing it again adds nothing; an export overlapping it adds only its new line
    before = counts(engine)
    again = do_import(engine, path)
    assert again.already_imported and again.added == 0 and again.cash_balance == result.cash_balance
    longer = tmp_path / "longer.csv"
    extra = "Interest on cash,2022-08-20 09:00:00.000,,,,,,,,,,2.0,USD,,,,,,,\n"
    longer.write_bytes(path.read_bytes() + extra.encode())
    overlapping = do_import(engine, longer)
    assert (overlapping.added, overlapping.skipped) == (1, 19)  # converted exactly as before
    assert overlapping.cash_balance == result.cash_balance + in_gbp(Decimal(2), "USD", date(2022, 8, 19))
    assert counts(engine)["ledger_entries"] == before["ledger_entries"] + 1


def test_without_rates_the_import_is_refused_in_one_message_and_nothing_is_written(
    engine: Engine, real_data: Path
) -> None:
    register(engine)
    before = counts(engine)
    with pytest.raises(FileFormatError) as info:
        do_import(engine, real_data / "brokers" / SAMPLE)
    assert counts(engine) == before
    error = info.value
    assert error.file == SAMPLE
    ((line, reason),) = error.problems
    assert line is None
    for fragment in (
        "no GBP exchange rate is stored for 9 lines",
        "USD on 2022-05-02, 2022-05-04, 2022-05-08, 2022-05-09, 2022-06-03, 2022-08-19 "
        "(lines 3, 6, 9, 10, 14, 20)",
        "EUR on 2022-05-03, 2022-05-10, 2022-06-10 (lines 4, 11, 15)",
        "`tradeassist fx import FILE --format ecb`",
        "--option foreign_cash=skip",
    ):
        assert fragment in reason, fragment
    assert "\n" not in str(error)

    # the rates of one currency only: the other is still named, and still nothing is written
    with unit_of_work(engine) as s:
        fx.import_fx_file(
            s,
            actor=identity.bootstrap_admin(s),
            path=real_data / "ecb" / "eurofxref-hist.csv",
            fmt="ecb",
            currencies=["EUR"],
        )
    before = counts(engine)
    with pytest.raises(FileFormatError) as info:
        do_import(engine, real_data / "brokers" / SAMPLE)
    assert counts(engine) == before
    ((_, reason),) = info.value.problems
    assert "for 6 lines" in reason and "USD on 2022-05-02" in reason and "EUR on" not in reason

    # foreign_cash=skip still imports the GBP lines alone, with no rate needed
    skipped = do_import(engine, real_data / "brokers" / SAMPLE, options={"foreign_cash": "skip"})
    assert skipped.added == 10 and skipped.cash_balance == GBP_LINES_CASH


T212_HEAD = (
    "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,"
    "Total,Currency (Total),Currency conversion fee,Currency (Currency conversion fee),ID"
)
# EUR-based rates, as the ECB writes them: GBP→USD = USD / GBP, 1.5 on the 5th, 1.5625 on the 12th
SMALL_ECB = """Date,USD,GBP,
2024-07-12,1.25,0.80,
2024-07-05,1.20,0.80,
"""


def test_the_rate_is_the_latest_on_or_before_the_london_date_within_seven_days(
    engine: Engine, tmp_path: Path
) -> None:
    with unit_of_work(engine) as s:
        actor = identity.bootstrap_admin(s)
        portfolios.add_portfolio(s, actor=actor, name="T212", broker="Trading 212", tax_treatment="GIA")
    rates = tmp_path / "ecb.csv"
    rates.write_text(SMALL_ECB)
    import_ecb(engine, rates, ("USD",))
    export = tmp_path / "t212.csv"
    rows = [
        "Deposit,2024-07-04 12:00:00,,,,,,,,100.00,GBP,,,G1",
        "Deposit,2024-07-05 12:00:00,,,,,,,,150.00,USD,,,U1",  # / 1.5 = £100.00
        # 23:30 UTC is 00:30 on the 12th in London (BST): the 12th's rate, 1.01 / 1.5625 = £0.6464
        # (the 11th's would be the 5th's: £0.6733)
        "Deposit,2024-07-11 23:30:00,,,,,,,,1.01,USD,,,U2",
        "Interest on cash,2024-07-12 09:00:00,,,,,,,,0.01,USD,,,U3",  # £0.0064: a penny
        "Deposit,2024-07-13 09:00:00,,,,,,,,10.00,USD,,,U4",  # a Saturday: Friday's rate, £6.40
        "Deposit,2024-07-19 09:00:00,,,,,,,,10.00,USD,,,U5",  # the 12th's rate, 7 days old: £6.40
    ]
    export.write_text(T212_HEAD + "\n" + "\n".join(rows) + "\n")
    result = do_import(engine, export)
    assert result.added == 6
    assert result.cash_balance == Decimal("213.46")  # 100 + 100 + 0.65 + 0.01 + 6.40 + 6.40
    with unit_of_work(engine, readonly=True) as s:
        kept = {
            r[0]: (r[1], r[2], r[3])
            for r in s.execute(
                select(
                    col(LedgerEntry.external_ref),
                    col(LedgerEntry.cash_amount_base),
                    col(LedgerEntry.original_currency),
                    col(LedgerEntry.original_amount),
                )
            )
        }
    assert kept["U2"] == (Decimal("0.65"), "USD", Decimal("1.01"))
    assert kept["G1"] == (Decimal(100), None, None)

    # a rate more than 7 days old, or none before the line, is missing
    late = tmp_path / "late.csv"
    late.write_text(
        T212_HEAD + "\n"
        "Deposit,2024-07-20 11:00:00,,,,,,,,10.00,GBP,,,G2\n"  # a GBP account
        "Deposit,2024-07-20 12:00:00,,,,,,,,10.00,USD,,,L1\n"  # 8 days after the 12th
        "Deposit,2024-07-04 12:00:00,,,,,,,,10.00,USD,,,L2\n"  # before the first rate
        "Deposit,2024-07-19 12:00:00,,,,,,,,10.00,USD,,,L3\n"
    )
    before = counts(engine)
    with pytest.raises(FileFormatError) as info:
        do_import(engine, late)
    assert counts(engine) == before
    ((_, reason),) = info.value.problems
    assert "no GBP exchange rate is stored for 2 lines" in reason
    assert "USD on 2024-07-04, 2024-07-20 (lines 3, 4)" in reason
    assert "--option foreign_cash=skip" in reason


def test_a_line_in_dollars_at_either_end_of_the_calendar_is_refused_not_a_crash(
    engine: Engine, tmp_path: Path
) -> None:
    """The rates a line needs are read from a week before it to its day: at 0001-01-01 that week
    is before the calendar, and at 9999-12-31 the end of the day's month is after it (each was
    an OverflowError or a ValueError, the CLI's last resort)."""
    with unit_of_work(engine) as s:
        portfolios.add_portfolio(
            s, actor=identity.bootstrap_admin(s), name="T212", broker="Trading 212", tax_treatment="GIA"
        )
    export = tmp_path / "edges.csv"
    export.write_text(
        T212_HEAD + "\n"
        "Deposit,2024-07-04 12:00:00,,,,,,,,10.00,GBP,,,G1\n"
        "Deposit,0001-01-01 00:00:00,,,,,,,,10.00,USD,,,E1\n"
        "Deposit,9999-12-31 23:59:59,,,,,,,,10.00,USD,,,E2\n"
    )
    before = counts(engine)
    with pytest.raises(FileFormatError) as info:
        do_import(engine, export)
    assert counts(engine) == before
    ((_, reason),) = info.value.problems
    assert "USD on 0001-01-01, 9999-12-31 (lines 3, 4)" in reason
