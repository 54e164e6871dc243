"""The observed SIPP of issue #18 (two holdings moved in from another provider, no prices, 12
ledger entries) and the price files that later arrive for it, built through the services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tradeassist.core.enums import EntryType
from tradeassist.core.isin import isin_check_digit
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import User
from tradeassist.providers.prices.base import PriceBar, PriceSeries
from tradeassist.services import identity, ledger, portfolios, prices, registry, strategy
from tradeassist.services.ledger import NewEntry

D = Decimal
E = EntryType


def admin_of(session: Session) -> User:
    """The bootstrap admin, who builds everything here."""
    admin = identity.bootstrap_admin(session)
    assert admin is not None
    return admin


def _isin(body: str) -> str:
    return body + str(isin_check_digit(body))


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def build_sipp(engine: Engine) -> None:
    """The observed SIPP: XDWL and XMUK moved in from another provider on 4 September 2022,
    then a year of contributions, trades, interest and a fee: 12 ledger entries, no prices."""
    with unit_of_work(engine) as s:
        actor = admin_of(s)
        for body, ticker in (("IE00BJ0KDQ9", "XDWL"), ("LU029209723", "XMUK")):
            registry.add_instrument(s, actor=actor, isin=_isin(body), instrument_type="ETF")
            registry.add_listing(
                s,
                actor=actor,
                isin=_isin(body),
                ticker=ticker,
                exchange="XLON",
                currency="GBP",
                quote_scale="GBX",
            )
        portfolios.add_portfolio(s, actor=actor, name="SIPP", broker="AJBell", tax_treatment="SIPP")

    def buy(day: date, kind: EntryType, units: int, pence: str, cash: str) -> NewEntry:
        return NewEntry(
            at(day), kind, D(cash), D("1.50"), ticker="XMUK", exchange="XLON", units=D(units), price=D(pence)
        )

    def moved_in(ticker: str, units: int, cost: str) -> NewEntry:
        day = at(date(2022, 9, 4))
        return NewEntry(
            day, E.TRANSFER, D(0), ticker=ticker, exchange="XLON", units=D(units), cost_base=D(cost)
        )

    entries = [
        NewEntry(at(date(2022, 9, 1)), E.CONTRIBUTION, D("2000")),
        moved_in("XDWL", 12, "780"),
        moved_in("XMUK", 30, "2100"),
        buy(date(2022, 10, 3), E.BUY, 3, "7000", "-211.50"),
        NewEntry(at(date(2022, 11, 1)), E.CONTRIBUTION, D("500")),
        buy(date(2022, 11, 2), E.BUY, 2, "7100", "-143.50"),
        NewEntry(at(date(2022, 12, 1)), E.INTEREST, D("1.23")),
        NewEntry(at(date(2023, 1, 3)), E.FEE, D("-3.50"), D("3.50")),
        NewEntry(at(date(2023, 2, 1)), E.CONTRIBUTION, D("500")),
        buy(date(2023, 3, 1), E.SELL, 5, "7300", "363.50"),
        NewEntry(at(date(2023, 4, 3)), E.INTEREST, D("2.10")),
        NewEntry(at(date(2023, 5, 2)), E.CONTRIBUTION, D("250")),
    ]  # fmt: skip
    with unit_of_work(engine) as s:
        result = ledger.post_entries(
            s,
            actor=admin_of(s),
            portfolio="SIPP",
            entries=entries,
            label="sipp",
            batch_type="MANUAL",
        )
    assert result.added == 12


def add_closes(engine: Engine, ticker: str, closes: dict[date, str], source: str = "csv") -> None:
    """Closes in pence, as a price file would give them."""
    with unit_of_work(engine) as s:
        bars = tuple(
            PriceBar(as_of=day, close=D(close), currency="GBP", quote_scale="GBX", source=source)
            for day, close in sorted(closes.items())
        )
        prices.ingest_series(
            s,
            actor=admin_of(s),
            listing=registry.get_listing(s, ticker, "XLON"),
            series=PriceSeries(source=source, source_name=f"{ticker}.csv", bars=bars, symbol=ticker),
        )


def weekdays(first: date, last: date, pence: str) -> dict[date, str]:
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return {day: pence for day in days if day.weekday() < 5}


HOUSEHOLD_POLICY = """{"sleeve_targets": {"CORE": "0.60", "UK": "0.40"},
 "drift_bands": {"absolute": "0.05", "relative": "0.25"},
 "min_trade_base": "100", "fee_per_trade_base": "1.50", "cash_buffer_base": "50",
 "whole_units": true}
