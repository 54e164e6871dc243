"""The ledger's value types (what callers pass in and get back) and the table handles the
stages read and write through Core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Table

from ...core.enums import EntryType
from ...core.money import ZERO
from ...db.models import HoldingSnapshot, LedgerEntry
from ...engine import book as bk

# The Core tables (a rebuild reads a million rows: no ORM objects on the hot paths).
ENTRIES: Table = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
HOLDINGS: Table = HoldingSnapshot.metadata.tables[HoldingSnapshot.__tablename__]
E = ENTRIES.c
H = HOLDINGS.c
IN_CHUNK = 500  # values per IN (...) list


class NewEntry(NamedTuple):
    """An entry to post. Name the listing by ``listing_id`` or by ``ticker`` (+ ``exchange``).

    ``source`` and ``line`` say where it came from (a file and its line), for errors.
    """

    entry_time: datetime
    entry_type: EntryType | str
    cash_amount_base: Decimal
    fees_base: Decimal = ZERO
    listing_id: int | None = None
    ticker: str | None = None
    exchange: str | None = None
    units: Decimal | None = None
    price: Decimal | None = None
    cost_base: Decimal | None = None
    original_currency: str | None = None
    original_amount: Decimal | None = None
    notes: str | None = None
    external_ref: str | None = None
    corrects_entry_id: int | None = None
    source: str | None = None
    line: int | None = None
    cost_from: int | None = (
        None  # TRANSFER in: index (in this batch) of the TRANSFER out whose cost it carries
    )


class BalanceCheck(NamedTuple):
    """A broker's stated cash balance once the first ``after_entries`` new entries are applied."""

    after_entries: int
    balance: Decimal
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class PostResult:
    portfolio: str
    batch_id: int | None  # None when nothing was added
    added: int
    skipped: int  # entries already in the ledger (same external_ref, same values)
    cash_balance: Decimal
    replayed: bool  # validated by replaying the whole ledger (back-dated entries, corrections)
    already_imported: bool = False  # the same source file was imported before: nothing done
    transfer_costs: Mapping[int, Decimal] | None = None  # new entry index -> pool cost it moved


@dataclass(frozen=True)
class RebuildResult:
    portfolio: str
    entries: int
    holdings: int
    cash_balance: Decimal
    changed: bool  # whether the rebuilt snapshots differ from those stored


class ListingInfo(NamedTuple):
    listing_id: int
    ticker: str
    exchange: str
    isin: str
    quote: bk.Quote
    is_primary: bool
