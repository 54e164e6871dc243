"""Income per listing and per tax year: dividends and interest, read from the ledger.

Every INTEREST and DIVIDEND entry is classified by ``engine.income`` (the one rule: a
DIVIDEND is a dividend, and so is an INTEREST row whose notes start ``dividend:``, as the
imports wrote dividends before DIVIDEND existed). A dividend is attributed to the listing it
names, else to the listing its notes' payer names (an ISIN, a ticker listed once, or the
start of one instrument's name in the registry), else to no listing, with the payer's name.
A reversal counts against what it reverses. The UK tax year runs from 6 April to 5 April,
dates in Europe/London. Amounts are exact sums of the entries' cash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from ..core.enums import EntryType
from ..core.errors import ValidationError
from ..core.money import CONTEXT, ZERO, format_gbp
from ..core.timeutil import LONDON, ensure_utc, london_date, utcnow
from ..db.models import Instrument, Portfolio, User
from ..engine import income as inc
from ..engine.tax.years import tax_year_label_of
from . import access, ledger
from .ledger.model import E, ListingInfo

KINDS = (inc.DIVIDEND, inc.INTEREST)
_LABEL = re.compile(r"^(\d{4})[-/](\d{2}|\d{4})$")


@dataclass(frozen=True)
class IncomeRow:
    """The income of one kind from one listing (or payer) in one portfolio and tax year."""

    tax_year: str  # "2023-24"
    portfolio: str
    tax_treatment: str  # SIPP, ISA, GIA
    kind: inc.IncomeKind  # DIVIDEND or INTEREST
    ticker: str | None  # the paying listing; None for interest, or a dividend of unknown listing
    exchange: str | None
    isin: str | None
    payer: str | None  # a dividend of unknown listing: the payer its notes name
    amount: Decimal  # GBP, exact
    entries: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def listing_names(
    session: Session, listings: Mapping[int, ListingInfo] | None = None
) -> list[inc.ListingName]:
    """Every listing with its instrument's ISIN and name: what a dividend's payer is matched to."""
    listings = ledger.load_listings(session) if listings is None else listings
    names: dict[int, str | None] = {
        instrument_id: name
        for instrument_id, name in session.execute(
            select(col(Instrument.instrument_id), col(Instrument.name))
        )
    }
    return [
        inc.ListingName(
            info.listing_id,
            info.ticker,
            info.isin,
            names.get(info.quote.instrument_id),
            info.quote.instrument_id,
            info.is_primary,
        )
        for info in listings.values()
    ]


# --- tax years --------------------------------------------------------------------------------


def tax_year_label(text: str) -> str:
    """``2023-24`` (also ``2023/24``, ``2023-2024``) as its label; ValidationError otherwise."""
    match = _LABEL.match(text.strip())
    if match is not None:
        first, second = int(match.group(1)), int(match.group(2))
        label = tax_year_label_of(date(first, 4, 6))
        if (second < 100 and second == (first + 1) % 100) or second == first + 1:
            return label
    raise ValidationError(f"tax year {text!r}: write it as 2023-24 (6 April 2023 to 5 April 2024)")


def tax_year_window(label: str) -> tuple[datetime, datetime]:
    """The instants a tax year runs between: 6 April 00:00 London to the next 6 April 00:00."""
    first = int(tax_year_label(label)[:4])
    start = datetime.combine(date(first, 4, 6), time(0), tzinfo=LONDON)
    end = datetime.combine(date(first + 1, 4, 6), time(0), tzinfo=LONDON)
    return start, end


def current_tax_year(at: datetime | None = None) -> str:
    """The tax year ``at`` (default now) falls in, by its date in Europe/London."""
    return tax_year_label_of(london_date(at or utcnow()))


# --- the query --------------------------------------------------------------------------------


def income_by_listing(
    session: Session,
    *,
    owner_user_id: int | None = None,
    portfolio_ids: Iterable[int] | None = None,
    tax_year: str | None = None,
    until: datetime | None = None,
) -> list[IncomeRow]:
    """Income per tax year, portfolio, kind and listing (or payer), of the portfolios owned by
    ``owner_user_id`` and/or among ``portfolio_ids`` (every portfolio when neither is given),
    in ``tax_year`` only when one is given, and entries at or before ``until`` only when given.
    No access check: ``income`` is the one for people."""
    folios = _portfolios(session, owner_user_id, portfolio_ids)
    if not folios:
        return []
    query = select(
        E.ledger_entry_id, E.portfolio_id, E.entry_time, E.entry_type, E.notes, E.listing_id,
        E.cash_amount_base, E.corrects_entry_id,
    ).where(
        E.entry_type.in_([EntryType.INTEREST, EntryType.DIVIDEND]), E.portfolio_id.in_(sorted(folios))
    )  # fmt: skip
    if tax_year is not None:
        start, end = tax_year_window(tax_year)
        query = query.where(E.entry_time >= start, E.entry_time < end)
    if until is not None:
        query = query.where(E.entry_time <= ensure_utc(until))
    rows = session.execute(query.order_by(E.entry_time, E.ledger_entry_id)).all()
    entries = [inc.IncomeEntry(r[0], r[3], r[4], r[5], r[6], r[7]) for r in rows]
    listings = ledger.load_listings(session)
    classified = inc.classify_all(entries, listing_names(session, listings), _originals(session, entries))
    # (tax year, portfolio, kind, listing, payer) -> [amount, entries]
    grouped: dict[tuple[str, int, inc.IncomeKind, int | None, str | None], list[Any]] = {}
    for row in rows:
        found = classified.get(row[0])
        if found is None:
            continue
        key = (tax_year_label_of(london_date(row[2])), row[1], found.kind, found.listing_id, found.payer)
        total = grouped.setdefault(key, [ZERO, 0])
        total[0] = CONTEXT.add(total[0], row[6])
        total[1] += 1
    result = [
        _row(year, folios[pid], kind, listings.get(lid) if lid is not None else None, payer, amount, count)
        for (year, pid, kind, lid, payer), (amount, count) in grouped.items()
    ]
    return sorted(result, key=_order)


def income(
    session: Session, *, actor: User, portfolio: str | Portfolio | None = None, tax_year: str | None = None
) -> list[IncomeRow]:
    """``income_by_listing`` of one portfolio, or of every portfolio ``actor`` may read."""
    if portfolio is not None:
        folios = [access.portfolio_for(session, actor, portfolio, "read income")]
    else:
        folios = access.accessible_portfolios(session, actor)
    ids = [p.portfolio_id for p in folios if p.portfolio_id is not None]
    label = tax_year_label(tax_year) if tax_year is not None else None
    return income_by_listing(session, portfolio_ids=ids, tax_year=label) if ids else []


def totals(rows: Iterable[IncomeRow]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """Dividends and interest per (tax year, portfolio), exact."""
    found: dict[tuple[str, str], dict[str, Decimal]] = {}
    for row in rows:
        sums = found.setdefault((row.tax_year, row.portfolio), dict.fromkeys(KINDS, ZERO))
        sums[row.kind] = CONTEXT.add(sums[row.kind], row.amount)
    return found


def income_sentence(tax_year: str, dividends: Decimal, interest: Decimal) -> str:
    """``Income this tax year (2025-26): dividends £12.34, interest £0.56.``"""
    return (
        f"Income this tax year ({tax_year}): dividends {format_gbp(dividends)}, "
        f"interest {format_gbp(interest)}."
    )


def income_this_tax_year(session: Session, portfolio_id: int, at: datetime | None = None) -> str:
    """The dashboard's income figure for one portfolio: the tax year ``at`` (default now) falls
    in, up to ``at``."""
    year = current_tax_year(at)
    rows = income_by_listing(session, portfolio_ids=[portfolio_id], tax_year=year, until=at)
    sums = totals(rows).get((year, rows[0].portfolio), {}) if rows else {}
    return income_sentence(year, sums.get(inc.DIVIDEND, ZERO), sums.get(inc.INTEREST, ZERO))


# --- helpers ----------------------------------------------------------------------------------


def _portfolios(
    session: Session, owner_user_id: int | None, portfolio_ids: Iterable[int] | None
) -> dict[int, Portfolio]:
    query = select(Portfolio)
    if owner_user_id is not None:
        query = query.where(col(Portfolio.owner_user_id) == owner_user_id)
    if portfolio_ids is not None:
        query = query.where(col(Portfolio.portfolio_id).in_(sorted(set(portfolio_ids))))
    return {p.portfolio_id: p for p in session.execute(query).scalars() if p.portfolio_id is not None}


def _originals(session: Session, entries: Sequence[inc.IncomeEntry]) -> dict[int, inc.IncomeEntry]:
    """The entries that reversals among ``entries`` correct and that are not among them."""
    have = {e.key for e in entries}
    wanted = sorted({e.corrects for e in entries if e.corrects is not None and e.corrects not in have})
    if not wanted:
        return {}
    query = select(
        E.ledger_entry_id, E.entry_type, E.notes, E.listing_id, E.cash_amount_base, E.corrects_entry_id
    ).where(E.ledger_entry_id.in_(wanted))
    return {r[0]: inc.IncomeEntry(*r) for r in session.execute(query)}


def _row(
    year: str,
    folio: Portfolio,
    kind: inc.IncomeKind,
    info: ListingInfo | None,
    payer: str | None,
    amount: Decimal,
    count: int,
) -> IncomeRow:
    return IncomeRow(
        year,
        folio.name,
        folio.tax_treatment.value,
        kind,
        info.ticker if info else None,
        info.exchange if info else None,
        info.isin if info else None,
        payer,
        amount,
        count,
    )


def _order(row: IncomeRow) -> tuple[Any, ...]:
    """By tax year, portfolio, dividends before interest, known listings before unknown ones."""
    return (
        row.tax_year,
        row.portfolio,
        KINDS.index(row.kind),
        row.ticker is None,
        row.ticker or "",
        row.exchange or "",
        row.payer or "",
    )


__all__ = [
    "IncomeRow",
    "current_tax_year",
    "income",
    "income_by_listing",
    "income_sentence",
    "income_this_tax_year",
    "listing_names",
    "tax_year_label",
    "tax_year_window",
    "totals",
]
