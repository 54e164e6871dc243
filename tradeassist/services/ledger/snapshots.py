"""The snapshots (``holding_snapshots``, ``cash_snapshots``): lock, rewrite, and rebuild them
from the whole ledger."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session, col

from ...core.errors import LedgerError
from ...core.money import ZERO
from ...core.timeutil import ensure_utc, utcnow
from ...db.models import CashSnapshot, HoldingSnapshot, Portfolio, User
from ...engine import book as bk
from .. import access, audit
from .model import HOLDINGS, RebuildResult
from .reads import load_actions, load_listings, load_timeline, snapshot_book


def lock_cash(session: Session, portfolio_id: int) -> CashSnapshot:
    """The portfolio's cash row, locked on PostgreSQL: posts to one portfolio go one at a time
    (SQLite's BEGIN IMMEDIATE serialises writers already). Created if somehow missing."""
    row = session.execute(
        select(CashSnapshot).where(col(CashSnapshot.portfolio_id) == portfolio_id).with_for_update()
    ).scalar()
    if row is None:
        row = CashSnapshot(portfolio_id=portfolio_id, currency="GBP", cash_balance=ZERO)
        session.add(row)
        session.flush()
    return row


def write_snapshots(session: Session, portfolio_id: int, book: bk.Book, now: datetime) -> None:
    """Replace the portfolio's holding snapshots with ``book``'s and set its cash."""
    session.execute(delete(HoldingSnapshot).where(col(HoldingSnapshot.portfolio_id) == portfolio_id))
    rows = [
        {
            "portfolio_id": portfolio_id,
            "listing_id": listing_id,
            "units": holding.units,
            "avg_cost_base": holding.avg_cost,
            "cost_base": holding.cost,
            "updated_at": now,
        }
        for listing_id, holding in sorted(book.holdings.items())
    ]
    if rows:
        session.execute(insert(HOLDINGS), rows)
    session.execute(
        update(CashSnapshot)
        .where(col(CashSnapshot.portfolio_id) == portfolio_id)
        .values(cash_balance=book.cash, currency="GBP", updated_at=now)
    )
    session.expire_all()


def replay_portfolio(session: Session, portfolio_id: int) -> tuple[bk.Replay, int]:
    """The portfolio's book from its whole ledger (nothing written)."""
    listings = load_listings(session)
    quotes = {k: v.quote for k, v in listings.items()}
    timeline = load_timeline(session, portfolio_id)
    actions = load_actions(session, listings)
    return bk.replay(timeline, quotes=quotes, actions=actions), len(timeline)


def replay_portfolios(session: Session, portfolio_ids: Iterable[int], *, now: datetime | None = None) -> None:
    """Replay and rewrite the snapshots of several portfolios (after a corporate action),
    refusing if any ledger no longer stands."""
    now = ensure_utc(now) if now is not None else utcnow()
    for pid in portfolio_ids:
        lock_cash(session, pid)
        outcome, _ = replay_portfolio(session, pid)
        if outcome.issues:
            folio = session.get(Portfolio, pid)
            name = folio.name if folio is not None else None
            issue = outcome.issues[0]
            raise LedgerError(f"portfolio {name!r}, ledger entry {issue.key}: {issue.reason}")
        write_snapshots(session, pid, outcome.book, now)


def rebuild(
    session: Session, *, actor: User, portfolio: str | Portfolio, now: datetime | None = None
) -> RebuildResult:
    """Recompute the portfolio's snapshots from its ledger and the corporate actions."""
    folio = access.portfolio_for(session, actor, portfolio, "rebuild snapshots")
    pid = folio.portfolio_id
    assert pid is not None
    now = ensure_utc(now) if now is not None else utcnow()
    lock_cash(session, pid)
    before = snapshot_book(session, pid)
    outcome, count = replay_portfolio(session, pid)
    if outcome.issues:
        issue = outcome.issues[0]
        raise LedgerError(f"the ledger of {folio.name!r} does not replay: entry {issue.key}: {issue.reason}")
    changed = (
        before is None
        or before.cash != outcome.book.cash
        or dict(before.holdings) != dict(outcome.book.holdings)
    )
    write_snapshots(session, pid, outcome.book, now)
    audit.record(
        session,
        actor=actor,
        action="SNAPSHOTS_REBUILT",
        entity_type="portfolio",
        entity_id=pid,
        details={
            "portfolio": folio.name,
            "entries": count,
            "changed": changed,
            "cash_balance": outcome.book.cash,
        },
    )
    return RebuildResult(folio.name, count, len(outcome.book.holdings), outcome.book.cash, changed)
