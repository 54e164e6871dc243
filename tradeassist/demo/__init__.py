"""The demo: a SIPP at AJ Bell, loaded through the same services a user would call."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from ..db.engine import unit_of_work
from ..db.models import CashSnapshot, HoldingSnapshot, Portfolio
from ..services import identity, portfolios

DEMO_PORTFOLIO = "Demo SIPP"


@dataclass(frozen=True)
class DemoSummary:
    portfolio: str
    broker: str
    tax_treatment: str
    cash_balance: str
    holdings: int
    created: bool


def load_demo(engine: Engine) -> bool:
    """Load the demo data once; returns False when it is there already."""
    with unit_of_work(engine) as session:
        if session.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).first() is not None:
            return False
        admin = identity.bootstrap_admin(session)
        portfolios.add_portfolio(
            session, actor=admin, name=DEMO_PORTFOLIO, broker="AJBell", tax_treatment="SIPP"
        )
    return True


def summarize(engine: Engine, created: bool = False) -> DemoSummary:
    with unit_of_work(engine, readonly=True) as session:
        p = session.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).one()
        cash = session.get(CashSnapshot, p.portfolio_id)
        holdings = session.exec(select(HoldingSnapshot).where(HoldingSnapshot.portfolio_id == p.portfolio_id))
        return DemoSummary(
            portfolio=p.name,
            broker=p.broker,
            tax_treatment=p.tax_treatment.value,
            cash_balance=str(cash.cash_balance if cash else "0"),
            holdings=len(holdings.all()),
            created=created,
        )
