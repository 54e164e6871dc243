"""The one access check for portfolio-scoped services: owner, member, or bootstrap admin."""

from __future__ import annotations

from sqlmodel import Session, col, select

from ..core.errors import AccessDenied, NotFound
from ..db.models import Portfolio, PortfolioMembership, User

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
        raise NotFound(f"no portfolio named {name!r}")
    return require_access(session, actor, portfolio, operation)


def accessible_portfolios(session: Session, actor: User) -> list[Portfolio]:
    portfolios = session.exec(select(Portfolio).order_by(col(Portfolio.portfolio_id))).all()
    return [p for p in portfolios if can_access(session, actor, p)]
