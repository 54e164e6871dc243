"""Corporate actions: SPLIT, MERGE (a consolidation) and ISIN_CHANGE, recorded per instrument.

They are facts about an instrument, so they apply to every portfolio that holds it. The book
(``engine.book``) applies them at the start of the effective date (Europe/London), in time
order with the entries: SPLIT/MERGE multiply units by ``ratio_num/ratio_den`` and keep the
pooled cost; ISIN_CHANGE moves units (× the ratio, 1:1 unless given) and cost to the new
instrument's primary (else first) listing.

Recording one replays the ledger of every portfolio that ever held the instrument and rewrites
its snapshots, in the same transaction; if any ledger no longer stands (a MERGE that leaves
fewer units than a later recorded sale), the action is refused and nothing changes. Actions
are append-only: a wrong one is not deleted (there is no correction path for it yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from ..core.enums import CorporateActionType
from ..core.errors import AlreadyExists, ValidationError
from ..core.money import to_decimal
from ..core.timeutil import london_date, utcnow
from ..db.models import CorporateAction, HoldingSnapshot, Instrument, InstrumentListing, LedgerEntry, User
from ..engine import book as bk
from . import access, audit, ledger, registry

_RATIO = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*[:/]\s*([0-9]+(?:\.[0-9]+)?)\s*$")


def parse_ratio(text: str) -> tuple[Decimal, Decimal]:
    """``N:D`` (or ``N/D``): N new units for every D held. ``2:1`` is a two-for-one split."""
    match = _RATIO.match(text or "")
    if not match:
        raise ValidationError(f"ratio {text!r}: expected N:D, e.g. 2:1 for a two-for-one split")
    num, den = to_decimal(match.group(1), what="ratio"), to_decimal(match.group(2), what="ratio")
    if num <= 0 or den <= 0:
        raise ValidationError(f"ratio {text!r}: both sides must be > 0")
    return num, den


def _effective(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"effective date {value!r}: expected YYYY-MM-DD") from None


def add_corporate_action(
    session: Session,
    *,
    actor: User,
    isin: str,
    action_type: CorporateActionType | str,
    effective: date | str,
    ratio: str | tuple[Decimal, Decimal] | None = None,
    new_isin: str | None = None,
    notes: str | None = None,
    today: date | None = None,
) -> CorporateAction:
    """Record a corporate action and replay every portfolio it touches."""
    instrument = registry.get_instrument(session, isin)
    instrument_id = _instrument_id(instrument)
    listings = session.execute(
        select(col(InstrumentListing.listing_id)).where(col(InstrumentListing.instrument_id) == instrument_id)
    ).scalars()
    access.require_every(
        session, actor, access.portfolios_using(session, listings), f"record a corporate action for {isin}"
    )
    kind = _action_type(action_type)
    on = _effective(effective)
    today = today or london_date(utcnow())
    if on > today:
        raise ValidationError(f"effective date {on} is in the future: record the action on or after that day")
    num = den = None
    if ratio is not None:
        num, den = parse_ratio(ratio) if isinstance(ratio, str) else (Decimal(ratio[0]), Decimal(ratio[1]))
    new_instrument = None
    if kind is CorporateActionType.ISIN_CHANGE:
        new_instrument = _new_instrument(session, instrument_id, new_isin)
    else:
        _check_ratio(kind, num, den, new_isin)
    _refuse_duplicate(session, instrument, kind, on)
    action = CorporateAction(
        instrument_id=instrument_id,
        action_type=kind,
        effective_date=on,
        ratio_num=num,
        ratio_den=den,
        new_instrument_id=new_instrument.instrument_id if new_instrument else None,
        notes=(notes or "").strip() or None,
    )
    session.add(action)
    session.flush()
    touched = _portfolios_holding(session, [instrument_id])
    ledger.replay_portfolios(session, touched)
    audit.record(
        session,
        actor=actor,
        action="CORPORATE_ACTION_ADDED",
        entity_type="corporate_action",
        entity_id=action.corp_action_id,
        details=corporate_action_row(session, action) | {"portfolios_replayed": len(touched)},
    )
    return action


def _instrument_id(instrument: Instrument) -> int:
    assert instrument.instrument_id is not None  # a stored instrument has its id
    return instrument.instrument_id


def _action_type(value: CorporateActionType | str) -> CorporateActionType:
    try:
        return CorporateActionType(str(value).strip().upper())
    except ValueError:
        allowed = ", ".join(t.value for t in CorporateActionType)
        raise ValidationError(f"corporate action type {value!r}: expected one of {allowed}") from None


def _new_instrument(session: Session, instrument_id: int, new_isin: str | None) -> Instrument:
    """An ISIN_CHANGE's new instrument: another one, with a listing to move holdings to."""
    if not new_isin:
        raise ValidationError("an ISIN_CHANGE needs the new ISIN (--new-isin)")
    new_instrument = registry.get_instrument(session, new_isin)
    if new_instrument.instrument_id == instrument_id:
        raise ValidationError("an ISIN_CHANGE needs a different ISIN")
    if not registry.listings_by_isin(session, new_instrument.isin):
        raise ValidationError(
            f"{new_instrument.isin} has no listing to move holdings to: "
            "add one with `tradeassist listing add`"
        )
    return new_instrument


