"""Portfolios: create, list, share."""

from __future__ import annotations

from sqlmodel import Session, select

from ..core.enums import TaxTreatment
from ..core.errors import AlreadyExists, ValidationError
from ..core.money import ZERO
from ..db.models import CashSnapshot, Portfolio, PortfolioMembership, User
from . import audit
from .access import accessible_portfolios, portfolio_for
from .identity import get_user

V1_BASE_CURRENCY = "GBP"


def add_portfolio(
    session: Session,
    *,
    actor: User,
    name: str,
    broker: str,
    tax_treatment: TaxTreatment | str,
    base_currency: str = V1_BASE_CURRENCY,
) -> Portfolio:
    name = name.strip()
    if not name:
        raise ValidationError("portfolio name: empty")
    if base_currency.upper() != V1_BASE_CURRENCY:
        raise ValidationError(f"base currency {base_currency!r}: V1 supports GBP only")
    try:
        treatment = TaxTreatment(str(tax_treatment).upper())
    except ValueError:
        raise ValidationError(f"tax treatment {tax_treatment!r}: expected SIPP, ISA or GIA") from None
    if session.exec(select(Portfolio).where(Portfolio.name == name)).first() is not None:
        raise AlreadyExists(f"portfolio {name!r} exists already")
    assert actor.user_id is not None  # a stored user has its id
    portfolio = Portfolio(
        owner_user_id=actor.user_id,
        name=name,
        broker=broker.strip(),
        tax_treatment=treatment,
        base_currency=V1_BASE_CURRENCY,
    )
    session.add(portfolio)
    session.flush()
    assert portfolio.portfolio_id is not None  # assigned by the flush
    # Exactly one cash row per portfolio, from the start.
    session.add(CashSnapshot(portfolio_id=portfolio.portfolio_id, currency="GBP", cash_balance=ZERO))
    audit.record(
        session,
        actor=actor,
        action="PORTFOLIO_CREATED",
        entity_type="portfolio",
        entity_id=portfolio.portfolio_id,
        details={"name": name, "broker": portfolio.broker, "tax_treatment": treatment.value},
    )
    return portfolio


def list_portfolios(session: Session, *, actor: User) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for p in accessible_portfolios(session, actor):
        owner = session.get(User, p.owner_user_id)
        rows.append(
            {
                "portfolio_id": p.portfolio_id,
                "name": p.name,
                "broker": p.broker,
                "tax_treatment": p.tax_treatment.value,
                "base_currency": p.base_currency,
                "owner": owner.email if owner else None,
            }
        )
    return rows


def share_portfolio(session: Session, *, actor: User, name: str, email: str) -> PortfolioMembership:
    portfolio = portfolio_for(session, actor, name, "share")
    user = get_user(session, email)
    if session.get(PortfolioMembership, (portfolio.portfolio_id, user.user_id)) is not None:
        raise AlreadyExists(f"{user.email} is already a member of {portfolio.name!r}")
    assert portfolio.portfolio_id is not None and user.user_id is not None  # stored rows have ids
    membership = PortfolioMembership(portfolio_id=portfolio.portfolio_id, user_id=user.user_id)
    session.add(membership)
    audit.record(
        session,
        actor=actor,
        action="PORTFOLIO_SHARED",
        entity_type="portfolio",
        entity_id=portfolio.portfolio_id,
        details={"user": user.email},
    )
    session.flush()
    return membership
