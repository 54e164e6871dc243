"""The one access check for portfolio-scoped services: owner, member, or bootstrap admin.

On PostgreSQL with a person's own login, row-level security (``db.row_security``) holds the
database to the same rule; these checks stay, and make a refusal a clear, audited error."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from ..core.errors import AccessDenied, NotFound
from ..db import row_security
from ..db.models import (
    HoldingSnapshot,
    LedgerEntry,
    Portfolio,
    PortfolioConstituent,
    PortfolioMembership,
    User,
)

# Importing the audit trail registers its denial hook with the unit of work, so whoever raises
# an AccessDenied here has it audited, whatever else the caller imported.
from . import audit  # noqa: F401


def can_access(session: Session, actor: User, portfolio: Portfolio) -> bool:
    if not actor.is_enabled:
        return False
    if actor.is_bootstrap_admin or portfolio.owner_user_id == actor.user_id:
        return True
    membership = session.get(PortfolioMembership, (portfolio.portfolio_id, actor.user_id))
    return membership is not None


def require_access(session: Session, actor: User, portfolio: Portfolio, operation: str) -> Portfolio:
    """Return the portfolio, or raise ``AccessDenied`` (audited by the unit of work)."""
    if not can_access(session, actor, portfolio):
        raise AccessDenied(
            f"{actor.email} may not {operation} on portfolio {portfolio.name!r}",
            actor_user_id=actor.user_id,
            entity_type="portfolio",
            entity_id=portfolio.portfolio_id,
            operation=operation,
        )
    return portfolio


def portfolio_for(session: Session, actor: User, name: str | Portfolio, operation: str) -> Portfolio:
    """Look a portfolio up by name (or take the one given) and check the actor may use it:
    the guard every portfolio-scoped service calls first."""
    if isinstance(name, Portfolio):
        return require_access(session, actor, name, operation)
    portfolio = session.exec(select(Portfolio).where(Portfolio.name == name)).first()
    if portfolio is None:
        hidden = row_security.hidden_portfolio_id(session.connection(), name)
        if hidden is not None:  # another person's portfolio, hidden by row security: still a denial
            raise AccessDenied(
                f"{actor.email} may not {operation} on portfolio {name!r}",
                actor_user_id=actor.user_id,
                entity_type="portfolio",
                entity_id=hidden,
                operation=operation,
            )
        raise NotFound(f"no portfolio named {name!r}")
    return require_access(session, actor, portfolio, operation)


def accessible_portfolios(session: Session, actor: User) -> list[Portfolio]:
    portfolios = session.exec(select(Portfolio).order_by(col(Portfolio.portfolio_id))).all()
    return [p for p in portfolios if can_access(session, actor, p)]


def require_admin(session: Session, actor: User, operation: str) -> None:
    """Only the bootstrap admin may ``operation`` (user management); refusals are audited."""
    if not (actor.is_enabled and actor.is_bootstrap_admin):
        raise AccessDenied(
            f"{actor.email} may not {operation}: only the administrator may",
            actor_user_id=actor.user_id,
            entity_type="user",
            entity_id=None,
            operation=operation,
        )


def require_every(session: Session, actor: User, portfolio_ids: Iterable[int], operation: str) -> None:
    """Shared data that changes what other portfolios hold or are worth (a corporate action, a
    price, an FX rate): the actor must be able to access every portfolio it touches. The refusal
    does not name the portfolios the actor may not see; it is audited."""
    ids = sorted(set(portfolio_ids))
    portfolios = (
        session.exec(select(Portfolio).where(col(Portfolio.portfolio_id).in_(ids))).all() if ids else []
    )
    # A portfolio row security hides from this login (not read at all) is one it may not access.
    seen = {p.portfolio_id for p in portfolios}
    hidden = [p.portfolio_id for p in portfolios if not can_access(session, actor, p)]
    hidden += [i for i in ids if i not in seen]
    if hidden or not actor.is_enabled:
        plural = "s" if len(hidden) != 1 else ""
        raise AccessDenied(
            f"{actor.email} may not {operation}: it changes {len(hidden)} portfolio{plural} "
            "you may not access (ask the administrator)",
            actor_user_id=actor.user_id,
            entity_type="portfolio",
            entity_id=hidden[0] if hidden else None,
            operation=operation,
        )


def portfolios_using(session: Session, listing_ids: Iterable[int]) -> list[int]:
    """Portfolios whose ledger, holdings or constituents name any of these listings, those
    row-level security hides from a person's own PostgreSQL login included (what ``require_every``
    must see: a plain query there finds only the login's own portfolios)."""
    ids = list(set(listing_ids))
    if not ids:
        return []
    behind_row_security = row_security.portfolios_using(session.connection(), ids)
    if behind_row_security is not None:
        return behind_row_security
    queries = (
        sa_select(col(LedgerEntry.portfolio_id)).where(col(LedgerEntry.listing_id).in_(ids)),
        sa_select(col(HoldingSnapshot.portfolio_id)).where(col(HoldingSnapshot.listing_id).in_(ids)),
        sa_select(col(PortfolioConstituent.portfolio_id)).where(
            col(PortfolioConstituent.listing_id).in_(ids)
        ),
    )
    found: set[int] = set()
    for query in queries:
        found |= set(session.execute(query.distinct()).scalars())
    return sorted(found)
