"""Reading the book for people: holdings, cash, entries and batches of a portfolio."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from ...core.money import ZERO
from ...db.models import CashSnapshot, LedgerBatch, Portfolio, User
from .. import access
from .model import E, H
from .reads import load_listings


def holdings(session: Session, *, actor: User, portfolio: str | Portfolio) -> list[dict[str, Any]]:
    """The holding snapshots: ticker, exchange, isin, units, avg_cost_base (GBP per unit)."""
    folio = access.portfolio_for(session, actor, portfolio, "read holdings")
    listings = load_listings(session)
    rows = []
    for listing_id, units, avg in session.execute(
        select(H.listing_id, H.units, H.avg_cost_base).where(H.portfolio_id == folio.portfolio_id)
    ):
        info = listings[listing_id]
        rows.append(
            {
                "ticker": info.ticker,
                "exchange": info.exchange,
                "isin": info.isin,
                "units": units,
                "avg_cost_base": avg,
            }
        )
    return sorted(rows, key=lambda r: (r["ticker"], r["exchange"]))


def cash(session: Session, *, actor: User, portfolio: str | Portfolio) -> dict[str, Any]:
    """The cash snapshot: currency and cash_balance."""
    folio = access.portfolio_for(session, actor, portfolio, "read cash")
    row = session.execute(
        select(col(CashSnapshot.currency), col(CashSnapshot.cash_balance)).where(
            col(CashSnapshot.portfolio_id) == folio.portfolio_id
        )
    ).first()
    if row is None:
        return {"currency": "GBP", "cash_balance": ZERO}
    return {"currency": row[0], "cash_balance": row[1]}


def list_entries(session: Session, *, actor: User, portfolio: str | Portfolio) -> list[dict[str, Any]]:
    """Every entry of the portfolio in book order (no limit)."""
    folio = access.portfolio_for(session, actor, portfolio, "list ledger entries")
    listings = load_listings(session)
    rows = session.execute(
        select(
            E.ledger_entry_id,
            E.ledger_batch_id,
            E.entry_time,
            E.entry_type,
            E.listing_id,
            E.units,
            E.price,
            E.fees_base,
            E.cash_amount_base,
            E.cost_base,
            E.external_ref,
            E.corrects_entry_id,
            E.notes,
        )
        .where(E.portfolio_id == folio.portfolio_id)
        .order_by(E.entry_time, E.ledger_entry_id)
    )
    result = []
    for r in rows:
        info = listings.get(r.listing_id) if r.listing_id is not None else None
        result.append(
            {
                "ledger_entry_id": r.ledger_entry_id,
                "ledger_batch_id": r.ledger_batch_id,
                "entry_time": r.entry_time,
                "entry_type": r.entry_type.value,
                "ticker": info.ticker if info else None,
                "exchange": info.exchange if info else None,
                "units": r.units,
                "price": r.price,
                "fees_base": r.fees_base,
                "cash_amount_base": r.cash_amount_base,
                "cost_base": r.cost_base,
                "external_ref": r.external_ref,
                "corrects_entry_id": r.corrects_entry_id,
                "notes": r.notes,
            }
        )
    return result


def list_batches(session: Session, *, actor: User, portfolio: str | Portfolio) -> list[dict[str, Any]]:
    """Every batch of the portfolio, oldest first, with how many entries each holds."""
    folio = access.portfolio_for(session, actor, portfolio, "list ledger batches")
    counts = dict(
        session.execute(
            select(E.ledger_batch_id, func.count())
            .where(E.portfolio_id == folio.portfolio_id)
            .group_by(E.ledger_batch_id)
        ).all()
    )
    batches = session.execute(
        select(LedgerBatch)
        .where(col(LedgerBatch.portfolio_id) == folio.portfolio_id)
        .order_by(col(LedgerBatch.ledger_batch_id))
    ).scalars()
    return [
        {
            "ledger_batch_id": b.ledger_batch_id,
            "label": b.label,
            "batch_type": b.batch_type.value,
            "created_at": b.created_at,
            "entries": counts.get(b.ledger_batch_id, 0),
            "source_name": b.source_name,
            "recommendation_id": b.recommendation_id,
        }
        for b in batches
    ]