"""
HOUSEHOLD_MANIFESTO = (
    "# Household\n\nOne plan for the pension and the ISA: CORE (world equity) at 60%, UK at 40%.\n"
)


def build_isa(engine: Engine) -> None:
    """An ISA beside the SIPP: £5,000 paid in, 20 VWRP bought at £100 (fee £1.50), a dividend of
    £12.34 in May 2023 and £0.56 of interest in June 2023 (both tax year 2023-24)."""
    with unit_of_work(engine) as s:
        actor = admin_of(s)
        registry.add_instrument(s, actor=actor, isin="IE00BK5BQT80", instrument_type="ETF", name="All-World")
        registry.add_listing(
            s, actor=actor, isin="IE00BK5BQT80", ticker="VWRP", exchange="XLON", currency="GBP",
            quote_scale="GBP",
        )  # fmt: skip
        portfolios.add_portfolio(s, actor=actor, name="ISA", broker="AJBell", tax_treatment="ISA")
    entries = [
        NewEntry(at(date(2022, 9, 1)), E.CONTRIBUTION, D("5000")),
        NewEntry(
            at(date(2022, 9, 2)), E.BUY, D("-2001.50"), D("1.50"), ticker="VWRP", exchange="XLON",
            units=D(20), price=D("100"),
        ),
        NewEntry(at(date(2023, 5, 10)), E.DIVIDEND, D("12.34"), ticker="VWRP", exchange="XLON"),
        NewEntry(at(date(2023, 6, 1)), E.INTEREST, D("0.56")),
    ]  # fmt: skip
    with unit_of_work(engine) as s:
        ledger.post_entries(
            s, actor=admin_of(s), portfolio="ISA", entries=entries, label="isa",
            batch_type="MANUAL",
        )  # fmt: skip


def add_gbp_closes(engine: Engine, ticker: str, closes: dict[date, str]) -> None:
    """Closes in pounds, for a GBP-quoted listing."""
    with unit_of_work(engine) as s:
        bars = tuple(
            PriceBar(as_of=day, close=D(close), currency="GBP", quote_scale="GBP", source="csv")
            for day, close in sorted(closes.items())
        )
        prices.ingest_series(
            s,
            actor=admin_of(s),
            listing=registry.get_listing(s, ticker, "XLON"),
            series=PriceSeries(source="csv", source_name=f"{ticker}.csv", bars=bars, symbol=ticker),
        )


def household_strategy(engine: Engine, portfolios_governed: tuple[str, ...] = ("SIPP", "ISA")) -> None:
    """One approved strategy over both accounts: VWRP and XDWL in CORE, XMUK in UK."""
    with unit_of_work(engine) as s:
        actor = admin_of(s)
        strategy.add_strategy(
            s, actor=actor, label="household-1", policy_text=HOUSEHOLD_POLICY, manifesto=HOUSEHOLD_MANIFESTO,
            portfolios=list(portfolios_governed),
        )  # fmt: skip
        strategy.approve_strategy(s, actor=actor, label="household-1")
        sleeves = {"SIPP": (("XDWL", "CORE"), ("XMUK", "UK")), "ISA": (("VWRP", "CORE"),)}
        for portfolio in portfolios_governed:
            for ticker, sleeve in sleeves[portfolio]:
                strategy.add_constituent(
                    s, actor=actor, portfolio=portfolio, ticker=ticker, exchange="XLON", sleeve=sleeve
                )
