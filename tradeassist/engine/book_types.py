"""The book's values: what the replay reads (entries, quotes, corporate actions) and returns
(the book, issues, effects), with the small arithmetic they share.

Every value is immutable; the mappings a replay returns are ``core.frozen.FrozenDict``.
See ``engine.book`` for the conventions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from ..core.enums import CorporateActionType, EntryType
from ..core.frozen import FrozenDict
from ..core.money import CONTEXT, ZERO
from ..core.timeutil import LONDON

AVG_COST_QUANTUM = Decimal("1E-10")
UNITS_QUANTUM = Decimal("1E-10")  # a split whose units do not terminate is rounded down to this

BUY, SELL, TRANSFER, FEE = EntryType.BUY, EntryType.SELL, EntryType.TRANSFER, EntryType.FEE
CONTRIBUTION, WITHDRAWAL, INTEREST = EntryType.CONTRIBUTION, EntryType.WITHDRAWAL, EntryType.INTEREST
DIVIDEND = EntryType.DIVIDEND
# Entries that move cash alone: no units, no pool. A DIVIDEND may name its listing all the same.
CASH_ONLY = frozenset({CONTRIBUTION, WITHDRAWAL, FEE, INTEREST, DIVIDEND})


class Quote(NamedTuple):
    """What the book needs of a listing: its instrument, currency and quote scale exponent."""

    instrument_id: int
    currency: str  # the trading currency (GBP for GBX listings)
    exponent: int  # powers of ten below the major unit: 2 for GBX, 0 for GBP


class Entry(NamedTuple):
    """One ledger entry. ``key`` identifies it in issues and results: the ledger_entry_id of a
    stored entry, any other distinct int (the service uses negatives) for a new one."""

    key: int
    entry_time: datetime
    entry_type: EntryType
    cash: Decimal
    fees: Decimal = ZERO
    listing_id: int | None = None
    units: Decimal | None = None
    price: Decimal | None = None
    cost: Decimal | None = None  # TRANSFER in: the pooled GBP cost the units bring
    corrects: int | None = None  # key of the entry this one corrects
    cost_from: int | None = None  # TRANSFER in without a cost: the key of the TRANSFER out
    # (earlier in the same replay) whose removed cost it carries: a reorganisation's new shares


# An entry as the replay reads it: an ``Entry`` or a plain tuple in the same field order.
Row = tuple[Any, ...]


class Action(NamedTuple):
    """A corporate action, with the listing an ISIN change moves holdings to."""

    key: int
    effective: date
    action_type: CorporateActionType
    instrument_id: int
    ratio_num: Decimal | None = None
    ratio_den: Decimal | None = None
    target_listing_id: int | None = None
    target_instrument_id: int | None = None


class Holding(NamedTuple):
    units: Decimal
    cost: Decimal  # Section 104 pool, GBP, fees included

    @property
    def avg_cost(self) -> Decimal | None:
        return avg_cost(self.units, self.cost)


class Issue(NamedTuple):
    """Why the entry with ``key`` cannot stand (frozen; the service maps keys to file lines)."""

    key: int
    reason: str


class Effect(NamedTuple):
    """What an entry did to one listing's pool (a transfer out: the cost its units took)."""

    listing_id: int | None
    units: Decimal
    cost: Decimal
    entry: Row


@dataclass(frozen=True)
class Book:
    """Cash and the holdings with units ≠ 0, by listing id."""

    cash: Decimal = ZERO
    holdings: Mapping[int, Holding] = field(default_factory=FrozenDict)


EMPTY_BOOK = Book()


@dataclass(frozen=True)
class Replay:
    book: Book
    issues: tuple[Issue, ...]
    cash_after: Mapping[int, Decimal]  # for the keys asked for in ``track``
    effects: Mapping[int, Effect]  # for the keys asked for in ``watch``


def avg_cost(units: Decimal, cost: Decimal) -> Decimal | None:
    if not units:
        return None
    return CONTEXT.divide(cost, units).quantize(AVG_COST_QUANTUM, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def action_instant(effective: date) -> datetime:
    """The start of ``effective`` in Europe/London, as an aware datetime."""
    return datetime.combine(effective, time(0), tzinfo=LONDON)


def consideration(units: Decimal, price: Decimal, quote: Quote) -> Decimal:
    """units × price in the listing's major currency unit (pounds for a GBX listing)."""
    value = units * price
    return value.scaleb(-quote.exponent) if quote.exponent else value
