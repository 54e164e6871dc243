"""A household of one owner, built through the services: Ann's SIPP (which can hold only an
equity fund), her ISA (equity and a credit fund) and, on request, her general account (GIA),
one strategy over them with a 10% CREDIT target, and prices to 28 June 2024 (tax year 2024-25).

The SIPP has no CREDIT constituent: on its own it cannot hold the 10% CREDIT target; the ISA
beside it can. ``AS_OF`` is the end of 28 June 2024 in London.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tradeassist.core.enums import EntryType
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import User
from tradeassist.providers.prices.base import PriceBar, PriceSeries
from tradeassist.services import identity, ledger, portfolios, prices, registry, strategy
from tradeassist.services.ledger import NewEntry

D = Decimal
E = EntryType
OWNER = "ann@example.com"
OTHER = "bob@example.com"
PASSWORD = "household-password-1"
LABEL = "household-1"
SIPP, ISA, GIA = "AJ Bell SIPP", "AJ Bell ISA", "AJ Bell GIA"
DAY = date(2024, 6, 28)
AS_OF = end_of_london_day(DAY)
LISTINGS = {  # ticker -> (ISIN, sleeve, price in pounds on every weekday of June 2024)
    "EQTY": ("IE00BK5BQT80", "EQUITY", "100"),
    "CRED": ("IE00BZ163K21", "CREDIT", "50"),
}
POLICY = {
    "sleeve_targets": {"EQUITY": "0.90", "CREDIT": "0.10"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}
MANIFESTO = (
    "# Ann's household\n\nOne plan for the pension, the ISA and the general account: EQUITY (world "
    "equity) at 90%, CREDIT (corporate bonds) at 10%.\n"
)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def user(session: Session, email: str) -> User:
    return identity.get_user(session, email)


def add_people(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        for email in (OWNER, OTHER):
            identity.add_user(s, actor=admin, email=email, password=PASSWORD)


def add_listings(engine: Engine, extra: dict[str, tuple[str, str, str]] | None = None) -> None:
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        assert admin is not None
        for ticker, (isin, _sleeve, _price) in {**LISTINGS, **(extra or {})}.items():
            registry.add_instrument(s, actor=admin, isin=isin, instrument_type="ETF")
            registry.add_listing(
                s, actor=admin, isin=isin, ticker=ticker, exchange="XLON", currency="GBP", quote_scale="GBP"
            )


def add_prices(engine: Engine, closes: dict[str, str] | None = None) -> None:
    """Every weekday of June 2024 at the listing's price (``closes``: other prices by ticker)."""
    days = [date(2024, 6, 1) + timedelta(days=i) for i in range(30)]
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        for ticker, (_isin, _sleeve, price) in LISTINGS.items():
            close = D((closes or {}).get(ticker, price))
            bars = tuple(
                PriceBar(as_of=day, close=close, currency="GBP", quote_scale="GBP", source="csv")
                for day in days
                if day.weekday() < 5
            )
            prices.ingest_series(
                s,
                actor=admin,
                listing=registry.get_listing(s, ticker, "XLON"),
                series=PriceSeries(source="csv", source_name=f"{ticker}.csv", bars=bars, symbol=ticker),
            )


def add_account(
    engine: Engine,
    name: str,
    treatment: str,
    holds: tuple[str, ...],
    entries: list[NewEntry],
    owner: str = OWNER,
) -> None:
    """A portfolio of ``owner`` with ``entries`` posted; ``holds``: the listings its
    constituents will map (``map_constituents``, once a strategy has named the sleeves)."""
    with unit_of_work(engine) as s:
        portfolios.add_portfolio(s, actor=user(s, owner), name=name, broker="AJBell", tax_treatment=treatment)
    if entries:
        with unit_of_work(engine) as s:
            ledger.post_entries(
                s, actor=user(s, owner), portfolio=name, entries=entries, label=name, batch_type="MANUAL"
            )
    HOLDS[name] = (owner, holds)


HOLDS: dict[str, tuple[str, tuple[str, ...]]] = {}


def map_constituents(engine: Engine, names: tuple[str, ...]) -> None:
    """Each account's listings mapped to their sleeves (by its owner)."""
    with unit_of_work(engine) as s:
        for name in names:
            owner, holds = HOLDS[name]
            for ticker in holds:
                strategy.add_constituent(
                    s,
                    actor=user(s, owner),
                    portfolio=name,
                    ticker=ticker,
                    exchange="XLON",
                    sleeve=LISTINGS[ticker][1],
                )


def contribution(amount: str, day: date = date(2024, 6, 3)) -> NewEntry:
    return NewEntry(at(day), E.CONTRIBUTION, D(amount))


def trade(day: date, kind: EntryType, ticker: str, units: int, price: str, fees: str = "0") -> NewEntry:
    """A BUY or SELL at ``price`` pounds a unit (cash out for a buy, in for a sale, fees apart)."""
    consideration = D(units) * D(price)
    cash = -(consideration + D(fees)) if kind is E.BUY else consideration - D(fees)
    return NewEntry(
        at(day), kind, cash, D(fees), ticker=ticker, exchange="XLON", units=D(units), price=D(price)
    )


def add_strategy(
    engine: Engine,
    names: tuple[str, ...],
    policy: dict[str, object] | None = None,
    manifesto: str = MANIFESTO,
) -> None:
    """The household's strategy over ``names``, approved (by the admin, who may use them all)."""
    with unit_of_work(engine) as s:
        admin = identity.bootstrap_admin(s)
        assert admin is not None
        strategy.add_strategy(
            s,
            actor=admin,
            label=LABEL,
            policy_text=json.dumps(policy or POLICY),
            manifesto=manifesto,
            portfolios=list(names),
        )
        strategy.approve_strategy(s, actor=admin, label=LABEL)
    map_constituents(engine, names)


def build_credit_household(engine: Engine, *, register: bool = True) -> None:
    """The observation: Ann's SIPP can hold only EQTY, her ISA EQTY and CRED; £10,000 paid into
    each (the SIPP also holds 50 EQTY bought at £100); one strategy with 10% CREDIT
    (``register``: else no strategy yet, for a test to add its own)."""
    add_people(engine)
    add_listings(engine)
    add_prices(engine)
    add_account(
        engine,
        SIPP,
        "SIPP",
        ("EQTY",),
        [contribution("10000", date(2024, 5, 1)), trade(date(2024, 5, 2), E.BUY, "EQTY", 50, "100")],
    )
    add_account(engine, ISA, "ISA", ("EQTY", "CRED"), [contribution("10000")])
    if register:
        add_strategy(engine, (SIPP, ISA))
