"""The demo: a SIPP at AJ Bell with GBP- and GBX-quoted ETFs and a US-dollar listing, three
years of prices and FX, monthly contributions invested as they came, an approved strategy,
and a task of every kind. Loaded through the same services a user would call, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from tqdm import tqdm

from ..core.enums import BatchType, EntryType
from ..core.timeutil import london_date, utcnow
from ..db.engine import unit_of_work
from ..db.models import CashSnapshot, HoldingSnapshot, Portfolio, User
from ..providers.fx.ecb import FxRate as ProvidedRate
from ..providers.prices.base import PriceBar, PriceSeries
from ..services import fx, identity, ledger, portfolios, prices, registry, strategy, tasks
from . import data

DEMO_PORTFOLIO = "Demo SIPP"
DEMO_STRATEGY = "demo-1.0"

# One task of every kind (times are Europe/London).
DEMO_TASKS = (
    ("demo prices", "PRICE_REFRESH", "CRON", "30 18 * * 1-5", None),
    ("demo weekly review", "WEEKLY_REVIEW", "CRON", "0 7 * * 1", None),
    (
        "demo monthly allocation",
        "MONTHLY_ALLOC",
        "RRULE",
        "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8;BYMINUTE=0",
        {"contribution": "1000"},
    ),
    (
        "demo quarterly rebalance",
        "QUARTERLY_REBAL",
        "RRULE",
        "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0",
        None,
    ),
    ("demo alerts", "ALERT_ONLY", "CRON", "0 8 * * *", None),
)


@dataclass(frozen=True)
class DemoSummary:
    portfolio: str
    broker: str
    tax_treatment: str
    cash_balance: Decimal
    holdings: tuple[tuple[str, Decimal], ...]
    created: bool


def _progress(items: list[str], what: str) -> Iterator[str]:
    return iter(tqdm(items, desc=what, unit="step", leave=False, disable=None))


def load_demo(engine: Engine, *, end: date | None = None) -> bool:
    """Load the demo data once (one transaction); returns False when it is there already."""
    end = end or london_date(utcnow()) - timedelta(days=1)
    with unit_of_work(engine) as session:
        if session.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).first() is not None:
            return False
        admin = identity.bootstrap_admin(session)
        assert admin is not None
        for step in _progress(["registry", "strategy", "prices", "ledger", "tasks"], "demo"):
            {
                "registry": _registry,
                "strategy": _strategy,
                "prices": _prices,
                "ledger": _ledger,
                "tasks": _tasks,
            }[step](session, admin, end)
    return True


def _registry(session: Session, admin: User, end: date) -> None:
    portfolios.add_portfolio(session, actor=admin, name=DEMO_PORTFOLIO, broker="AJBell", tax_treatment="SIPP")
    for listing in data.LISTINGS:
        registry.add_instrument(
            session, actor=admin, isin=listing.isin, instrument_type="ETF", name=listing.name
        )
        registry.add_listing(
            session,
            actor=admin,
            isin=listing.isin,
            ticker=listing.ticker,
            exchange=listing.exchange,
            currency=listing.currency,
            quote_scale=listing.quote_scale,
            is_primary=True,
        )


def _strategy(session: Session, admin: User, end: date) -> None:
    strategy.add_strategy(
        session,
        actor=admin,
        label=DEMO_STRATEGY,
        policy_text=data.POLICY,
        manifesto=data.MANIFESTO,
        portfolios=[DEMO_PORTFOLIO],
    )
    strategy.approve_strategy(session, actor=admin, label=DEMO_STRATEGY)
    for listing in data.LISTINGS:
        strategy.add_constituent(
            session,
            actor=admin,
            portfolio=DEMO_PORTFOLIO,
            ticker=listing.ticker,
            exchange=listing.exchange,
            sleeve=listing.sleeve,
        )


def _prices(session: Session, admin: User, end: date) -> None:
    rates = [ProvidedRate(d, "EUR", ccy, rate, "demo") for d, ccy, rate in data.eur_rates(end)]
    fx.store_rates(session, actor=admin, rates=rates, source="demo", file="demo data", currencies={"USD"})
    for listing in data.LISTINGS:
        bars = tuple(
            PriceBar(as_of=d, close=close, currency=None, quote_scale=None, source="demo")
            for d, close in data.closes(end)[listing.ticker]
        )
        series = PriceSeries(source="demo", source_name="demo data", bars=bars, symbol=listing.ticker)
        prices.ingest_series(
            session,
            actor=admin,
            listing=registry.get_listing(session, listing.ticker, listing.exchange),
            series=series,
        )


def _ledger(session: Session, admin: User, end: date) -> None:
    entries: list[ledger.NewEntry] = []
    by_ticker = {listing.ticker: listing for listing in data.LISTINGS}
    for day, trades in data.monthly_plan(end):
        entries.append(
            ledger.NewEntry(
                entry_time=data.at_london(day, 9),
                entry_type=EntryType.CONTRIBUTION,
                cash_amount_base=data.MONTHLY_CONTRIBUTION,
                notes="monthly contribution",
                external_ref=f"demo-contrib-{day.isoformat()}",
            )
        )
        for trade in trades:
            listing = by_ticker[trade.ticker]
            entries.append(
                ledger.NewEntry(
                    entry_time=data.at_london(day, 15),
                    entry_type=EntryType.BUY,
                    cash_amount_base=-(trade.consideration + data.FEE),
                    fees_base=data.FEE,
                    ticker=listing.ticker,
                    exchange=listing.exchange,
                    units=Decimal(trade.units),
                    price=trade.price,
                    original_currency="USD" if trade.original_amount is not None else None,
                    original_amount=trade.original_amount,
                    external_ref=f"demo-buy-{day.isoformat()}-{listing.ticker}",
                )
            )
    ledger.post_entries(
        session,
        actor=admin,
        portfolio=DEMO_PORTFOLIO,
        entries=entries,
        label="Demo: three years of contributions",
        batch_type=BatchType.IMPORT,
        source_name="demo data",
    )


def _tasks(session: Session, admin: User, end: date) -> None:
    for name, kind, schedule_type, expr, config in DEMO_TASKS:
        tasks.add_task(
            session,
            actor=admin,
            name=name,
            kind=kind,
            schedule_type=schedule_type,
            schedule_expr=expr,
            portfolio=DEMO_PORTFOLIO,
            config=config,
        )


def demo_task_names() -> list[str]:
    return [name for name, *_ in DEMO_TASKS]


def summarize(engine: Engine, created: bool = False) -> DemoSummary:
    with unit_of_work(engine, readonly=True) as session:
        p = session.exec(select(Portfolio).where(Portfolio.name == DEMO_PORTFOLIO)).one()
        cash = session.get(CashSnapshot, p.portfolio_id)
        rows = session.exec(
            select(HoldingSnapshot).where(HoldingSnapshot.portfolio_id == p.portfolio_id)
        ).all()
        listings = ledger.load_listings(session)
        return DemoSummary(
            portfolio=p.name,
            broker=p.broker,
            tax_treatment=p.tax_treatment.value,
            cash_balance=cash.cash_balance if cash else Decimal(0),
            holdings=tuple(sorted((listings[h.listing_id].ticker, h.units) for h in rows)),
            created=created,
        )
