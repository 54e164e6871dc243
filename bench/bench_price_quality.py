"""Benchmark: check 1,000,000 price points for scale errors; prints points/s.

Run: ``.venv/bin/python bench/bench_price_quality.py [N]``. Two series of N daily points on a
pence listing: a clean one, and one where the feed reports pounds in 200 stretches of 1–3 days
and one of 139 days (the slow, exact path runs on those). Building the points is timed apart:
it is the caller's cost, not the check's.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

from tradeassist.engine.normalize import Listing, PricePoint
from tradeassist.engine.price_quality import check_points

LISTING = Listing("AZN", "LSE", "GBP", "GBX")


def build(n: int, *, switches: bool, seed: int = 1) -> tuple[PricePoint, ...]:
    rng = random.Random(seed)
    wrong: set[int] = set()
    if switches:
        for _ in range(200):
            start = rng.randrange(n - 3)
            wrong.update(range(start, start + rng.randint(1, 3)))
        wrong.update(range(n // 2, min(n, n // 2 + 139)))
    pence, day, points = 100_000, date(1900, 1, 1), []
    for i in range(n):
        pence = max(1_000, pence + rng.randint(-1_500, 1_500))  # hundredths of a penny
        raw = Decimal(pence).scaleb(-2)
        local = raw.scaleb(-4) if i in wrong else raw.scaleb(-2)  # pounds read as pence
        points.append(PricePoint(day, raw, "GBP", "GBX", local, local))
        day += timedelta(days=1)
    return tuple(points)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for switches in (False, True):
        started = time.perf_counter()
        points = build(n, switches=switches)
        built = time.perf_counter() - started
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            checked, _, issues = check_points(points, listing=LISTING, prior_level=None)
            best = min(best, time.perf_counter() - started)
        flagged = sum(1 for p in checked if p.flags)
        label = "with unit switches" if switches else "clean"
        print(
            f"{label:>18}: {n:,} points checked in {best:.3f} s = {n / best:,.0f} points/s "
            f"({flagged:,} flagged, {len(issues)} issue(s); building them took {built:.1f} s)"
        )


if __name__ == "__main__":
    main()
