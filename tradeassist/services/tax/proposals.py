"""The tax context of a recommendation in a general account: the owner's history in their
general accounts for the share classes the portfolio holds or may buy, and the year so far."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from ...core.enums import TaxTreatment
from ...core.errors import NotFound
from ...core.money import ZERO
from ...db.models import Instrument, InstrumentListing, Portfolio, User
from ...engine.tax.proposals import TaxContext, listing_key
from ...engine.tax.years import tax_year_of
from .cgt import matching_for
from .events import TaxInputs, load_tax_inputs


def tax_context(
    session: Session, folio: Portfolio, as_of: date, listings: Iterable[tuple[str, str]]
) -> TaxContext | None:
    """None for an ISA or SIPP (no capital gains tax there)."""
    if folio.tax_treatment != TaxTreatment.GIA:
        return None
    owner = session.get(User, folio.owner_user_id)
    if owner is None:
        raise NotFound(f"portfolio {folio.name!r} has no owner")
    inputs = load_tax_inputs(session, owner, owner)
    year = tax_year_of(as_of)
    realised = [d for d in matching_for(inputs, until=as_of).disposals if year.contains(d.day)]
    isin_by_listing = _isins(session, list(listings))
    classes = _related(inputs, set(isin_by_listing.values()))
    return TaxContext(
        tax_year=year.label,
        annual_exempt_amount=year.annual_exempt_amount,
        net_gain_to_date=sum((d.gain for d in realised), ZERO),
        isin_by_listing=isin_by_listing,
        trades=tuple(t for t in inputs.trades if t.isin in classes and t.day <= as_of),
        transfers=tuple(m for m in inputs.transfers if m.isin in classes and m.day <= as_of),
        reorganisations=tuple(r for r in inputs.reorganisations if r.isin in classes and r.day <= as_of),
    )


def _isins(session: Session, keys: list[tuple[str, str]]) -> dict[str, str]:
    rows = session.execute(
        sa_select(col(InstrumentListing.ticker), col(InstrumentListing.exchange), col(Instrument.isin)).join(
            Instrument, col(Instrument.instrument_id) == col(InstrumentListing.instrument_id)
        )
    ).all()
    wanted = set(keys)
    return {listing_key(t, e): isin for t, e, isin in rows if (t, e) in wanted}


def _related(inputs: TaxInputs, isins: set[str]) -> set[str]:
    """The ISINs linked to ``isins`` by reorganisations or by a transfer pair carrying cost."""
    result = set(isins)
    by_ref = {m.ref: m for m in inputs.transfers}
    while True:
        before = len(result)
        for r in inputs.reorganisations:
            if r.isin in result or r.new_isin in result:
                result |= {r.isin, r.new_isin}
        for m in inputs.transfers:
            source = by_ref.get(m.carries) if m.carries is not None else None
            if source is not None and (m.isin in result or source.isin in result):
                result |= {m.isin, source.isin}
        if len(result) == before:
            return result
