"""Market data workflows that span services: what one change sets off in another.

* **FX import → renormalise** (``import_fx_file``, ``store_rates``): new GBP crosses are
  stored (``fx_rates``), then the prices already stored as ``missing_fx`` whose rate has now
  arrived are normalised again (``price_checks.renormalize_missing_fx``), then one
  ``FX_IMPORTED`` audit row records both.
* **Split → recheck** (``record_split``): a split or merge is recorded through the corporate
  action service (which replays the holders' ledgers), then every listing of the instrument
  has its stored prices checked again from the effective date
  (``price_checks.recheck_instrument``).
* **Accepted level → resolve** (``accept_level``): the acceptance is recorded and the listing's
  prices from that date on are checked again (``price_checks.accept_level``); an alert whose
  flag no current point carries any more is resolved and the freeze it set is ended
  (``price_alerts.resolve_cleared``), each audited.

Each runs in the caller's transaction, like every service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from ..core.enums import CorporateActionType
from ..db.models import CorporateAction, InstrumentListing, User
from ..providers.fx import FxRate as ProvidedRate
from . import access
from .corporate_actions import add_corporate_action
from .fx_rates import FxImportResult, read_fx_file, record_fx_import, store_crosses
from .price_alerts import Resolved, resolve_cleared
from .price_checks import RecheckResult, flags_left, recheck_instrument, renormalize_missing_fx
from .price_checks import accept_level as record_acceptance
from .registry import get_listing


def import_fx_file(
    session: Session,
    *,
    actor: User | None,
    path: str | Path,
    fmt: str = "ecb",
    currencies: Iterable[str] | None = None,
) -> FxImportResult:
    """Read an FX file (``ecb``: the history or daily CSV, or its zip) and store GBP crosses."""
    rates, name = read_fx_file(path, fmt)
    return store_rates(session, actor=actor, rates=rates, source=fmt, file=name, currencies=currencies)


def store_rates(
    session: Session,
    *,
    actor: User | None,
    rates: Sequence[ProvidedRate],
    source: str,
    file: str,
    currencies: Iterable[str] | None = None,
) -> FxImportResult:
    """Store the GBP crosses of EUR-based ``rates`` (all currencies, or only ``currencies``),
    normalise again the ``missing_fx`` prices they now cover, and audit the import. An actor
    other than the administrator must be able to see every portfolio holding a listing quoted
    in one of those currencies (the rates revalue them)."""
    if actor is not None:
        wanted = (
            {c.upper() for c in currencies}
            if currencies is not None
            else {r.quote_currency.upper() for r in rates}
        )
        listings = session.execute(
            select(col(InstrumentListing.listing_id)).where(
                col(InstrumentListing.trading_currency).in_(wanted)
            )
        ).scalars()
        access.require_every(session, actor, access.portfolios_using(session, listings), "import FX rates")
    stored = store_crosses(session, rates=rates, source=source, currencies=currencies)
    renormalized = 0
    if stored.inserted and stored.days:
        renormalized = renormalize_missing_fx(
            session, currencies=stored.currencies, start=stored.days[0], end=stored.days[-1]
        )
    result = stored.result(source=source, file=file, renormalized=renormalized)
    record_fx_import(session, actor=actor, source_id=stored.source_id, result=result)
    return result


def record_split(
    session: Session,
    *,
    actor: User,
    isin: str,
    effective_date: date,
    ratio_num: Decimal,
    ratio_den: Decimal,
    notes: str | None = None,
) -> tuple[CorporateAction, list[RecheckResult]]:
    """Record a split (``ratio_num`` > ``ratio_den``) or merge through the corporate action
    service (which replays the holders' ledgers), then check every listing's stored prices
    again from its date."""
    kind = CorporateActionType.SPLIT if ratio_num > ratio_den else CorporateActionType.MERGE
    action = add_corporate_action(
        session,
        actor=actor,
        isin=isin,
        action_type=kind,
        effective=effective_date,
        ratio=(ratio_num, ratio_den),
        notes=notes,
    )
    results = recheck_instrument(
        session,
        actor=actor,
        instrument_id=action.instrument_id,
        from_date=effective_date,
        cause=f"{kind.value.lower()} recorded ({action.corp_action_id})",
    )
    return action, results


def accept_level(
    session: Session,
    *,
    actor: User,
    ticker: str,
    exchange: str,
    effective_date: date,
    reason: str,
) -> tuple[RecheckResult, Resolved]:
    """Accept a listing's price level from a date: re-check its prices from then on, resolve the
    alerts the re-check cleared and end the freezes they set (see the module docstring)."""
    result = record_acceptance(
        session, actor=actor, ticker=ticker, exchange=exchange, effective_date=effective_date, reason=reason
    )
    listing = get_listing(session, ticker, exchange)
    assert listing.listing_id is not None  # read from the database
    resolved = resolve_cleared(
        session,
        actor,
        listing,
        flags_left(session, listing.listing_id),
        f"price level of {listing.ticker} accepted from {effective_date}: {reason.strip()}",
    )
    return result, resolved
