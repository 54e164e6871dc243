"""Generate a deterministic synthetic ledger for import benchmarks.

Writes, into ``--out`` (default ``bench/out/``, ignored by git):

* ``listings.csv``: ``ticker,exchange,isin,trading_currency,quote_scale`` for every listing
  (half quoted in pence, GBX; half in pounds, GBP), so a benchmark can register them first;
* ``ledger_pNN.csv``: one canonical ledger CSV per portfolio (the canonical header has no
  portfolio column, and one import is one portfolio's batch);
* ``ledger.journal``: the same transactions as one hledger journal, accounts per portfolio
  (``assets:pNN:cash``, ``assets:pNN:<TICKER>``…), for comparing with ``hledger bal``;
* ``expected.json``: every portfolio's final cash and holdings, to check a replay against.

The ledger is valid by construction: each portfolio starts with a contribution, cash never
goes negative, a sale never exceeds the units held, and each trade's cash equals
consideration ± fees to the penny, with consideration = round_cash(units × price / 100) for
a GBX listing and round_cash(units × price) for a GBP one (half-even). To stay fast the
generator works in integers: cash in pence; prices in "ticks" of 0.01p (GBX, printed with
2 decimals) or £0.0001 (GBP, printed with 4 decimals). Either way units × ticks is in
hundredths of a penny, so consideration in pence is that divided by 100, rounded half-even.

    python bench/gen_ledger.py --rows 1000000 --out bench/out
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The ISIN check digit comes from the library, so generated ISINs pass its validation.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tradeassist.core.isin import isin_check_digit

HEADER = "entry_time,entry_type,ticker,exchange,units,price,fees_base,cash_amount_base,external_ref,notes\n"
START = datetime(2015, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)  # one transaction every five minutes across all portfolios
DEAL_FEES = (0, 0, 150, 500, 995)  # pence
EXCHANGE = "LSE"


@dataclass
class Listing:
    ticker: str
    isin: str
    scale: str  # GBX or GBP
    ticks: int  # current price in 0.01p (GBX) or £0.0001 (GBP)

    def price_text(self) -> str:
        if self.scale == "GBX":
            return f"{self.ticks // 100}.{self.ticks % 100:02d}"
        return f"{self.ticks // 10000}.{self.ticks % 10000:04d}"


@dataclass
class Portfolio:
    code: str
    cash: int = 0  # pence
    units: dict[int, int] = field(default_factory=dict)  # listing index -> units held
    seq: int = 0


def pence(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    return f"{sign}{amount // 100}.{amount % 100:02d}"


def consideration_pence(units: int, ticks: int) -> int:
    """units × price in pence, rounded half-even (the ledger's one cash-rounding rule)."""
    quotient, remainder = divmod(units * ticks, 100)
    if remainder > 50 or (remainder == 50 and quotient % 2 == 1):
        quotient += 1
    return quotient


def make_listings(rng: random.Random, count: int) -> list[Listing]:
    tickers: set[str] = set()
    listings = []
    for index in range(count):
        ticker = "".join(rng.choices(string.ascii_uppercase, k=4))
        while ticker in tickers:
            ticker = "".join(rng.choices(string.ascii_uppercase, k=4))
        tickers.add(ticker)
        body = "GB00" + "".join(rng.choices(string.digits, k=7))
        if index % 2 == 0:
            listing = Listing(ticker, body + isin_check_digit(body), "GBX", rng.randint(100_00, 5_000_00))
        else:
            listing = Listing(ticker, body + isin_check_digit(body), "GBP", rng.randint(10_0000, 200_0000))
        listings.append(listing)
    return listings


class Writer:
    """Writes one transaction to the portfolio's CSV and to the journal."""

    def __init__(self, out: Path, portfolios: list[Portfolio]) -> None:
        self.csv = {p.code: (out / f"ledger_{p.code}.csv").open("w", encoding="utf-8") for p in portfolios}
        for handle in self.csv.values():
            handle.write(HEADER)
        self.journal = (out / "ledger.journal").open("w", encoding="utf-8")
        self.journal.write("; synthetic ledger from bench/gen_ledger.py\ndecimal-mark .\n\n")

    def close(self) -> None:
        for handle in self.csv.values():
            handle.close()
        self.journal.close()

    def write(
        self,
        p: Portfolio,
        when: datetime,
        kind: str,
        cash: int,
        fees: int = 0,
        listing: Listing | None = None,
        units: int = 0,
        consideration: int = 0,
    ) -> None:
        p.seq += 1
        ref = f"{p.code}-{p.seq:07d}"
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        ticker, price = (listing.ticker, listing.price_text()) if listing else ("", "")
        exchange = EXCHANGE if listing else ""
        units_text = str(units) if listing else ""
        self.csv[p.code].write(
            f"{stamp},{kind},{ticker},{exchange},{units_text},{price},{pence(fees)},{pence(cash)},{ref},\n"
        )
        acct = f"assets:{p.code}"
        lines = [f"{when:%Y-%m-%d} ({ref}) {kind}{' ' + ticker if ticker else ''}"]
        if kind == "BUY":
            lines.append(f"    {acct}:{ticker}  {units} {ticker} @@ {pence(consideration)} GBP")
        elif kind == "SELL":
            lines.append(f"    {acct}:{ticker}  -{units} {ticker} @@ {pence(consideration)} GBP")
        elif kind in ("CONTRIBUTION", "WITHDRAWAL"):
            lines.append(f"    equity:{p.code}:contributions  {pence(-cash)} GBP")
        elif kind == "INTEREST":
            lines.append(f"    income:{p.code}:interest  {pence(-cash)} GBP")
        if fees:
            lines.append(f"    expenses:{p.code}:fees  {pence(fees)} GBP")
        lines.append(f"    {acct}:cash  {pence(cash)} GBP")
        self.journal.write("\n".join(lines) + "\n\n")


def step(rng: random.Random, p: Portfolio, listings: list[Listing], when: datetime, w: Writer) -> None:
    roll = rng.random() if p.seq else -1.0
    if 0 <= roll < 0.80:
        held = [i for i, u in p.units.items() if u] if roll >= 0.50 else []
        if held:
            listing_index = rng.choice(held)
            listing = listings[listing_index]
            units = rng.randint(1, p.units[listing_index])
            consideration = consideration_pence(units, listing.ticks)
            fees = rng.choice(DEAL_FEES)
            fees = fees if fees <= consideration else 0
            p.units[listing_index] -= units
            p.cash += consideration - fees
            w.write(p, when, "SELL", consideration - fees, fees, listing, units, consideration)
            return
        listing_index = rng.randrange(len(listings))
        listing = listings[listing_index]
        # Prices wander a little with each trade: a random walk in ticks, floored.
        listing.ticks = max(100, listing.ticks + rng.randint(-listing.ticks // 50, listing.ticks // 50))
        fees = rng.choice(DEAL_FEES)
        affordable = max(0, (p.cash - fees - 1) * 100 // listing.ticks)
        if affordable >= 1:
            units = rng.randint(1, min(200, affordable))
            consideration = consideration_pence(units, listing.ticks)
            if consideration + fees <= p.cash:
                p.units[listing_index] = p.units.get(listing_index, 0) + units
                p.cash -= consideration + fees
                w.write(p, when, "BUY", -(consideration + fees), fees, listing, units, consideration)
                return
        roll = 0.85  # cannot afford it: pay money in instead
    if roll < 0.88:
        amount = rng.randint(100_00, 5_000_00) if p.seq else 50_000_00
        p.cash += amount
        w.write(p, when, "CONTRIBUTION", amount)
    elif roll < 0.93:
        amount = rng.randint(1, 50_00)
        p.cash += amount
        w.write(p, when, "INTEREST", amount)
    elif roll < 0.97 and p.cash >= 20_00:
        amount = rng.randint(50, 20_00)
        p.cash -= amount
        w.write(p, when, "FEE", -amount, amount)
    elif p.cash >= 2_000_00:
        amount = rng.randint(50_00, 2_000_00)
        p.cash -= amount
        w.write(p, when, "WITHDRAWAL", -amount)
    else:
        amount = rng.randint(100_00, 5_000_00)
        p.cash += amount
        w.write(p, when, "CONTRIBUTION", amount)


def generate(
    out: Path, *, rows: int = 1_000_000, portfolios: int = 10, listings: int = 100, seed: int = 42
) -> dict:
    """Write the files described in the module docstring; return the expected final state."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    books = make_listings(rng, listings)
    with (out / "listings.csv").open("w", encoding="utf-8") as handle:
        handle.write("ticker,exchange,isin,trading_currency,quote_scale\n")
        for listing in books:
            handle.write(f"{listing.ticker},{EXCHANGE},{listing.isin},GBP,{listing.scale}\n")
    folios = [Portfolio(f"p{n + 1:02d}") for n in range(portfolios)]
    writer = Writer(out, folios)
    try:
        for index in range(rows):
            step(rng, folios[index % portfolios], books, START + index * STEP, writer)
    finally:
        writer.close()
    expected = {
        p.code: {
            "entries": p.seq,
            "cash": pence(p.cash),
            "units": {books[i].ticker: u for i, u in sorted(p.units.items()) if u},
        }
        for p in folios
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--portfolios", type=int, default=10)
    parser.add_argument("--listings", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--time-parse", action="store_true", help="then time parse_canonical on each file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generate(args.out, rows=args.rows, portfolios=args.portfolios, listings=args.listings, seed=args.seed)
    print(f"wrote {args.rows:,} entries to {args.out} in {time.perf_counter() - started:.1f} s")
    if args.time_parse:
        time_parse(sorted(args.out.glob("ledger_p*.csv")))


def time_parse(paths: list[Path]) -> None:
    """Parse each canonical file (one process, files in turn) and report the throughput."""
    from tradeassist.providers.brokers.canonical import parse_canonical

    total_rows, total_seconds = 0, 0.0
    for path in paths:
        started = time.perf_counter()
        rows = len(parse_canonical(path).entries)
        seconds = time.perf_counter() - started
        total_rows, total_seconds = total_rows + rows, total_seconds + seconds
        print(f"  {path.name}: {rows:,} rows in {seconds:.2f} s")
    print(f"parsed {total_rows:,} rows in {total_seconds:.2f} s ({total_rows / total_seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
