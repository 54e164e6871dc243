"""Transfers between two portfolios: units in specie (with their Section 104 cost) or cash."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from ...core.enums import BatchType, EntryType
from ...core.errors import ValidationError
from ...core.money import ZERO, to_decimal
from ...db.models import User
from .. import access
from .model import NewEntry, PostResult
from .post import post_entries


def transfer_between(
    session: Session,
    *,
    actor: User,
    source: str,
    destination: str,
    entry_time: datetime,
    listing_id: int | None = None,
    ticker: str | None = None,
    exchange: str | None = None,
    units: Decimal | None = None,
    amount: Decimal | None = None,
    notes: str | None = None,
    now: datetime | None = None,
) -> tuple[PostResult, PostResult]:
    """Move units in specie (with their Section 104 cost) or cash from one portfolio to another:
    a TRANSFER out of ``source`` and a TRANSFER in to ``destination``, one batch in each,
    sharing one reference ``transfer:<random hex>``."""
    if source == destination:
        raise ValidationError("a transfer needs two different portfolios")
    if (units is None) == (amount is None):
        raise ValidationError("transfer either units (with a listing) or an amount of cash")
    access.portfolio_for(session, actor, destination, "post ledger entries")  # refuse before writing anything
    if units is not None:
        units = _positive(units, "units", "units to transfer")
        out = NewEntry(entry_time, EntryType.TRANSFER, ZERO, listing_id=listing_id, ticker=ticker,
                       exchange=exchange, units=-units, notes=notes)  # fmt: skip
    else:
        amount = _positive(amount, "amount", "the amount to transfer")
        out = NewEntry(entry_time, EntryType.TRANSFER, -amount, notes=notes)
    ref = f"transfer:{uuid.uuid4().hex[:16]}"
    out = out._replace(external_ref=ref)
    sent = post_entries(
        session,
        actor=actor,
        portfolio=source,
        entries=[out],
        label=f"transfer to {destination}",
        batch_type=BatchType.MANUAL,
        now=now,
        watch_new=True,
    )
    if units is not None:
        cost = (sent.transfer_costs or {}).get(0, ZERO)
        incoming = out._replace(units=units, cost_base=-cost)
    else:
        assert amount is not None
        incoming = out._replace(cash_amount_base=amount)
    received = post_entries(
        session,
        actor=actor,
        portfolio=destination,
        entries=[incoming],
        label=f"transfer from {source}",
        batch_type=BatchType.MANUAL,
        now=now,
    )
    return sent, received


def _positive(value: object, what: str, name: str) -> Decimal:
    number = to_decimal(value, what=what)
    if number <= ZERO:
        raise ValidationError(f"{name} must be > 0, got {number}")
    return number
