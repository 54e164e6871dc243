"""Entries a file probably records again: what was typed by hand (``ledger add``, a month's
contribution) or posted by executing a recommendation, that a broker's statement now brings
under its own references. Told to the user when an import is refused for cash, with the
command that reverses them (``tradeassist ledger correct ID... --portfolio NAME``).

A stored entry probably repeats a line of the file when

* it was not imported, corrected or posted by a corporate action (its batch is not IMPORT,
  MANUAL_FIX or CORPORATE_ACTION), is no reversal and is not reversed;
* it has the line's type, listing and units, and lies within ``WINDOW`` of it (a fill is often
  recorded a day or two after the trade, a contribution before it settles);
* its cash is the line's, or for a BUY or SELL within ``TRADE_CASH_TOLERANCE`` of it (the
  broker's fees and price may differ a little from those typed).

Each line is paired with one entry at most (the nearest in time, then the lowest id) and each
entry with one line.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import select
from sqlmodel import Session, col

from ...core.enums import BatchType, EntryType
from ...core.money import ZERO, decimal_str, format_gbp
from ...core.timeutil import ensure_utc
from ...db.models import LedgerBatch, Portfolio
from .model import IN_CHUNK, E, ListingInfo, NewEntry

WINDOW = timedelta(days=7)
TRADE_CASH_TOLERANCE = Decimal("0.05")  # of the line's cash
NOT_BY_HAND = (BatchType.IMPORT, BatchType.MANUAL_FIX, BatchType.CORPORATE_ACTION)
TRADES = (EntryType.BUY, EntryType.SELL)


class Repeat(NamedTuple):
    """A stored entry that probably repeats ``line`` of the file."""

    entry_id: int
    entry_time: datetime
    entry_type: EntryType
    listing_id: int | None
    units: Decimal | None
    cash: Decimal
    batch_type: BatchType
    recommendation_id: int | None
    line: NewEntry


def probable_repeats(session: Session, portfolio_id: int, lines: Sequence[NewEntry]) -> list[Repeat]:
    """The stored entries of the portfolio that ``lines`` (a file's entries, listings resolved
    to ids) probably record again, in the order of the lines."""
    if not lines:
        return []
    times = [ensure_utc(e.entry_time) for e in lines]
    refs = {e.external_ref for e in lines if e.external_ref is not None}
    candidates = [
        c
        for c in _candidates(session, portfolio_id, min(times) - WINDOW, max(times) + WINDOW)
        if c[-1] not in refs
    ]
    taken: set[int] = set()
    found = []
    for line, when in zip(lines, times, strict=True):
        best = min(
            (c for c in candidates if c[0] not in taken and _same(c, line)),
            key=lambda c: (abs(c[1] - when), c[0]),
            default=None,
        )
        if best is not None:
            taken.add(best[0])
            found.append(Repeat(*best[:8], line=line))
    return found


_Row = tuple[int, datetime, EntryType, int | None, Decimal | None, Decimal, BatchType, int | None, str | None]


def _candidates(session: Session, portfolio_id: int, start: datetime, end: datetime) -> list[_Row]:
    """The portfolio's entries between ``start`` and ``end`` typed by hand or executed, that
    are no reversal and not reversed."""
    rows: list[_Row] = [
        tuple(row)
        for row in session.execute(
            select(
                E.ledger_entry_id,
                E.entry_time,
                E.entry_type,
                E.listing_id,
                E.units,
                E.cash_amount_base,
                col(LedgerBatch.batch_type),
                col(LedgerBatch.recommendation_id),
                E.external_ref,
            )
            .join(LedgerBatch, col(LedgerBatch.ledger_batch_id) == E.ledger_batch_id)
            .where(
                E.portfolio_id == portfolio_id,
                E.corrects_entry_id.is_(None),
                E.entry_time >= start,
                E.entry_time <= end,
                col(LedgerBatch.batch_type).not_in(NOT_BY_HAND),
            )
            .order_by(E.ledger_entry_id)
        )
    ]
    ids = [r[0] for r in rows]
    reversed_ids: set[int] = set()
    for first in range(0, len(ids), IN_CHUNK):
        chunk = ids[first : first + IN_CHUNK]
        reversed_ids.update(
            session.execute(
                select(E.corrects_entry_id).where(
                    E.portfolio_id == portfolio_id, E.corrects_entry_id.in_(chunk)
                )
            ).scalars()
        )
    return [r for r in rows if r[0] not in reversed_ids]


def _same(stored: _Row, line: NewEntry) -> bool:
    _, _, kind, listing_id, units, cash, *_ = stored
    if kind != line.entry_type or listing_id != line.listing_id or units != line.units:
        return False
    if kind in TRADES:
        return abs(cash - line.cash_amount_base) <= abs(line.cash_amount_base) * TRADE_CASH_TOLERANCE
    return bool(cash == line.cash_amount_base)


def repeats_hint(
    session: Session, portfolio: Portfolio, lines: Sequence[NewEntry], listings: Mapping[int, ListingInfo]
) -> str | None:
    """What to tell the user of the entries ``lines`` probably repeat, and the command that
    reverses them all in one batch; None when there are none."""
    assert portfolio.portfolio_id is not None
    repeats = probable_repeats(session, portfolio.portfolio_id, lines)
    if not repeats:
        return None
    several_files = len({e.source for e in lines}) > 1
    pairs = ", ".join(
        f"ledger entry {r.entry_id} ({_batch(r)}, {r.entry_time:%Y-%m-%d}: {_what(r, listings)}) is "
        f"{_where(r.line, several_files)}"
        for r in repeats
    )
    ids = " ".join(str(i) for i in sorted(r.entry_id for r in repeats))
    command = f"`tradeassist ledger correct {ids} --portfolio {shlex.quote(portfolio.name)}`"
    if len(repeats) == 1:
        return (
            "an entry recorded by hand or by a recommendation's execution probably repeats a line of "
            f"this file: {pairs}; if it does, reverse it and import the file again: {command}"
        )
    return (
        "entries recorded by hand or by a recommendation's execution probably repeat lines of this "
        f"file: {pairs}; if they do, reverse them and import the file again: {command}"
    )


def _batch(r: Repeat) -> str:
    if r.recommendation_id is not None:
        return f"{r.batch_type.value} of recommendation {r.recommendation_id}"
    return r.batch_type.value


def _what(r: Repeat, listings: Mapping[int, ListingInfo]) -> str:
    info = listings.get(r.listing_id) if r.listing_id is not None else None
    ticker = info.ticker if info is not None else None
    if r.units is not None and r.units != ZERO:
        units = decimal_str(r.units.normalize())
        return f"{r.entry_type.value} {units} {ticker}, {format_gbp(r.cash, exact=True)}"
    named = f" {ticker}" if ticker else ""
    return f"{r.entry_type.value}{named} {format_gbp(r.cash, exact=True)}"


def _where(line: NewEntry, several_files: bool) -> str:
    if line.line is None:
        return "a line"
    return f"{line.source} line {line.line}" if several_files else f"line {line.line}"


def earlier_history_hint(session: Session, portfolio: Portfolio, lines: Sequence[NewEntry]) -> str | None:
    """When the book holds nothing before a refused file's first line: the years may have been
    imported out of order (a 2023 history sells units its 2022 history bought). None otherwise."""
    assert portfolio.portfolio_id is not None
    if not lines:
        return None
    first = min(ensure_utc(e.entry_time) for e in lines)
    earlier = session.execute(
        select(E.ledger_entry_id)
        .where(E.portfolio_id == portfolio.portfolio_id, E.entry_time < first)
        .limit(1)
    ).first()
    if earlier is not None:
        return None
    return (
        f"this file starts on {first:%d/%m/%Y} and the book of {portfolio.name!r} holds nothing earlier: "
        "if you have statements for earlier years, import those first, oldest first"
    )
