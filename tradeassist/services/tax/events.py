"""What the tax figures are computed from: one taxpayer's entries in their general accounts,
read from the book and turned into the share-matching engine's events.

* The taxpayer is a portfolio's owner. Their GIA portfolios, at any broker, are one taxpayer's
  holdings: a share class (ISIN) is matched across all of them. ISA and SIPP portfolios are
  outside CGT: nothing in them is a disposal, nothing bought in them matches a GIA sale.
* BUY: an acquisition costing what it paid (consideration and fees). SELL: a disposal with
  gross proceeds (what it raised before fees) and its fees as costs of disposal.
* Units moved between two of the owner's GIAs are no event at all: the pool is the owner's.
  Units moved in from elsewhere (an ISA, another broker not kept here) join the pool with the
  cost they carry; units moved out of the GIAs leave the pool at its average cost. The two
  halves of a reorganisation recorded in one portfolio as a transfer out and in carry the cost.
* Entries reversed by a correction, and the reversals, are left out: the history reads as if
  they had never been. Corporate actions (splits, consolidations, ISIN changes) rescale or carry
  the pool.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from ...core.enums import CorporateActionType, EntryType, TaxTreatment
from ...core.errors import NotFound
from ...core.money import ZERO
from ...core.timeutil import london_date
from ...db.models import CorporateAction, Instrument, InstrumentListing, LedgerEntry, Portfolio, User
from ...engine.book_checks import is_reversal
from ...engine.tax.matching import PoolTransfer, Reorganisation, Trade
from .. import access, identity


@dataclass(frozen=True)
class TaxInputs:
    owner: User
    general: tuple[Portfolio, ...]  # the owner's GIA portfolios
    sheltered: tuple[Portfolio, ...]  # the owner's ISA and SIPP portfolios
    trades: tuple[Trade, ...]
    transfers: tuple[PoolTransfer, ...]
    reorganisations: tuple[Reorganisation, ...]
    portfolio_of: dict[int, str]  # ledger entry id -> portfolio name, for the working


def taxpayer(session: Session, actor: User, owner_email: str | None) -> User:
    """The owner whose tax is asked for (the acting user unless named), who must exist."""
    if owner_email is None:
        return actor
    owner = identity.find_user(session, owner_email)
    if owner is None:
        raise NotFound(
            f"no user {identity.normalize_email(owner_email)!r}: tax is per owner, name one with --owner"
        )
    return owner


def owner_portfolios(session: Session, actor: User, owner: User, operation: str) -> list[Portfolio]:
    """The owner's portfolios; the actor must be able to see every one of them."""
    rows = session.exec(
        select(Portfolio)
        .where(col(Portfolio.owner_user_id) == owner.user_id)
        .order_by(col(Portfolio.portfolio_id))
    ).all()
    portfolios = list(rows)
    for portfolio in portfolios:
        access.require_access(session, actor, portfolio, operation)
    return portfolios


def load_tax_inputs(
    session: Session, actor: User, owner: User, *, operation: str = "see tax figures"
) -> TaxInputs:
    portfolios = owner_portfolios(session, actor, owner, operation)
    general = tuple(p for p in portfolios if p.tax_treatment == TaxTreatment.GIA)
    sheltered = tuple(p for p in portfolios if p.tax_treatment != TaxTreatment.GIA)
    listing_rows = session.execute(
        sa_select(
            col(InstrumentListing.listing_id), col(InstrumentListing.ticker), col(Instrument.isin)
        ).join(Instrument, col(Instrument.instrument_id) == col(InstrumentListing.instrument_id))
    ).all()
    listings = {listing_id: (ticker, isin) for listing_id, ticker, isin in listing_rows}
    ids = [p.portfolio_id for p in portfolios]
    entries = (
        session.exec(
            select(LedgerEntry)
            .where(col(LedgerEntry.portfolio_id).in_(ids))
            .order_by(col(LedgerEntry.entry_time), col(LedgerEntry.ledger_entry_id))
        ).all()
        if ids
        else []
    )
    treatment = {p.portfolio_id or 0: p.tax_treatment for p in portfolios}
    names = {p.portfolio_id or 0: p.name for p in portfolios}
    live = _without_reversed(entries)
    trades: list[Trade] = []
    unit_moves = [e for e in live if e.entry_type == EntryType.TRANSFER and e.units]
    for e in live:
        if treatment[e.portfolio_id] != TaxTreatment.GIA or e.listing_id is None or not e.units:
            continue
        ticker, isin = listings[e.listing_id]
        day = london_date(e.entry_time)
        ref = e.ledger_entry_id or 0
        if e.entry_type == EntryType.BUY:
            trades.append(Trade(day, isin, e.units, -e.cash_amount_base, False, e.fees_base, ref, ticker))
        elif e.entry_type == EntryType.SELL:
            trades.append(
                Trade(day, isin, e.units, e.cash_amount_base + e.fees_base, True, e.fees_base, ref, ticker)
            )
    transfers = _pool_transfers(unit_moves, treatment, listings)
    return TaxInputs(
        owner=owner,
        general=general,
        sheltered=sheltered,
        trades=tuple(trades),
        transfers=tuple(transfers),
        reorganisations=tuple(_reorganisations(session)),
        portfolio_of={e.ledger_entry_id or 0: names[e.portfolio_id] for e in live},
    )


