"""Benchmark: one posting on top of a large ledger (the incremental path), and ``ledger verify``.

The ledger of ``bench/bench_ledger.py`` (``bench/gen_ledger.py``: 10 portfolios × 100 listings,
1,000,000 rows by default) is imported into a SQLite file; then one portfolio (``p01``, a tenth
of the rows) takes ``--posts`` postings of each kind, each in its own transaction, dated now so
that the snapshot is advanced rather than the ledger replayed:

* a CONTRIBUTION and a WITHDRAWAL (cash only: the cash snapshot is what they depend on);
* a BUY and a SELL of a listing the portfolio holds (the pool is what a sale depends on).

It prints the median wall-clock and CPU time of each kind, and the time of
``ledger.verify`` (every portfolio's snapshots against a replay of its ledger) where the
library has it. ``--postgres auto`` repeats the run on a throwaway PostgreSQL cluster.

    python bench/bench_ledger_post.py                 # 1,000,000 rows (bench/out)
    python bench/bench_ledger_post.py --rows 100000   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ledger_setup import Clock, default_data, ensure_data, postgres_database, setup

from tradeassist.core.timeutil import utcnow
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.services import identity, imports, ledger

PORTFOLIO = "p01"


def import_all(url: str, data: Path) -> list[str]:
    codes = setup(url, data)
    engine = create_db_engine(url)
    clock = Clock()
    for code in codes:
        with unit_of_work(engine) as s:
            imports.import_file(
                s,
                actor=identity.bootstrap_admin(s),
                portfolio=code,
                path=data / f"ledger_{code}.csv",
                format="canonical",
            )
    wall, cpu = clock.stop()
    print(f"  imported {len(codes)} portfolios in {wall:.1f} s ({cpu:.1f} s CPU)", flush=True)
    engine.dispose()
    return codes


def held_listing(url: str) -> tuple[str, str, Decimal]:
    """A listing p01 holds (the one with the most units), and its units."""
    engine = create_db_engine(url)
    with unit_of_work(engine, readonly=True) as s:
        rows = ledger.holdings(s, actor=identity.bootstrap_admin(s), portfolio=PORTFOLIO)
    engine.dispose()
    top = max(rows, key=lambda r: r["units"])
    return top["ticker"], top["exchange"], top["units"]


def time_posts(url: str, posts: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of one posting of each kind."""
    ticker, exchange, _units = held_listing(url)
    engine = create_db_engine(url)
    kinds: dict[str, Callable[[int], dict[str, str]]] = {
        "CONTRIBUTION": lambda i: {"entry_type": "CONTRIBUTION", "amount": "100.00"},
        "WITHDRAWAL": lambda i: {"entry_type": "WITHDRAWAL", "amount": "50.00"},
        "BUY": lambda i: {"entry_type": "BUY", "units": "1", "price": "100", "fees": "1.00"},
        "SELL": lambda i: {"entry_type": "SELL", "units": "1", "price": "100", "fees": "1.00"},
    }
    figures: dict[str, tuple[float, float]] = {}
    for kind, make in kinds.items():
        walls, cpus = [], []
        for i in range(posts):
            clock = Clock()
            with unit_of_work(engine) as s:
                fields = make(i)
                if fields["entry_type"] in ("BUY", "SELL"):
                    fields |= {"ticker": ticker, "exchange": exchange}
                entry = ledger.manual_entry(
                    s,
                    entry_time=utcnow() - timedelta(seconds=1),
                    external_ref=f"bench-{kind}-{i}",
                    **fields,  # type: ignore[arg-type]
                )
                result = ledger.post_entries(
                    s,
                    actor=identity.bootstrap_admin(s),
                    portfolio=PORTFOLIO,
                    entries=[entry],
                    label=f"bench {kind}",
                    batch_type="MANUAL",
                    force=True,
                )
                assert not result.replayed, "the posting replayed the ledger instead of advancing"
            wall, cpu = clock.stop()
            walls.append(wall)
            cpus.append(cpu)
        figures[kind] = (statistics.median(walls), statistics.median(cpus))
    engine.dispose()
    return figures


def time_verify(url: str) -> tuple[float, float] | None:
    verify = getattr(ledger, "verify_snapshots", None)
    if verify is None:
        return None
    engine = create_db_engine(url)
    clock = Clock()
    with unit_of_work(engine, readonly=True) as s:
        rows = verify(s, actor=identity.bootstrap_admin(s))
    figures = clock.stop()
    engine.dispose()
    assert all(r.matches for r in rows), "a snapshot differs from its ledger"
    return figures


def run(url: str, data: Path, label: str, posts: int) -> None:
    print(f"\n[{label}]", flush=True)
    import_all(url, data)
    figures = time_posts(url, posts)
    verified = time_verify(url)
    print(f"\n== {label}: one posting to a portfolio of a tenth of the rows ==   (median wall ms / CPU ms)")
    for kind, (wall, cpu) in figures.items():
        print(f"{kind:13s}: {wall * 1000:8.1f} / {cpu * 1000:8.1f}")
    if verified is None:
        print("ledger verify: not in this version")
    else:
        print(f"ledger verify (every portfolio): {verified[0]:.2f} s / {verified[1]:.2f} s CPU")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="generated ledger (default bench/out)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=15, help="postings of each kind")
    parser.add_argument("--postgres", default=None, help="a server URL, or 'auto' for a throwaway cluster")
    args = parser.parse_args(argv)
    data = args.data or default_data(args.rows)
    ensure_data(data, args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-post-") as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", data, f"SQLite, {args.rows:,} rows", args.posts)
    if args.postgres:
        with postgres_database(args.postgres, "bench_post") as url:
            if url is None:
                print("\nPostgreSQL: no server binaries found, skipped")
                return
            run(url, data, f"PostgreSQL, {args.rows:,} rows", args.posts)


if __name__ == "__main__":
    main()
