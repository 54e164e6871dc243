"""Correcting entries: a MANUAL_FIX batch of exact reversals, plus any replacements.

Any set of a portfolio's entries is reversed in one batch, atomically, whatever the order of
the ids (each is reversed once: an id named twice is one reversal). The replay leaves every
entry and its reversal out together (``engine.book.cancelled_pairs``), so the batch stands
exactly when the ledger without those entries does. A replacement corrects one entry: the
one reversed, or the one it names (which it must when several are reversed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from ...core.enums import BatchType
from ...core.errors import NotFound, ValidationError
from ...db.models import LedgerEntry, Portfolio, User
from .. import access
from .model import NewEntry, PostResult
from .post import post_entries


def reverse_entries(
    session: Session,
    *,
    actor: User,
    portfolio: str | Portfolio,
    entry_ids: Sequence[int],
    replacements: Sequence[NewEntry] = (),
    label: str | None = None,
    now: datetime | None = None,
) -> PostResult:
    """Correct entries: one MANUAL_FIX batch of their exact reversals (dated at each original,
    so history reads as if they had never been) plus any ``replacements``. A replacement
    references the entry it replaces: the one entry reversed, or the one it names
    (``corrects_entry_id``), which it must name when several are reversed."""
    folio = access.portfolio_for(session, actor, portfolio, "correct ledger entries")
    entry_ids = list(dict.fromkeys(entry_ids))  # named twice: reversed once
    if not entry_ids:
        raise ValidationError("name at least one entry to correct")
    if len(entry_ids) > 1 and any(r.corrects_entry_id is None for r in replacements):
        raise ValidationError(
            "a replacement corrects one entry: with several entries reversed, name the one it "
            "replaces (corrects_entry_id)"
        )
    rows = _entries(session, folio, entry_ids)
    entries = [_reversal(i, rows[i]) for i in entry_ids]
    entries += [
        r if r.corrects_entry_id is not None else r._replace(corrects_entry_id=entry_ids[0])
        for r in replacements
    ]
    return post_entries(
        session,
        actor=actor,
        portfolio=folio,
        entries=entries,
        label=label
        or f"correction of entr{'y' if len(entry_ids) == 1 else 'ies'} {', '.join(map(str, entry_ids))}",
        batch_type=BatchType.MANUAL_FIX,
        now=now,
    )


def _reversal(entry_id: int, row: LedgerEntry) -> NewEntry:
    """The exact reversal of a stored entry, dated at it."""
    return NewEntry(
        entry_time=row.entry_time,
        entry_type=row.entry_type,
        cash_amount_base=-row.cash_amount_base,
        fees_base=-row.fees_base,
        listing_id=row.listing_id,
        units=None if row.units is None else -row.units,
        price=row.price,
        notes=f"reverses entry {entry_id}",
        corrects_entry_id=entry_id,
    )


def _entries(session: Session, folio: Portfolio, entry_ids: Sequence[int]) -> dict[int, LedgerEntry]:
    """The named entries of the portfolio, by id; NotFound names any it does not hold."""
    rows: dict[int, LedgerEntry] = {}
    for row in session.execute(
        select(LedgerEntry).where(
            col(LedgerEntry.portfolio_id) == folio.portfolio_id,
            col(LedgerEntry.ledger_entry_id).in_(list(entry_ids)),
        )
    ).scalars():
        assert row.ledger_entry_id is not None
        rows[row.ledger_entry_id] = row
    missing = [i for i in entry_ids if i not in rows]
    if missing:
        raise NotFound(f"no ledger entry {', '.join(map(str, missing))} in portfolio {folio.name!r}")
    return rows
