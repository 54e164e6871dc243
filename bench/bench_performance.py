"""Benchmark: daily value series + TWR + XIRR over 10 years x 50 listings (target <= 0.5 s).

Timings are the best of 5 runs, with the first (cold) run of all three shown too.
Deterministic (seeded): ~2,600 business days of Decimal closes, monthly contributions, a few
hundred trades, quarterly fees and interest, one in-specie transfer. Run: python bench/bench_performance.py
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from tradeassist.core.enums import EntryType as E
from tradeassist.engine.performance import (
    max_drawdown,
    money_weighted_return,
    sleeve_contributions,
    time_weighted_return,
    twr_index,
)
from tradeassist.engine.value_series import LedgerEvent, value_series

SEED = 20240605
N_LISTINGS = 50
START, END = date(2015, 1, 1), date(2024, 12, 31)
TARGET_S = 0.5


def make_prices(rng: np.random.Generator) -> pd.DataFrame:
    days = pd.bdate_range(START, END)
    # One market factor plus noise of each listing, so the portfolio has realistic drawdowns.
    market = rng.normal(0.0003, 0.009, (len(days), 1))
    beta = rng.uniform(0.2, 1.2, (1, N_LISTINGS))
    daily = market * beta + rng.normal(0, 0.006, (len(days), N_LISTINGS))
    walks = 100 * np.exp(np.cumsum(daily, axis=0))
    cells = np.array([[Decimal(f"{x:.4f}") for x in row] for row in walks], dtype=object)
    cells[rng.random(cells.shape) < 0.01] = None  # feed gaps, carried forward
    return pd.DataFrame(cells, index=days, columns=[f"L{i:02d}" for i in range(N_LISTINGS)])


def make_ledger(rng: np.random.Generator, prices: pd.DataFrame) -> list[LedgerEvent]:
    events: list[LedgerEvent] = []
    held: dict[str, Decimal] = {}
    closes = prices.ffill().bfill()
    month = START
    while month <= END:
        day = closes.index[closes.index.searchsorted(pd.Timestamp(month))]
        events.append(LedgerEvent(day.date(), E.CONTRIBUTION, None, Decimal(0), Decimal("1000")))
        for listing in rng.choice(prices.columns, size=3, replace=False):  # ~360 buys
            units = Decimal(int(rng.integers(1, 4)))
            events.append(LedgerEvent(day.date(), E.BUY, listing, units, -units * closes.at[day, listing]))
            held[listing] = held.get(listing, Decimal(0)) + units
        if month.month % 3 == 0:
            events.append(LedgerEvent(day.date(), E.FEE, None, Decimal(0), Decimal("-7.50")))
            events.append(LedgerEvent(day.date(), E.INTEREST, None, Decimal(0), Decimal("2.10")))
            listing = sorted(held)[int(rng.integers(len(held)))]  # ~40 sells
            if held[listing] > 1:
                events.append(LedgerEvent(day.date(), E.SELL, listing, Decimal(-1), closes.at[day, listing]))
                held[listing] -= 1
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    events.append(LedgerEvent(date(2019, 6, 3), E.TRANSFER, "L07", Decimal(40), Decimal(0)))
    events.append(LedgerEvent(date(2022, 4, 5), E.WITHDRAWAL, None, Decimal(0), Decimal("-5000")))
    return events


def timed(fn, *args, repeat: int = 5, **kwargs):
    """The result and the best of ``repeat`` wall-clock timings (the first run included)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return result, best


def main() -> None:
    rng = np.random.default_rng(SEED)
    prices = make_prices(rng)
    events = make_ledger(rng, prices)
    trades = sum(e.entry_type in (E.BUY, E.SELL) for e in events)
    print(
        f"input: {len(prices)} business days x {N_LISTINGS} listings, {len(events)} events ({trades} trades)"
    )

    t0 = time.perf_counter()
    values = value_series(events, prices)
    twr, mwr = time_weighted_return(values), money_weighted_return(values)
    cold = time.perf_counter() - t0
    values, t_values = timed(value_series, events, prices)
    twr, t_twr = timed(time_weighted_return, values)
    mwr, t_mwr = timed(money_weighted_return, values)
    total = t_values + t_twr + t_mwr
    print(f"value series  {t_values * 1000:8.1f} ms  ({len(values)} calendar days)")
    print(f"TWR           {t_twr * 1000:8.1f} ms  total {twr.total:.2%}, annualised {twr.annualised:.2%}")
    print(f"XIRR (MWR)    {t_mwr * 1000:8.1f} ms  {mwr:.2%} a year")
    verdict = "ok" if max(total, cold) <= TARGET_S else "MISSED"
    print(f"total         {total * 1000:8.1f} ms  best of 5; first run {cold * 1000:.1f} ms")
    print(f"target        {TARGET_S * 1000:8.0f} ms  {verdict}")

    dd, t_dd = timed(lambda: max_drawdown(twr_index(values)))
    sleeves = {c: ("equity" if i % 3 else "bonds") for i, c in enumerate(prices.columns)}
    rows, t_sl = timed(sleeve_contributions, events, prices, sleeves, start=START, end=END)
    span = f"{dd.peak} -> {dd.trough}, recovered {dd.recovery}"
    print(f"extra: drawdown {t_dd * 1000:.1f} ms ({dd.depth:.2%}, {span})")
    print(
        f"extra: sleeves  {t_sl * 1000:.1f} ms (" + ", ".join(f"{r.sleeve} {r.gain:,.2f}" for r in rows) + ")"
    )


if __name__ == "__main__":
    main()