def _check_ratio(
    kind: CorporateActionType, num: Decimal | None, den: Decimal | None, new_isin: str | None
) -> None:
    """A SPLIT or MERGE keeps the ISIN and needs a ratio that increases (decreases) the units."""
    if new_isin:
        raise ValidationError(f"a {kind} keeps the ISIN: --new-isin is for ISIN_CHANGE")
    if num is None or den is None:
        raise ValidationError(f"a {kind} needs a ratio (--ratio N:D)")
    if kind is CorporateActionType.SPLIT and not num > den:
        raise ValidationError(f"a SPLIT increases the units: ratio {num}:{den} must have N > D")
    if kind is CorporateActionType.MERGE and not num < den:
        raise ValidationError(f"a MERGE (consolidation) reduces the units: ratio {num}:{den} must have N < D")


def _refuse_duplicate(session: Session, instrument: Instrument, kind: CorporateActionType, on: date) -> None:
    duplicate = session.execute(
        select(col(CorporateAction.corp_action_id)).where(
            col(CorporateAction.instrument_id) == instrument.instrument_id,
            col(CorporateAction.action_type) == kind,
            col(CorporateAction.effective_date) == on,
        )
    ).scalar()
    if duplicate is not None:
        raise AlreadyExists(
            f"a {kind} of {instrument.isin} effective {on} is recorded already (id {duplicate})"
        )


def _portfolios_holding(session: Session, instrument_ids: Iterable[int]) -> list[int]:
    """Portfolios whose ledger or snapshots name a listing of these instruments."""
    listing_ids = list(
        session.execute(
            select(col(InstrumentListing.listing_id)).where(
                col(InstrumentListing.instrument_id).in_(list(instrument_ids))
            )
        ).scalars()
    )
    if not listing_ids:
        return []
    from_entries = session.execute(
        select(col(LedgerEntry.portfolio_id)).where(col(LedgerEntry.listing_id).in_(listing_ids)).distinct()
    ).scalars()
    from_snapshots = session.execute(
        select(col(HoldingSnapshot.portfolio_id))
        .where(col(HoldingSnapshot.listing_id).in_(listing_ids))
        .distinct()
    ).scalars()
    return sorted(set(from_entries) | set(from_snapshots))


def corporate_action_row(session: Session, action: CorporateAction) -> dict[str, Any]:
    isins: dict[int | None, str] = {
        instrument_id: isin
        for instrument_id, isin in session.execute(
            select(col(Instrument.instrument_id), col(Instrument.isin))
        )
    }
    return {
        "corp_action_id": action.corp_action_id,
        "isin": isins.get(action.instrument_id),
        "action_type": action.action_type.value,
        "effective_date": action.effective_date,
        "ratio_num": action.ratio_num,
        "ratio_den": action.ratio_den,
        "new_isin": isins.get(action.new_instrument_id) if action.new_instrument_id else None,
        "notes": action.notes,
    }


def list_corporate_actions(session: Session, *, isin: str | None = None) -> list[dict[str, Any]]:
    """Every recorded action (or one instrument's), oldest first."""
    query = select(CorporateAction).order_by(
        col(CorporateAction.effective_date), col(CorporateAction.corp_action_id)
    )
    if isin:
        query = query.where(
            col(CorporateAction.instrument_id) == registry.get_instrument(session, isin).instrument_id
        )
    return [corporate_action_row(session, a) for a in session.execute(query).scalars()]


def split_adjusted_prices(
    session: Session, *, isin: str, prices: Iterable[tuple[date, Decimal]]
) -> list[tuple[date, Decimal]]:
    """A price series on today's unit basis (for charts): each price divided by the SPLIT and
    MERGE ratios that took effect after its date."""
    instrument = registry.get_instrument(session, isin)
    actions = ledger.load_actions(session, ledger.load_listings(session))
    return bk.split_adjusted(prices, actions, _instrument_id(instrument))


__all__ = [
    "add_corporate_action",
    "corporate_action_row",
    "list_corporate_actions",
    "parse_ratio",
    "split_adjusted_prices",
]
