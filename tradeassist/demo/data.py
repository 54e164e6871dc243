"""The demo's data, generated deterministically (integer arithmetic: no floats anywhere).

Four listings in three sleeves: Vanguard FTSE All-World (GBP) and iShares Core FTSE 100
(pence) in CORE, VanEck Semiconductor (pence) in SEMIS, and the Energy Select Sector SPDR
in US dollars in ENERGY; three years of business-day closes ending on ``end``; EUR-based FX
reference rates for GBP and USD; a £1,000 contribution each month, invested the same day
in the most underweight sleeve.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from ..core.money import round_cash
from ..core.timeutil import LONDON

SEED = 20261125
YEARS = 3
MONTHLY_CONTRIBUTION = Decimal("1000.00")
FEE = Decimal("1.50")
BUFFER = Decimal("50")

POLICY = """{"sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
 "drift_bands": {"absolute": "0.05", "relative": "0.25"},
 "min_trade_base": "100", "fee_per_trade_base": "1.50", "cash_buffer_base": "50",
 "whole_units": true,
 "allow_sells": {"MONTHLY_ALLOC": false, "QUARTERLY_REBAL": true}}
"""

MANIFESTO = """# Demo SIPP manifesto

A long-term pension portfolio. CORE (global and UK equity) is the anchor at 70%; SEMIS
(semiconductors) and ENERGY are 15% satellites that are trimmed back when they run.

- max single trade: 5000
- avoid: TSLA
"""


@dataclass(frozen=True)
class DemoListing:
    isin: str
    name: str
    ticker: str
    exchange: str
    currency: str
    quote_scale: str
    sleeve: str
    start_ticks: int  # first close in hundredths of the quote unit
    drift: int  # daily drift, in hundredths of a percent


LISTINGS = (
    DemoListing(
        isin="IE00BK5BQT80",
        name="Vanguard FTSE All-World UCITS ETF Acc",
        ticker="VWRP",
        exchange="XLON",
        currency="GBP",
        quote_scale="GBP",
        sleeve="CORE",
        start_ticks=9_512,
        drift=4,
    ),
    DemoListing(
        isin="IE0005042456",
        name="iShares Core FTSE 100 UCITS ETF Dist",
        ticker="ISF",
        exchange="XLON",
        currency="GBP",
        quote_scale="GBX",
        sleeve="CORE",
        start_ticks=73_840,
        drift=2,
    ),
    DemoListing(
        isin="IE00BMC38736",
        name="VanEck Semiconductor UCITS ETF",
        ticker="SMGB",
        exchange="XLON",
        currency="GBP",
        quote_scale="GBX",
        sleeve="SEMIS",
        start_ticks=261_500,
        drift=18,
    ),
    DemoListing(
        isin="US81369Y5069",
        name="Energy Select Sector SPDR Fund",
        ticker="XLE",
        exchange="ARCX",
        currency="USD",
        quote_scale="USD",
        sleeve="ENERGY",
        start_ticks=8_930,
        drift=1,
    ),
)


def business_days(end: date, years: int = YEARS) -> list[date]:
    start = end.replace(year=end.year - years)
    days, day = [], start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _walk(rng: random.Random, start: int, drift: int, days: int) -> list[int]:
    """Integer random walk in ticks: each day moves by -1.4% .. +1.4% plus a small drift."""
    ticks, out = start, []
    for _ in range(days):
        step = rng.randint(-140, 140) + drift  # in hundredths of a percent
        ticks = max(1, ticks * (10_000 + step) // 10_000)
        out.append(ticks)
    return out


def closes(end: date) -> dict[str, list[tuple[date, Decimal]]]:
    """Close per business day per ticker, in the listing's quote unit (pence for GBX)."""
    days = business_days(end)
    rng = random.Random(SEED)
    series = {}
    for listing in LISTINGS:
        ticks = _walk(rng, listing.start_ticks, listing.drift, len(days))
        series[listing.ticker] = [(d, Decimal(t).scaleb(-2)) for d, t in zip(days, ticks, strict=True)]
    return series


def eur_rates(end: date) -> list[tuple[date, str, Decimal]]:
    """EUR-based reference rates (units per EUR), as the ECB publishes them."""
    days = business_days(end)
    rng = random.Random(SEED + 1)
    gbp = _walk(rng, 86_000, 0, len(days))  # EURGBP in 1e-5
    usd = _walk(rng, 108_000, 0, len(days))  # EURUSD in 1e-5
    out = []
    for d, g, u in zip(days, gbp, usd, strict=True):
        out.append((d, "GBP", Decimal(g).scaleb(-5)))
        out.append((d, "USD", Decimal(u).scaleb(-5)))
    return out


def at_london(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=LONDON)


def first_business_days(days: list[date]) -> Iterator[date]:
    seen = set()
    for d in days:
        if (d.year, d.month) not in seen:
            seen.add((d.year, d.month))
            yield d


@dataclass(frozen=True)
class Trade:
    day: date
    ticker: str
    units: int
    price: Decimal  # quote unit
    consideration: Decimal  # GBP, to the penny
    original_amount: Decimal | None  # USD for the dollar listing


def gbp_per_unit(listing: DemoListing, price: Decimal, gbpusd: Decimal) -> Decimal:
    if listing.quote_scale == "GBX":
        return price.scaleb(-2)
    if listing.currency == "USD":
        return price / gbpusd
    return price


def monthly_plan(end: date) -> list[tuple[date, list[Trade]]]:
    """Each month: the contribution, then whole units of the most underweight sleeve's
    cheapest-to-fill listing, keeping the buffer. Deterministic."""
    series = closes(end)
    by_day = {t: dict(s) for t, s in series.items()}
    rates: dict[date, dict[str, Decimal]] = {}
    for d, ccy, rate in eur_rates(end):
        rates.setdefault(d, {})[ccy] = rate
    targets = {"CORE": Decimal("0.70"), "SEMIS": Decimal("0.15"), "ENERGY": Decimal("0.15")}
    units = {listing.ticker: 0 for listing in LISTINGS}
    cash = Decimal("0")
    plan = []
    for day in list(first_business_days(business_days(end)))[:-1]:  # the last month is the demo's
        cash += MONTHLY_CONTRIBUTION
        gbpusd = rates[day]["USD"] / rates[day]["GBP"]
        unit_gbp = {
            listing.ticker: gbp_per_unit(listing, by_day[listing.ticker][day], gbpusd) for listing in LISTINGS
        }
        values = {s: Decimal(0) for s in targets}
        for listing in LISTINGS:
            values[listing.sleeve] += units[listing.ticker] * unit_gbp[listing.ticker]
        total = sum(values.values()) + cash
        sleeve = max(targets, key=lambda s: targets[s] - values[s] / total)
        choices = [listing for listing in LISTINGS if listing.sleeve == sleeve]
        listing = choices[day.month % len(choices)]
        budget = cash - FEE - BUFFER
        n = int(budget // unit_gbp[listing.ticker]) if budget > 0 else 0
        trades = []
        if n > 0:
            price = by_day[listing.ticker][day]
            consideration = round_cash(n * unit_gbp[listing.ticker])
            original = n * price if listing.currency == "USD" else None
            trades.append(Trade(day, listing.ticker, n, price, consideration, original))
            cash -= consideration + FEE
            units[listing.ticker] += n
        plan.append((day, trades))
    return plan
