"""Static checks of ledger entries: each entry on its own, against the ledger's conventions
(``engine.book`` states them), and whether one entry is the exact reversal of another."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from ..core.money import PENNY, ZERO, format_gbp
from .book_types import (
    BUY,
    DIVIDEND,
    FEE,
    SELL,
    TRANSFER,
    WITHDRAWAL,
    Entry,
    Issue,
    Quote,
    Row,
    consideration,
)


def entry_problem(entry: Entry, quote: Quote | None, now: datetime) -> str | None:
    """Why ``entry`` breaks the ledger's conventions on its own, or None.

    ``quote`` is the listing's (None when the entry names none or an unknown one).
    """
    kind = entry.entry_type
    if entry.entry_time > now:
        return f"dated in the future ({entry.entry_time.isoformat()})"
    if entry.fees < ZERO:
        return f"fees_base {entry.fees} must not be negative"
    if kind is BUY or kind is SELL:
        return _trade_problem(entry, quote)
    if kind is TRANSFER:
        return _transfer_problem(entry, quote)
    if kind is DIVIDEND:
        return _dividend_problem(entry, quote)
    return _cash_problem(entry)


def _trade_problem(entry: Entry, quote: Quote | None) -> str | None:
    """A BUY or SELL: a known listing, units and price > 0, and cash that pays for them."""
    kind, cash, fees, units, price = entry.entry_type, entry.cash, entry.fees, entry.units, entry.price
    if entry.listing_id is None:
        return f"a {kind} needs a listing"
    if quote is None:
        return f"a {kind} names an unknown listing (id {entry.listing_id})"
    if units is None or units <= ZERO:
        return f"a {kind} needs units > 0, got {units}"
    if price is None or price <= ZERO:
        return f"a {kind} needs a price > 0, got {price}"
    if entry.cost is not None:
        return f"a {kind} carries no transfer cost"
    # money paid for the units (BUY) or received for them (SELL), before fees
    paid = -cash - fees if kind is BUY else cash + fees
    if quote.currency == "GBP":
        value = consideration(units, price, quote)
        if abs(value - paid) > PENNY:
            sign = "−(consideration + fees)" if kind is BUY else "consideration − fees"
            return (
                f"units × price = {_gbp(value)} but cash {_gbp(cash)} and fees {_gbp(fees)} imply a "
                f"consideration of {_gbp(paid)} (cash must be {sign}, to within £0.01)"
            )
    elif paid < ZERO:
        return f"a {kind}'s cash {_gbp(cash)} and fees {_gbp(fees)} imply a negative consideration"
    return None


def _gbp(amount: Decimal) -> str:
    """Money in a reason: ``format_gbp``, every digit kept where it is finer than the penny."""
    return format_gbp(amount, exact=True)


def _transfer_problem(entry: Entry, quote: Quote | None) -> str | None:
    """A TRANSFER moves units alone (signed, of a known listing) or cash alone; never fees."""
    cash, units, price = entry.cash, entry.units, entry.price
    if entry.fees:
        return f"a TRANSFER has no fees, got {entry.fees}"
    if units is not None:
        if entry.listing_id is None or quote is None:
            return "a TRANSFER of units needs a known listing"
        if not units:
            return "a TRANSFER of units needs units ≠ 0 (+ in, − out)"
        if cash:
            return f"a TRANSFER of units moves no cash, got {cash}"
        if price is not None and price <= ZERO:
            return f"a TRANSFER's price must be > 0, got {price}"
        if entry.cost is not None and (entry.cost < ZERO or units < ZERO):
            return "a TRANSFER's cost is for units coming in, and must not be negative"
        return None
    if entry.listing_id is not None or price is not None or entry.cost is not None:
        return "a cash TRANSFER has no listing, price or cost"
    return "a cash TRANSFER needs a non-zero amount" if not cash else None


def _dividend_problem(entry: Entry, quote: Quote | None) -> str | None:
    """A DIVIDEND is cash income (> 0, no fees) from the listing it names, when it names one."""
    if entry.listing_id is not None and quote is None:
        return f"a DIVIDEND names an unknown listing (id {entry.listing_id})"
    if entry.units is not None or entry.price is not None or entry.cost is not None:
        return "a DIVIDEND is cash only: it names the paying listing but carries no units or price"
    return _income_problem(entry)


def _cash_problem(entry: Entry) -> str | None:
    """A cash-only entry (CONTRIBUTION, WITHDRAWAL, FEE, INTEREST): no listing, and the sign its
    kind needs."""
    kind, cash, fees = entry.entry_type, entry.cash, entry.fees
    if (
        entry.listing_id is not None
        or entry.units is not None
        or entry.price is not None
        or entry.cost is not None
    ):
        return f"a {kind} is cash only: no listing, units or price"
    if kind is FEE:
        if fees <= ZERO or cash != -fees:
            return f"a FEE needs fees_base > 0 and cash_amount_base = −fees_base, got {fees} and {cash}"
        return None
    return _income_problem(entry)


def _income_problem(entry: Entry) -> str | None:
    """CONTRIBUTION, INTEREST, DIVIDEND (cash > 0) and WITHDRAWAL (cash < 0): no fees."""
    kind, cash, fees = entry.entry_type, entry.cash, entry.fees
    if fees:
        return f"a {kind} has no fees (record them as a FEE), got {fees}"
    if kind is WITHDRAWAL:
        return None if cash < ZERO else f"a WITHDRAWAL's cash must be negative, got {cash}"
    return None if cash > ZERO else f"a {kind}'s cash must be positive, got {cash}"


def check_entries(entries: Iterable[Entry], quotes: Mapping[int, Quote], now: datetime) -> list[Issue]:
    """Every static problem of ``entries`` (all of them, not just the first)."""
    issues = []
    get = quotes.get
    for entry in entries:
        quote = get(entry.listing_id) if entry.listing_id is not None else None
        problem = entry_problem(entry, quote, now)
        if problem is not None:
            issues.append(Issue(entry.key, problem))
    return issues


def is_reversal(entry: Row, original: Row) -> bool:
    """Whether ``entry`` is the exact negation of ``original`` (what a reversal must be)."""
    _, _, kind, cash, fees, listing_id, units, price, *_ = entry
    _, _, kind0, cash0, fees0, listing0, units0, price0, *_ = original
    return (
        kind is kind0
        and listing_id == listing0
        and cash == -cash0
        and fees == -fees0
        and (None if units is None else -units) == units0
        and price == price0
    )
