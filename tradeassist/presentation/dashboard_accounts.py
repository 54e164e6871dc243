"""The dashboard's accounts in words and tables: holdings valued, every account together,
income by tax year.

Pure: ``services.dashboard_accounts``' values in, HTML out (``presentation.html``'s table,
everything escaped). Money is ``core.money.format_gbp``'s; a price per unit keeps up to four
decimal places (a 4.3p share is £0.043, not £0.04). A holding without a price reads "no price"
in its price, value, gain and weight, never £0.00, and what to do about it follows the table.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from ..core.money import format_gbp
from ..core.timeutil import london_date
from ..services.dashboard_accounts import (
    PRICED,
    AccountHoldings,
    HoldingRow,
    Household,
    IncomeYear,
)
from ..services.dashboard_notes import long_date
from .html import WARN, message_html, table_html

HOLDING_COLUMNS = (
    "holding",
    "units",
    "price",
    "price date",
    "value",
    "book cost",
    "gain",
    "gain %",
    "weight",
    "price status",
)
ACCOUNT_COLUMNS = ("account", "tax wrapper", "strategy", "holdings", "cash", "total", "share", "no price")
INCOME_COLUMNS = ("tax year", "dividends", "interest", "total")
PRICE_PLACES = Decimal("0.0001")
NO_PRICE_TEXT = "no price"


def price_text(price: Decimal | None) -> str:
    """A price per unit: pounds and pence, finer where the price is (to four places)."""
    if price is None:
        return NO_PRICE_TEXT
    return format_gbp(price.quantize(PRICE_PLACES).normalize(), exact=True)


def units_text(units: Decimal) -> str:
    return f"{units.normalize():,f}"


def share_text(fraction: float | None, *, signed: bool = False) -> str:
    if fraction is None:
        return "—"
    return f"{fraction:+.1%}" if signed else f"{fraction:.1%}"


def short_date(day: date | None) -> str:
    return f"{day.day} {day:%b %Y}" if day is not None else ""


def as_of_text(as_of: datetime | None) -> str:
    """'now', or the London day the view is as of."""
    return "now" if as_of is None else f"at the end of {long_date(london_date(as_of))}"


def holding_cells(row: HoldingRow) -> dict[str, str]:
    """One holding's cells, in ``HOLDING_COLUMNS``."""
    unpriced = row.value is None
    return {
        "holding": f"{row.ticker} ({row.exchange})" + (f" · {row.name}" if row.name else ""),
        "units": units_text(row.units),
        "price": price_text(row.price_gbp),
        "price date": short_date(row.price_day),
        "value": NO_PRICE_TEXT if unpriced else format_gbp(row.value),
        "book cost": format_gbp(row.book_cost),
        "gain": NO_PRICE_TEXT if unpriced else format_gbp(row.gain),
        "gain %": share_text(row.gain_fraction, signed=True),
        "weight": share_text(row.weight),
        "price status": "ok" if row.status == PRICED else row.status,
    }


def holdings_html(account: AccountHoldings, *, title: str | None = None) -> str:
    """The account's holdings as a table, its cash and total under it, then what is wrong with
    any price and what to do (one line each)."""
    heading = title or f"Holdings of {account.portfolio}, {as_of_text(account.as_of)}"
    rows = [holding_cells(row) for row in account.holdings]
    table = table_html(
        rows,
        HOLDING_COLUMNS,
        empty="no holdings",
        numeric=("units", "price", "value", "book cost", "gain", "gain %", "weight"),
    )
    left_out = f"; it leaves out {_names(account.unpriced)}: no price" if account.unpriced else ""
    summary = (
        f"<p>Cash {format_gbp(account.cash)} · total {format_gbp(account.total)} "
        f"(holdings valued at their latest usable close, plus cash{html.escape(left_out)})</p>"
    )
    return f"<h4>{html.escape(heading)}</h4>{table}{summary}{notes_html(account.notes)}"


def notes_html(notes: Sequence[str]) -> str:
    """What is wrong with a price and what to do, one amber line each."""
    return "".join(message_html(note, WARN) for note in notes)


def _names(rows: Sequence[HoldingRow]) -> str:
    return ", ".join(f"{row.ticker} on {row.exchange}" for row in rows)


def household_html(house: Household) -> str:
    """Every account's value and the total, as a table under a headline."""
    total = house.total
    unpriced = [(a.portfolio, row) for a in house.accounts for row in a.unpriced]
    rows = [
        {
            "account": account.portfolio,
            "tax wrapper": account.tax_treatment,
            "strategy": account.strategy or "none approved",
            "holdings": format_gbp(account.holdings_value),
            "cash": format_gbp(account.cash),
            "total": format_gbp(account.total),
            "share": share_text(float(account.total / total) if total > 0 else None),
            "no price": _names(account.unpriced),
        }
        for account in house.accounts
    ]
    if not rows:
        return "<h3>All accounts</h3>" + message_html(
            "You may see no portfolio yet: create one with `tradeassist portfolio add`, or ask "
            "its owner to share it with you.",
            WARN,
        )
    head = f"All accounts: {format_gbp(total)}, {as_of_text(house.as_of)}"
    left_out = ""
    if unpriced:
        names = ", ".join(f"{row.ticker} on {row.exchange} in {name}" for name, row in unpriced)
        left_out = f" It leaves out what has no price, never counting it as zero: {names}."
    lead = (
        f"<p>Valued holdings plus cash of the {len(rows)} account{'s' if len(rows) != 1 else ''} you may "
        f"see; cash {format_gbp(house.cash)}.{html.escape(left_out)}</p>"
    )
    table = table_html(rows, ACCOUNT_COLUMNS, numeric=("holdings", "cash", "total", "share"))
    return f"<h3>{html.escape(head)}</h3>{lead}{table}"


def income_html(years: Sequence[IncomeYear], *, whose: str = "") -> str:
    """Dividends and interest per tax year (6 April to 5 April), as a table."""
    rows = [
        {
            "tax year": year.tax_year,
            "dividends": format_gbp(year.dividends),
            "interest": format_gbp(year.interest),
            "total": format_gbp(year.total),
        }
        for year in years
    ]
    heading = "Income by tax year" + (f" ({whose})" if whose else "")
    table = table_html(
        rows,
        INCOME_COLUMNS,
        empty="no dividends or interest recorded",
        numeric=("dividends", "interest", "total"),
    )
    return f"<h4>{html.escape(heading)}</h4>{table}"