def _row(e: LedgerEntry) -> tuple[object, ...]:
    return (
        e.ledger_entry_id,
        e.entry_time,
        e.entry_type,
        e.cash_amount_base,
        e.fees_base,
        e.listing_id,
        e.units,
        e.price,
    )


def _without_reversed(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    by_id = {e.ledger_entry_id: e for e in entries}
    gone: set[int | None] = set()
    for e in entries:
        original = by_id.get(e.corrects_entry_id) if e.corrects_entry_id is not None else None
        if original is not None and is_reversal(_row(e), _row(original)):
            gone |= {e.ledger_entry_id, original.ledger_entry_id}
    return [e for e in entries if e.ledger_entry_id not in gone]


def _pool_transfers(
    moves: Sequence[LedgerEntry],
    treatment: dict[int, TaxTreatment],
    listings: dict[int, tuple[str, str]],
) -> list[PoolTransfer]:
    """The unit transfers that move units into or out of the owner's general accounts."""
    by_ref: dict[str, list[LedgerEntry]] = defaultdict(list)
    for e in moves:
        if e.external_ref and e.external_ref.startswith("transfer:"):
            by_ref[e.external_ref].append(e)
    between_general = {
        e.ledger_entry_id
        for pair in by_ref.values()
        if len(pair) == 2 and all(treatment[p.portfolio_id] == TaxTreatment.GIA for p in pair)
        for e in pair
    }
    # A transfer out and in within one portfolio at one instant: a reorganisation.
    halves: dict[tuple[int, object, int], list[LedgerEntry]] = defaultdict(list)
    for e in moves:
        halves[(e.portfolio_id, e.entry_time, e.ledger_batch_id)].append(e)
    carries: dict[int | None, int | None] = {}
    for group in halves.values():
        outs = [e for e in group if e.units is not None and e.units < 0]
        ins = [e for e in group if e.units is not None and e.units > 0]
        if len(outs) == 1 and len(ins) == 1:
            carries[ins[0].ledger_entry_id] = outs[0].ledger_entry_id
    result = []
    for e in moves:
        if (
            treatment[e.portfolio_id] != TaxTreatment.GIA
            or e.ledger_entry_id in between_general
            or e.listing_id is None
        ):
            continue
        assert e.units is not None
        ticker, isin = listings[e.listing_id]
        carried = carries.get(e.ledger_entry_id)
        cost = (
            None if carried is not None or e.units < 0 else (e.cost_base if e.cost_base is not None else ZERO)
        )
        result.append(
            PoolTransfer(
                london_date(e.entry_time), isin, e.units, cost, e.ledger_entry_id or 0, carried, ticker
            )
        )
    return result


def _reorganisations(session: Session) -> list[Reorganisation]:
    rows = session.execute(
        sa_select(
            col(CorporateAction.effective_date),
            col(CorporateAction.action_type),
            col(CorporateAction.ratio_num),
            col(CorporateAction.ratio_den),
            col(CorporateAction.instrument_id),
            col(CorporateAction.new_instrument_id),
        )
    ).all()
    isin_of = dict(session.execute(sa_select(col(Instrument.instrument_id), col(Instrument.isin))).all())
    one = Decimal(1)
    result = []
    for effective, kind, num, den, instrument_id, new_instrument_id in rows:
        isin = isin_of[instrument_id]
        day: date = effective
        if kind == CorporateActionType.ISIN_CHANGE and new_instrument_id is not None:
            result.append(Reorganisation(day, isin, isin_of[new_instrument_id], num or one, den or one))
        elif kind in (CorporateActionType.SPLIT, CorporateActionType.MERGE):
            result.append(Reorganisation(day, isin, isin, num or one, den or one))
    return result
