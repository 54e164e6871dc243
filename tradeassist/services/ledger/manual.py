"""Entries as a person types them (``tradeassist ledger add``): times, amounts and signs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from ...core.enums import EntryType
from ...core.errors import NotFound, ValidationError
from ...core.limits import MAX_PRICE
from ...core.money import ZERO, round_cash, to_decimal
from ...core.timeutil import ensure_utc, utcnow
from ...engine import book as bk
from .model import ListingInfo, NewEntry
from .reads import load_listings, ticker_index
from .validate import to_entry_type


def parse_entry_time(text: str | None) -> datetime:
    """An entry's time as typed: ISO 8601; a date alone is midnight UTC (as in the canonical
    CSV), a naive timestamp UTC; None or empty is now."""
    if text is None or not text.strip():
        return utcnow()
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"time {text!r} is not an ISO 8601 date or timestamp") from None
    return ensure_utc(value)


def manual_entry(
    session: Session,
    *,
    entry_type: EntryType | str,
    entry_time: datetime | None = None,
    amount: Decimal | str | None = None,
    ticker: str | None = None,
    exchange: str | None = None,
    units: Decimal | str | None = None,
    price: Decimal | str | None = None,
    fees: Decimal | str | None = None,
    cash: Decimal | str | None = None,
    cost: Decimal | str | None = None,
    external_ref: str | None = None,
    notes: str | None = None,
    corrects_entry_id: int | None = None,
) -> NewEntry:
    """An entry as a person describes it, with the sign conventions applied:

    * cash-only types take a positive ``amount``: CONTRIBUTION/INTEREST/DIVIDEND +amount,
      WITHDRAWAL −amount, FEE fees = amount and cash −amount; a cash TRANSFER takes a signed
      ``cash``; a DIVIDEND names the listing that paid it by ``ticker`` (and ``exchange``)
      when it is known;
    * BUY/SELL take ticker, units, price (in the listing's quote scale) and fees; the cash is
      −(consideration + fees) / +(consideration − fees), the consideration rounded to the
      penny, unless ``cash`` is given;
    * a TRANSFER of units takes signed units (+ in, − out) and, coming in, its ``cost``.
    """
    kind = to_entry_type(entry_type)
    when = entry_time or utcnow()
    fee = to_decimal(fees, what="fees") if fees is not None else ZERO
    given_cash = to_decimal(cash, what="cash") if cash is not None else None
    units_d = to_decimal(units, what="units") if units is not None else None
    price_d = to_decimal(price, what="price", limit=MAX_PRICE) if price is not None else None
    info = lookup_listing(session, ticker, exchange) if ticker else None
    if kind in bk.CASH_ONLY:
        entry = _cash_entry(kind, when, amount, fee, notes, external_ref, corrects_entry_id)
        if kind is EntryType.DIVIDEND and info is not None:
            entry = entry._replace(listing_id=info.listing_id)
        return entry
    if kind in (EntryType.BUY, EntryType.SELL):
        given_cash = _trade_cash(kind, info, units_d, price_d, fee, given_cash)
    elif kind is EntryType.TRANSFER and units_d is None and given_cash is None:
        if amount is None:
            raise ValidationError("a TRANSFER needs --units (with --ticker) or a signed --cash")
        given_cash = to_decimal(amount, what="amount")
    return NewEntry(
        when,
        kind,
        given_cash if given_cash is not None else ZERO,
        fee,
        info.listing_id if info is not None else None,
        units=units_d,
        price=price_d,
        cost_base=to_decimal(cost, what="cost") if cost is not None else None,
        notes=notes,
        external_ref=external_ref,
        corrects_entry_id=corrects_entry_id,
    )


def _cash_entry(
    kind: EntryType,
    when: datetime,
    amount: Decimal | str | None,
    fee: Decimal,
    notes: str | None,
    external_ref: str | None,
    corrects_entry_id: int | None,
) -> NewEntry:
    """A cash-only entry from its positive ``amount``: the sign follows the type."""
    if amount is None:
        raise ValidationError(f"a {kind} needs --amount")
    value = to_decimal(amount, what="amount")
    if value <= ZERO:
        raise ValidationError(f"--amount must be > 0 (the sign follows the type), got {value}")
    signed = {
        EntryType.CONTRIBUTION: value,
        EntryType.INTEREST: value,
        EntryType.DIVIDEND: value,
        EntryType.WITHDRAWAL: -value,
        EntryType.FEE: -value,
    }[kind]
    fee = value if kind is EntryType.FEE else fee
    return NewEntry(when, kind, signed, fee, notes=notes, external_ref=external_ref,
                    corrects_entry_id=corrects_entry_id)  # fmt: skip


def _trade_cash(
    kind: EntryType,
    info: ListingInfo | None,
    units: Decimal | None,
    price: Decimal | None,
    fee: Decimal,
    given: Decimal | None,
) -> Decimal:
    """A BUY's or SELL's cash: as given, else −(consideration + fees) / +(consideration − fees)."""
    if info is None or units is None or price is None:
        raise ValidationError(f"a {kind} needs --ticker, --units and --price")
    if given is not None:
        return given
    value = round_cash(bk.consideration(units, price, info.quote))
    return -(value + fee) if kind is EntryType.BUY else value - fee


def lookup_listing(session: Session, ticker: str, exchange: str | None) -> ListingInfo:
    """The listing a person names by ticker (and exchange, where the ticker is on several)."""
    listings = load_listings(session)
    found = ticker_index(listings).get((ticker.strip().upper(), (exchange or "").strip().upper() or None))
    if found is None:
        where = f" on {exchange.upper()}" if exchange else ""
        raise NotFound(
            f"unknown listing {ticker.upper()}{where} (name the exchange if the ticker is on several)"
        )
    return listings[found]
